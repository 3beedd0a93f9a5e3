"""From CONNECT to CONNACK: negotiation, authentication, then accept or refuse (no I/O).

One `Login` per connection holds the login's own state (a running MQTT 5
enhanced-auth exchange and the CONNECT waiting for it) and acts on its
`MQTTConnection`: it sends the CONNACK, opens the session, or refuses and
closes. Re-authentication of a connected client (AUTH 0x19) runs here too.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from core.auth import Credentials
from core.message import Origin

from adapters.mqtt.connect import ConnectTerms, negotiate, will_message
from adapters.mqtt.enhanced_auth import CONTINUE, SUCCESS, AuthMethod, AuthStep
from adapters.mqtt.errors import ProtocolViolation, ReasonCode, UnsupportedProtocolVersion
from adapters.mqtt.outbound import TopicAliases
from adapters.mqtt.packets import Auth, ConnAck, Connect
from adapters.mqtt.properties import Properties
from adapters.mqtt.states import State

if TYPE_CHECKING:
    from adapters.mqtt.connection import MQTTConnection

log = logging.getLogger("rosettamq.mqtt")


class Login:
    """The CONNECT-to-CONNACK flow of one connection, and its later re-authentications."""

    def __init__(self, conn: "MQTTConnection") -> None:
        self.conn = conn
        self.method: str | None = None  # the CONNECT's Authentication Method; re-auth must reuse it
        self._exchange: AuthMethod | None = None
        self._pending: tuple[Connect, ConnectTerms] | None = None

    def on_connect(self, connect: Connect) -> None:
        conn = self.conn
        conn.level = connect.protocol_level
        terms = negotiate(connect, conn.settings)
        if isinstance(terms, ReasonCode):
            self.refuse(terms)
            return
        method = connect.properties.authentication_method if conn.level == 5 else None
        if method is not None:
            factory = conn.settings.auth_methods.get(method)
            if factory is None:
                self.refuse(ReasonCode.BAD_AUTHENTICATION_METHOD)
                return
            self._exchange, self.method = factory(), method
            self._pending = (connect, terms)
            conn.state = State.AUTHENTICATING
            self._answer(self._exchange.start(connect.properties.authentication_data))
            return
        authenticator = conn.settings.authenticator
        if authenticator is not None and not authenticator.authenticate(
            Credentials("mqtt", terms.client_id, connect.username, connect.password, conn.peer)
        ):
            log.warning("mqtt login refused peer=%s client_id=%s username=%s", conn.peer, terms.client_id, connect.username)
            # As mosquitto: no credentials at all is "not authorized", wrong ones "bad user name or password".
            anonymous = connect.username is None
            self.refuse(ReasonCode.NOT_AUTHORIZED if anonymous else ReasonCode.BAD_USER_NAME_OR_PASSWORD)
            return
        self.accept(connect, terms, connect.username, Properties())

    def continue_authentication(self, packet: Auth) -> None:
        """AUTH 0x18 from the client: the next step of the running exchange."""
        if packet.properties.authentication_method != self.method or self._exchange is None:
            raise ProtocolViolation("authentication method changed")
        self._answer(self._exchange.step(packet.properties.authentication_data))

    def start_reauthentication(self, packet: Auth) -> None:
        """AUTH 0x19 from a connected client: run the same method again."""
        method = packet.properties.authentication_method
        if method is None or method != self.method:
            raise ProtocolViolation("re-authentication must use the CONNECT's method")  # [MQTT-4.12.1-1]
        self._exchange = self.conn.settings.auth_methods[method]()
        self._answer(self._exchange.start(packet.properties.authentication_data))

    def _answer(self, step: AuthStep) -> None:
        """Apply a method's answer during CONNECT or during re-authentication."""
        conn = self.conn
        props = Properties(authentication_method=self.method, authentication_data=step.data)
        if step.status == CONTINUE:
            conn.send_packet(Auth(ReasonCode.CONTINUE_AUTHENTICATION, props))
            return
        self._exchange = None  # the exchange is over: a further AUTH 0x18 is a protocol error
        if step.status == SUCCESS and conn.state is State.AUTHENTICATING:
            assert self._pending is not None
            connect, terms = self._pending
            self._pending = None
            self.accept(connect, terms, step.username or connect.username, props)
        elif step.status == SUCCESS:
            conn.send_packet(Auth(ReasonCode.SUCCESS, props))
        elif conn.state is State.AUTHENTICATING:
            log.warning("mqtt enhanced auth failed peer=%s method=%s", conn.peer, self.method)
            self.refuse(ReasonCode.NOT_AUTHORIZED)
        else:
            conn.disconnect(ReasonCode.NOT_AUTHORIZED, reason_string="re-authentication failed")

    def accept(self, connect: Connect, terms: ConnectTerms, username: str | None, auth_props: Properties) -> None:
        conn = self.conn
        conn.client_id, conn.username = terms.client_id, username
        conn.origin = Origin("mqtt", terms.client_id, username)
        registry = conn.broker.mqtt_sessions
        session, present = registry.open(
            terms.client_id, clean_start=connect.clean_start, expiry_interval=terms.session_expiry, username=username
        )
        conn.session = session
        props = connect.properties
        if conn.level == 5:
            conn.receive_maximum = props.receive_maximum or 65535
            conn.max_outgoing_packet = props.maximum_packet_size
            if props.topic_alias_maximum:
                conn.outbound_aliases = TopicAliases(props.topic_alias_maximum)
            conn.problem_information = props.request_problem_information != 0
        if connect.will is not None:
            registry.set_will(session, *will_message(connect.will, conn.origin))
        else:
            registry.set_will(session, None)
        conn.keep_alive = terms.keep_alive
        conn.state = State.CONNECTED
        conn.connected_at = time.time()
        connack_props = terms.connack_properties
        if auth_props.authentication_method is not None:
            connack_props = dataclasses.replace(
                connack_props,
                authentication_method=auth_props.authentication_method,
                authentication_data=auth_props.authentication_data,
            )
        conn.send_packet(ConnAck(present, ReasonCode.SUCCESS, connack_props))
        log.info(
            "mqtt connected peer=%s client_id=%s username=%s level=%d clean=%s present=%s",
            conn.peer, conn.client_id, username, conn.level, connect.clean_start, present,
        )
        session.attach(conn, resume=present)

    def refuse(self, reason: ReasonCode) -> None:
        """Answer a CONNECT with a refusal CONNACK and close [MQTT-3.2.2-7]."""
        conn = self.conn
        log.info("mqtt connect refused peer=%s reason=%s", conn.peer, reason.name)
        conn.send_packet(ConnAck(False, reason))
        conn.close(publish_will=False)

    def refuse_version(self, exc: UnsupportedProtocolVersion) -> None:
        conn = self.conn
        log.info("mqtt unsupported protocol peer=%s name=%r level=%s", conn.peer, exc.protocol_name, exc.protocol_level)
        conn.level = 5 if exc.protocol_level == 5 else 4
        conn.send_packet(ConnAck(False, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION))
        conn.close(publish_will=False)
