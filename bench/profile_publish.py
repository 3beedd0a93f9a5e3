"""In-process hot-path cost: feed N QoS 0 PUBLISHes to one MQTTConnection, fanned out to subscribers.

    python -m bench.profile_publish [N] [SUBSCRIBERS]

No sockets, no event loop: one producer connection and SUBSCRIBERS subscriber
connections on one `Broker`; prints the best of five runs in microseconds per
PUBLISH. Compare before and after a change to the routing path.
"""

from __future__ import annotations

import sys
import time

from adapters.mqtt.codec import encode
from adapters.mqtt.connection import MQTTConnection
from adapters.mqtt.packets import Connect, Publish, Subscribe, SubscriptionRequest
from adapters.mqtt.settings import MQTTSettings
from core.broker import Broker


def connected(broker: Broker, client_id: str) -> MQTTConnection:
    conn = MQTTConnection(broker, MQTTSettings())
    conn.receive_data(encode(Connect(client_id=client_id, protocol_level=4), 4))
    conn.data_to_send()
    return conn


def run(n: int, subscribers: int) -> float:
    broker = Broker()
    readers = [connected(broker, f"sub{i}") for i in range(subscribers)]
    for reader in readers:
        reader.receive_data(encode(Subscribe(1, (SubscriptionRequest("bench/#", 0),)), 4))
        reader.data_to_send()
    producer = connected(broker, "pub")
    data = encode(Publish("bench/t", b"x" * 32, 0, False), 4) * 100
    rounds = n // 100
    start = time.perf_counter()
    for _ in range(rounds):
        producer.receive_data(data)
        for reader in readers:
            reader.data_to_send()
    return (time.perf_counter() - start) / (rounds * 100) * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    subscribers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    best = min(run(n, subscribers) for _ in range(5))
    print(f"{best:.3f} us per PUBLISH ({n} PUBLISHes, {subscribers} subscriber(s))")


if __name__ == "__main__":
    main()
