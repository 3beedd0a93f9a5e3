"""A TLS listener that admits each connection before its handshake, for every TLS protocol.

`loop.create_server(ssl=...)` hands a connection to the protocol only once the TLS handshake is
done: until then (up to a minute by default) it is counted nowhere, so a flood of connections that
never finish their handshake, or that cost the server a handshake each, passed `max_connections`
and the per-address rate untouched. `serve_tls` accepts the TCP connection itself, asks the
listener's `ConnectionGate` first (a refused one is closed before any TLS byte, as the plain
listeners do before any MQTT or AMQP byte), then runs the handshake with
`loop.connect_accepted_socket(ssl=...)` within `handshake_timeout`. The connection holds its place
at the gate from its accept: a handshake that fails or times out gives it back at once; after a
good one the protocol releases it when the connection ends (its gate is `AdmittedGate`, which
admits without counting again). Counters: `TLSListenerStats`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Callable

from core.limits import ConnectionGate

from adapters.net.server import bind_tcp
from adapters.peer import format_peer

log = logging.getLogger("rosettamq.tls")

HANDSHAKE_TIMEOUT = 10.0  # seconds a client has to finish its TLS handshake (asyncio's default: 60)
CLOCK_SLACK = 0.002  # seconds: a handshake ending this close to its timeout ran out of time
# accept() errors that mean "this connection, not the listener": go on accepting
_TRANSIENT_ACCEPT_ERRORS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EINTR, errno.EAGAIN})
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass
class TLSListenerStats:
    """What a TLS listener's handshakes did (metrics)."""

    handshaking: int = 0  # connections accepted and admitted whose handshake is not done
    handshakes: int = 0  # finished handshakes
    failed: int = 0  # handshakes that failed (bad TLS, wrong certificate, peer gone)
    timed_out: int = 0  # handshakes not finished within the timeout
    refused: int = 0  # connections closed before their handshake by the gate


class TLSServer:
    """What `asyncio.Server` offers the gateway (`sockets`, `close`, `wait_closed`), for `serve_tls`."""

    def __init__(self, sockets: list[socket.socket], stats: TLSListenerStats) -> None:
        self.sockets = sockets
        self.stats = stats
        self._accepting: list[asyncio.Task[None]] = []
        self._handshakes: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Stop accepting (open connections are the protocols' to close); end handshakes in progress."""
        for task in self._accepting:
            task.cancel()
        for task in list(self._handshakes):
            task.cancel()
        for sock in self.sockets:
            sock.close()

    async def wait_closed(self) -> None:
        tasks = [*self._accepting, *self._handshakes]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def is_serving(self) -> bool:
        return any(not task.done() for task in self._accepting)


async def serve_tls(
    protocol_factory: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext,
    gate: ConnectionGate | None,
    listener: str,
    backlog: int,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    reuse_port: bool = False,
) -> TLSServer:
    """Listen on host:port (port 0: the OS picks) and serve `protocol_factory` over TLS; see the module."""
    loop = asyncio.get_running_loop()
    sockets = await bind_tcp(host, port, backlog=backlog, reuse_port=reuse_port)  # adapters.net.server
    server = TLSServer(sockets, TLSListenerStats())
    for sock in sockets:
        server._accepting.append(loop.create_task(
            _accept_loop(server, sock, protocol_factory, ssl_context, gate, listener, handshake_timeout)))
    return server


async def _accept_loop(server: TLSServer, listening: socket.socket, protocol_factory: Callable[[], asyncio.Protocol],
                       ssl_context: ssl.SSLContext, gate: ConnectionGate | None, listener: str,
                       handshake_timeout: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            conn, address = await loop.sock_accept(listening)
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            if exc.errno in _TRANSIENT_ACCEPT_ERRORS:
                continue
            if exc.errno in _OUT_OF_DESCRIPTORS:
                log.error("tls listener=%s cannot accept: %s; retrying in 0.1 s", listener, exc)
                await asyncio.sleep(0.1)
                continue
            if listening.fileno() < 0:
                return  # closed
            raise
        peer = format_peer(address)
        if gate is not None:
            refusal = gate.admit(peer, loop.time())
            if refusal is not None:
                server.stats.refused += 1
                log.info("connection refused listener=%s peer=%s reason=%s", listener, peer, refusal.value)
                _reset(conn)
                continue
        task = loop.create_task(_handshake(server, conn, peer, protocol_factory, ssl_context, gate, listener,
                                           handshake_timeout))
        server._handshakes.add(task)
        task.add_done_callback(server._handshakes.discard)


async def _handshake(server: TLSServer, conn: socket.socket, peer: str, protocol_factory: Callable[[], Any],
                     ssl_context: ssl.SSLContext, gate: ConnectionGate | None, listener: str,
                     handshake_timeout: float) -> None:
    loop = asyncio.get_running_loop()
    stats = server.stats
    stats.handshaking += 1
    ok = False
    started = loop.time()
    try:
        await loop.connect_accepted_socket(protocol_factory, conn, ssl=ssl_context,
                                           ssl_handshake_timeout=handshake_timeout)
        ok = True
        stats.handshakes += 1
    except (TimeoutError, asyncio.TimeoutError):
        stats.timed_out += 1
        log.info("tls handshake timed out listener=%s peer=%s after %.0f s", listener, peer, handshake_timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the peer did, it ends this connection only
        # Both loops abort a handshake out of time with ConnectionAbortedError. uvloop's clock counts
        # whole milliseconds, so one aborted on time may measure a hair under its timeout.
        if loop.time() - started >= handshake_timeout - CLOCK_SLACK:
            stats.timed_out += 1
            log.info("tls handshake timed out listener=%s peer=%s after %.0f s", listener, peer, handshake_timeout)
            return
        stats.failed += 1
        log.info("tls handshake failed listener=%s peer=%s: %s", listener, peer, exc or type(exc).__name__)
    finally:
        stats.handshaking -= 1
        if not ok and gate is not None:  # (the loop closed the socket with the transport it made of it)
            gate.release()


def _reset(conn: socket.socket) -> None:
    """Close at once with a RST, not a FIN (nothing was said on it; nothing lingers in TIME_WAIT)."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    conn.close()

