"""MQTT over WebSocket with real clients: paho-mqtt (transport="websockets", 3.1.1 and 5) end to end,
and across transports with paho and mosquitto_pub/mosquitto_sub over TCP; WSS with a real certificate.

A gateway runs with MQTT/TCP, MQTT/WebSocket (and WSS where needed) on
loopback ports chosen by the OS. Every wait is on an event with a timeout.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import RunningGateway, make_config
from tests.e2e.clients import HOST, MosquittoSub, PahoClient, mosquitto_pub

PAHO_CALLBACKS = ("on_connect", "on_disconnect", "on_message", "on_publish", "on_subscribe", "on_unsubscribe", "on_log")


class PahoWSClient(PahoClient):
    """`PahoClient` speaking MQTT over WebSocket (paho's transport="websockets"), optionally over TLS."""

    def __init__(self, port: int, client_id: str, version: str, *, path: str = "/mqtt",
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(port, client_id, version)
        tcp_client = self.client
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": self.protocol, "transport": "websockets"}
        if self.protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = True
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
        for name in PAHO_CALLBACKS:  # the callbacks PahoClient installed, moved to the WebSocket client
            callback = getattr(tcp_client, name)
            if callback is not None:
                setattr(self.client, name, callback)
        self.client.max_inflight_messages_set(20)
        self.client.ws_set_options(path=path)
        if tls is not None:
            self.client.tls_set_context(tls)


class Clients:
    """Connected clients of one test, all closed at its end."""

    def __init__(self, gateway: RunningGateway) -> None:
        self.ports = gateway.gateway.ports
        self._made: list[PahoClient | MosquittoSub] = []

    def ws(self, version: str, **options: Any) -> PahoClient:
        port = self.ports["wss" if options.get("tls") else "ws"]
        client = PahoWSClient(port, f"ws{version}-{uuid.uuid4().hex[:8]}", version, **options)
        self._made.append(client)
        return client.connect()

    def tcp(self, version: str) -> PahoClient:
        client = PahoClient(self.ports["mqtt"], f"tcp{version}-{uuid.uuid4().hex[:8]}", version)
        self._made.append(client)
        return client.connect()

    def mosquitto_sub(self, topic: str, qos: int, version: str) -> MosquittoSub:
        sub = MosquittoSub(self.ports["mqtt"], [topic], qos, version)
        self._made.append(sub)
        assert sub.wait_subscribed() == [qos]
        return sub

    def close(self) -> None:
        for client in reversed(self._made):
            client.close()


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(make_config(ws={"enabled": True, "listen": f"{HOST}:0"}))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def clients(gateway: RunningGateway) -> Iterator[Clients]:
    made = Clients(gateway)
    try:
        yield made
    finally:
        made.close()


VERSIONS = ["311", "5"]


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("version", VERSIONS)
def test_paho_over_websocket_publishes_to_paho_over_websocket_at_each_qos(
    clients: Clients, version: str, qos: int
) -> None:
    subscriber = clients.ws(version)
    assert subscriber.subscribe("ws/e2e/#", qos) == [qos]
    publisher = clients.ws(version)
    publisher.publish("ws/e2e/reading", b"\x00binary\xff", qos)
    message = subscriber.inbox.get()
    assert (message.topic, message.payload, message.qos) == ("ws/e2e/reading", b"\x00binary\xff", qos)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_tcp_publisher_reaches_a_websocket_subscriber_in_order(clients: Clients, version: str) -> None:
    subscriber = clients.ws(version)
    subscriber.subscribe("sensors/#", 2)
    publisher = clients.tcp(version)
    publisher.publish_many([("sensors/t1/temperature", f"{20 + i / 10:.1f}".encode()) for i in range(20)], qos=1)
    received = subscriber.inbox.take(20)
    assert [m.payload for m in received] == [f"{20 + i / 10:.1f}".encode() for i in range(20)]
    assert {(m.topic, m.qos) for m in received} == {("sensors/t1/temperature", 1)}


@pytest.mark.parametrize("version", VERSIONS)
def test_a_websocket_publisher_reaches_mosquitto_sub_over_tcp(clients: Clients, version: str) -> None:
    sub = clients.mosquitto_sub("commands/#", qos=2, version=version)
    publisher = clients.ws(version)
    publisher.publish("commands/valve/1", b"open", qos=2)
    message = sub.inbox.get()
    assert (message.topic, message.payload, message.qos) == ("commands/valve/1", b"open", 2)


def test_mosquitto_pub_over_tcp_reaches_a_paho_websocket_subscriber(gateway: RunningGateway, clients: Clients) -> None:
    subscriber = clients.ws("5")
    subscriber.subscribe("sensors/+/humidity", 1)
    mosquitto_pub(gateway.mqtt_port, "sensors/t7/humidity", b"48.5", qos=1, version="311")
    message = subscriber.inbox.get()
    assert (message.topic, message.payload, message.qos) == ("sensors/t7/humidity", b"48.5", 1)


def test_a_retained_value_published_over_tcp_greets_a_new_websocket_subscriber(clients: Clients) -> None:
    clients.tcp("311").publish("sensors/t2/temperature", b"19.25", qos=1, retain=True)
    subscriber = clients.ws("311")
    subscriber.subscribe("sensors/#", 1)
    message = subscriber.inbox.get()
    assert (message.topic, message.payload, message.retain) == ("sensors/t2/temperature", b"19.25", True)


# -- WSS -------------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost), made with the openssl command."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def test_paho_over_secure_websocket_reaches_a_tcp_subscriber(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    running = RunningGateway(make_config(wss={"listen": f"{HOST}:0", "certfile": str(cert), "keyfile": str(key)}))
    made = Clients(running)
    try:
        assert "wss" in running.gateway.ports and "ws" not in running.gateway.ports
        subscriber = made.tcp("5")
        subscriber.subscribe("secure/#", 1)
        trust = ssl.create_default_context(cafile=str(cert))  # verifies the chain and the 127.0.0.1 name
        made.ws("5", tls=trust).publish("secure/door", b"locked", qos=1)
        message = subscriber.inbox.get()
        assert (message.topic, message.payload) == ("secure/door", b"locked")
    finally:
        made.close()
        running.stop()


# -- the example feeding the dashboard ----------------------------------------------------------


def test_the_sensor_simulator_feeds_a_websocket_subscriber_over_tcp(gateway: RunningGateway, clients: Clients) -> None:
    subscriber = clients.ws("311")
    subscriber.subscribe("sensors/#", 0)
    simulator = Path(__file__).resolve().parents[2] / "examples" / "sensor_simulator.py"
    subprocess.run(
        [sys.executable, str(simulator), "--host", HOST, "--port", str(gateway.mqtt_port),
         "--interval", "0", "--count", "2", "--sensors", "2", "--seed", "7"],
        check=True, capture_output=True, timeout=30,
    )
    received = subscriber.inbox.take(8)  # 2 readings x 2 sensors x (temperature, humidity)
    assert sorted({m.topic for m in received}) == [
        "sensors/t1/humidity", "sensors/t1/temperature", "sensors/t2/humidity", "sensors/t2/temperature",
    ]
    values = [float(m.payload) for m in received]
    assert all(10 < v < 35 for v, m in zip(values, received) if m.topic.endswith("temperature"))
    assert all(0 <= v <= 100 for v, m in zip(values, received) if m.topic.endswith("humidity"))
