"""A fast QoS 1 producer is paused, not dropped: nothing it had acknowledged is lost."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest

from adapters.mqtt.codec import encode
from adapters.mqtt.packets import PubAck, Publish, SubAck, Subscribe, SubscriptionRequest
from tests.conftest import RunningGateway, make_config
from tests.wire_client import WireClient

BURST = 3000


@pytest.fixture
def small_queues() -> Iterator[RunningGateway]:
    running = RunningGateway(make_config(mqtt={"max_queued_messages": 50, "max_inflight": 5}))
    try:
        yield running
    finally:
        running.stop()


def publisher_connection(running: RunningGateway, client_id: str):  # type: ignore[no-untyped-def]
    def find():  # type: ignore[no-untyped-def]
        return next(c for c in running.gateway.mqtt_connections.connections if c.client_id == client_id)

    return running.call(find)


def test_a_qos1_burst_larger_than_the_subscriber_queue_arrives_whole_and_in_order(
    small_queues: RunningGateway,
) -> None:
    port = small_queues.mqtt_port
    with WireClient(port, 4) as sub, WireClient(port, 4) as pub:
        sub.connect("slow-sub")
        sub.send(Subscribe(1, (SubscriptionRequest("bp/t", 1),)))
        assert isinstance(sub.recv(), SubAck)
        pub.connect("fast-pub")
        burst = b"".join(
            encode(Publish("bp/t", str(i).encode(), qos=1, packet_id=i % 65535 + 1), 4) for i in range(BURST)
        )
        # One write of the whole burst: the gateway reads it in a few large chunks.
        sender = threading.Thread(target=pub.send_raw, args=(burst,), daemon=True)
        sender.start()

        received = []
        while len(received) < BURST:
            packet = sub.recv()
            assert isinstance(packet, Publish)
            received.append(packet.payload)
            sub.send(PubAck(packet.packet_id))  # type: ignore[arg-type]
        acks = [pub.recv() for _ in range(BURST)]
        sender.join(10)

    assert received == [str(i).encode() for i in range(BURST)]
    assert all(isinstance(a, PubAck) for a in acks)
    counters = small_queues.call(lambda: small_queues.broker.mqtt_sessions.get("slow-sub"))
    assert counters is None or counters.counters.queue_full == 0


def test_the_producer_is_paused_while_the_subscriber_is_congested(small_queues: RunningGateway) -> None:
    port = small_queues.mqtt_port
    with WireClient(port, 4) as sub, WireClient(port, 4) as pub:
        sub.connect("slow-sub")
        sub.send(Subscribe(1, (SubscriptionRequest("bp/t", 1),)))
        assert isinstance(sub.recv(), SubAck)
        pub.connect("fast-pub")
        gate = publisher_connection(small_queues, "fast-pub").input_gate
        burst = b"".join(encode(Publish("bp/t", b"x", qos=1, packet_id=i + 1), 4) for i in range(500))
        sender = threading.Thread(target=pub.send_raw, args=(burst,), daemon=True)
        sender.start()
        for _ in range(500):
            packet = sub.recv()
            sub.send(PubAck(packet.packet_id))  # type: ignore[attr-defined]
        sender.join(10)
        closes = small_queues.call(lambda: gate.closes)
        session = small_queues.call(lambda: small_queues.broker.mqtt_sessions.get("slow-sub"))
    assert closes > 0
    assert session.counters.queue_full == 0
