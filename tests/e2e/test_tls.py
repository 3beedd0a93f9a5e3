"""MQTT over TLS with certificates the test makes: paho and mosquitto_pub, TLS 1.2 minimum, mutual TLS, CN identity.

The CA, server and client certificates come from the openssl command
(tests/tls_certs.py). Every wait is a socket read or a client call with a
timeout.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import warnings
from pathlib import Path
from typing import Any, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.mqtt.codec import MQTTDecoder, encode
from adapters.mqtt.packets import ConnAck, Connect
from gateway.config import config_from_dict
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import TIMEOUT, PahoClient
from tests.e2e.test_mqtt_sessions import wait_until
from tests.tls_certs import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    pki = Pki.create(tmp_path_factory.mktemp("pki"))
    pki.server()
    for name in ("dev1", "alice"):
        pki.client(name)
    return pki


def tls_section(pki: Pki, **extra: Any) -> dict[str, Any]:
    return {"listen": f"{LOOPBACK}:0", "certfile": str(pki.folder / "server.pem"),
            "keyfile": str(pki.folder / "server.key"), **extra}


def client_context(pki: Pki, cn: str | None = None) -> ssl.SSLContext:
    """Trusts our CA and checks the 127.0.0.1 name; presents the client certificate of `cn` if given."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cn is not None:
        context.load_cert_chain(pki.folder / f"client-{cn}.pem", pki.folder / f"client-{cn}.key")
    return context


@pytest.fixture
def start() -> Iterator[Any]:
    running: list[RunningGateway] = []

    def start(**sections: dict[str, Any]) -> RunningGateway:
        running.append(RunningGateway(make_config(**sections)))
        return running[-1]

    yield start
    for gateway in running:
        gateway.stop()


def mqtt_connect(sock: socket.socket, **fields: Any) -> ConnAck | None:
    """A v3.1.1 CONNECT over `sock`; the CONNACK, or None if the server closed instead."""
    sock.sendall(encode(Connect("tls-wire", protocol_level=4, **fields), 4))
    decoder = MQTTDecoder()
    decoder.protocol_level = 4
    while (packet := decoder.next_packet()) is None:
        data = sock.recv(4096)
        if not data:
            return None
        decoder.feed(data)
    assert isinstance(packet, ConnAck)
    return packet


def test_paho_over_tls_reaches_a_paho_subscriber_over_tls(pki: Pki, start: Any) -> None:
    running = start(mqtt_tls=tls_section(pki))
    port = running.gateway.ports["mqtt_tls"]
    clients = []
    try:
        for name in ("sub", "pub"):
            client = PahoClient(port, f"tls-{name}", "5")
            client.client.tls_set_context(client_context(pki))
            clients.append(client.connect())
        clients[0].subscribe("tls/#", 1)
        clients[1].publish("tls/hello", b"over tls", qos=1)
        assert clients[0].inbox.get().payload == b"over tls"
    finally:
        for client in clients:
            client.close()


def test_mosquitto_pub_with_cafile_reaches_a_tls_subscriber(pki: Pki, start: Any) -> None:
    running = start(mqtt_tls=tls_section(pki))
    port = running.gateway.ports["mqtt_tls"]
    subscriber = PahoClient(port, "tls-sub", "311")
    subscriber.client.tls_set_context(client_context(pki))
    try:
        subscriber.connect().subscribe("tls/#", 1)
        done = subprocess.run(
            ["mosquitto_pub", "-h", LOOPBACK, "-p", str(port), "--cafile", str(pki.ca), "-q", "1",
             "-t", "tls/mosquitto", "-m", "signed"],
            capture_output=True, text=True, timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert subscriber.inbox.get().payload == b"signed"
    finally:
        subscriber.close()


def tls11_context(pki: Pki) -> ssl.SSLContext:
    """A client that speaks TLS 1.0/1.1 only (security level 0, so OpenSSL lets it offer them)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def test_a_tls_1_1_client_is_refused_and_a_tls_1_2_client_is_not(pki: Pki, start: Any) -> None:
    running = start(mqtt_tls=tls_section(pki))
    port = running.gateway.ports["mqtt_tls"]
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as sock:
        with pytest.raises(ssl.SSLError):
            tls11_context(pki).wrap_socket(sock, server_hostname=LOOPBACK)
    tls12 = client_context(pki)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as sock:
        with tls12.wrap_socket(sock, server_hostname=LOOPBACK) as tls:
            assert tls.version() == "TLSv1.2"
            connack = mqtt_connect(tls)
            assert connack is not None and connack.reason_code == 0


def test_the_servers_context_itself_answers_tls_1_1_with_unsupported_protocol(pki: Pki) -> None:
    """The same refusal, seen from the server's side of an in-memory handshake."""
    config = config_from_dict({"mqtt_tls": tls_section(pki)})
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = config.mqtt_tls.ssl_context().wrap_bio(server_in, server_out, server_side=True)
    client = tls11_context(pki).wrap_bio(client_in, client_out, server_hostname=LOOPBACK)
    with pytest.raises(ssl.SSLError) as refused:
        for _ in range(5):
            for side in (client, server):
                try:
                    side.do_handshake()
                except ssl.SSLWantReadError:
                    pass
            server_in.write(client_out.read())
            client_in.write(server_out.read())
    assert refused.value.reason == "UNSUPPORTED_PROTOCOL"


def mutual(pki: Pki, **extra: Any) -> dict[str, Any]:
    return tls_section(pki, cafile=str(pki.ca), require_client_cert=True, **extra)


def test_with_client_certificates_required_a_client_without_one_never_gets_a_connack(pki: Pki, start: Any) -> None:
    running = start(mqtt_tls=mutual(pki))
    port = running.gateway.ports["mqtt_tls"]
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as sock:
        try:
            # TLS 1.3 finishes the client's side of the handshake before the server checks
            # the (missing) certificate: the refusal shows on the first read.
            with client_context(pki).wrap_socket(sock, server_hostname=LOOPBACK) as tls:
                assert mqtt_connect(tls) is None
        except (ssl.SSLError, ConnectionResetError):
            pass  # refused during the handshake itself
    assert running.call(lambda: len(running.gateway.mqtt_connections)) == 0


def test_with_client_certificates_required_a_valid_one_connects(pki: Pki, start: Any) -> None:
    running = start(mqtt_tls=mutual(pki))
    port = running.gateway.ports["mqtt_tls"]
    client = PahoClient(port, "mtls", "5")
    client.client.tls_set_context(client_context(pki, "dev1"))
    try:
        client.connect()
        client.subscribe("m/#", 1)
        client.publish("m/x", b"mutual", qos=1)
        assert client.inbox.get().payload == b"mutual"
    finally:
        client.close()


def test_the_certificate_cn_is_the_username_so_acls_apply_by_cn(pki: Pki, start: Any, tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("user dev1\ntopic readwrite devices/dev1/#\n\nuser alice\ntopic readwrite #\n")
    running = start(mqtt_tls=mutual(pki, use_identity_as_username=True), auth={"acl_file": str(acl)})
    port = running.gateway.ports["mqtt_tls"]
    device = PahoClient(port, "cn-device", "5")
    device.client.tls_set_context(client_context(pki, "dev1"))
    device.client.username_pw_set("alice", "ignored")  # the CONNECT's username does not count
    try:
        device.connect()
        assert running.call(lambda: running.broker.mqtt_sessions.get("cn-device").username) == "dev1"
        assert device.subscribe("devices/dev1/#", 1) == [1]
        assert device.subscribe("devices/#", 1) == [0x87]
    finally:
        device.close()


def test_over_secure_websocket_the_certificate_cn_is_the_username_too(pki: Pki, start: Any) -> None:
    running = start(wss=mutual(pki, use_identity_as_username=True))
    client = PahoClient(running.gateway.ports["wss"], "wss-cn", "311")
    tcp = client.client
    client.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="wss-cn", protocol=client.protocol,
                                transport="websockets")
    for name in ("on_connect", "on_message", "on_subscribe", "on_unsubscribe", "on_log"):
        setattr(client.client, name, getattr(tcp, name))
    client.client.ws_set_options(path="/mqtt")
    client.client.tls_set_context(client_context(pki, "alice"))
    try:
        client.connect()
        assert running.call(lambda: running.broker.mqtt_sessions.get("wss-cn").username) == "alice"
    finally:
        client.close()


def test_a_tls_listener_counts_connections_before_their_handshake(pki: Pki, start: Any) -> None:
    """`[mqtt] max_connections` holds for TLS before any TLS byte: a connection that never sends its
    ClientHello takes the only place, and the next one is closed without a handshake (it used to be
    counted only after its handshake, so a flood of silent connections passed the limit)."""
    gateway = start(mqtt={"max_connections": 1}, mqtt_tls=tls_section(pki, enabled=True))
    port = gateway.gateway.ports["mqtt_tls"]
    silent = socket.create_connection((LOOPBACK, port), timeout=5)
    try:
        assert wait_until(lambda: gateway.call(lambda: gateway.gateway.security.gate("mqtt_tls").open) == 1)
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
                client_context(pki).wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        silent.close()
    assert wait_until(lambda: gateway.call(lambda: gateway.gateway.security.gate("mqtt_tls").open) == 0)
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
        with client_context(pki).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            connack = mqtt_connect(tls)
            assert connack is not None and connack.reason_code == 0
    metrics = gateway.call(lambda: gateway.gateway.metrics.render())
    assert 'rosettamq_connections_refused_total{protocol="mqtt",listener="mqtt_tls",reason="max_connections"} 1' \
        in metrics
    assert 'rosettamq_tls_handshakes_total{listener="mqtt_tls",result="ok"} 1' in metrics
