"""A subscriber that stops reading never slows anyone else: its outbox bound and policy deal
with it; one that keeps reading gets a burst whole (its producer is held briefly meanwhile).

The issue's scenario: one subscriber on `#` stops reading, another on `load/#` reads, and a
publisher sends 20,000 QoS 0 messages of 1 KB; every one reaches the reader. Then the outbox
policies end to end (drop oldest, disconnect with 0x97), and the memory budget, the only
thing that pauses a publisher.
"""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import pytest

from adapters.mqtt.codec import encode
from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import Disconnect, PubAck, Publish, SubAck, Subscribe, SubscriptionRequest
from tests.conftest import RunningGateway, make_config
from tests.wire_client import WireClient, qos1_burst, send_in_background


def gateway_with(**mqtt: object) -> RunningGateway:
    return RunningGateway(make_config(mqtt=dict(mqtt)))


@pytest.fixture
def small_queues() -> Iterator[RunningGateway]:
    running = gateway_with(max_queued_messages=50, max_inflight=5)
    try:
        yield running
    finally:
        running.stop()


def stalled_subscriber(port: int, topic_filter: str, client_id: str, level: int = 4) -> WireClient:
    """A subscriber with a 4 KB receive buffer that never reads after its SUBACK."""
    client = WireClient(port, level)
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(client_id)
    client.send(Subscribe(1, (SubscriptionRequest(topic_filter, 1),)))
    assert isinstance(client.recv(), SubAck)
    return client


def test_a_subscriber_that_never_reads_does_not_slow_a_reading_one() -> None:
    running = gateway_with()
    try:
        port = running.mqtt_port
        stalled = stalled_subscriber(port, "#", "stalled")
        with WireClient(port, 4, timeout=30) as reader, WireClient(port, 4) as pub:
            reader.connect("reader")
            reader.send(Subscribe(1, (SubscriptionRequest("load/#", 0),)))
            assert isinstance(reader.recv(), SubAck)
            pub.connect("publisher")
            count, body = 20_000, b"x" * 1024
            packet = encode(Publish("load/t", body, qos=0), 4)
            sender = threading.Thread(target=pub.send_raw, args=(packet * count,), daemon=True)
            sender.start()
            received = sum(1 for _ in range(count) if isinstance(reader.recv(), Publish))
            sender.join(30)
        assert received == count
        session = running.call(lambda: running.broker.mqtt_sessions.get("stalled"))
        assert session is not None and session.counters.slow_consumer_qos0 > 0  # its own outbox dropped
        # At most one brief hold (core/flow.py, 50 ms at most), when the stalled client's socket
        # first filled; after that it is known not to read and holds no one.
        assert running.call(lambda: publisher_gate_closes(running, "publisher")) <= 1
        stalled.close()
    finally:
        running.stop()


def publisher_gate_closes(running: RunningGateway, client_id: str) -> int:
    return sum(c.input_gate.closes for c in running.gateway.mqtt_connections.connections if c.client_id == client_id)


def test_a_qos1_burst_past_a_slow_subscribers_bound_keeps_its_newest_messages_in_order(
    small_queues: RunningGateway,
) -> None:
    """drop_oldest (the default): the publisher gets every PUBACK at once; the subscriber, which
    reads only after the burst, gets the newest messages in order, and the drops are counted."""
    port = small_queues.mqtt_port
    burst_size = 3000
    with WireClient(port, 4) as sub, WireClient(port, 4) as pub:
        sub.connect("slow-sub")
        sub.send(Subscribe(1, (SubscriptionRequest("bp/t", 1),)))
        assert isinstance(sub.recv(), SubAck)
        pub.connect("fast-pub")
        pub.send_raw(b"".join(encode(Publish("bp/t", str(i).encode(), qos=1, packet_id=i + 1), 4)
                              for i in range(burst_size)))
        acks = [pub.recv() for _ in range(burst_size)]  # never held back by the slow subscriber
        assert all(isinstance(a, PubAck) for a in acks)
        received = []
        while True:
            try:
                packet = sub.recv()
            except TimeoutError:
                break
            assert isinstance(packet, Publish)
            received.append(int(packet.payload))
            sub.send(PubAck(packet.packet_id))  # type: ignore[arg-type]
            if received[-1] == burst_size - 1:
                break
        dropped = small_queues.call(lambda: small_queues.broker.mqtt_sessions.get("slow-sub").counters.dropped_oldest)
    assert received == sorted(received) and received[-1] == burst_size - 1
    assert len(received) <= 5 + 50 + 5  # the window, the outbox bound, and what was sent at once
    assert dropped == burst_size - len(received)


def test_the_disconnect_policy_closes_a_slow_v5_client_with_quota_exceeded() -> None:
    running = gateway_with(max_queued_messages=10, max_inflight=1, overflow="disconnect")
    try:
        port = running.mqtt_port
        with WireClient(port, 5) as sub, WireClient(port, 5) as pub:
            sub.connect("slow-v5")
            sub.send(Subscribe(1, (SubscriptionRequest("q/t", 1),)))
            assert isinstance(sub.recv(), SubAck)
            pub.connect("pub-v5")
            pub.send_raw(b"".join(encode(Publish("q/t", b"m", qos=1, packet_id=i + 1), 5) for i in range(30)))
            assert all(isinstance(pub.recv(), PubAck) for _ in range(30))  # the publisher is untouched
            packets = []
            while not packets or not isinstance(packets[-1], Disconnect):
                packets.append(sub.recv())
            assert packets[-1].reason_code == ReasonCode.QUOTA_EXCEEDED  # type: ignore[attr-defined]
            assert sub.closed_by_server()
    finally:
        running.stop()


def test_past_the_memory_budget_the_publisher_is_paused_not_the_subscribers() -> None:
    running = RunningGateway(make_config(mqtt={"max_queued_messages": 100_000},
                                         limits={"max_memory": 200_000}))
    try:
        port = running.mqtt_port
        stalled = stalled_subscriber(port, "budget/#", "hoarder")
        with WireClient(port, 4) as pub:
            pub.connect("flood")
            data = encode(Publish("budget/t", b"y" * 1000, qos=0), 4) * 20_000
            send_in_background(pub, data)
            budget = running.call(lambda: running.broker.budget)
            deadline_wait(lambda: running.call(lambda: budget.congestions) > 0)
            assert running.call(lambda: publisher_gate_closes(running, "flood")) > 0
            assert running.call(lambda: budget.used) < 200_000 + 2 * 65536 + 100 * 1200
        stalled.close()
    finally:
        running.stop()


def deadline_wait(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    import time
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


def test_a_burst_to_a_subscriber_that_keeps_reading_arrives_whole_without_drops(
    small_queues: RunningGateway,
) -> None:
    """The outbox bound is for clients that stop reading: one that reads (and acknowledges) while
    a burst far larger than its outbox arrives gets every message, in order; the publisher is
    held only briefly, while that outbox drains."""
    port = small_queues.mqtt_port
    burst_size = 3000
    with WireClient(port, 4) as sub, WireClient(port, 4) as pub:
        sub.connect("reading-sub")
        sub.send(Subscribe(1, (SubscriptionRequest("rd/t", 1),)))
        assert isinstance(sub.recv(), SubAck)
        pub.connect("burst-pub")
        received, acks = qos1_burst(pub, sub, "rd/t", burst_size)
        counters = small_queues.call(lambda: small_queues.broker.mqtt_sessions.get("reading-sub").counters)
    assert received == list(range(burst_size))
    assert all(isinstance(a, PubAck) for a in acks)
    assert counters.dropped_oldest == 0 and counters.queue_full == 0
