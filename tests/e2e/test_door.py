"""Every way a message enters the core passes the one door (core/door.py), and nothing else
reaches the router.

A gateway with every listener runs with its door and router instrumented: each entry path is
driven by a real client (paho over TCP and WebSocket, pika, raw CoAP, the LwM2M device
simulator, HTTP), plus the gateway's own producers (a will, dead-lettering, $SYS). Each must
show up at the door with the principal it acts for, and the router's publish must never run
outside the door. A static check keeps other modules from calling the router's publish.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pika
import pytest
from aiocoap.numbers.codes import Code

import core.door
from core.compiled import PURE_ENV, ROOT, running_compiled
from core.principal import Principal
from gateway.sys_topics import SysPublisher
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.admin_support import http
from tests.e2e.clients import PahoClient
from tests.e2e.coap_clients import RawCoAP
from tests.e2e.coap_clients import request as coap_request
from tests.e2e.lwm2m_support import SimulatedDevice
from tests.e2e.test_ws import PahoWSClient

ROOT = Path(__file__).resolve().parents[2]


class DoorLog:
    """Records (protocol, client id, topic) at the door; counts router publishes made outside it."""

    def __init__(self, running: RunningGateway) -> None:
        self.entries: list[tuple[str, str, str]] = []
        self.outside = 0
        self._inside = 0
        self._changed = threading.Condition()
        broker = running.broker
        door, router = broker.door, broker.router
        door_publish, door_clear, router_publish = door.publish, door.clear_retained, router.publish

        def publish(principal: Principal, message: Any, encoded: Any = None) -> Any:
            self._record(principal, message.topic)
            self._inside += 1
            try:
                return door_publish(principal, message, encoded)
            finally:
                self._inside -= 1

        def clear_retained(principal: Principal, topic: str, message: Any) -> Any:
            self._record(principal, topic)
            return door_clear(principal, topic, message)

        def routed(message: Any, *args: Any) -> int:
            if not self._inside:
                self.outside += 1
            return router_publish(message, *args)

        door.publish, door.clear_retained, router.publish = publish, clear_retained, routed  # type: ignore[method-assign]

    def _record(self, principal: Principal, topic: str) -> None:
        with self._changed:
            self.entries.append((principal.protocol, principal.client_id, topic))
            self._changed.notify_all()

    def wait_for(self, protocol: str, topic_prefix: str, timeout: float = 10.0) -> tuple[str, str, str]:
        def found() -> tuple[str, str, str] | None:
            return next((e for e in self.entries if e[0] == protocol and e[2].startswith(topic_prefix)), None)

        with self._changed:
            assert self._changed.wait_for(lambda: found() is not None, timeout), (
                f"nothing from {protocol} on {topic_prefix!r} reached the door: {self.entries}")
            entry = found()
        assert entry is not None
        return entry


@pytest.fixture
def gateway() -> Iterator[tuple[RunningGateway, DoorLog]]:
    running = RunningGateway(make_config(
        ws={"enabled": True, "listen": f"{LOOPBACK}:0"}, amqp={"enabled": True, "listen": f"{LOOPBACK}:0"},
        coap={"enabled": True, "listen": f"{LOOPBACK}:0"}, http={"enabled": True, "listen": f"{LOOPBACK}:0"},
        lwm2m={}))
    log = running.call(lambda: DoorLog(running))
    try:
        yield running, log
    finally:
        running.stop()


def test_every_entry_path_passes_the_door_and_nothing_else_reaches_the_router(request: pytest.FixtureRequest) -> None:
    if running_compiled(core.door):
        # A compiled Door takes no instrumentation; its entry paths are the same source: check them uncompiled.
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
                              cwd=ROOT, env={**os.environ, PURE_ENV: "1"}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-4000:] + done.stderr[-2000:]
        return
    running, log = request.getfixturevalue("gateway")
    ports = running.gateway.ports

    tcp = PahoClient(ports["mqtt"], "door-tcp", "5").connect()
    tcp.publish("door/mqtt", b"1", qos=1)
    assert log.wait_for("mqtt", "door/mqtt")[1] == "door-tcp"

    ws = PahoWSClient(ports["ws"], "door-ws", "5").connect()
    ws.publish("door/ws", b"2", qos=1)
    assert log.wait_for("mqtt", "door/ws")[1] == "door-ws"
    ws.close()

    will = PahoClient(ports["mqtt"], "door-will", "5")
    will.client.will_set("door/will", b"gone", qos=1)
    will.connect()
    will.client._sock.close()  # type: ignore[attr-defined]  # an abnormal end: the will goes out
    assert log.wait_for("mqtt", "door/will")[1] == "door-will"

    conn = pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, ports["amqp"], client_properties={
        "connection_name": "door-amqp"}))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("amq.topic", "door.amqp", b"3")
    assert log.wait_for("amqp", "door/amqp")[1] == "door-amqp"
    ch.queue_declare("door-dlq", arguments={"x-message-ttl": 1, "x-dead-letter-exchange": "amq.topic",
                                            "x-dead-letter-routing-key": "door.deadletter"})
    ch.basic_publish("", "door-dlq", b"expires at once")
    assert log.wait_for("amqp", "door/deadletter")[1] == "door-amqp"  # as the queue's owner
    conn.close()

    coap = RawCoAP(ports["coap"])
    assert coap.ask(coap_request(Code.POST, "/ps/door/coap", payload=b"4", query=("retain=true",))).code == Code.CHANGED
    log.wait_for("coap", "door/coap")
    assert coap.ask(coap_request(Code.DELETE, "/ps/door/coap", token=b"\x07")).code == Code.DELETED
    assert sum(1 for e in log.entries if e[0] == "coap" and e[2] == "door/coap") == 2  # publish, then clear
    coap.close()

    device = SimulatedDevice("door-device").start(running)
    assert log.wait_for("lwm2m", "lwm2m/door-device/up/register")[1] == "door-device"
    device.stop()

    assert http(running, "POST", "/api/v1/publish", {"topic": "door/http", "payload": "5", "retain": True}).status == 200
    assert log.wait_for("http", "door/http")[1] == "admin-api"
    assert http(running, "DELETE", "/api/v1/retained?topic=door/http").status == 200
    assert sum(1 for e in log.entries if e[0] == "http" and e[2] == "door/http") == 2

    running.call(lambda: SysPublisher(running.gateway, 60).publish_all())  # $SYS: the gateway's own
    assert log.wait_for("internal", "$SYS/broker/")[1] == "rosettamq"

    tcp.close()
    assert log.outside == 0


def test_only_the_door_calls_the_routers_publish_or_sets_retained_messages() -> None:
    """A static check over the source: `.publish(` on a router, and `set_retained(`, appear only in
    core/door.py (and the router itself)."""
    offenders = []
    for package in ("core", "adapters", "gateway"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name in ("door.py", "router.py"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    target = ast.unparse(node.func.value)
                    if node.func.attr == "set_retained" or (node.func.attr == "publish" and "router" in target):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node.func)}")
    assert offenders == []
