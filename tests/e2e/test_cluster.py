"""Several gateway nodes as one through a real three-server NATS cluster (issue 15).

Two gateway nodes, each on its own NATS server; real clients (paho, pika, aiocoap) on both.
"""

from __future__ import annotations

import itertools
from typing import Iterator

import pytest

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.clients import PahoClient
from tests.e2e.cluster_support import NatsCluster, cluster_node, wait_until

_ids = itertools.count()


@pytest.fixture(scope="module")
def nats() -> Iterator[NatsCluster]:
    cluster = NatsCluster(3)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def nodes(nats: NatsCluster) -> Iterator[tuple[RunningGateway, RunningGateway]]:
    a = cluster_node(nats, "gw-a", servers=[nats.urls[0]])
    b = cluster_node(nats, "gw-b", servers=[nats.urls[1]])
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def client(node: RunningGateway, version: str = "5") -> PahoClient:
    return PahoClient(node.mqtt_port, f"c{next(_ids)}", version).connect()


def until_routed(publisher: PahoClient, subscriber: PahoClient, topic: str) -> None:
    """Publish probes on `topic` until `subscriber` sees one (interest crosses NATS asynchronously)."""
    def seen() -> bool:
        publisher.publish(topic, b"probe", qos=0)
        try:
            subscriber.inbox.until(lambda m: m.topic == topic and m.payload == b"probe", timeout=0.2)
            return True
        except Exception:
            return False
    wait_until(seen, what=f"routing of {topic}")
    subscriber.inbox.pending()  # drop the probes still arriving


def test_a_message_published_on_one_node_reaches_subscribers_on_the_other_once_with_its_properties(
    nodes: tuple[RunningGateway, RunningGateway],
) -> None:
    a, b = nodes
    pub, sub = client(a), client(b)
    sub.subscribe("plant/+/temp", qos=1)
    sub.subscribe("plant/#", qos=1)  # overlapping: still one copy
    until_routed(pub, sub, "plant/probe/temp")
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = [("unit", "C")]
    info = pub.client.publish("plant/l1/temp", b"21.5", 1, False, properties=props)
    info.wait_for_publish(10)
    pub.publish("plant/marker/temp", b"end", qos=1)  # after it, a second copy could not still come
    got = [m for m in sub.inbox.until_topic("plant/marker/temp") if m.topic == "plant/l1/temp"]
    assert [m.payload for m in got] == [b"21.5"]
    assert got[0].qos == 1 and got[0].properties["ContentType"] == "application/json"
    assert got[0].properties["UserProperty"] == [("unit", "C")]
    for c in (pub, sub):
        c.close()


def test_a_node_never_gets_its_own_messages_back(nodes: tuple[RunningGateway, RunningGateway]) -> None:
    a, b = nodes
    local_pub, local_sub, remote_sub = client(a), client(a), client(b)
    for sub in (local_sub, remote_sub):
        sub.subscribe("echo/#", qos=1)
    until_routed(local_pub, remote_sub, "echo/probe")
    local_sub.inbox.pending()
    fabric = a.gateway.fabric
    received_before = a.call(lambda: fabric.received)
    for n in range(20):
        local_pub.publish("echo/t", str(n).encode(), qos=1)
    local_pub.publish("echo/end", b"", qos=1)
    for sub in (local_sub, remote_sub):
        got = [m.payload for m in sub.inbox.until_topic("echo/end") if m.topic == "echo/t"]
        assert got == [str(n).encode() for n in range(20)]  # once each, in order
    assert a.call(lambda: fabric.received) == received_before  # nothing of its own came back to node A
    for c in (local_pub, local_sub, remote_sub):
        c.close()


def test_a_shared_subscription_spans_the_nodes_one_member_per_message(
    nodes: tuple[RunningGateway, RunningGateway],
) -> None:
    a, b = nodes
    members = [client(a), client(b)]
    for member in members:
        member.subscribe("$share/workers/jobs/#", qos=1)
    watcher = client(b)
    watcher.subscribe("jobs/#", qos=1)
    pub = client(a)
    until_routed(pub, watcher, "jobs/probe")
    wait_until(lambda: len(a.call(lambda: a.gateway.fabric._subs)) >= 1 and
               len(b.call(lambda: b.gateway.fabric._subs)) >= 2, what="share interest")
    for member in members:
        member.inbox.pending()
    total = 60
    for n in range(total):
        pub.publish("jobs/run", str(n).encode(), qos=1)
    watcher.inbox.until(lambda m: m.payload == str(total - 1).encode())
    per_member: list[list[bytes]] = [[], []]

    def every_job_delivered() -> bool:
        for index, member in enumerate(members):
            per_member[index] += [m.payload for m in member.inbox.pending() if m.topic == "jobs/run"]
        return sum(map(len, per_member)) >= total

    wait_until(every_job_delivered, what="every job delivered")
    seen = per_member[0] + per_member[1]
    assert sorted(seen, key=int) == [str(n).encode() for n in range(total)]  # each exactly once
    assert all(per_member)  # both nodes' members took work
    for c in (*members, watcher, pub):
        c.close()
