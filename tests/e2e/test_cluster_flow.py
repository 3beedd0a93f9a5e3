"""Flow control across nodes (gateway/cluster/flow.py): a subscriber on node B that keeps
reading, but slower than a publisher on node A, gets a QoS 1 burst far larger than its outbox
whole and in order, as it would from a publisher on its own node; the publisher is held
through NATS meanwhile, and node A reads a flooding client one socket read per loop turn.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from adapters.mqtt.packets import PubAck, Publish, SubAck, Subscribe, SubscriptionRequest
from tests.conftest import RunningGateway
from tests.e2e.cluster_support import NatsCluster, cluster_node, nats, wait_until
from tests.wire_client import WireClient, qos1_burst

__all__ = ["nats"]  # the module's three-server NATS cluster (a fixture)


@pytest.fixture(scope="module")
def small_queue_nodes(nats: NatsCluster) -> Iterator[tuple[RunningGateway, RunningGateway]]:
    """Two nodes on different NATS servers whose subscribers' outboxes hold 50 messages."""
    mqtt = {"max_queued_messages": 50, "max_inflight": 5}
    a = cluster_node(nats, "flow-a", servers=[nats.urls[0]], mqtt=mqtt)
    b = cluster_node(nats, "flow-b", servers=[nats.urls[1]], mqtt=mqtt)
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def _recv_within(client: WireClient, seconds: float) -> object | None:
    client.sock.settimeout(seconds)
    try:
        return client.recv()
    except TimeoutError:
        return None
    finally:
        client.sock.settimeout(10)


def _routed(pub: WireClient, sub: WireClient, topic: str) -> None:
    """QoS 0 probes until the subscriber on the other node sees one (interest crosses NATS), then
    until the probes still on their way have arrived."""
    def seen() -> bool:
        pub.send(Publish(topic, b"probe", qos=0))
        packet = _recv_within(sub, 0.2)
        return isinstance(packet, Publish) and packet.payload == b"probe"
    wait_until(seen, what=f"routing of {topic}")
    while (packet := _recv_within(sub, 0.3)) is not None:
        assert isinstance(packet, Publish) and packet.payload == b"probe"


def test_a_qos1_burst_to_a_reading_subscriber_on_another_node_arrives_whole_and_in_order(
    small_queue_nodes: tuple[RunningGateway, RunningGateway],
) -> None:
    a, b = small_queue_nodes
    burst_size = 5000
    with WireClient(b.mqtt_port, 4) as sub, WireClient(a.mqtt_port, 4) as pub:
        sub.connect("far-reader")
        sub.send(Subscribe(1, (SubscriptionRequest("flow/t", 1),)))
        assert isinstance(sub.recv(), SubAck)
        pub.connect("near-burst")
        _routed(pub, sub, "flow/t")
        received, acks = qos1_burst(pub, sub, "flow/t", burst_size)
        counters = b.call(lambda: b.broker.mqtt_sessions.get("far-reader").counters)
        held = b.call(lambda: b.gateway.fabric.metrics())
    assert received == list(range(burst_size))  # none dropped by the small outbox, none twice
    assert all(isinstance(ack, PubAck) for ack in acks)
    assert counters.dropped_oldest == 0 and counters.queue_full == 0
    assert held["holds_sent"] > 0  # node B held node A's publisher (without it, the outbox overflows)
