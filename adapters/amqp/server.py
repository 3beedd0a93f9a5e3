"""The thin asyncio layer of the AMQP adapter: listeners, connections, and the queues' timer.

`AMQPService` owns the AMQP broker model of one gateway (shared by the plain
and TLS listeners), the live connections, and one timer for message TTL and
queue expiry. Each TCP connection is an `asyncio.Protocol` feeding an
`AMQPConnection` through a `ConnectionDriver` (writes coalesced once per
loop turn, deadlines, closing); transport backpressure stops deliveries to
that connection and pauses reading from it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Callable

from core.auth import Answer
from core.broker import Broker
from core.limits import AdmittedGate, ConnectionGate

from adapters.driver import TransportDriver
from adapters.amqp.broker import AMQPBroker
from adapters.amqp.connection import AMQPConnection
from adapters.amqp.durable import DurableLog
from adapters.amqp.errors import ReplyCode
from adapters.amqp.settings import AMQPSettings
from adapters.net.server import ServerGroup, serve_tcp, set_tcp_nodelay
from adapters.peer import format_peer
from adapters.tls.server import TLSServer, serve_tls

log = logging.getLogger("rosettamq.amqp")

LISTEN_BACKLOG = 4096
SHUTDOWN_CLOSE_WAIT = 1.5  # seconds a client has to answer our shutdown's connection.close
_CODES = {int(code) for code in ReplyCode}


class AMQPService:
    """The AMQP side of a running gateway: broker model, listeners' connections, timer."""

    def __init__(self, core: Broker, settings: AMQPSettings, *, log_: DurableLog | None = None) -> None:
        self.broker = AMQPBroker(core, settings, log=log_)
        self.connections: set[AMQPConnection] = set()
        self.opened = 0
        self.closed: dict[str, int] = {}  # why ended connections ended (metrics): "client" or a reply code name
        self.login_failures = 0
        self.closing = False  # shutdown began: a connection the loop accepts from now on is dropped
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.broker.on_deadline_change = self._rearm

    def __len__(self) -> int:
        return len(self.connections)

    async def listen(self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None,
                     listener: str = "amqp", gate: ConnectionGate | None = None,
                     reuse_port: bool = False) -> ServerGroup | TLSServer:
        """Listen on host:port (port 0: the OS picks; read it from the server's sockets).

        `gate` (gateway.security) admits connections: a refused one is closed before any AMQP byte.
        """
        if ssl_context is not None:  # admitted before the TLS handshake (adapters/tls/server.py)
            admitted = None if gate is None else AdmittedGate(gate)
            return await serve_tls(lambda: AMQPServerProtocol(self, listener, admitted), host, port,
                                   ssl_context=ssl_context, gate=gate, listener=listener, backlog=LISTEN_BACKLOG,
                                   reuse_port=reuse_port)
        return await serve_tcp(lambda: AMQPServerProtocol(self, listener, gate), host, port,
                               backlog=LISTEN_BACKLOG, reuse_port=reuse_port)

    def ended(self, conn: AMQPConnection) -> None:
        """A connection's transport is gone: forget it, count how it ended."""
        self.connections.discard(conn)
        code = None if conn.close_reason is None else conn.close_reason[0]
        reason = "client" if code is None else ReplyCode(code).name.lower() if code in _CODES else str(code)
        self.closed[reason] = self.closed.get(reason, 0) + 1
        log.info("connection closed listener=%s peer=%s client_id=%s username=%s reason=%s",
                 conn.listener, conn.peer, conn.origin.client_id, conn.username, reason)
        if code == ReplyCode.ACCESS_REFUSED and conn.username is None:
            self.login_failures += 1

    def shutdown(self) -> None:
        """Tell every client 320 CONNECTION_FORCED; each connection closes on its close-ok, or after
        SHUTDOWN_CLOSE_WAIT (within the gateway's shutdown grace)."""
        self.closing = True
        for conn in list(self.connections):
            conn.shutdown(wait=SHUTDOWN_CLOSE_WAIT)
            if conn.on_output is not None:
                conn.on_output()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- message TTL and queue expiry --------------------------------------------------------

    def _rearm(self) -> None:
        deadline = self.broker.next_deadline()
        if deadline is None or (self._timer is not None and self._timer_at is not None
                                and self._timer_at <= deadline):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_later(max(0.0, deadline - time.time()), self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        try:
            self.broker.run_due()
        except Exception:  # pragma: no cover - a bug must not stop the timer
            log.exception("amqp timer failed")
        finally:
            self._rearm()


class ConnectionDriver(TransportDriver):
    """Drives an `AMQPConnection` from a transport (adapters/driver.py), with AMQP's hooks:
    the resource alarm pauses reading, and password checks run off the loop."""

    __slots__ = ("_login_started",)

    def __init__(self, conn: AMQPConnection, write: Callable[[bytes], None], close: Callable[[], None],
                 pause_reading: Callable[[], None], resume_reading: Callable[[], None]) -> None:
        super().__init__(conn, write, close, pause_reading, resume_reading)
        self._login_started = False

    def _after_output(self) -> None:
        conn = self.conn
        if conn.reading_paused:
            self.block_reading("alarm")  # a resource alarm: stop reading this publisher
        else:
            self.unblock_reading("alarm")
        if conn.pending_login is not None and not self._login_started:
            self._check_login()

    def _check_login(self) -> None:
        """Run the password check in the default executor; the connection holds its input meanwhile."""
        login, authenticator = self.conn.pending_login, self.conn.settings.authenticator
        assert login is not None and authenticator is not None
        self._login_started = True
        self.block_reading("login")
        future = self._loop.run_in_executor(None, authenticator.authenticate, login)

        def decided(done: asyncio.Future[Answer]) -> None:
            if self._closed:
                return
            accepted: Answer = not done.cancelled() and done.exception() is None and done.result()  # a Grant stays one
            self.unblock_reading("login")
            self.conn.login_decided(accepted)
            self.flush()

        future.add_done_callback(decided)


class AMQPServerProtocol(asyncio.Protocol):
    """asyncio protocol for AMQP 0-9-1 over TCP/TLS."""

    def __init__(self, service: AMQPService, listener: str, gate: ConnectionGate | None = None) -> None:
        self._service = service
        self._listener = listener
        self._gate = gate
        self._admitted = False
        self._transport: asyncio.Transport | None = None
        self._driver: ConnectionDriver | None = None
        # uvloop binds data_received when the transport is made: dispatch through our own attribute.
        self._on_data: Callable[[bytes], None] = lambda data: None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        set_tcp_nodelay(transport)
        peer = format_peer(transport.get_extra_info("peername"))
        if self._service.closing:  # accepted from the backlog while the gateway shuts down
            transport.abort()  # type: ignore[attr-defined]
            return
        if self._gate is not None:
            refusal = self._gate.admit(peer, asyncio.get_running_loop().time())
            if refusal is not None:
                log.info("connection refused listener=%s peer=%s reason=%s", self._listener, peer, refusal.value)
                transport.abort()  # type: ignore[attr-defined]
                return
            self._admitted = True
        conn = AMQPConnection(self._service.broker, peer=peer, listener=self._listener,
                              clock=asyncio.get_running_loop().time)
        self._driver = ConnectionDriver(conn, transport.write, transport.close,  # type: ignore[attr-defined]
                                        transport.pause_reading, transport.resume_reading)  # type: ignore[attr-defined]
        self._on_data = self._driver.feed
        self._service.connections.add(conn)
        self._service.opened += 1
        self._driver.flush()  # arms the handshake deadline

    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted and self._gate is not None:
            self._admitted = False
            self._gate.release()
        if self._driver is not None:
            self._service.ended(self._driver.conn)
            self._driver.lost()

    def pause_writing(self) -> None:
        if self._driver is not None:
            self._driver.conn.set_writable(False)
            self._driver.block_reading("writes")

    def resume_writing(self) -> None:
        if self._driver is not None:
            self._driver.unblock_reading("writes")
            self._driver.conn.set_writable(True)
            self._driver.flush()

