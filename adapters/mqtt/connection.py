"""One MQTT connection as a state machine with no I/O.

Feed it bytes with `receive_data`; take bytes to write with `data_to_send`;
close the transport once `closing` is true and the bytes are written. Time is
a deadline the machine exposes (`next_deadline`) and a call the owner makes
(`handle_timeout`), so tests drive the clock. Deliveries from other clients
arrive through the `SessionSink` methods at any time; `on_output` tells the
owner that bytes are waiting outside of `receive_data`.

States (states.py): AWAIT_CONNECT -> (AUTHENTICATING | VERIFYING ->) CONNECTED
-> CLOSED; login.py owns the way from CONNECT to CONNACK. Every
remote error ends here in one place, `_fail`, which picks the wire answer for
the client's protocol level: a CONNACK refusal before CONNACK, a DISCONNECT
with the reason code after it (MQTT 5), or a plain close (3.1.1).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Callable, Final

from core.acl import ClientAccess
from core.broker import Broker
from core.flow import ProducerGate
from core.message import Message, Origin, expiry_from_interval, plain_message
from core.principal import Principal
from core.sessions import Session
from core.subscriptions import Delivery, EncodeCache

from adapters.mqtt.handlers import CONNECTED_HANDLERS
from adapters.mqtt.codec import MQTTDecoder, encode
from adapters.mqtt.errors import (
    CONNACK_REASONS,
    ProtocolViolation,
    ReasonCode,
    RemoteProtocolError,
    TopicAliasInvalid,
    UnsupportedProtocolVersion,
)
from adapters.mqtt.login import Login
from adapters.mqtt.outbound import TopicAliases, publish_parts
from adapters.mqtt.packets import Auth, ConnAck, Connect, Disconnect, Packet, Publish
from adapters.mqtt.properties import Properties
from adapters.mqtt.settings import MQTTSettings
from adapters.mqtt.states import State

log = logging.getLogger("rosettamq.mqtt")
# The states as compiled constants: an Enum member read through its class is a metaclass
# __getattr__ lookup, a few percent of the CPU per message when done per packet.
AWAIT_CONNECT: Final = State.AWAIT_CONNECT
AUTHENTICATING: Final = State.AUTHENTICATING
VERIFYING: Final = State.VERIFYING
CONNECTED: Final = State.CONNECTED
CLOSED: Final = State.CLOSED
NOT_LOGGED_IN: Final = Origin("mqtt")  # a connection's origin until its login (an Origin is immutable)
# Its principal until then, shared: no handler acts for a connection before its login, and the login
# replaces it (never changes it) with the client's own.
NO_PRINCIPAL: Final = Principal("mqtt")

MAX_DETAIL = 200  # characters of an error detail kept for the log and the Reason String
ERRORS_KEPT = 10  # protocol errors and refusals a connection remembers (the admin API's last_errors)


class MQTTConnection:
    """The MQTT 3.1 / 3.1.1 / 5.0 server side of one network connection."""

    def __init__(
        self,
        broker: Broker,
        settings: MQTTSettings,
        *,
        peer: str = "",
        listener: str = "mqtt",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.peer = peer
        self.listener = listener
        self.clock = clock
        self.decoder = MQTTDecoder(settings.max_packet_size)
        self.state = AWAIT_CONNECT
        self.level = 4
        self.client_id = ""
        self.username: str | None = None
        self.session: Session | None = None  # once connected
        self.origin = NOT_LOGGED_IN
        self.closing = False
        self.on_output: Callable[[], None] | None = None
        self.receive_maximum = 65535  # the client's: our outgoing QoS 1/2 window
        self.max_outgoing_packet: int | None = None
        self.keep_alive = 0
        self.problem_information = True
        self.connected_at: float | None = None
        self.clean_start = True  # as the CONNECT asked (the admin API shows it)
        self.messages_in = 0  # PUBLISHes received and sent since the CONNECT (the admin API's counters)
        self.messages_out = 0
        self.errors: deque[tuple[str, float, str]] | None = None  # (client id, unix time, what): `note_error`
        self.dropped_too_large = 0
        # Why the server ended the connection (None: the client or the transport did);
        # transports with their own close codes (WebSocket) translate it.
        self.close_reason: ReasonCode | None = None
        self.refused: ReasonCode | None = None  # the CONNACK refusal, if the login was refused (metrics)
        self.inbound_aliases: dict[int, str] | None = None  # the client's topic aliases, from its first
        self.outbound_aliases: TopicAliases | None = None
        self._out: list[bytes] = []
        self._in_receive = False
        self._writable = True
        self._detached = False
        self._last_rx = clock()
        self._connect_deadline = self._last_rx + settings.connect_timeout
        self.login = Login(self)
        self.access: ClientAccess | None = None  # this client's ACL view once connected (None: no ACL)
        self.principal = NO_PRINCIPAL  # who publishes through this connection, once logged in
        self.auth_expires: float | None = None  # when its access token expires (clock timebase), if it has one
        self.publishes_denied = 0  # counters for metrics: ACL refusals and subscription quota
        self.publishes_invalid = 0  # refused by the core's door as invalid (too large, bad property)
        self.subscriptions_denied = 0
        self.subscriptions_over_quota = 0
        # Backpressure: input waits while sessions this client fed are congested (core/flow.py).
        self.input_gate = ProducerGate(max_wait=0.05)  # holds are brief: see core/flow.py

    # -- the owner's interface ---------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Process bytes from the peer; answers accumulate for `data_to_send`."""
        if self.closing:
            return
        if self.input_gate.blocked or self.state is VERIFYING:
            self.decoder.feed(data)  # kept for when the gate opens / the login is decided; the owner stops reading
            return
        now = self.clock()
        self._in_receive = True
        try:
            if self.state is AWAIT_CONNECT and data and not self.decoder.buffered and data[0] >> 4 != 1:
                # Not the start of a CONNECT: fail now rather than wait for a length it announces.
                raise ProtocolViolation("first packet must be CONNECT")  # [MQTT-3.1.0-1]
            self.decoder.feed(data)
            while not self.closing and not self.input_gate.blocked and self.state is not VERIFYING:
                packet = self.decoder.next_packet()
                if packet is None:
                    break
                # Keep-alive counts whole control packets, not bytes [MQTT-3.1.2-22]: a client
                # trickling a packet that never completes does not stay connected.
                self._last_rx = now
                self._dispatch(packet)
        except UnsupportedProtocolVersion as exc:
            if self.state is AWAIT_CONNECT:
                self.login.refuse_version(exc)
            else:  # a second CONNECT, whatever its version [MQTT-3.1.0-2]
                self._fail(ReasonCode.PROTOCOL_ERROR, "second CONNECT")
        except RemoteProtocolError as exc:
            self._fail(exc.reason_code, str(exc))
        except Exception:  # a bug of ours must cost one connection, never the process
            log.exception("mqtt internal error peer=%s client_id=%s", self.peer, self.client_id)
            self._fail(ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR, "internal error")
        finally:
            self._in_receive = False

    def data_to_send(self) -> bytes:
        """Everything waiting to be written, as one buffer (empty if nothing)."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def next_deadline(self) -> float | None:
        """When `handle_timeout` must next be called (the `clock` timebase), or None."""
        if self.closing:
            return None
        deadline = self._liveness_deadline()
        gate_until = self.input_gate.until
        if gate_until is not None and (deadline is None or gate_until < deadline):
            return gate_until
        return deadline

    def extend_connect_deadline(self, until: float) -> None:
        """A CONNECT the server is still working on (a cluster claim) keeps its connection until `until`."""
        self._connect_deadline = max(self._connect_deadline, until)

    def _liveness_deadline(self) -> float | None:
        if self.state is not CONNECTED:
            held = self.login.deadline  # a login held back by the backoff
            return self._connect_deadline if held is None else held
        deadline = self._last_rx + 1.5 * self.keep_alive if self.keep_alive else None  # [MQTT-3.1.2-22]
        expires = self.auth_expires
        if expires is not None and (deadline is None or expires < deadline):
            return expires
        return deadline

    def handle_timeout(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self.input_gate.expire(now)
        deadline = self._liveness_deadline()
        if self.closing or deadline is None or now < deadline:
            return
        if self.state is CONNECTED and self.auth_expires is not None and now >= self.auth_expires:
            log.info("access token expired peer=%s client_id=%s username=%s", self.peer, self.client_id,
                     self.username)
            self.disconnect(ReasonCode.MAXIMUM_CONNECT_TIME, publish_will=True, reason_string="access token expired")
        elif self.state is CONNECTED:
            log.info("keep-alive timeout peer=%s client_id=%s", self.peer, self.client_id)
            self._fail(ReasonCode.KEEP_ALIVE_TIMEOUT, "keep alive timeout")
        elif self.login.deadline is not None:
            self.login.handle_timeout(now)
        else:
            log.info("no CONNECT in time peer=%s", self.peer)
            self.close(publish_will=False)

    def set_writable(self, writable: bool) -> None:
        """Transport flow control: while not writable, QoS 1/2 wait in the session queue."""
        self._writable = writable
        if writable and self.session is not None and not self.closing:
            self.session.pump()

    def connection_lost(self) -> None:
        """The transport is gone (peer closed, network error): an abnormal end unless DISCONNECTed."""
        self.close(publish_will=True)

    def disconnect(self, reason: ReasonCode, *, publish_will: bool = False, reason_string: str | None = None) -> None:
        """Server-initiated close: DISCONNECT with `reason` to v5 clients, then close."""
        if self.closing:
            return
        self.close_reason = reason
        if self.state is CONNECTED and self.level == 5:
            self.send_packet(Disconnect(reason, self._reason_props(reason_string)))
        self.close(publish_will=publish_will)

    # -- SessionSink -----------------------------------------------------------

    def can_send(self) -> bool:
        return self._writable and not self.closing

    def send_publish(self, packet_id: int | None, delivery: Delivery, dup: bool, cache: EncodeCache | None) -> bool:
        if self.closing:
            return True  # stays in flight; resent when the client comes back
        parts = None
        aliases = self.outbound_aliases
        if aliases is not None:
            parts = aliases.parts(delivery, dup)
        if parts is None:
            parts = publish_parts(delivery, self.level, dup, cache)
        head, tail = parts
        limit = self.max_outgoing_packet
        if limit is not None and len(head) + len(tail) + (0 if packet_id is None else 2) > limit:
            self.dropped_too_large += 1  # [MQTT-3.1.2-25]: discard as if it had been sent
            if aliases is not None:
                aliases.forget(delivery.message.topic)
            return False
        out = self._out
        first = not out  # output already waiting means its owner was told already: tell it once
        out.append(head)
        if packet_id is not None:
            out.append(packet_id.to_bytes(2, "big"))
        out.append(tail)
        self.messages_out += 1
        if first and not self._in_receive and self.on_output is not None:
            self.on_output()
        return True

    def send_pubrel(self, packet_id: int) -> None:
        from adapters.mqtt.packets import PubRel

        self.send_packet(PubRel(packet_id))

    def session_taken_over(self) -> None:
        log.info("session taken over client_id=%s peer=%s", self.client_id, self.peer)
        self.disconnect(ReasonCode.SESSION_TAKEN_OVER, publish_will=True)

    def quota_exceeded(self) -> None:
        """The session's outbox overflowed and its policy is "disconnect" (the will is published)."""
        if not self.closing:
            log.info("slow client disconnected client_id=%s peer=%s reason=outbox_full", self.client_id, self.peer)
            self.disconnect(ReasonCode.QUOTA_EXCEEDED, publish_will=True, reason_string="outbox full")

    def note_error(self, message: str, client_id: str | None = None) -> None:
        """Remember a protocol error or refusal of this client (the last `ERRORS_KEPT`; the listener's
        `ConnectionTracker` keeps them past the connection)."""
        if self.errors is None:
            self.errors = deque(maxlen=ERRORS_KEPT)
        self.errors.append((client_id or self.client_id, time.time(), message))

    # -- sending -------------------------------------------------------------------

    def send_packet(self, packet: Packet) -> None:
        self.send_encoded(encode(packet, self.level))

    def send_encoded(self, data: bytes) -> None:
        """Queue a packet already encoded (a PUBACK's four bytes); written at the next flush."""
        self._out.append(data)
        if not self._in_receive and self.on_output is not None:
            self.on_output()

    def _reason_props(self, reason_string: str | None) -> Properties:
        if not reason_string or not self.problem_information:
            return Properties()
        # Fixed header, reason code and property framing take at most 13 bytes; the string
        # must not push the packet past the client's Maximum Packet Size [MQTT-3.14.2-3].
        limit = self.max_outgoing_packet
        if limit is not None and len(reason_string.encode()) + 13 > limit:
            return Properties()
        return Properties(reason_string=reason_string)

    # -- dispatch --------------------------------------------------------------------

    def _dispatch(self, packet: Packet) -> None:
        state = self.state
        if state is CONNECTED:
            handler = CONNECTED_HANDLERS.get(type(packet))
            if handler is None:
                raise ProtocolViolation(f"unexpected {type(packet).__name__} packet")
            handler(self, packet)
        elif state is AWAIT_CONNECT:
            if not isinstance(packet, Connect):
                raise ProtocolViolation("first packet must be CONNECT")  # [MQTT-3.1.0-1]
            self.login.on_connect(packet)
        elif state is AUTHENTICATING:
            if isinstance(packet, Auth) and packet.reason_code == ReasonCode.CONTINUE_AUTHENTICATION:
                self.continue_authentication(packet)
            elif isinstance(packet, Disconnect):
                self.close(publish_will=False)
            else:
                raise ProtocolViolation(f"unexpected {type(packet).__name__} during authentication")

    # -- CONNECT (the flow itself is in login.py) ------------------------------------------

    def continue_authentication(self, packet: Auth) -> None:
        """AUTH 0x18 from the client: the next step of the running exchange."""
        self.login.continue_authentication(packet)

    def start_reauthentication(self, packet: Auth) -> None:
        """AUTH 0x19 from a connected client: run the same method again."""
        self.login.start_reauthentication(packet)

    # -- inbound PUBLISH (the hot path) --------------------------------------------

    def to_message(self, packet: Publish) -> Message:
        """Validate an inbound PUBLISH and turn it into a core message (raises on bad input)."""
        qos, retain = packet.qos, packet.retain
        settings = self.settings
        if qos > settings.max_qos:
            raise RemoteProtocolError(f"QoS {qos} not supported", ReasonCode.QOS_NOT_SUPPORTED)
        if retain and not settings.retain_available:
            raise RemoteProtocolError("retain not supported", ReasonCode.RETAIN_NOT_SUPPORTED)
        if self.level != 5:  # no properties before MQTT 5: the usual message
            return plain_message(packet.topic, packet.payload, qos, retain, self.origin)
        topic = packet.topic
        props = packet.properties
        if props.subscription_identifiers:
            raise ProtocolViolation("subscription identifier in a PUBLISH from a client")  # [MQTT-3.3.4-6]
        if props.topic_alias is not None:
            alias = props.topic_alias
            if alias == 0 or alias > settings.topic_alias_maximum:
                raise TopicAliasInvalid(f"topic alias {alias} out of range")
            aliases = self.inbound_aliases
            if aliases is None:
                aliases = self.inbound_aliases = {}
            if topic:
                aliases[alias] = topic
            else:
                topic = aliases.get(alias, "")
                if not topic:
                    raise ProtocolViolation(f"unknown topic alias {alias}")
        # The decoder already refused what validate_topic_name would: bad UTF-8, U+0000,
        # wildcards and an empty name without an alias [MQTT-3.3.2-1, -2], [MQTT-1.5.4-1, -2].
        return Message(
            topic=topic,
            payload=packet.payload,
            qos=qos,  # type: ignore[arg-type]
            retain=retain,
            content_type=props.content_type,
            correlation_data=props.correlation_data,
            response_topic=props.response_topic,
            user_properties=props.user_properties,
            expiry=expiry_from_interval(props.message_expiry_interval),
            payload_format_utf8=props.payload_format_indicator == 1,
            origin=self.origin,
        )

    # -- ending --------------------------------------------------------------------

    def _fail(self, reason: ReasonCode, detail: str) -> None:
        """A remote error: one log line, the right answer for the state and level, close."""
        if len(detail) > MAX_DETAIL:  # details quote what the peer sent: bound the log line and reason string
            detail = detail[:MAX_DETAIL] + "..."
        log.warning(
            "protocol error peer=%s client_id=%s reason=%s detail=%s",
            self.peer, self.client_id, ReasonCode(reason).name, detail,
        )
        if not self.closing:
            self.close_reason = ReasonCode(reason)
        self.note_error(f"{ReasonCode(reason).name}: {detail}")
        if self.state in (AWAIT_CONNECT, AUTHENTICATING, VERIFYING):
            # A v5 client (its CONNECT's level is known even when the rest was malformed) is
            # told why in a CONNACK [MQTT-3.1.4-1] (v5); 3.1.1 closes without one [MQTT-3.1.4-1].
            if self.state is AUTHENTICATING or self.decoder.protocol_level == 5:
                self.level = 5
                code = reason if reason in CONNACK_REASONS else ReasonCode.PROTOCOL_ERROR
                self.send_packet(ConnAck(False, code))
            self.close(publish_will=False)
        else:
            self.disconnect(ReasonCode(reason), publish_will=True, reason_string=detail)

    def close(self, *, publish_will: bool) -> None:
        """Stop processing input, detach the session (will per `publish_will`); the owner closes."""
        if self.closing:
            return
        self.closing = True
        self.state = CLOSED
        if self.session is not None and not self._detached:
            self._detached = True
            self.broker.mqtt_sessions.disconnected(self.session, publish_will=publish_will)
        if not self._in_receive and self.on_output is not None:
            self.on_output()
