"""The MQTT listeners' accepted sockets (TCP and TLS) have TCP_NODELAY, whichever event loop runs the gateway.

uvloop sets it on every TCP transport, so `MQTTServerProtocol` skips its own setsockopt
(a syscall per connection) there; asyncio does not on sockets accepted from our listeners,
so it is set then. Checked on the gateway's own accepted socket for both loops: a loop that
stops doing it fails here instead of quietly adding 40 ms Nagle delays to small packets.
"""

from __future__ import annotations

import os
import socket

import pytest

from adapters.mqtt.packets import ConnAck
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.test_tls import client_context, mqtt_connect, tls_section
from tests.tls_certs import Pki
from tests.wire_client import WireClient


def _server_side(local: tuple[str, int], peer: tuple[str, int]) -> list[socket.socket]:
    """Sockets of this process connected from `local` to `peer` (the gateway runs in-process)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if sock.type == socket.SOCK_STREAM and sock.getsockname() == local and sock.getpeername() == peer:
                found.append(sock)
                continue
        except OSError:
            pass
        sock.close()
    return found


def test_accepted_mqtt_sockets_have_tcp_nodelay(running: RunningGateway) -> None:
    with WireClient(running.mqtt_port, level=4) as client:
        assert isinstance(client.connect("nodelay"), ConnAck)  # connection_made has run
        (accepted,) = _server_side(client.sock.getpeername(), client.sock.getsockname())
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    pki = Pki.create(tmp_path_factory.mktemp("pki"))
    pki.server()
    return pki


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_accepted_mqtt_tls_sockets_have_tcp_nodelay(pki: Pki, loop: str) -> None:
    running = RunningGateway(make_config(mqtt_tls=tls_section(pki)), loop=loop)
    try:
        raw = socket.create_connection((LOOPBACK, running.gateway.ports["mqtt_tls"]), timeout=5)
        with client_context(pki).wrap_socket(raw, server_hostname=LOOPBACK) as tls:
            assert mqtt_connect(tls) is not None  # the handshake is done and connection_made has run
            (accepted,) = _server_side(tls.getpeername(), tls.getsockname())
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        running.stop()
