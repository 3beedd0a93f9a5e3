"""MQTT bridges against Debian's mosquitto as the upstream broker, with paho on both sides.

Each direction with MQTT 5 properties, an upstream outage with nothing acknowledged lost (in
order), no echo on a bridge that carries the same topics both ways (MQTT 5 no-local, and the
echo filter for MQTT 3.1.1), two gateways bridged to each other, bad credentials (a clear log
line and a growing backoff), and TLS verified by default.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.admin_support import http
from tests.e2e.bridge_support import Mosquitto, _mosquitto_installed, needs_mosquitto  # noqa: F401
from tests.e2e.clients import TIMEOUT, PahoClient
from tests.e2e.test_mqtt_sessions import wait_until
from tests.tls_certs import Pki

pytestmark = needs_mosquitto

FAST = {"reconnect_min": 0.05, "reconnect_max": 0.4}


def bridged(*tables: dict[str, Any], **sections: dict[str, Any]) -> RunningGateway:
    """A gateway (MQTT and HTTP on port 0, memory store unless `sections` say otherwise) with MQTT bridges."""
    return RunningGateway(make_config(http={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                      bridge={"mqtt": [{**FAST, **table} for table in tables]}, **sections))


def bridge(gateway: RunningGateway, index: int = 0) -> Any:
    return gateway.gateway.bridges.bridges[index]


def wait_connected(gateway: RunningGateway, index: int = 0, connected: bool = True) -> None:
    assert wait_until(lambda: bridge(gateway, index).connected is connected, TIMEOUT), \
        gateway.call(bridge(gateway, index).describe)


def publish_v5(client: PahoClient, topic: str, payload: bytes, qos: int = 1, **props: Any) -> None:
    properties = Properties(PacketTypes.PUBLISH)
    for name, value in props.items():
        setattr(properties, name, value)
    info = client.client.publish(topic, payload, qos, properties=properties)
    info.wait_for_publish(TIMEOUT)
    assert info.is_published()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "mosquitto", persistence=True).start()
    try:
        yield broker
    finally:
        broker.stop()


def test_local_messages_go_upstream_under_the_prefix_with_their_mqtt5_properties(upstream: Mosquitto) -> None:
    far = PahoClient(upstream.port, "far", "5").connect()
    far.subscribe("site1/#", 1)
    gateway = bridged({"name": "cloud", "url": f"mqtt://{LOOPBACK}:{upstream.port}", "out": ["sensors/#"],
                       "remote_prefix": "site1/"})
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    try:
        wait_connected(gateway)
        publish_v5(near, "sensors/t1", b"21.5", ContentType="text/plain", CorrelationData=b"\x01\x02",
                   ResponseTopic="replies/t1", UserProperty=[("unit", "C")], MessageExpiryInterval=600,
                   PayloadFormatIndicator=1)
        near.publish("other/t2", b"not bridged", 1)
        near.publish("sensors/t3", b"retained", 1, retain=True)
        first, second = far.inbox.take(2)
        assert (first.topic, first.payload, first.qos) == ("site1/sensors/t1", b"21.5", 1)
        props = first.properties
        assert props["ContentType"] == "text/plain" and props["CorrelationData"] == b"\x01\x02"
        assert props["ResponseTopic"] == "site1/replies/t1"  # a reply published upstream comes back in
        assert props["UserProperty"][0] == ("unit", "C") and props["UserProperty"][1][0] == "rosettamq-via"
        assert 590 <= props["MessageExpiryInterval"] <= 600 and props["PayloadFormatIndicator"] == 1
        assert (second.topic, second.payload) == ("site1/sensors/t3", b"retained")
        late = PahoClient(upstream.port, "late", "5").connect()  # the retain flag went up: mosquitto kept it
        late.subscribe("site1/sensors/t3", 1)
        kept = late.inbox.get()
        late.close()
        assert (kept.payload, kept.retain) == (b"retained", True)
        state = http(gateway, "GET", "/api/v1/bridges").json()
        (cloud,) = state["bridges"]
        assert cloud["name"] == "cloud" and cloud["kind"] == "mqtt" and cloud["connected"] is True
        assert cloud["forwarded"] == 2 and cloud["queued"] == 0
        metrics = http(gateway, "GET", "/metrics").text
        assert 'rosettamq_bridge_forwarded_total{bridge="cloud",kind="mqtt"} 2' in metrics
        assert 'rosettamq_bridge_connected{bridge="cloud",kind="mqtt"} 1' in metrics
    finally:
        near.close()
        far.close()
        gateway.stop()


def test_upstream_messages_come_in_without_the_prefix_and_are_acknowledged(upstream: Mosquitto) -> None:
    gateway = bridged({"name": "cloud", "url": f"mqtt://{LOOPBACK}:{upstream.port}", "in": ["commands/#"],
                       "remote_prefix": "site1/", "qos": 2})
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    near.subscribe("commands/#", 2)
    far = PahoClient(upstream.port, "far", "5").connect()
    try:
        wait_connected(gateway)
        upstream.wait_for_log("rosettamq-cloud 2 site1/commands/#")  # mosquitto logs the SUBSCRIBE (qos 2)
        publish_v5(far, "site1/commands/door", b"open", 2, ContentType="text/plain", UserProperty=[("by", "ops")],
                   ResponseTopic="site1/replies/door", CorrelationData=b"c1")
        far.publish("elsewhere/x", b"not subscribed", 1)
        got = near.inbox.get()
        assert (got.topic, got.payload, got.qos) == ("commands/door", b"open", 2)
        assert got.properties["ContentType"] == "text/plain" and got.properties["UserProperty"] == [("by", "ops")]
        assert got.properties["ResponseTopic"] == "replies/door" and got.properties["CorrelationData"] == b"c1"
        assert gateway.call(lambda: bridge(gateway).received) == 1
    finally:
        near.close()
        far.close()
        gateway.stop()


@pytest.mark.parametrize("version", [5, 3])
def test_a_bridge_carrying_the_same_topics_both_ways_sends_nothing_back(upstream: Mosquitto, version: int) -> None:
    """MQTT 5: no-local upstream; MQTT 3.1.1: the echo filter; both: origin no-local here."""
    gateway = bridged({"name": "both", "url": f"mqtt://{LOOPBACK}:{upstream.port}", "out": ["sensors/#"],
                       "in": ["sensors/#"], "version": version})
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    near.subscribe("sensors/#", 1)
    far = PahoClient(upstream.port, "far", "5").connect()
    far.subscribe("sensors/#", 1)
    try:
        wait_connected(gateway)
        upstream.wait_for_log("rosettamq-both 1 sensors/#")
        near.publish("sensors/a", b"from the gateway", 1)
        assert far.inbox.get().topic == "sensors/a"
        far.publish("sensors/b", b"from upstream", 1)
        far.publish("sensors/end", b"", 1)  # after any echo of a, through the same upstream connection
        assert [m.topic for m in near.inbox.until_topic("sensors/end")] == ["sensors/a", "sensors/b", "sensors/end"]
        near.publish("sensors/end2", b"", 1)  # after any re-send of b, through the bridge's queue
        assert [m.topic for m in far.inbox.until_topic("sensors/end2")] == [
            "sensors/b", "sensors/end", "sensors/end2"]
        assert near.inbox.get().topic == "sensors/end2"  # its own subscription's copy
        assert wait_until(lambda: bridge(gateway).forwarded == 2, TIMEOUT)  # a and end2 up (PUBACKed)
        assert bridge(gateway).received == 2  # b and end down
    finally:
        near.close()
        far.close()
        gateway.stop()


def test_an_upstream_outage_loses_nothing_acknowledged_and_keeps_the_order(upstream: Mosquitto) -> None:
    far = PahoClient(upstream.port, "far", "311", clean=False).connect()
    far.subscribe("sensors/#", 1)
    far.close()  # its session stays in mosquitto (and in mosquitto's persistence file)
    gateway = bridged({"name": "cloud", "url": f"mqtt://{LOOPBACK}:{upstream.port}", "out": ["sensors/#"]})
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    try:
        wait_connected(gateway)
        upstream.stop()
        wait_connected(gateway, connected=False)
        near.publish_many([(f"sensors/{n}", str(n).encode()) for n in range(300)], qos=1)  # every PUBACK came
        near.publish("sensors/qos0", b"dropped while the upstream is down", 0)
        assert wait_until(lambda: bridge(gateway).queue.dropped["offline_qos0"] == 1, TIMEOUT)  # QoS 0: no ack
        state = http(gateway, "GET", "/api/v1/bridges").json()["bridges"][0]
        assert (state["connected"], state["queued"], state["dropped"]["offline_qos0"]) == (False, 300, 1)
        assert "connection lost" in (state["last_error"] or "") or state["failures"] >= 1
        upstream.start()  # same port, its sessions restored
        wait_connected(gateway)
        far = PahoClient(upstream.port, "far", "311", clean=False).connect()
        got = far.inbox.take(300)
        assert [m.payload for m in got] == [str(n).encode() for n in range(300)]
        assert wait_until(lambda: gateway.call(lambda: len(bridge(gateway).queue)) == 0, TIMEOUT)
    finally:
        near.close()
        far.close()
        gateway.stop()


def test_two_gateways_bridged_to_each_other_do_not_ping_pong() -> None:
    """A bridges sensors/# to B and B to A: a message comes back to where it started once at most,
    and stops there (the via marker), instead of going round for ever."""
    b = RunningGateway(make_config())
    a = bridged({"name": "to-b", "url": f"mqtt://{LOOPBACK}:{b.mqtt_port}", "out": ["sensors/#"]})
    b.stop()
    b = bridged({"name": "to-a", "url": f"mqtt://{LOOPBACK}:{a.mqtt_port}", "out": ["sensors/#"]},
                mqtt={"listen": f"{LOOPBACK}:{b.mqtt_port}"})
    on_a = PahoClient(a.mqtt_port, "on-a", "5").connect()
    on_a.subscribe("sensors/#", 1)
    on_b = PahoClient(b.mqtt_port, "on-b", "5").connect()
    on_b.subscribe("sensors/#", 1)
    try:
        wait_connected(a)
        wait_connected(b)
        online = lambda gw, client_id: gw.call(  # noqa: E731 - the bridge's client as the other gateway sees it
            lambda: getattr(gw.broker.mqtt_sessions.sessions.get(client_id), "sink", None) is not None)
        assert wait_until(lambda: online(b, "rosettamq-to-b") and online(a, "rosettamq-to-a"), TIMEOUT)
        on_a.publish("sensors/x", b"1", 1)
        assert on_b.inbox.get().topic == "sensors/x"
        assert [m.topic for m in on_a.inbox.take(2)] == ["sensors/x", "sensors/x"]  # its own, and the return
        assert wait_until(lambda: a.call(lambda: bridge(a).loops) == 1, TIMEOUT)  # stopped here
        on_b.publish("sensors/end", b"", 1)  # the same the other way round; x, were it still going, comes first
        assert [m.topic for m in on_a.inbox.until_topic("sensors/end")] == ["sensors/end"]
        assert [m.topic for m in on_b.inbox.take(2)] == ["sensors/end", "sensors/end"]
        assert wait_until(lambda: b.call(lambda: bridge(b).loops) == 1, TIMEOUT)
        on_b.publish("sensors/last", b"", 1)  # nothing of x or end still going round comes before it
        assert [m.topic for m in on_a.inbox.until_topic("sensors/last")] == ["sensors/last"]
        assert [m.topic for m in on_b.inbox.take(2)] == ["sensors/last", "sensors/last"]
        counts = lambda: (a.call(lambda: (bridge(a).forwarded, bridge(a).loops)),  # noqa: E731
                          b.call(lambda: (bridge(b).forwarded, bridge(b).loops)))
        assert wait_until(lambda: counts() == ((3, 1), (3, 2)), TIMEOUT), counts()  # each message twice, no more
    finally:
        on_a.close()
        on_b.close()
        a.stop()
        b.stop()


def test_bad_credentials_are_one_clear_log_line_per_attempt_and_a_growing_backoff(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    upstream = Mosquitto(tmp_path / "mosquitto", users={"edge": "right"}).start()
    caplog.set_level(logging.INFO, logger="rosettamq.bridge")
    gateway = bridged({"name": "cloud", "url": f"mqtt://edge:wrong@{LOOPBACK}:{upstream.port}", "out": ["a/#"],
                       "reconnect_min": 0.1, "reconnect_max": 0.8})
    try:
        assert wait_until(lambda: bridge(gateway).failures >= 5, 3 * TIMEOUT)
        state = gateway.call(bridge(gateway).describe)
        assert not state["connected"] and "Not authorized" in state["last_error"] and "0x87" in state["last_error"]
        lines = [r.getMessage() for r in caplog.records if r.name == "rosettamq.bridge"]
        refused = [line for line in lines if "cannot connect" in line]
        assert refused and all("bridge cloud" in line and "Not authorized" in line and "wrong" not in line
                               for line in refused)
        delays = [float(m.group(1)) for line in lines if (m := re.search(r"next attempt in ([\d.]+) s", line))]
        ceilings = [min(0.8, 0.1 * 2 ** n) for n in range(len(delays))]
        assert all(c / 2 <= d <= c + 0.005 for d, c in zip(delays, ceilings)), delays
        assert not any(r.levelno >= logging.ERROR for r in caplog.records)  # no tracebacks, no crash loop
        near = PahoClient(gateway.mqtt_port, "near", "5").connect()  # the gateway serves on
        near.close()
    finally:
        gateway.stop()
        upstream.stop()


def test_tls_upstreams_are_verified_by_default(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path / "pki")
    upstream = Mosquitto(tmp_path / "mosquitto", tls=pki.server()).start()
    url = f"mqtts://127.0.0.1:{upstream.port}"
    gateway = bridged({"name": "trusted", "url": url, "out": ["a/#"], "ca": str(pki.ca)},
                      {"name": "unverified", "url": url, "out": ["a/#"]})
    try:
        wait_connected(gateway, 0)
        assert wait_until(lambda: bridge(gateway, 1).failures >= 1, TIMEOUT)
        assert "CERTIFICATE_VERIFY_FAILED" in gateway.call(bridge(gateway, 1).describe)["last_error"]
        assert not bridge(gateway, 1).connected
    finally:
        gateway.stop()
        upstream.stop()


def test_an_upstream_that_disconnects_right_behind_its_connack_is_seen_gone_and_retried() -> None:
    """CONNACK and DISCONNECT 0x8B in one read (an upstream that began to shut down as the bridge
    logged in): the bridge must not think itself connected to it; it reconnects."""
    import socket
    import threading

    from adapters.mqtt.codec import encode
    from adapters.mqtt.packets import ConnAck, Disconnect

    listener = socket.create_server((LOOPBACK, 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.recv(4096)  # the CONNECT
            first = len(accepted) == 1
            conn.sendall(encode(ConnAck(False, 0), 5) + (encode(Disconnect(0x8B), 5) if first else b""))

    threading.Thread(target=serve, daemon=True).start()
    gateway = bridged({"name": "flaky", "url": f"mqtt://{LOOPBACK}:{listener.getsockname()[1]}",
                       "out": ["sensors/#"]})
    try:
        assert wait_until(lambda: len(accepted) >= 2, TIMEOUT)  # it saw the first connection end, came back
        wait_connected(gateway)
        assert gateway.call(lambda: bridge(gateway).failures) >= 1
    finally:
        gateway.stop()
        listener.close()
        for conn in accepted:
            conn.close()
