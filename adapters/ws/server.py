"""The thin asyncio layer of MQTT over WebSocket: bytes in, frames out, timers, flow control.

One `WSServerProtocol` per TCP (or TLS) connection runs websockets'
Sans-I/O `ServerProtocol`. After the upgrade, every binary frame's payload is
fed, as it arrives, to the same `MQTTConnection` the TCP listener uses,
through the shared `ConnectionDriver`: MQTT packets may span frames or share
one. The driver's coalesced output goes out as one binary frame per flush.

Lifecycle: handshake (timeout `handshake_timeout`) -> open (pings every
`ping_interval`) -> closing (close frame sent or received; the TCP connection
is closed once the peer answers, or aborted after `close_timeout`).
Backpressure works as for TCP: when the transport's buffer is full, reading
stops and QoS 1/2 deliveries wait in the session queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import ssl
from dataclasses import dataclass, field
from typing import Callable

from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

from adapters.mqtt.connection import MQTTConnection
from adapters.mqtt.server import LISTEN_BACKLOG, ConnectionDriver, ConnectionTracker, ListenerGuard
from adapters.mqtt.settings import MQTTSettings
from adapters.net.server import ServerGroup, serve_tcp, set_tcp_nodelay
from adapters.peer import format_peer
from adapters.tls.server import TLSServer, serve_tls
from adapters.ws.protocol import (
    access_token, client_address, close_code, handshake_response, new_protocol, request_end, token_identity,
)
from adapters.ws.settings import WSSettings
from core.broker import Broker
from core.limits import AdmittedGate
from core.redact import redact_text, redact_url

log = logging.getLogger("rosettamq.ws")


class Handshakes:
    """A listener's connections from connection_made until upgraded or lost; once closed, new ones are dropped.

    Shutdown waits until `pending` is empty: only then are the aborted sockets really closed.
    """

    def __init__(self) -> None:
        self.pending: set[WSServerProtocol] = set()
        self.closed = False

    def add(self, protocol: "WSServerProtocol") -> None:
        self.pending.add(protocol)
        if self.closed:  # accepted while the gateway shuts down
            protocol.abort()

    def discard(self, protocol: "WSServerProtocol") -> None:
        self.pending.discard(protocol)

    def close(self) -> None:
        self.closed = True
        for protocol in list(self.pending):
            protocol.abort()


@dataclass
class WSListener:
    """A WebSocket listener: the asyncio server and its connections still in the HTTP handshake."""

    server: ServerGroup | TLSServer
    handshakes: Handshakes = field(default_factory=Handshakes)

    def abort_handshakes(self) -> None:
        """Drop connections that never upgraded (shutdown); open ones get an MQTT DISCONNECT instead."""
        self.handshakes.close()


class WSServerProtocol(asyncio.Protocol):
    """asyncio protocol for MQTT over WebSocket (ws:// and wss://)."""

    def __init__(
        self,
        broker: Broker,
        mqtt_settings: MQTTSettings,
        settings: WSSettings,
        tracker: ConnectionTracker,
        listener: str,
        handshakes: Handshakes,
        guard: ListenerGuard = ListenerGuard(),
    ) -> None:
        self._guard = guard
        self._admitted = False
        self._broker = broker
        self._mqtt_settings = mqtt_settings
        self._settings = settings
        self._tracker = tracker
        self._listener = listener
        self._handshakes = handshakes
        self._ws = new_protocol(settings)
        self._transport: asyncio.Transport | None = None
        self._driver: ConnectionDriver | None = None
        self._peer = ""
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._paused = False
        self._unanswered_ping = False
        self._stop_reading = False  # set when we failed the connection mid-batch
        self._mqtt_ended = False
        self._close_timer_armed = False
        self._request_tail: bytes | None = b""  # last bytes of the upgrade request so far (None: it ended)

    # -- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport subclasses
        set_tcp_nodelay(transport)
        self._peer = format_peer(transport.get_extra_info("peername"))
        if not self._guard.admit(self._peer, self._loop.time(), self._listener):
            transport.abort()  # before the HTTP upgrade, as a TCP listener refuses before CONNECT
            return
        self._admitted = True
        self._arm(self._settings.handshake_timeout, self.abort)
        self._handshakes.add(self)  # aborts at once during shutdown

    def data_received(self, data: bytes) -> None:
        tail = self._request_tail
        if tail is not None:  # still reading the upgrade request: answer it before parsing what follows
            end = request_end(tail, data)
            if end is None:
                self._request_tail = (tail + data)[-3:]
            else:
                self._request_tail = None
                if end < len(data):
                    self._receive(data[:end])
                    data = data[end:]
        self._receive(data)

    def eof_received(self) -> bool:
        self._ws.receive_eof()
        self._write_pending()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted:
            self._admitted = False
            self._guard.release()
        self._cancel_timer()
        self._handshakes.discard(self)
        if self._driver is not None:
            self._tracker.forget(self._driver.conn)
        self._end_mqtt()

    def pause_writing(self) -> None:
        self._paused = True
        if self._driver is not None:
            self._driver.conn.set_writable(False)
            self._driver.block_reading("writes")
        elif self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._driver is not None:
            self._driver.unblock_reading("writes")
            self._driver.conn.set_writable(True)
            self._driver.flush()
        elif self._transport is not None:
            self._transport.resume_reading()

    def abort(self) -> None:
        """Drop the TCP connection now (handshake timeout, shutdown, peer gone silent)."""
        if self._transport is not None:
            self._transport.abort()

    # -- incoming -----------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        self._unanswered_ping = False  # any bytes prove the peer is alive
        for event in ws.events_received():
            if self._stop_reading:
                break
            if isinstance(event, Request):
                self._on_request(event)
            else:
                self._on_frame(event)
        self._write_pending()

    def _on_request(self, request: Request) -> None:
        ws = self._ws
        response = handshake_response(ws, request, self._settings)
        ws.send_response(response)
        if response.status_code != 101:
            log.info(
                "upgrade refused peer=%s path=%s status=%d reason=%s",
                self._peer, redact_url(request.path), response.status_code,
                redact_text(str(ws.handshake_exc)) if ws.handshake_exc else
                "path" if response.status_code == 404 else "bearer token",
            )
            return
        self._handshakes.discard(self)
        peer = client_address(request.headers, self._peer, self._settings.trust_proxy)
        log.info(
            "upgrade accepted peer=%s via=%s subprotocol=%s origin=%s",
            peer, self._peer, response.headers.get("Sec-WebSocket-Protocol"), request.headers.get("Origin"),
        )
        conn = MQTTConnection(self._broker, self._mqtt_settings, peer=peer, listener=self._listener, clock=self._loop.time)
        assert self._transport is not None
        self._guard.identify(conn, self._transport)
        token_user = token_identity(request, self._settings)
        if token_user is not None:  # the bearer token is the credential: CONNECT's are not asked
            conn.login.use_transport_identity = True
            conn.login.transport_identity = token_user
        elif (token := access_token(request, self._settings)) is not None:  # checked with the CONNECT
            conn.login.use_transport_identity = True
            conn.login.transport_token = token
        transport = self._transport
        assert transport is not None
        self._driver = ConnectionDriver(
            conn, self._send_mqtt, self._close_from_mqtt, transport.pause_reading, transport.resume_reading
        )
        self._tracker.connections.add(conn)
        self._tracker.opened += 1
        if self._settings.ping_interval > 0:
            self._arm(self._settings.ping_interval, self._ping)
        else:
            self._cancel_timer()
        self._write_pending()  # the 101 goes out before any MQTT bytes
        self._driver.flush()  # arms the CONNECT deadline

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.CONT:
            # A text message is refused at its first frame, so CONT always continues a binary one.
            assert self._driver is not None
            self._driver.feed(frame.data)
        elif opcode is Opcode.TEXT:
            log.info("text frame refused peer=%s", self._peer)
            if self._ws.state is State.OPEN:
                self._ws.fail(CloseCode.UNSUPPORTED_DATA, "MQTT over WebSocket needs binary frames")
            self._stop_reading = True
        # PING is answered by the protocol, PONG needs nothing more (see _receive),
        # CLOSE is echoed by the protocol and ends MQTT in _write_pending.

    # -- outgoing -----------------------------------------------------------------------

    def _send_mqtt(self, data: bytes) -> None:
        """The driver's write: MQTT bytes become one binary frame (dropped once closing)."""
        if self._ws.state is State.OPEN:
            self._ws.send_binary(data)
            self._write_pending()

    def _close_from_mqtt(self) -> None:
        """The driver's close: the MQTT connection ended; say why in a close frame."""
        if self._ws.state is State.OPEN and self._driver is not None:
            code, reason = close_code(self._driver.conn.close_reason)
            self._ws.send_close(code, reason)
        self._write_pending()

    def _write_pending(self) -> None:
        """Write what the protocol produced; follow its state (closing, closed)."""
        transport = self._transport
        if transport is None:
            return
        for data in self._ws.data_to_send():
            if data:
                transport.write(data)
            else:  # SEND_EOF: the server closes the TCP connection
                transport.close()
        state = self._ws.state
        if state is State.CLOSING or state is State.CLOSED:
            self._end_mqtt()
        if self._ws.close_expected() and not self._close_timer_armed:
            self._close_timer_armed = True
            self._arm(self._settings.close_timeout, self.abort)

    def _end_mqtt(self) -> None:
        """The WebSocket is closing or gone: the MQTT connection ends (will unless DISCONNECTed)."""
        if self._driver is not None and not self._mqtt_ended:
            self._mqtt_ended = True
            self._driver.lost()

    # -- timers -----------------------------------------------------------------------

    def _ping(self) -> None:
        """Every ping_interval: fail a peer that answered nothing since the last ping, else ping."""
        self._timer = None
        if self._ws.state is not State.OPEN:
            return
        if self._unanswered_ping and not self._paused:
            log.info("ping timeout peer=%s", self._peer)
            self._ws.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            self._write_pending()
            return
        if not self._paused:  # a full write buffer delays pongs; the TCP layer decides then
            self._ws.send_ping(os.urandom(4))
            self._unanswered_ping = True
            self._write_pending()
        self._arm(self._settings.ping_interval, self._ping)

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def start_ws_server(
    broker: Broker,
    mqtt_settings: MQTTSettings | Callable[[], MQTTSettings],
    settings: WSSettings,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    listener: str = "ws",
    tracker: ConnectionTracker | None = None,
    guard: ListenerGuard = ListenerGuard(),
    reuse_port: bool = False,
) -> tuple[WSListener, ConnectionTracker]:
    """Listen for MQTT over WebSocket on host:port (port 0: the OS picks); `mqtt_settings` may be a
    function giving each new connection the settings of the moment (SIGHUP)."""
    tracker = tracker if tracker is not None else ConnectionTracker()
    current = mqtt_settings if callable(mqtt_settings) else lambda: mqtt_settings
    handshakes = Handshakes()
    if ssl_context is not None:  # admitted before the TLS handshake (adapters/tls/server.py)
        admitted = guard if guard.gate is None else dataclasses.replace(guard, gate=AdmittedGate(guard.gate))
        tls = await serve_tls(
            lambda: WSServerProtocol(broker, current(), settings, tracker, listener, handshakes, admitted),
            host, port, ssl_context=ssl_context, gate=guard.gate, listener=listener, backlog=LISTEN_BACKLOG,
            reuse_port=reuse_port)
        return WSListener(tls, handshakes), tracker
    server = await serve_tcp(
        lambda: WSServerProtocol(broker, current(), settings, tracker, listener, handshakes, guard),
        host, port, backlog=LISTEN_BACKLOG, reuse_port=reuse_port)
    return WSListener(server, handshakes), tracker
