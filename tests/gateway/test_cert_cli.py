"""`rosettamq cert DIR`: a CA and certificates the TLS listeners serve and clients verify, by name."""

from __future__ import annotations

import socket
import ssl
import stat
from pathlib import Path

from adapters.mqtt.codec import MQTTDecoder, encode
from adapters.mqtt.packets import ConnAck, Connect
from gateway.cli import main
from tests.conftest import LOOPBACK, RunningGateway, make_config


def test_the_files_are_made_keys_private_and_the_ca_is_kept_for_later_certificates(tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    assert main(["cert", str(folder), "--host", "localhost", "--host", "127.0.0.1"]) == 0
    names = {"ca.pem", "ca.key", "server.pem", "server.key"}
    assert {p.name for p in folder.iterdir()} == names
    assert all(stat.S_IMODE((folder / name).stat().st_mode) == 0o600 for name in ("ca.key", "server.key"))
    ca = (folder / "ca.pem").read_bytes()
    assert main(["cert", str(folder), "--client", "dev1"]) == 0
    assert (folder / "ca.pem").read_bytes() == ca  # the same CA signs the client certificate
    assert {p.name for p in folder.iterdir()} == names | {"dev1.pem", "dev1.key"}


def test_a_tls_listener_with_them_is_verified_by_name_and_knows_the_client_by_its_certificate(tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    assert main(["cert", str(folder), "--client", "dev1"]) == 0
    running = RunningGateway(make_config(mqtt_tls={
        "listen": f"{LOOPBACK}:0", "certfile": str(folder / "server.pem"), "keyfile": str(folder / "server.key"),
        "cafile": str(folder / "ca.pem"), "require_client_cert": True, "use_identity_as_username": True}))
    try:
        port = running.gateway.ports["mqtt_tls"]
        for host in ("localhost", "127.0.0.1"):  # the default names: both verify (hostname checks on)
            context = ssl.create_default_context(cafile=str(folder / "ca.pem"))
            context.load_cert_chain(folder / "dev1.pem", folder / "dev1.key")
            with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname=host) as tls:
                    tls.sendall(encode(Connect(f"via-{host}", protocol_level=4), 4))
                    decoder = MQTTDecoder()
                    decoder.protocol_level = 4
                    while (connack := decoder.next_packet()) is None:
                        decoder.feed(tls.recv(4096))
                    assert isinstance(connack, ConnAck) and connack.reason_code == 0
                    session = running.call(lambda: running.broker.mqtt_sessions.get(f"via-{host}"))
                    assert session.username == "dev1"  # the certificate's CN
    finally:
        running.stop()
