"""Several gateway nodes as one through a real three-server NATS cluster (issue 15).

Two gateway nodes, each on its own NATS server; real clients (paho, pika, aiocoap) on both.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.clients import PahoClient
from tests.e2e.cluster_support import NatsCluster, cluster_node, nats, wait_until

_ids = itertools.count()
__all__ = ["nats"]  # the module's three-server NATS cluster (a fixture)


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


def test_retained_messages_are_served_on_every_node_and_cleared_everywhere(
    nodes: tuple[RunningGateway, RunningGateway],
) -> None:
    a, b = nodes
    pub = client(a)
    pub.publish("state/door", b"open", qos=1, retain=True)
    wait_until(lambda: b.call(lambda: b.broker.router.retained.get("state/door")) is not None, what="retained on b")
    late = client(b)
    late.subscribe("state/#", qos=1)
    got = late.inbox.until_topic("state/door")[-1]
    assert got.payload == b"open" and got.retain
    clearer = client(b)
    clearer.publish("state/door", b"", qos=1, retain=True)  # cleared on b, everywhere
    wait_until(lambda: a.call(lambda: a.broker.router.retained.get("state/door")) is None, what="cleared on a")
    again = client(a)
    again.subscribe("state/#", qos=1)
    again.publish("state/marker", b"m", qos=1)
    assert [m.topic for m in again.inbox.until_topic("state/marker")] == ["state/marker"]
    for c in (pub, late, clearer, again):
        c.close()


def test_the_cluster_api_lists_both_nodes(nodes: tuple[RunningGateway, RunningGateway]) -> None:
    a, b = nodes
    wait_until(lambda: "gw-b" in a.call(lambda: a.gateway.fabric.view.nodes), what="gw-b in gw-a's view")
    described = a.call(lambda: a.gateway.fabric.describe())
    assert described["node"] == "gw-a" and described["nats"]["connected"]
    assert [n["name"] for n in described["nodes"]] == ["gw-a", "gw-b"]
    assert described["nodes"][1]["listeners"]["mqtt"] == b.mqtt_port


@pytest.fixture(scope="module")
def protocol_nodes(nats: NatsCluster) -> Iterator[tuple[RunningGateway, RunningGateway]]:
    """Node c with MQTT only, node d with AMQP, CoAP and LwM2M too."""
    c = cluster_node(nats, "gw-c", servers=[nats.urls[2]])
    d = cluster_node(nats, "gw-d", servers=[nats.urls[0]], amqp={"enabled": True, "listen": f"{LOOPBACK}:0"},
                     coap={"enabled": True, "listen": f"{LOOPBACK}:0"}, lwm2m={})
    try:
        yield c, d
    finally:
        c.stop()
        d.stop()


def test_amqp_queues_and_coap_observers_on_one_node_get_what_mqtt_publishes_on_another(
    protocol_nodes: tuple[RunningGateway, RunningGateway],
) -> None:
    import pika
    from aiocoap.numbers.codes import Code

    from tests.e2e.coap_clients import RawCoAP, request

    c, d = protocol_nodes
    conn = pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, d.gateway.ports["amqp"]))
    ch = conn.channel()
    queue = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(queue, "amq.topic", "site.#")
    observer = RawCoAP(d.gateway.ports["coap"])
    assert observer.ask(request(Code.GET, "/ps/site/+", token=b"\x33", observe=0)).code.is_successful()
    pub = client(c)
    watcher = client(d)
    watcher.subscribe("site/#", qos=1)
    until_routed(pub, watcher, "site/probe")
    pub.publish("site/temp", b"19.5", qos=1)
    body = None
    for method, _, body in ch.consume(queue, auto_ack=True, inactivity_timeout=10):
        assert method is not None, "nothing reached the AMQP queue"
        if body == b"19.5":
            break
    assert body == b"19.5"
    notification = observer.receive()
    while notification.payload != b"19.5":
        notification = observer.receive()
    conn.close()
    observer.close()
    for x in (pub, watcher):
        x.close()


def test_a_cluster_node_refuses_durable_amqp_queues_unless_told_to_keep_them_locally(
    nats: NatsCluster, protocol_nodes: tuple[RunningGateway, RunningGateway],
) -> None:
    """AMQP queues are not replicated between nodes, so a durable one would be a promise kept by
    one node only: refused (406, the channel only) unless the node is named their keeper."""
    import pika
    from pika.exceptions import ChannelClosedByBroker

    c, d = protocol_nodes
    conn = pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, d.gateway.ports["amqp"]))
    with pytest.raises(ChannelClosedByBroker) as refused:
        conn.channel().queue_declare("orders", durable=True)
    assert refused.value.reply_code == 406
    assert "not replicated" in refused.value.reply_text and "durable_queues" in refused.value.reply_text
    ch = conn.channel()  # the connection goes on; transient and exclusive queues are fine
    assert ch.queue_declare("orders", durable=False).method.queue == "orders"
    assert ch.queue_declare("", durable=True, exclusive=True).method.queue.startswith("amq.gen-")
    conn.close()

    keeper = cluster_node(nats, "gw-e", cluster={"durable_queues": "local"},
                          amqp={"enabled": True, "listen": f"{LOOPBACK}:0"})
    try:
        conn = pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, keeper.gateway.ports["amqp"]))
        ch = conn.channel()
        ch.queue_declare("orders", durable=True)
        ch.queue_bind("orders", "amq.topic", "orders.#")
        pub, watcher = client(c), client(keeper)
        watcher.subscribe("orders/#", qos=1)
        until_routed(pub, watcher, "orders/probe")
        pub.publish("orders/42", b"placed", qos=1)
        for method, _, body in ch.consume("orders", auto_ack=True, inactivity_timeout=10):
            assert method is not None, "nothing reached the durable queue"
            if body == b"placed":
                break
        conn.close()
        for x in (pub, watcher):
            x.close()
    finally:
        keeper.stop()


def test_an_lwm2m_device_on_one_node_is_managed_from_an_app_on_another(
    protocol_nodes: tuple[RunningGateway, RunningGateway],
) -> None:
    from tests.e2e.lwm2m_support import MqttApp, SimulatedDevice

    c, d = protocol_nodes
    app = MqttApp(c, "lwm2m/far-device/up/#")
    device = SimulatedDevice("far-device").start(d)
    try:
        app.next_on("lwm2m/far-device/up/register")  # the lifecycle event crossed from d to c
        answer = None
        for _ in range(50):  # the device's command subscription may still be crossing NATS
            req_id = app.command("far-device", "read", {"path": "/3/0/0"})
            try:
                answer = app.next_on("lwm2m/far-device/up/resp", lambda doc: doc.get("reqID") == req_id, timeout=0.5)
                break
            except Exception:
                continue
        assert answer is not None and answer["data"]["code"] == "2.05"
    finally:
        device.stop()
        app.close()


def test_sys_topics_are_per_node_and_every_node_serves_each_nodes_tree(
    nodes: tuple[RunningGateway, RunningGateway],
) -> None:
    from gateway.sys_topics import SysPublisher

    a, b = nodes
    watcher = client(b)
    watcher.subscribe("$SYS/broker/nodes/gw-a/#", qos=0)

    def seen() -> bool:
        a.call(lambda: SysPublisher(a.gateway, 60).publish_all())
        try:
            watcher.inbox.until(lambda m: m.topic == "$SYS/broker/nodes/gw-a/uptime", timeout=0.3)
            return True
        except Exception:
            return False

    wait_until(seen, what="gw-a's $SYS tree on gw-b")
    wait_until(lambda: b.call(lambda: b.broker.router.retained.get("$SYS/broker/nodes/gw-a/uptime")) is not None,
               what="gw-a's $SYS retained on gw-b")  # the retained copy comes by the JetStream stream
    watcher.close()


def test_the_console_shows_the_nodes_of_the_cluster(nats: NatsCluster, tmp_path: Path) -> None:
    from tests.e2e.browser import Chromium

    e = cluster_node(nats, "gw-e", servers=[nats.urls[1]], http={"enabled": True, "listen": f"{LOOPBACK}:0"})
    f = cluster_node(nats, "gw-f", servers=[nats.urls[2]])
    browser = Chromium(tmp_path / "chromium-profile")
    try:
        page = browser.page()
        page.navigate(f"http://{LOOPBACK}:{e.gateway.ports['http']}/")
        page.wait_for("!document.getElementById('cluster-card').hidden", timeout=15)
        page.wait_for("document.querySelector('#cluster-nodes tr[data-node=\"gw-f\"]') !== null", timeout=15)
        assert "gw-e" in page.evaluate("document.getElementById('cluster-node').textContent")
        page.screenshot(Path(__file__).resolve().parents[2] / "test-artifacts" / "console-cluster.png")
        page.close()
    finally:
        browser.close()
        e.stop()
        f.stop()
