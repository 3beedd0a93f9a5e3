"""TLS listeners admit a connection before its handshake (adapters/tls/server.py), on both loops.

A real `serve_tls` on an OS-chosen loopback port with a real certificate; clients are raw TCP
sockets that never say a word (the flood the issue means), sockets sending garbage, and Python's
`ssl` client. Without admission before the handshake, connections that never finish it were
counted nowhere: every one of these tests would fail.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from adapters.tls.server import TLSServer, serve_tls
from core.limits import AdmittedGate, ConnectionGate
from tests.conftest import LOOPBACK
from tests.tls_certs import Pki

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    pki = Pki.create(tmp_path_factory.mktemp("pki"))
    pki.server()
    return pki


def server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.folder / "server.pem", pki.folder / "server.key")
    return context


class Echo(asyncio.Protocol):
    """The application protocol: counts connections made after a handshake, echoes, releases its gate."""

    made: list["Echo"] = []

    def __init__(self, gate: ConnectionGate | None) -> None:
        self.gate = gate

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        Echo.made.append(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.gate is not None:
            self.gate.release()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Iterator[Callable[[Any], Any]]:
    """Run a coroutine function on the loop of the parameter."""
    if request.param == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    Echo.made = []
    yield lambda coro: loop.run_until_complete(coro)
    loop.close()


async def start(pki: Pki, gate: ConnectionGate, handshake_timeout: float = 30.0) -> TLSServer:
    admitted = AdmittedGate(gate)
    return await serve_tls(lambda: Echo(admitted), LOOPBACK, 0, ssl_context=server_context(pki), gate=gate,
                           listener="test_tls", backlog=64, handshake_timeout=handshake_timeout)


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not predicate():
            await asyncio.sleep(0.005)


async def closed_without_a_byte(sock: socket.socket) -> bool:
    """The server closed `sock` (EOF or reset) having sent nothing at all."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    try:
        async with asyncio.timeout(TIMEOUT):
            data = await loop.sock_recv(sock, 4096)
    except ConnectionResetError:
        return True
    return data == b""


async def closed(sock: socket.socket) -> None:
    """Read whatever the server sends until it closes `sock`."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    async with asyncio.timeout(TIMEOUT):
        try:
            while await loop.sock_recv(sock, 4096):
                pass
        except ConnectionResetError:
            pass


async def tls_echo(port: int, pki: Pki) -> bytes:
    context = ssl.create_default_context(cafile=str(pki.ca))
    reader, writer = await asyncio.open_connection(LOOPBACK, port, ssl=context, server_hostname="127.0.0.1")
    writer.write(b"ping")
    data = await asyncio.wait_for(reader.readexactly(4), TIMEOUT)
    writer.close()
    return data


def test_past_max_connections_a_connection_is_closed_before_its_handshake(pki: Pki, run: Any) -> None:
    async def scenario() -> None:
        gate = ConnectionGate(max_connections=2)
        server = await start(pki, gate)
        port = server.sockets[0].getsockname()[1]
        silent = [socket.create_connection((LOOPBACK, port)) for _ in range(2)]  # never send a ClientHello
        await until(lambda: gate.open == 2 and server.stats.handshaking == 2)
        third = socket.create_connection((LOOPBACK, port))
        assert await closed_without_a_byte(third)  # not even a ServerHello: no handshake was spent on it
        assert gate.refused_max_connections == 1 and server.stats.refused == 1
        for sock in silent + [third]:
            sock.close()
        await until(lambda: gate.open == 0)  # the silent ones' places come back when they go
        assert await tls_echo(port, pki) == b"ping"
        await until(lambda: gate.open == 0)  # the echo connection's place came back through its protocol
        server.close()
        await server.wait_closed()
    run(scenario())


def test_a_handshake_not_finished_in_time_is_closed_and_gives_its_place_back(pki: Pki, run: Any) -> None:
    async def scenario() -> None:
        gate = ConnectionGate(max_connections=1)
        server = await start(pki, gate, handshake_timeout=0.3)
        port = server.sockets[0].getsockname()[1]
        silent = socket.create_connection((LOOPBACK, port))
        assert await closed_without_a_byte(silent)
        await until(lambda: server.stats.timed_out == 1 and gate.open == 0)
        assert await tls_echo(port, pki) == b"ping"
        assert len(Echo.made) == 1  # the application only ever saw the good connection
        silent.close()
        server.close()
        await server.wait_closed()
    run(scenario())


def test_every_handshake_that_runs_out_of_time_is_counted_as_timed_out_not_failed(pki: Pki, run: Any) -> None:
    # uvloop's clock counts whole milliseconds: measured so, about a third of the handshakes aborted on
    # time came out a hair under the timeout and were counted (and logged) as failed.
    async def scenario() -> None:
        server = await start(pki, ConnectionGate(max_connections=100), handshake_timeout=0.05)
        port = server.sockets[0].getsockname()[1]
        silent = [socket.create_connection((LOOPBACK, port)) for _ in range(20)]
        await until(lambda: server.stats.timed_out + server.stats.failed == 20)
        assert (server.stats.timed_out, server.stats.failed) == (20, 0)
        for sock in silent:
            sock.close()
        server.close()
        await server.wait_closed()
    run(scenario())


def test_a_failed_handshake_gives_its_place_back_and_the_listener_goes_on(pki: Pki, run: Any) -> None:
    async def scenario() -> None:
        gate = ConnectionGate(max_connections=1)
        server = await start(pki, gate)
        port = server.sockets[0].getsockname()[1]
        for garbage in (b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello", b"\x00" * 64):
            bad = socket.create_connection((LOOPBACK, port))
            bad.sendall(garbage)
            await closed(bad)  # perhaps after a TLS alert
            bad.close()
            await until(lambda: gate.open == 0)
        assert server.stats.failed == 3 and server.stats.handshaking == 0
        assert await tls_echo(port, pki) == b"ping"
        server.close()
        await server.wait_closed()
    run(scenario())


def test_closing_the_server_ends_handshakes_in_progress_and_frees_their_places(pki: Pki, run: Any) -> None:
    async def scenario() -> None:
        gate = ConnectionGate(max_connections=10)
        server = await start(pki, gate)
        port = server.sockets[0].getsockname()[1]
        silent = [socket.create_connection((LOOPBACK, port)) for _ in range(3)]
        await until(lambda: server.stats.handshaking == 3)
        server.close()
        await server.wait_closed()
        assert gate.open == 0 and server.stats.handshaking == 0 and not server.is_serving()
        for sock in silent:
            assert await closed_without_a_byte(sock)
            sock.close()
    run(scenario())


def test_port_zero_on_a_name_with_several_addresses_binds_one_port(pki: Pki, run: Any, tmp_path: Path) -> None:
    async def scenario() -> None:
        server = await serve_tls(asyncio.Protocol, "localhost", 0, ssl_context=server_context(pki), gate=None,
                                 listener="test_tls", backlog=8)
        ports = {sock.getsockname()[1] for sock in server.sockets}
        assert len(ports) == 1
        server.close()
        await server.wait_closed()
    run(scenario())
