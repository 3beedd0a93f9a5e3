"""The cluster when things die (issue 15): a NATS server, a gateway node, all of NATS."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import LOOPBACK
from tests.e2e.clients import PahoClient
from tests.e2e.cluster_support import NatsCluster, cluster_node, wait_until

ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count()


def client(port: int) -> PahoClient:
    return PahoClient(port, f"f{next(_ids)}", "5").connect()


def routed(publisher: PahoClient, subscriber: PahoClient, topic: str) -> bool:
    """One probe published and seen within a moment."""
    publisher.publish(topic, b"probe", qos=0)
    try:
        subscriber.inbox.until(lambda m: m.topic == topic, timeout=0.3)
        return True
    except Exception:
        return False


def test_when_the_nats_server_of_a_node_dies_it_reconnects_to_another_and_keeps_routing() -> None:
    nats = NatsCluster(3)
    a = cluster_node(nats, "gw-a")
    b = cluster_node(nats, "gw-b", servers=[nats.urls[2], nats.urls[1]])
    try:
        pub, sub = client(a.mqtt_port), client(b.mqtt_port)
        sub.subscribe("fail/#", qos=1)
        wait_until(lambda: routed(pub, sub, "fail/probe"), what="routing before the failure")
        served = a.call(lambda: a.gateway.fabric.describe())["nats"]["server"]
        port = int(served.rsplit(":", 1)[1])
        nats.kill(nats.client_ports.index(port))  # a's own NATS server dies
        wait_until(lambda: (a.call(lambda: a.gateway.fabric.describe())["nats"]["server"] or served) != served,
                   what="reconnection to another NATS server")
        wait_until(lambda: routed(pub, sub, "fail/probe"), what="routing after the failure")
        pub.publish("fail/after", b"kept", qos=1)
        assert sub.inbox.until_topic("fail/after")[-1].payload == b"kept"
        for c in (pub, sub):
            c.close()
    finally:
        a.stop()
        b.stop()
        nats.stop()


def test_a_node_that_dies_leaves_the_others_view(tmp_path: Path) -> None:
    nats = NatsCluster(1)
    a = cluster_node(nats, "gw-a")
    config = tmp_path / "node.toml"
    config.write_text(f'[cluster]\nnats = ["{nats.urls[0]}"]\nnode = "gw-doomed"\nheartbeat = 0.2\n'
                      '[ws]\nenabled = false\n[amqp]\nenabled = false\n[coap]\nenabled = false\n'
                      '[http]\nenabled = false\n[store]\npath = "memory"\n')
    doomed = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config),
                               "--mqtt", f"{LOOPBACK}:0"], cwd=ROOT, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        view = a.gateway.fabric.view
        wait_until(lambda: "gw-doomed" in a.call(lambda: dict(view.nodes)), what="the node joining the view")
        os.kill(doomed.pid, signal.SIGKILL)  # no goodbye: only its silence tells
        wait_until(lambda: "gw-doomed" not in a.call(lambda: dict(view.nodes)), what="the node leaving the view")
        assert a.call(lambda: view.left) == 1
    finally:
        if doomed.poll() is None:
            doomed.kill()
        doomed.wait(10)
        a.stop()
        nats.stop()


def test_without_nats_a_node_serves_its_local_clients_and_catches_up_when_nats_returns() -> None:
    nats = NatsCluster(1)
    a = cluster_node(nats, "gw-a")
    b = cluster_node(nats, "gw-b")
    try:
        local_pub, local_sub = client(a.mqtt_port), client(a.mqtt_port)
        nats.kill(0)
        local_sub.subscribe("alone/#", qos=1)  # interest changes while NATS is away
        local_pub.publish("alone/t", b"still served", qos=1)
        assert local_sub.inbox.until_topic("alone/t")[-1].payload == b"still served"
        remote_sub = client(b.mqtt_port)
        remote_sub.subscribe("alone/#", qos=1)
        nats.start(0)  # the same server comes back; the nodes reconnect and subscribe again
        wait_until(lambda: routed(local_pub, remote_sub, "alone/probe"), what="routing after NATS returned")
        for c in (local_pub, local_sub, remote_sub):
            c.close()
    finally:
        a.stop()
        b.stop()
        nats.stop()
