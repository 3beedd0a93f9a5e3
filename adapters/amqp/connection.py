"""One AMQP 0-9-1 connection as a state machine with no I/O.

Feed it bytes with `receive_data`; take bytes to write with `data_to_send`;
close the transport once `closing` is true and the bytes are written. Time is
a deadline it exposes (`next_deadline`, in the `clock` timebase) and a call
the owner makes (`handle_timeout`). Deliveries caused by other connections
append output at any time and call `on_output`.

States (every transition is in this file):
  AWAIT_HEADER  --protocol header-->  AWAIT_START_OK  --start-ok, login ok-->
  AWAIT_TUNE_OK --tune-ok-->  AWAIT_OPEN  --open-->  OPEN
  AWAIT_START_OK --start-ok needing a slow password check--> VERIFYING (input held;
  the owner runs `pending_login` off the loop and calls `login_decided`) --> AWAIT_TUNE_OK
  any --our connection.close--> CLOSING (other frames read and dropped) --close-ok or
      `close_timeout`--> CLOSED (we close the socket, as the side that began the close)
  any --peer's connection.close (every frame before it already processed), close-ok sent-->
      DRAINING (bytes read and dropped) --the peer closes the socket, or `close_timeout`--> CLOSED
  any --heartbeat or handshake timeout, frame error--> CLOSED
The spec's closing handshake: whoever sends connection.close reads on until
close-ok, and the peer that answers close-ok leaves the socket to the other
side to close. Reading on matters: a socket closed with unread data is reset,
and the client then loses our close-ok (amqplib writes close ahead of publishes
still in its buffers) and its close callback never fires.
Errors: `AMQPError` from a handler closes the channel or the connection as
errors.py assigns its code; on channel 0 every error closes the connection;
a frame the reader cannot resynchronise after (501) closes right after our
connection.close. Any other exception is our bug: 541, logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from pamqp import base, commands as c

from core.acl import ClientAccess
from core.auth import Credentials
from core.flow import ProducerGate
from core.message import Origin
from core.principal import Principal

from adapters.amqp import errors
from adapters.amqp.broker import AMQPBroker
from adapters.amqp.channel import Channel, ChannelState
from adapters.amqp.errors import AMQPError, ReplyCode
from adapters.amqp.frames import (
    HEARTBEAT_FRAME, BodyFrame, FrameReader, HeaderFrame, HeartbeatFrame,
    MethodFrame, encode_method,
)
from adapters.amqp.handshake import Handshake, State
from adapters.amqp.methods import HANDLERS, unhandled
from adapters.amqp.vhost import VirtualHost

log = logging.getLogger("rosettamq.amqp")

_NOT_READING = frozenset({State.VERIFYING, State.DRAINING, State.CLOSED})  # input is held or dropped

class AMQPConnection(Handshake):
    """The server side of one AMQP 0-9-1 connection."""

    def __init__(self, broker: AMQPBroker, *, peer: str = "", listener: str = "amqp",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.broker = broker
        self.settings = broker.settings
        self.peer = peer
        self.listener = listener
        self.clock = clock
        self.connected_at = time.time()  # wall clock, for the admin API
        self.state = State.AWAIT_HEADER
        self.reader = FrameReader(self.settings.frame_max)
        self.frame_max = self.settings.frame_max
        self.channel_max = self.settings.channel_max
        self.heartbeat = 0
        self.channels: dict[int, Channel] = {}
        self.vhost: VirtualHost = next(iter(broker.vhosts.values()))
        self.username: str | None = None
        self.client_properties: dict[str, Any] = {}
        self.origin = Origin("amqp", peer)
        self.closing = False
        self.writable = True
        self.close_reason: tuple[int, str] | None = None  # what our connection.close said
        self.on_output: Callable[[], None] | None = None
        self._out: list[bytes] = []
        self._in_receive = False
        self._last_rx = self._last_tx = clock()
        self._deadline = self._last_rx + self.settings.handshake_timeout  # handshake or close-ok wait
        self.published = False  # publishers are the connections a resource alarm stops reading
        self.pending_login: Credentials | None = None  # the owner checks it off the event loop
        self.principal = Principal("amqp", peer)  # who publishes through this connection, once open
        self.access: ClientAccess | None = None  # topic ACL on the shared amq.topic (None: none)
        self._mechanism = ""
        self._told_blocked = False
        # Flow control (core/flow.py): subscribers of amq.topic messages that fall behind hold this
        # publisher briefly, as they hold an MQTT one; the owner stops reading while it is blocked.
        self.input_gate = ProducerGate(max_wait=0.05)  # holds are brief, as an MQTT publisher's (core/flow.py)

    # -- the owner's interface ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.closing or self.state is State.DRAINING:
            return  # the connection is over: what the peer still sends is dropped unread
        self._last_rx = self.clock()
        self._in_receive = True
        try:
            self.reader.feed(data)
            if self.state is State.AWAIT_HEADER and not self._protocol_header():
                return
            while self.state not in _NOT_READING and not self.input_gate.blocked:
                frame = self.reader.next_frame()
                if frame is None:
                    break
                self._frame(frame)
        except AMQPError as exc:  # from the reader: the stream cannot be trusted any further
            if self.state is State.CLOSING:
                self.state = State.DRAINING  # no close-ok will be found in it: drop the rest
            self._close_connection(exc, 0, 0, wait_close_ok=exc.code != ReplyCode.FRAME_ERROR)
        except Exception:  # a bug of ours costs this one connection, never the process
            log.exception("amqp internal error peer=%s", self.peer)
            self._close_connection(AMQPError(ReplyCode.INTERNAL_ERROR, "internal error"), 0, 0, False)
        finally:
            self._in_receive = False
            for channel in self.channels.values():
                channel.flush_confirms()

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._last_tx = self.clock()
        return data

    def next_deadline(self) -> float | None:
        if self.closing:
            return None
        if self.state is not State.OPEN:
            return self._deadline if self.hold_until is None else min(self._deadline, self.hold_until)
        deadline = self.auth_expires
        until = self.input_gate.until
        if until is not None:
            deadline = until if deadline is None else min(deadline, until)
        if self.heartbeat:
            beat = min(self._last_rx + 2 * self.heartbeat, self._last_tx + self.heartbeat / 2)
            deadline = beat if deadline is None else min(deadline, beat)
        return deadline

    def handle_timeout(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        if self.closing:
            return
        if self.hold_until is not None and now >= self.hold_until:
            self._hold_ended()
            return
        if self.state is not State.OPEN:
            if now >= self._deadline:
                waiting = {State.CLOSING: "close-ok", State.DRAINING: "client to close"}.get(self.state, "handshake")
                log.info("timeout peer=%s waiting_for=%s", self.peer, waiting)
                self._finish()
            return
        self.input_gate.expire(now)
        if self.auth_expires is not None and now >= self.auth_expires:
            log.info("access token expired peer=%s username=%s", self.peer, self.username)
            self.shutdown("access token expired (send connection.update-secret with a fresh one before it does)")
            return
        if self.heartbeat and now >= self._last_rx + 2 * self.heartbeat:
            log.warning("missed heartbeats peer=%s timeout=%d", self.peer, self.heartbeat)
            self._finish()
        elif self.heartbeat and now >= self._last_tx + self.heartbeat / 2:
            self.send_bytes(HEARTBEAT_FRAME)

    def set_writable(self, writable: bool) -> None:
        """Transport flow control: while not writable, messages wait in their queues."""
        self.writable = writable
        if writable:
            for channel in list(self.channels.values()):
                channel.pump()

    @property
    def reading_paused(self) -> bool:
        """While the resource alarm is on, the owner stops reading from connections that publish."""
        return self.broker.blocked and self.published and self.state is State.OPEN

    def hold_for(self, receivers: tuple[Any, ...]) -> None:
        """Take no more frames until `receivers` drain (a second at most), as an MQTT publisher:
        the owner stops reading while `input_gate` is blocked, and feeds what waited once it opens."""
        self.input_gate.close_for(list(receivers), self.clock())

    def _alarm(self, blocked: bool) -> None:
        if self.capability("connection.blocked") and blocked != self._told_blocked:
            self._told_blocked = blocked
            self.send_method(0, c.Connection.Blocked(reason="low on resources") if blocked
                             else c.Connection.Unblocked())
        elif self.on_output is not None:
            self.on_output()  # let the owner resume reading

    def connection_lost(self) -> None:
        self._finish()

    def shutdown(self, text: str = "broker forced connection closure with reason 'shutdown'", *,
                 wait: float = 0.0) -> None:
        """Server-initiated close (320 CONNECTION_FORCED): wait up to `wait` seconds for close-ok
        (reading and dropping what else comes), or close at once."""
        if not self.closing:
            self._close_connection(AMQPError(ReplyCode.CONNECTION_FORCED, text), 0, 0, wait_close_ok=wait > 0,
                                   timeout=wait)

    # -- helpers for channels ------------------------------------------------------------------

    def send_method(self, channel: int, method: base.Frame) -> None:
        self.send_bytes(encode_method(channel, method))

    def send_bytes(self, data: bytes) -> None:
        self._out.append(data)
        if not self._in_receive and self.on_output is not None:
            self.on_output()

    def capability(self, name: str) -> bool:
        capabilities = self.client_properties.get("capabilities")
        return isinstance(capabilities, dict) and bool(capabilities.get(name))

    def vhost_clock(self) -> float:
        return self.vhost.clock()

    # -- frames ---------------------------------------------------------------------------------

    def _frame(self, frame: Any) -> None:
        if self.state is State.CLOSING:  # only close / close-ok on channel 0 count now
            if isinstance(frame, MethodFrame) and frame.channel == 0:
                if isinstance(frame.method, c.Connection.CloseOk):
                    self._finish()
                elif isinstance(frame.method, c.Connection.Close):
                    self.send_method(0, c.Connection.CloseOk())
            return
        if isinstance(frame, HeartbeatFrame):
            return
        if frame.channel == 0:
            self._channel_zero(frame)
            return
        if self.state is not State.OPEN:
            self._close_connection(errors.unexpected_frame("frame on a channel before connection.open-ok"), 0, 0)
            return
        method = frame.method if isinstance(frame, MethodFrame) else None
        try:
            self._channel_frame(frame)
        except AMQPError as exc:
            class_id, method_id = _ids(method) if method is not None else (60, 40)  # content: basic.publish
            if exc.closes_connection:
                self._close_connection(exc, class_id, method_id)
            else:
                self._close_channel(frame.channel, exc, class_id, method_id)

    def _channel_zero(self, frame: Any) -> None:
        if not isinstance(frame, MethodFrame):
            self._close_connection(errors.unexpected_frame("content frame on channel 0"), 0, 0)
            return
        method = frame.method
        expected = {State.AWAIT_START_OK: c.Connection.StartOk, State.AWAIT_TUNE_OK: c.Connection.TuneOk,
                    State.AWAIT_OPEN: c.Connection.Open}.get(self.state)
        try:
            if isinstance(method, c.Connection.Close):
                self._closed_by_client(method)
            elif expected is not None and isinstance(method, expected):
                {c.Connection.StartOk: self._start_ok, c.Connection.TuneOk: self._tune_ok,
                 c.Connection.Open: self._open}[expected](method)
            elif isinstance(method, c.Connection.CloseOk):
                self._finish()
            elif self.state is State.OPEN and isinstance(method, c.Connection.UpdateSecret):
                self._update_secret(method)
            elif self.state is State.OPEN and method.name.startswith("Connection."):
                raise unhandled(method, 0)  # 540 for what we do not implement, 503 for the others
            else:
                raise errors.command_invalid(f"unexpected method {method.name} on channel 0 in state "
                                             f"{self.state.value}")
        except AMQPError as exc:
            self._close_connection(exc, *_ids(method))

    def _channel_frame(self, frame: Any) -> None:
        number = frame.channel
        if number > self.channel_max:
            raise errors.not_allowed(f"channel {number} above channel_max {self.channel_max}")
        channel = self.channels.get(number)
        method = frame.method if isinstance(frame, MethodFrame) else None
        if channel is None:
            if isinstance(method, c.Channel.Open):
                self.channels[number] = Channel(self, number)
                self.send_method(number, c.Channel.OpenOk())
                return
            raise errors.channel_error(f"expected 'channel.open' on channel {number}")
        if channel.state is ChannelState.CLOSING:
            if isinstance(method, c.Channel.CloseOk):
                del self.channels[number]
            elif isinstance(method, c.Channel.Close):
                self.send_method(number, c.Channel.CloseOk())
            return
        if method is None:
            if isinstance(frame, HeaderFrame):
                channel.content_header(frame)
            elif isinstance(frame, BodyFrame):
                channel.content_body(frame)
            return
        if channel.in_content:
            raise errors.unexpected_frame(f"expected content on channel {number}, got {method.name}")
        if isinstance(method, c.Channel.Close):
            channel.teardown()
            del self.channels[number]
            self.send_method(number, c.Channel.CloseOk())
            return
        if isinstance(method, c.Channel.Open):
            raise errors.channel_error(f"second 'channel.open' on channel {number}")
        handler = HANDLERS.get(type(method))
        if handler is None:
            raise unhandled(method, number)
        handler(channel, method)

    # -- closing ----------------------------------------------------------------------------------

    def _close_channel(self, number: int, exc: AMQPError, class_id: int, method_id: int) -> None:
        log.info("channel error peer=%s channel=%d code=%d text=%s", self.peer, number, exc.code, exc.text)
        channel = self.channels.get(number)
        if channel is not None:
            channel.flush_confirms()
            channel.teardown()
            channel.state = ChannelState.CLOSING
        else:
            channel = self.channels[number] = Channel(self, number)
            channel.state = ChannelState.CLOSING
        self.send_method(number, c.Channel.Close(reply_code=exc.code, reply_text=exc.reply_text(),
                                                 class_id=class_id, method_id=method_id))

    def _closed_by_client(self, method: c.Connection.Close) -> None:
        """Every frame before the close was processed; answer close-ok and let the client close the socket."""
        log.info("closed by client peer=%s code=%s", self.peer, method.reply_code)
        self._release()
        self.send_method(0, c.Connection.CloseOk())
        self.state = State.DRAINING
        self._deadline = self.clock() + self.settings.close_timeout

    def _close_connection(self, exc: AMQPError, class_id: int, method_id: int, wait_close_ok: bool = True,
                          timeout: float | None = None) -> None:
        if self.closing or self.state in (State.CLOSING, State.DRAINING):
            return
        log.warning("connection error peer=%s code=%d text=%s", self.peer, exc.code, exc.text)
        self.close_reason = (int(exc.code), exc.reply_text())
        self.send_method(0, c.Connection.Close(reply_code=exc.code, reply_text=exc.reply_text(),
                                               class_id=class_id, method_id=method_id))
        self._release()
        if wait_close_ok:
            self.state = State.CLOSING
            self._deadline = self.clock() + (self.settings.close_timeout if timeout is None else timeout)
        else:
            self._finish()

    def _release(self) -> None:
        self.broker.alarm_listeners.discard(self._alarm)
        for channel in list(self.channels.values()):
            channel.teardown()
        self.channels.clear()
        for vhost in self.broker.vhosts.values():
            vhost.release_owner(self)

    def _finish(self) -> None:
        if self.closing:
            return
        self._release()
        self.closing = True
        self.state = State.CLOSED
        if not self._in_receive and self.on_output is not None:
            self.on_output()


def _ids(method: base.Frame | None) -> tuple[int, int]:
    if method is None:
        return 0, 0
    return method.index >> 16, method.index & 0xFFFF
