"""Benchmark scenarios; each connects to an MQTT broker at host:port and returns its figures.

Every scenario is bounded in count and time and stops by itself. Throughputs
are delivered messages per second measured at the subscribers.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from bench.clients import STAMP, BenchClient, Progress, open_client, publish_batch, publish_size
from bench.connect_load import connect_subscribe as run_connect_load, handshakes

Result = dict[str, float]
Scenario = Callable[[str, int, "Params"], Awaitable[Result]]

PAYLOAD = 64
BATCH = 500


@dataclass(frozen=True)
class Params:
    """Sizes of a run (`quick` ones for a smoke test)."""

    messages: int = 200_000
    fanout_messages: int = 10_000
    subscribers: int = 50
    qos1_messages: int = 50_000
    window: int = 100
    latency_rate: int = 1000
    latency_seconds: float = 3.0
    idle_connections: int = 10_000
    timeout: float = 60.0
    stalled_messages: int = 20_000
    connects: int = 5_000

    @classmethod
    def quick(cls) -> "Params":
        return cls(2_000, 200, 5, 1_000, 100, 200, 0.5, 200, 20.0, 2_000, 200)


async def _flood(pub: BenchClient, topic: str, total: int, qos: int = 0) -> None:
    batch = publish_batch(topic, b"x" * PAYLOAD, qos, BATCH)
    sent = 0
    while sent < total:
        n = min(BATCH, total - sent)
        await pub.write(batch if n == BATCH else publish_batch(topic, b"x" * PAYLOAD, qos, n))
        sent += n


async def _subscribers(
    host: str, port: int, count: int, topic_filter: str, qos: int, prefix: str, clean_session: bool = True
) -> list[BenchClient]:
    size = publish_size("bench/x" if "+" not in topic_filter else "bench/in/00", PAYLOAD, qos)
    subs = [
        await open_client(
            host, port, f"{prefix}{i}", message_size=size, payload_size=PAYLOAD, qos=qos, clean_session=clean_session
        )
        for i in range(count)
    ]
    for sub in subs:
        await sub.subscribe(topic_filter, qos)
    return subs


STALL = 3.0  # seconds without any delivery that end a scenario early (its messages were dropped)


async def _timed(futures: list[asyncio.Future[None]], start: float, timeout: float) -> float:
    """Seconds from `start` until every future is done, or until the last delivery if they stall."""
    everything = asyncio.ensure_future(asyncio.gather(*futures))
    deadline = start + timeout
    Progress.last = max(Progress.last, start)
    while not everything.done():
        now = time.perf_counter()
        if now >= deadline or now - Progress.last >= STALL:
            everything.cancel()
            return Progress.last - start
        await asyncio.wait([everything], timeout=min(0.5, deadline - now))
    return time.perf_counter() - start


async def qos0_one_to_one(host: str, port: int, p: Params) -> Result:
    (sub,) = await _subscribers(host, port, 1, "bench/x", 0, "q0s")
    pub = await open_client(host, port, "q0p")
    done = sub.expect(p.messages)
    start = time.perf_counter()
    await _flood(pub, "bench/x", p.messages)
    elapsed = await _timed([done], start, p.timeout)
    for c in (sub, pub):
        c.close()
    return {"msgs_per_s": sub.received / elapsed, "delivered": sub.received / p.messages}


async def fanout_one_to_many(host: str, port: int, p: Params) -> Result:
    subs = await _subscribers(host, port, p.subscribers, "bench/x", 0, "fos")
    pub = await open_client(host, port, "fop")
    waits = [s.expect(p.fanout_messages) for s in subs]
    start = time.perf_counter()
    await _flood(pub, "bench/x", p.fanout_messages)
    elapsed = await _timed(waits, start, p.timeout)
    total = sum(s.received for s in subs)
    for c in (*subs, pub):
        c.close()
    return {"msgs_per_s": total / elapsed, "delivered": total / (p.fanout_messages * p.subscribers)}


async def fanin_many_to_one(host: str, port: int, p: Params) -> Result:
    (sub,) = await _subscribers(host, port, 1, "bench/in/+", 0, "fis")
    pubs = [await open_client(host, port, f"fip{i}") for i in range(p.subscribers)]
    each = p.messages // p.subscribers
    done = sub.expect(each * p.subscribers)
    start = time.perf_counter()
    await asyncio.gather(*(_flood(pub, f"bench/in/{i:02d}", each) for i, pub in enumerate(pubs)))
    elapsed = await _timed([done], start, p.timeout)
    for c in (sub, *pubs):
        c.close()
    return {"msgs_per_s": sub.received / elapsed, "delivered": sub.received / (each * p.subscribers)}


async def qos1_windowed(host: str, port: int, p: Params, persistent: bool = False) -> Result:
    """QoS 1 publisher keeping `window` messages unacknowledged; QoS 1 subscriber acking each."""
    (sub,) = await _subscribers(host, port, 1, "bench/x", 1, "q1s", clean_session=not persistent)
    pub = await open_client(host, port, "q1p")
    return await _windowed_qos1(pub, sub, p)


async def qos1_persistent(host: str, port: int, p: Params) -> Result:
    """`qos1_windowed` with a persistent subscriber session (clean session 0): every message is
    stored for it while in flight, and the publisher's PUBACK waits until that is durable."""
    return await qos1_windowed(host, port, p, persistent=True)


async def latency_at_fixed_rate(host: str, port: int, p: Params) -> Result:
    size = publish_size("bench/x", STAMP.size, 0)
    sub = await open_client(host, port, "lts", message_size=size, payload_size=STAMP.size, latency=True)
    await sub.subscribe("bench/x", 0)
    pub = await open_client(host, port, "ltp")
    count = int(p.latency_rate * p.latency_seconds)
    interval = 1.0 / p.latency_rate
    done = sub.expect(count)
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await pub.write(publish_batch("bench/x", STAMP.pack(time.perf_counter()), 0, 1))
    await _timed([done], start, p.timeout)
    lat = sorted(sub.latencies) or [float("nan")]
    for c in (sub, pub):
        c.close()
    return {
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "delivered": len(sub.latencies) / count,
    }


async def idle_connections(host: str, port: int, p: Params, rss: Callable[[], int]) -> Result:
    """Memory per idle connection: broker RSS after opening them, minus before, per connection."""
    before = rss()
    clients: list[BenchClient] = []
    for start in range(0, p.idle_connections, 200):
        chunk = range(start, min(start + 200, p.idle_connections))
        clients += await asyncio.gather(*(open_client(host, port, f"idle{i}") for i in chunk))
    await asyncio.sleep(0.5)  # let the broker settle its buffers before reading RSS (not a test)
    after = rss()
    for c in clients:
        c.close()
    await asyncio.gather(*(c.closed for c in clients))
    return {"kib_per_conn": (after - before) / 1024 / p.idle_connections}


async def stalled_subscriber(host: str, port: int, p: Params) -> Result:
    """Issue 25's scenario: a subscriber on `#` with a 4 KB receive buffer stops reading; another on
    `load/#` reads; 20,000 QoS 0 messages of 1 KB. The reader's rate, and whether all arrived."""
    import socket

    from adapters.mqtt.codec import encode
    from adapters.mqtt.packets import Connect, Subscribe, SubscriptionRequest

    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect((host, port))
    stalled.sendall(encode(Connect(client_id="stalled", protocol_level=4), 4)
                    + encode(Subscribe(1, (SubscriptionRequest("#", 0),)), 4))
    stalled.settimeout(10)
    stalled.recv(9)  # CONNACK (4 bytes) and SUBACK (5 bytes): then it never reads again
    count, payload = p.stalled_messages, b"x" * 1024
    reader = await open_client(host, port, "reader", message_size=publish_size("load/t", 1024, 0),
                               payload_size=1024)
    await reader.subscribe("load/#", 0)
    pub = await open_client(host, port, "loader")
    done = reader.expect(count)
    start = time.perf_counter()
    batch = publish_batch("load/t", payload, 0, 100)
    for _ in range(count // 100):
        await pub.write(batch)
    elapsed = await _timed([done], start, p.timeout)
    for c in (reader, pub):
        c.close()
    stalled.close()
    return {"msgs_per_s": reader.received / elapsed, "seconds": elapsed, "delivered": reader.received / count}


async def connect_subscribe(host: str, port: int, p: Params) -> Result:
    """Clients per second that connect (CONNECT/CONNACK), subscribe to their own topic
    (SUBSCRIBE/SUBACK) and go away, 50 at a time, as a fleet reconnecting after an outage.

    Driven by raw sockets on a busy epoll loop (bench/connect_load.py), blocking this event loop
    while it runs: asyncio clients cost the generator more per client than mosquitto spends, so
    the row measured the generator."""
    seconds = run_connect_load(host, port, handshakes(p.connects), 50, p.timeout)
    return {"clients_per_s": p.connects / seconds}


THROUGHPUT: dict[str, Scenario] = {
    "qos0_1to1": qos0_one_to_one,
    "fanout_1to50": fanout_one_to_many,
    "fanin_50to1": fanin_many_to_one,
    "qos1_window100": qos1_windowed,
    "latency": latency_at_fixed_rate,
    "stalled_subscriber": stalled_subscriber,
    "connect_subscribe": connect_subscribe,
}

# Run against brokers that persist sessions (`python -m bench compare --group persistent`).
PERSISTENT: dict[str, Scenario] = {
    "qos1_persistent": qos1_persistent,
}


# -- other transports (the gateway only: mosquitto's WebSocket listener binds every interface) --


async def ws_qos0_one_to_one(host: str, ports: dict[str, int], p: Params) -> Result:
    """QoS 0 1->1 with both clients on MQTT over WebSocket."""
    from bench.ws_clients import open_ws_client

    size = publish_size("bench/x", PAYLOAD, 0)
    sub = await open_ws_client(host, ports["ws"], "/mqtt", "wss0", message_size=size, payload_size=PAYLOAD)
    await sub.subscribe("bench/x", 0)
    pub = await open_ws_client(host, ports["ws"], "/mqtt", "wsp0")
    done = sub.expect(p.messages)
    start = time.perf_counter()
    await _flood(pub, "bench/x", p.messages)
    elapsed = await _timed([done], start, p.timeout)
    for c in (sub, pub):
        c.close()
    return {"msgs_per_s": sub.received / elapsed, "delivered": sub.received / p.messages}


async def tcp_to_ws_qos1(host: str, ports: dict[str, int], p: Params) -> Result:
    """QoS 1 from a TCP publisher (window 100) to a WebSocket subscriber that acknowledges each."""
    from bench.ws_clients import open_ws_client

    size = publish_size("bench/x", PAYLOAD, 1)
    sub = await open_ws_client(host, ports["ws"], "/mqtt", "xws1", message_size=size, payload_size=PAYLOAD, qos=1)
    await sub.subscribe("bench/x", 1)
    pub = await open_client(host, ports["mqtt"], "xtcp1")
    return await _windowed_qos1(pub, sub, p)


async def _windowed_qos1(pub: BenchClient, sub: BenchClient, p: Params) -> Result:
    done = sub.expect(p.qos1_messages)
    start = time.perf_counter()
    sent = 0
    while sent < p.qos1_messages:
        allowed = pub.acks_received + p.window - sent
        if allowed <= 0:
            await pub.expect(sent - p.window // 2)
            continue
        n = min(allowed, p.qos1_messages - sent)
        await pub.write(publish_batch("bench/x", b"x" * PAYLOAD, 1, n, sent + 1))
        sent += n
    elapsed = await _timed([done, pub.expect(p.qos1_messages)], start, p.timeout)
    for c in (sub, pub):
        c.close()
    return {"msgs_per_s": sub.received / elapsed, "delivered": sub.received / p.qos1_messages}


PROTOCOLS: dict[str, Callable[[str, dict[str, int], Params], Awaitable[Result]]] = {
    "ws_qos0_1to1": ws_qos0_one_to_one,
    "tcp_to_ws_qos1": tcp_to_ws_qos1,
}


async def mqtt_to_amqp(host: str, ports: dict[str, int], p: Params) -> Result:
    """QoS 0 MQTT publisher flood -> an AMQP consumer bound to amq.topic (no-ack)."""
    from bench.amqp_clients import open_amqp_counter

    consumer = await open_amqp_counter(host, ports["amqp"], "bench.x")
    pub = await open_client(host, ports["mqtt"], "m2a")
    done = consumer.expect(p.messages)
    start = time.perf_counter()
    await _flood(pub, "bench/x", p.messages)
    elapsed = await _timed([done], start, p.timeout)
    pub.close()
    consumer.close()
    return {"msgs_per_s": consumer.received / elapsed, "delivered": consumer.received / p.messages}


async def amqp_to_mqtt(host: str, ports: dict[str, int], p: Params) -> Result:
    """AMQP basic.publish flood to amq.topic -> an MQTT QoS 0 subscriber."""
    from bench.amqp_clients import open_amqp_counter, publish_frames

    (sub,) = await _subscribers(host, ports["mqtt"], 1, "bench/x", 0, "a2m")
    pub = await open_amqp_counter(host, ports["amqp"], None)
    batch = publish_frames("bench.x", b"x" * PAYLOAD, BATCH)
    done = sub.expect(p.messages)
    start = time.perf_counter()
    for _ in range(p.messages // BATCH):
        await pub.write(batch)
    elapsed = await _timed([done], start, p.timeout)
    pub.close()
    sub.close()
    total = p.messages // BATCH * BATCH
    return {"msgs_per_s": sub.received / elapsed, "delivered": sub.received / total}


async def coap_to_mqtt(host: str, ports: dict[str, int], p: Params) -> Result:
    """CoAP CON POSTs (window 32) to /ps/bench/x -> an MQTT QoS 0 subscriber."""
    from bench.coap_clients import open_coap_publisher

    # A tenth of the MQTT count: 16-bit message ids stay unique (the gateway deduplicates them per
    # peer). The publishes take the listener's fast path (adapters/coap/fast_path.py), not aiocoap.
    total = min(p.messages // 10, 60_000)
    (sub,) = await _subscribers(host, ports["mqtt"], 1, "bench/x", 0, "c2m")
    publisher = await open_coap_publisher(host, ports["coap"], "bench/x", b"x" * PAYLOAD, total, 32)
    done = sub.expect(total)
    start = time.perf_counter()
    publisher.start()
    elapsed = await _timed([done], start, p.timeout)
    sub.close()
    publisher.transport.close()  # type: ignore[union-attr]
    return {"msgs_per_s": sub.received / elapsed, "delivered": sub.received / total}


PROTOCOLS["mqtt_to_amqp"] = mqtt_to_amqp
PROTOCOLS["amqp_to_mqtt"] = amqp_to_mqtt
PROTOCOLS["coap_to_mqtt"] = coap_to_mqtt
