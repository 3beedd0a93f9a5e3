"""SIGHUP (Gateway.reload) loads renewed TLS certificates and WebSocket token files (issue 14).

New connections get the new certificate, open ones keep theirs; a certificate that does not
load is refused whole and the listener keeps the old one; a token added to the file works
after the reload, a removed one stops working.
"""

from __future__ import annotations

import shutil
import socket
import ssl
from pathlib import Path

from adapters.mqtt.codec import encode
from adapters.mqtt.packets import Connect
from core.tokens import TokenFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.test_tls import client_context, mqtt_connect, tls_section
from tests.tls_certs import Pki


def served_certificate(port: int, pki: Pki) -> bytes:
    """The certificate (DER) a new TLS connection is shown."""
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
        with client_context(pki).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
            assert mqtt_connect(tls) is not None
    assert der is not None
    return der


def test_a_renewed_certificate_serves_new_connections_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path / "pki")
    pki.server()
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(pki.folder / "server.pem", live / "server.pem")
    shutil.copy(pki.folder / "server.key", live / "server.key")
    section = tls_section(pki, certfile=str(live / "server.pem"), keyfile=str(live / "server.key"))
    running = RunningGateway(make_config(mqtt_tls=section))
    try:
        port = running.gateway.ports["mqtt_tls"]
        first = served_certificate(port, pki)
        open_one = client_context(pki).wrap_socket(socket.create_connection((LOOPBACK, port), timeout=5),
                                                   server_hostname="127.0.0.1")
        open_one.sendall(encode(Connect("kept-open", protocol_level=4), 4))
        assert open_one.recv(4)[:1] == b"\x20"  # its CONNACK
        pki.issue("renewed", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
        shutil.copy(pki.folder / "renewed.pem", live / "server.pem")
        shutil.copy(pki.folder / "renewed.key", live / "server.key")
        assert running.call(running.gateway.reload)
        second = served_certificate(port, pki)
        assert second != first
        open_one.sendall(b"\xc0\x00")  # PINGREQ on the connection opened before: still served
        assert open_one.recv(2) == b"\xd0\x00"
        open_one.close()
        (live / "server.key").write_text("not a key")  # a broken renewal
        assert not running.call(running.gateway.reload)
        assert served_certificate(port, pki) == second  # the listener kept the last good certificate
    finally:
        running.stop()


def test_a_token_added_to_the_file_works_after_the_reload_and_a_removed_one_stops(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    path = tmp_path / "tokens"
    tokens = TokenFile(path)
    old = tokens.add("alice")
    tokens.save()
    running = RunningGateway(make_config(ws={"enabled": True, "listen": f"{LOOPBACK}:0", "tokens_file": str(path)}))

    def accepted(token: str) -> bool:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tok", transport="websockets")
        client.ws_set_options(path="/mqtt", headers={"Authorization": f"Bearer {token}"})
        try:
            return client.connect(LOOPBACK, running.gateway.ports["ws"]) == 0
        except Exception:
            return False
        finally:
            client.disconnect()

    try:
        assert accepted(old)
        fresh = TokenFile(path)
        new = fresh.add("bob")
        fresh.save()  # the file now holds only bob's token
        assert not accepted(new)
        assert running.call(running.gateway.reload)
        assert accepted(new) and not accepted(old)
    finally:
        running.stop()
