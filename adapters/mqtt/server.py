"""The thin asyncio layer of the MQTT adapter: bytes in, bytes out, timers, flow control.

One `MQTTServerProtocol` per TCP (or TLS) connection feeds an `MQTTConnection`.
Writes are coalesced: output produced by other clients' publishes is flushed
once per event-loop iteration, not once per message. Transport backpressure
pauses reading from this client and holds its QoS 1/2 deliveries in its
session queue until the transport drains.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from collections import deque
from dataclasses import dataclass
from logging import INFO
from typing import Any, Callable, Final

from core.auth import Answer
from core.broker import Broker
from core.limits import AdmittedGate, ConnectionGate

from adapters.driver import TransportDriver
from adapters.mqtt.connection import MQTTConnection
from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.settings import MQTTSettings
from adapters.mqtt.states import State
from adapters.net.server import ServerGroup, loop_sets_nodelay, serve_tcp, set_tcp_nodelay
from adapters.peer import format_peer
from adapters.tls.server import TLSServer, serve_tls

log = logging.getLogger("rosettamq.mqtt")
_VERIFYING: Final = State.VERIFYING  # read per chunk received: an Enum member through its class is a metaclass lookup

LISTEN_BACKLOG = 4096
WRITE_BUFFER_HIGH = 256 * 1024  # bytes buffered for a client before its transport pauses (low: a quarter)
# Per-connection counters of MQTTConnection that metrics sum over live and ended connections.
ERRORS_KEPT = 1000  # protocol errors and refusals of ended connections kept for the admin API (last_errors)
CONNECTION_COUNTERS = ("dropped_too_large", "publishes_denied", "publishes_invalid", "subscriptions_denied",
                       "subscriptions_over_quota")


class ConnectionTracker:
    """The live connections of a listener (for shutdown, metrics and the admin API).

    `forget` folds an ending connection's counters into per-listener totals, so
    metrics of closed connections survive them (read at scrape time).
    """

    def __init__(self) -> None:
        self.connections: set[MQTTConnection] = set()
        self.opened = 0
        self.closed: dict[tuple[str, str], int] = {}  # (listener, reason) -> connections ended
        self.refused: dict[tuple[str, str], int] = {}  # (listener, CONNACK reason) -> logins refused
        self.totals: dict[tuple[str, str], int] = {}  # (listener, counter) -> sum over ended connections
        self._counter_keys: dict[str, list[tuple[str, str]]] = {}  # listener -> its keys in `totals`
        self.closing = False  # shutdown began: a connection the loop accepts from now on is dropped
        self.errors: deque[tuple[str, float, str]] = deque(maxlen=ERRORS_KEPT)  # (client id, time, what)

    def __len__(self) -> int:
        return len(self.connections)

    def forget(self, conn: MQTTConnection) -> None:
        """The connection's transport is gone: drop it, keep its counts."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        listener = conn.listener
        if conn.refused is not None:
            key = (listener, conn.refused.name.lower())
            self.refused[key] = self.refused.get(key, 0) + 1
        reason = "client" if conn.close_reason is None else conn.close_reason.name.lower()
        if log.isEnabledFor(INFO):  # (one call, not two, when it is not: most runs)
            log.info("connection closed listener=%s peer=%s client_id=%s reason=%s",
                     listener, conn.peer, conn.client_id, reason)
        key = (listener, reason)
        self.closed[key] = self.closed.get(key, 0) + 1
        totals = self.totals
        keys = self._counter_keys.get(listener)
        if keys is None:  # the listener's first ended connection: its totals start at zero
            keys = self._counter_keys[listener] = [(listener, name) for name in CONNECTION_COUNTERS]
            for key in keys:
                totals.setdefault(key, 0)
        if (conn.dropped_too_large or conn.publishes_denied or conn.publishes_invalid  # CONNECTION_COUNTERS, read
                or conn.subscriptions_denied or conn.subscriptions_over_quota):  # directly: nearly always all 0
            for key in keys:
                count = getattr(conn, key[1])
                if count:
                    totals[key] += count
        if conn.errors:
            self.errors.extend(conn.errors)

    def last_errors(self, client_id: str, count: int = 10) -> list[dict[str, Any]]:
        """The last `count` protocol errors and refusals of `client_id`, oldest first, ended
        connections' and live ones' (``{"time": unix seconds, "message": ...}``)."""
        found = [item for item in self.errors if item[0] == client_id]
        for conn in list(self.connections):
            if conn.errors:
                found.extend(item for item in conn.errors if item[0] == client_id)
        found.sort(key=lambda item: item[1])
        return [{"time": at, "message": message} for _, at, message in found[-count:]]

    def shutdown(self, reason: ReasonCode = ReasonCode.SERVER_SHUTTING_DOWN) -> None:
        self.closing = True
        for conn in list(self.connections):
            conn.disconnect(reason, reason_string="server shutting down")


@dataclass(frozen=True, slots=True)
class ListenerGuard:
    """What one listener checks before and while a client logs in.

    `gate` admits new connections (max open, rate per address): a refused one
    is closed at once, before any MQTT byte, as Mosquitto does past
    `max_connections`. `use_identity_as_username` (TLS with client
    certificates) makes the certificate's CN the username, no password asked.
    """

    gate: ConnectionGate | None = None
    use_identity_as_username: bool = False

    def admit(self, peer: str, now: float, listener: str) -> bool:
        if self.gate is None:
            return True
        refusal = self.gate.admit(peer, now)
        if refusal is None:
            return True
        log.info("connection refused listener=%s peer=%s reason=%s", listener, peer, refusal.value)
        return False

    def release(self) -> None:
        if self.gate is not None:
            self.gate.release()

    def identify(self, conn: MQTTConnection, transport: asyncio.BaseTransport) -> None:
        """Hand the certificate identity to the login, when this listener uses it."""
        if self.use_identity_as_username:
            conn.login.use_transport_identity = True
            conn.login.transport_identity = certificate_cn(transport.get_extra_info("peercert"))


def certificate_cn(peercert: object) -> str | None:
    """The subject's commonName of a verified peer certificate (`ssl` dict form), or None."""
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value:
                return str(value)
    return None


class ConnectionDriver(TransportDriver):
    """Drives an `MQTTConnection` from an asyncio transport (adapters/driver.py, which holds its
    input while subscribers it fed are behind), with MQTT's hook: logins wait off the event loop.

    Shared by the TCP protocol here and the WebSocket adapter, whose transport
    writes WebSocket frames instead of raw bytes.
    """

    __slots__ = ()

    def _after_receive(self) -> None:
        conn = self.conn
        if conn.state is _VERIFYING or conn.login.has_verification:  # (a re-authentication's token too)
            self._login_waits()

    def _login_waits(self) -> None:
        """Stop reading while the login waits; run the credential check it asks for off the event loop."""
        self.block_reading("login")
        conn = self.conn
        claim = conn.login.take_session_claim()
        if claim is not None:  # in a cluster: this client id's session, from wherever it is held
            task = self._loop.create_task(conn.broker.router.fabric.claim_session(*claim))
            task.add_done_callback(self._session_claimed)
            return
        session = conn.login.take_session_load()
        if session is not None:  # a resumed session's queue, from a store whose reads wait for its writes
            future = self._loop.run_in_executor(None, conn.broker.store.load_deliveries, session.client_id)
            future.add_done_callback(self._session_loaded)
            return
        credentials = conn.login.take_verification()
        if credentials is None or conn.settings.authenticator is None:
            return
        future = self._loop.run_in_executor(None, conn.settings.authenticator.authenticate, credentials)
        future.add_done_callback(self._verified)

    def lost(self) -> None:
        """The transport is gone: end the connection, then drop its references back to this driver and
        its login's back to it, so the connection, its session and this driver are freed by reference
        counting at once, not left in cycles for the garbage collector (~20 objects per connection)."""
        super().lost()
        conn = self.conn
        conn.on_output = None
        conn.input_gate.on_open = None
        conn.login.release()

    def _verified(self, future: "asyncio.Future[Answer]") -> None:
        if self._closed:
            return
        try:
            ok = future.result()
        except Exception:  # a broken authenticator refuses the login, never the process
            log.exception("mqtt authenticator failed peer=%s", self.conn.peer)
            ok = False
        self.conn.login.verified(ok)
        self._login_moved()

    def _session_claimed(self, task: "asyncio.Task[Any]") -> None:
        try:
            claim = task.result()
        except Exception as exc:  # NATS unreachable mid-claim: this CONNECT is refused (0x88), not guessed
            log.warning("mqtt session claim failed client_id=%s: %r", self.conn.client_id, exc)
            claim = None
        self.conn.login.session_claimed(claim)
        if not self._closed:
            self._login_moved()

    def _session_loaded(self, future: "asyncio.Future[Any]") -> None:
        try:
            stored = future.result()
        except Exception:  # a store that cannot read: this login fails, the session keeps its queue
            log.exception("mqtt session queue unreadable client_id=%s", self.conn.client_id)
            stored = None
        self.conn.login.session_loaded(stored)  # even when closed: the session must leave its loading state
        if not self._closed:
            self._login_moved()

    def _login_moved(self) -> None:
        """After a login step outside `feed`: keep waiting, or read again (pipelined packets first)."""
        if self.conn.state is _VERIFYING:
            self._login_waits()
            self.flush()
        elif self.reading_blocked_by("login"):
            self.unblock_reading("login")
            self.feed(b"")  # packets sent right behind the CONNECT waited in the decoder
        else:
            self.flush()

    def _after_timeout(self) -> None:
        if self.reading_blocked_by("login"):
            self._login_moved()
        else:
            self.flush()


class MQTTServerProtocol(asyncio.Protocol):
    """asyncio protocol for MQTT over TCP/TLS."""

    # One per connection: what the listener gives every connection stays on its factory.
    __slots__ = ("_factory", "_settings", "_admitted", "_driver")

    def __init__(self, factory: "ProtocolFactory", settings: MQTTSettings) -> None:
        self._factory = factory
        self._settings = settings
        self._admitted = False
        self._driver: ConnectionDriver | None = None

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport: Any = base  # uvloop's transports are not asyncio.Transport subclasses
        factory = self._factory
        if factory.set_nodelay:
            set_tcp_nodelay(transport)
        peer = format_peer(transport.get_extra_info("peername"))
        tracker, guard, loop = factory.tracker, factory.guard, factory.loop
        if tracker.closing:  # accepted from the backlog while the gateway shuts down
            transport.abort()
            return
        if guard.gate is not None and not guard.admit(peer, loop.time(), factory.listener):
            transport.abort()
            return
        self._admitted = True
        # A subscriber's socket takes one read's worth of fan-out before its transport pauses (the
        # default 64 KiB pauses it mid-burst, and QoS 0 then waits in, or overflows, its outbox).
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        conn = MQTTConnection(factory.broker, self._settings, peer=peer, listener=factory.listener,
                              clock=factory.clock)
        guard.identify(conn, transport)
        driver = self._driver = ConnectionDriver(
            conn, transport.write, transport.close, transport.pause_reading, transport.resume_reading, loop
        )
        tracker.connections.add(conn)
        tracker.opened += 1
        driver.flush()  # arms the CONNECT deadline

    def data_received(self, data: bytes) -> None:
        driver = self._driver
        if driver is not None:  # (None only for a connection refused at connection_made: uvloop reads no more)
            driver.feed(data)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted:
            self._admitted = False
            self._factory.guard.release()
        driver = self._driver
        if driver is not None:
            driver.lost()
            self._factory.tracker.forget(driver.conn)

    def pause_writing(self) -> None:
        if self._driver is not None:
            self._driver.conn.set_writable(False)
            self._driver.block_reading("writes")

    def resume_writing(self) -> None:
        if self._driver is not None:
            self._driver.unblock_reading("writes")
            self._driver.conn.set_writable(True)
            self._driver.flush()


async def start_mqtt_server(
    broker: Broker,
    settings: MQTTSettings | Callable[[], MQTTSettings],
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    listener: str = "mqtt",
    tracker: ConnectionTracker | None = None,
    guard: ListenerGuard = ListenerGuard(),
    reuse_port: bool = False,
) -> tuple[ServerGroup | TLSServer, ConnectionTracker]:
    """Listen for MQTT on host:port (port 0: the OS picks; read it from the server's sockets; host: see
    adapters.net.server, "localhost" is both loopbacks).

    `settings` may be a function: each new connection then gets the settings of the moment (SIGHUP).
    """
    tracker = tracker if tracker is not None else ConnectionTracker()
    loop = asyncio.get_running_loop()
    # uvloop sets TCP_NODELAY on every TCP transport; asyncio only on sockets whose proto is
    # IPPROTO_TCP, not on those accepted from our listeners (adapters/net/server.py): we do it then.
    nodelay = not loop_sets_nodelay(loop)
    if ssl_context is not None:  # admitted before the handshake (adapters/tls/server.py)
        admitted = guard if guard.gate is None else dataclasses.replace(guard, gate=AdmittedGate(guard.gate))
        return await serve_tls(ProtocolFactory(broker, settings, tracker, listener, admitted, loop, nodelay),
                               host, port, ssl_context=ssl_context, gate=guard.gate, listener=listener,
                               backlog=LISTEN_BACKLOG, reuse_port=reuse_port), tracker
    server = await serve_tcp(ProtocolFactory(broker, settings, tracker, listener, guard, loop, nodelay),
                             host, port, backlog=LISTEN_BACKLOG, reuse_port=reuse_port)
    return server, tracker


class ProtocolFactory:
    """Makes the protocol of each connection a listener accepts, and holds what the listener gives
    each of them, worked out once (compiled: the loop's call per connection runs no interpreted
    frame, as a lambda's would)."""

    def __init__(self, broker: Broker, settings: MQTTSettings | Callable[[], MQTTSettings],
                 tracker: ConnectionTracker, listener: str, guard: ListenerGuard,
                 loop: asyncio.AbstractEventLoop, set_nodelay: bool) -> None:
        self.broker = broker
        self.fixed_settings: MQTTSettings | None = None
        self.current_settings: Callable[[], MQTTSettings] | None = None  # (SIGHUP: each connection reads it)
        if callable(settings):
            self.current_settings = settings
        else:
            self.fixed_settings = settings
        self.tracker = tracker
        self.listener = listener
        self.guard = guard
        self.loop = loop  # passed in: asking asyncio each connection costs a getpid()
        self.clock = loop.time  # every connection's clock: one bound method, not one each
        self.set_nodelay = set_nodelay

    def __call__(self) -> MQTTServerProtocol:
        settings = self.fixed_settings
        if settings is None:
            assert self.current_settings is not None
            settings = self.current_settings()
        return MQTTServerProtocol(self, settings)

