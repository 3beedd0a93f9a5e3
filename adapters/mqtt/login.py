"""From CONNECT to CONNACK: negotiation, authentication, then accept or refuse (no I/O).

One `Login` per connection holds the login's own state (a running MQTT 5
enhanced-auth exchange and the CONNECT waiting for it) and acts on its
`MQTTConnection`: it sends the CONNACK, opens the session, or refuses and
closes. Re-authentication of a connected client (AUTH 0x19) runs here too.

The connection waits in VERIFYING, reading nothing more, while:

- its address or user name is held back by the login backoff
  (`settings.login_backoff`): `deadline` says when the login is checked;
- its credentials need a slow check (PBKDF2): `take_verification()` hands
  them to the owner, which runs the authenticator off the event loop and
  calls `verified(ok)`;
- a failed login's refusal is held back by the backoff: `deadline` says when
  the CONNACK refusal goes out.

The owner calls the connection's `handle_timeout` at `deadline` (through
`next_deadline`), never sleeps. With `use_transport_identity` the transport
has already proven who the client is: a TLS listener's `use_identity_as_username`
(the certificate's CN, as in Mosquitto) or a WebSocket bearer token; that
identity is the username and the CONNECT's username and password are ignored.

An access token (`[auth.jwt]`) is a password the authenticator answers with a `Grant`: the
login takes its username, its ACL rules (core/acl_tokens.py) and its expiry, when the
connection ends (DISCONNECT 0xA0) unless the client re-authenticates first. The token comes
in the password field, as the WebSocket upgrade's bearer token (`transport_token`), or as
OAUTHBEARER Authentication Data (adapters/mqtt/oauthbearer.py), the only way to renew it on a
live connection (AUTH 0x19); each goes through the same authenticator as a password.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from logging import INFO
from typing import TYPE_CHECKING, Any, Final

from core.acl_tokens import access_for
from core.auth import Answer, Credentials, Grant, login_name, quick_answer
from core.fabric import SessionClaim
from core.principal import Principal
from core.session_loading import begin_load, finish_load
from core.session_registry import SessionOwned

from adapters.mqtt.connect import ConnectTerms, negotiate, will_message
from adapters.mqtt.enhanced_auth import CONTINUE, SUCCESS, AuthMethod, AuthStep
from adapters.mqtt.errors import ProtocolViolation, ReasonCode, UnsupportedProtocolVersion
from adapters.mqtt.oauthbearer import bearer_credentials
from adapters.mqtt.outbound import TopicAliases
from adapters.mqtt.packets import Auth, ConnAck, Connect
from adapters.mqtt.properties import NO_PROPERTIES, Properties
from adapters.mqtt.states import State

if TYPE_CHECKING:
    from adapters.mqtt.connection import MQTTConnection

log = logging.getLogger("rosettamq.mqtt")
CLAIM_PATIENCE = 30.0  # seconds a CONNECT may wait for its cluster claim (which gives up after 25 s)

MQTT_VERSIONS = {3: "3.1", 4: "3.1.1", 5: "5.0"}  # CONNECT protocol level -> the version users name
_tuple_new: Final = tuple.__new__  # a CONNACK without the NamedTuple's Python-level __new__ (one per login)
# Read once per login: an Enum member read through its class is a metaclass lookup.
_CONNECTED: Final = State.CONNECTED
_SUCCESS: Final = ReasonCode.SUCCESS


class Login:
    """The CONNECT-to-CONNACK flow of one connection, and its later re-authentications."""

    # One per connection: slots, not a dict (idle memory and the cost of every login, issue 17).
    __slots__ = ("conn", "method", "deadline", "use_transport_identity", "transport_identity", "transport_token",
                 "grant", "_reauthenticating", "_exchange", "_pending", "_verification", "_checking", "_refusal",
                 "_loading", "_load_handed", "_claiming", "_claim_handed", "_claimed")
    __deletable__ = ("conn",)  # compiled (core/compiled.py): release() deletes it

    def __init__(self, conn: "MQTTConnection") -> None:
        self.conn = conn
        self.method: str | None = None  # the CONNECT's Authentication Method; re-auth must reuse it
        self.deadline: float | None = None  # when a held login is checked, or its refusal sent
        self.use_transport_identity = False
        self.transport_identity: str | None = None  # certificate CN or bearer token user, if any
        self.transport_token: bytes | None = None  # a bearer access token of the WebSocket upgrade
        self.grant: Grant | None = None  # what an access token granted (username, rules, expiry)
        self._reauthenticating = False  # a token re-authentication waits for the authenticator
        self._exchange: AuthMethod | None = None
        self._pending: tuple[Connect, ConnectTerms] | None = None
        self._verification: Credentials | None = None  # handed to the owner by take_verification
        self._checking: Credentials | None = None  # being verified by the owner
        self._refusal: ReasonCode | None = None  # sent at `deadline`
        self._loading: tuple[Connect, ConnectTerms, str | None, Properties, Any] | None = None
        self._load_handed = False
        # In a cluster (core/fabric.py `claims_sessions`): the CONNECT waits while its client id is claimed.
        self._claiming: tuple[Connect, ConnectTerms, str | None, Properties] | None = None
        self._claim_handed = False
        self._claimed = False

    def release(self) -> None:
        """The connection is lost: forget it (this login is its only cycle), unless a cluster claim or a
        stored queue is still being read for it; their answers need it, and a login never acts after."""
        if self._claiming is None and self._loading is None and hasattr(self, "conn"):
            del self.conn

    def on_connect(self, connect: Connect) -> None:
        conn = self.conn
        conn.level = connect.protocol_level
        terms = negotiate(connect, conn.settings)
        if isinstance(terms, ReasonCode):
            self.refuse(terms)
            return
        method = connect.properties.authentication_method if conn.level == 5 else None
        if method is not None and method not in conn.settings.auth_methods and not self.use_transport_identity:
            self.refuse(ReasonCode.BAD_AUTHENTICATION_METHOD)
            return
        self._pending = (connect, terms)
        self._attempt()

    def _attempt(self) -> None:
        """Check the pending CONNECT, unless its address must first wait out its backoff."""
        conn = self.conn
        assert self._pending is not None
        connect, terms = self._pending
        backoff = conn.settings.login_backoff
        if backoff is not None:
            now = conn.clock()
            hold = backoff.hold(conn.peer, now, connect.username)
            if hold > 0:
                log.info("login held peer=%s client_id=%s seconds=%.1f", conn.peer, terms.client_id, hold)
                conn.state, self.deadline = State.VERIFYING, now + hold
                return
        if self.use_transport_identity and self.transport_token is None:
            self._decided(self.transport_identity is not None, self.transport_identity)  # the certificate
            return
        username, password = connect.username, connect.password
        method = connect.properties.authentication_method if conn.level == 5 else None
        if self.transport_token is not None:  # the upgrade's token is the credential; nothing else counts
            username, password = None, self.transport_token
        elif method is not None and self._takes_token(method):
            self.method = method
            bearer = bearer_credentials(connect.properties.authentication_data)
            username, password = (connect.username, None) if bearer is None else (bearer[0] or connect.username,
                                                                                   bearer[1])
        elif method is not None:
            self._exchange, self.method = conn.settings.auth_methods[method](), method
            conn.state = State.AUTHENTICATING
            self._answer(self._exchange.start(connect.properties.authentication_data))
            return
        authenticator = conn.settings.authenticator
        if authenticator is None:
            self._decided(True, username)
            return
        credentials = Credentials("mqtt", terms.client_id, username, password, conn.peer)
        answer = quick_answer(authenticator, credentials)
        if answer is None:  # a slow check: the owner runs it off the event loop
            conn.state, self._verification = State.VERIFYING, credentials
            return
        self._decided(answer, username)

    def _takes_token(self, method: str) -> bool:
        return getattr(self.conn.settings.auth_methods.get(method), "takes_token", False)

    @property
    def has_verification(self) -> bool:
        """Credentials wait for the owner (`take_verification`), also on a connected client re-authenticating."""
        return self._verification is not None

    def take_verification(self) -> Credentials | None:
        """Credentials the owner must check with `settings.authenticator` off the loop, then call `verified`."""
        credentials, self._verification = self._verification, None
        self._checking = credentials
        return credentials

    def take_session_load(self) -> Any:
        """The session whose stored queue the owner must read off the loop (`store.load_deliveries`
        in a thread), then hand to `session_loaded`; None when there is none (or it was handed)."""
        if self._loading is None or self._load_handed:
            return None
        self._load_handed = True
        return self._loading[4]

    def take_session_claim(self) -> tuple[str, str | None, bool] | None:
        """(client id, username, clean start) the owner must claim in the cluster
        (`fabric.claim_session`), then hand the answer to `session_claimed`; None when there is none."""
        if self._claiming is None or self._claim_handed:
            return None
        self._claim_handed = True
        connect, terms, username, _ = self._claiming
        return terms.client_id, username, connect.clean_start

    def session_claimed(self, claim: SessionClaim | None) -> None:
        """The cluster's answer (None: the claim failed): the CONNECT goes on, or is refused."""
        claiming, self._claiming = self._claiming, None
        if claiming is None or self.conn.closing:
            return
        self._claimed = True
        if claim is None:
            self.refuse(ReasonCode.SERVER_UNAVAILABLE)
        elif claim.refused:
            log.warning("connect refused peer=%s client_id=%s username=%s (the session is user %r's, "
                        "held on another node)", self.conn.peer, claiming[1].client_id, claiming[2], claim.owner)
            self.refuse(ReasonCode.NOT_AUTHORIZED)
        else:
            self.accept(*claiming)

    def session_loaded(self, stored: Any) -> None:
        """The stored queue, read (None if the read failed): the CONNECT goes on."""
        loading, self._loading = self._loading, None
        if loading is None:
            return
        connect, terms, username, auth_props, session = loading
        finish_load(session, stored)
        if self.conn.closing:
            return
        if stored is None:
            self.refuse(ReasonCode.SERVER_UNAVAILABLE)
            return
        self.accept(connect, terms, username, auth_props)

    def verified(self, ok: Answer) -> None:
        """The owner's answer for the credentials `take_verification` gave it."""
        credentials, self._checking = self._checking, None
        if credentials is None or self.conn.closing:
            return
        if self._reauthenticating:
            self._reauthenticated(ok)
            return
        self._decided(ok, credentials.username)

    def handle_timeout(self, now: float) -> None:
        """`deadline` has come: send the held refusal, or check the held login."""
        if self.deadline is None or now < self.deadline:
            return
        self.deadline = None
        if self._refusal is not None:
            self.refuse(self._refusal)
        elif self._pending is not None:
            self._attempt()

    def _decided(self, ok: Answer, username: str | None) -> None:
        conn = self.conn
        assert self._pending is not None
        connect, terms = self._pending
        if ok:
            self._pending = None
            self.grant = ok if isinstance(ok, Grant) else None
            props = Properties(authentication_method=self.method) if self.method is not None else NO_PROPERTIES
            self.accept(connect, terms, login_name(ok, username), props)
            return
        log.warning("login refused peer=%s client_id=%s username=%s", conn.peer, terms.client_id, connect.username)
        if self.use_transport_identity:
            reason = ReasonCode.BAD_USER_NAME_OR_PASSWORD  # no usable certificate identity (as Mosquitto)
        else:
            # As mosquitto: no credentials at all is "not authorized", wrong ones "bad user name or password".
            reason = ReasonCode.NOT_AUTHORIZED if connect.username is None else ReasonCode.BAD_USER_NAME_OR_PASSWORD
        self._refuse_after_backoff(reason)

    def _refuse_after_backoff(self, reason: ReasonCode) -> None:
        """Refuse now, or at the deadline the login backoff sets for this address and user name."""
        conn = self.conn
        backoff = conn.settings.login_backoff
        username = self._pending[0].username if self._pending is not None else None
        delay = 0.0 if backoff is None else backoff.failed(conn.peer, conn.clock(), username)
        if delay <= 0:
            self.refuse(reason)
            return
        conn.state, self._refusal, self.deadline = State.VERIFYING, reason, conn.clock() + delay

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
        if self._takes_token(method):
            self._reauthenticate_with_token(packet.properties.authentication_data)
            return
        self._exchange = self.conn.settings.auth_methods[method]()
        self._answer(self._exchange.start(packet.properties.authentication_data))

    def _reauthenticate_with_token(self, data: bytes | None) -> None:
        """A fresh access token for a connected client: checked like a password (maybe off the loop)."""
        conn = self.conn
        bearer = bearer_credentials(data)
        authenticator = conn.settings.authenticator
        if bearer is None or authenticator is None:
            self._reauthenticated(False)
            return
        credentials = Credentials("mqtt", conn.client_id or "", conn.username, bearer[1], conn.peer)
        answer = quick_answer(authenticator, credentials)
        if answer is None:
            self._verification, self._reauthenticating = credentials, True  # the owner checks it off the loop
            return
        self._reauthenticated(answer)

    def _reauthenticated(self, ok: Answer) -> None:
        """A renewed token keeps the connection to its new expiry (and rules); anything else ends it (0x87)."""
        conn = self.conn
        self._reauthenticating = False
        if not isinstance(ok, Grant) or ok.username != conn.username:
            log.warning("re-authentication refused peer=%s client_id=%s username=%s", conn.peer, conn.client_id,
                        conn.username)
            conn.disconnect(ReasonCode.NOT_AUTHORIZED, reason_string="re-authentication failed")
            return
        self.grant = ok
        self._apply_grant()
        log.info("re-authenticated peer=%s client_id=%s username=%s", conn.peer, conn.client_id, conn.username)
        conn.send_packet(Auth(ReasonCode.SUCCESS, Properties(authentication_method=self.method)))

    def _apply_grant(self) -> None:
        """The access token's expiry (on the connection's clock) and its ACL rules, if it has any."""
        conn, grant = self.conn, self.grant
        if grant is None:
            return
        if grant.expires_at is not None:
            conn.auth_expires = conn.clock() + (grant.expires_at - time.time())
        if grant.rules is not None and conn.session is not None:
            access = access_for(conn.broker.authorizer, conn.client_id or "", conn.username, grant.rules)
            conn.session.access = conn.access = access
            if conn.principal is not None:
                conn.principal.access = access

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
            log.warning("enhanced auth failed peer=%s method=%s", conn.peer, self.method)
            self._refuse_after_backoff(ReasonCode.NOT_AUTHORIZED)
        else:
            conn.disconnect(ReasonCode.NOT_AUTHORIZED, reason_string="re-authentication failed")

    def accept(self, connect: Connect, terms: ConnectTerms, username: str | None, auth_props: Properties) -> None:
        conn = self.conn
        conn.client_id, conn.username = terms.client_id, username
        grant = self.grant
        access = access_for(conn.broker.authorizer, terms.client_id, username, grant.rules if grant else None)
        if access is not None and not access.may_use_client_id(terms.client_id):
            log.warning("connect refused peer=%s client_id=%s username=%s (no clientid rule of the acl names it)",
                        conn.peer, terms.client_id, username)
            self.refuse(ReasonCode.NOT_AUTHORIZED)
            return
        if conn.broker.router.fabric.claims_sessions and not self._claimed:
            self._claiming = (connect, terms, username, auth_props)  # the owner claims the client id first
            self._claim_handed = False
            conn.state = State.VERIFYING
            conn.extend_connect_deadline(conn.clock() + CLAIM_PATIENCE)  # JetStream may be electing a leader
            return
        registry = conn.broker.mqtt_sessions
        try:
            registry.check_owner(terms.client_id, username)
            stored = registry.needs_load(terms.client_id, connect.clean_start)
            if stored is not None:  # its queue is on disk: the owner reads it off the event loop first
                begin_load(stored)
                self._loading = (connect, terms, username, auth_props, stored)
                self._load_handed = False
                conn.state = State.VERIFYING
                return
            session, present = registry.open(
                terms.client_id, clean_start=connect.clean_start, expiry_interval=terms.session_expiry,
                username=username)
        except SessionOwned as exc:  # what one user owns, no other may take (0x87; 3.1.1: 5)
            log.warning("connect refused peer=%s detail=%s (sessions belong to the user who created them)",
                        conn.peer, exc)
            self.refuse(ReasonCode.NOT_AUTHORIZED)
            return
        conn.session = session
        conn.access = session.access  # the ACL view publishes and subscriptions are checked with
        conn.principal = Principal("mqtt", terms.client_id, username, access=session.access, address=conn.peer)
        conn.origin = conn.principal.origin
        self._apply_grant()  # an access token's rules and expiry
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
        conn.state = _CONNECTED
        conn.connected_at = time.time()
        conn.clean_start = connect.clean_start
        connack_props = terms.connack_properties
        if auth_props.authentication_method is not None:
            connack_props = dataclasses.replace(
                connack_props,
                authentication_method=auth_props.authentication_method,
                authentication_data=auth_props.authentication_data,
            )
        conn.send_packet(_tuple_new(ConnAck, (present, _SUCCESS, connack_props)))
        if log.isEnabledFor(INFO):  # (one call, not two, and no arguments made, when it is not: most runs)
            log.info(
                "client connected listener=%s peer=%s client_id=%s username=%s mqtt_version=%s clean_start=%s "
                "session_present=%s", conn.listener, conn.peer, conn.client_id, username,
                MQTT_VERSIONS.get(conn.level, str(conn.level)), connect.clean_start, present,
            )
        session.attach(conn, resume=present)

    def refuse(self, reason: ReasonCode) -> None:
        """Answer a CONNECT with a refusal CONNACK and close [MQTT-3.2.2-7]."""
        conn = self.conn
        log.info("connect refused peer=%s reason=%s", conn.peer, reason.name)
        conn.refused = reason
        conn.note_error(f"connect refused: {reason.name}",
                        conn.client_id or (self._pending[1].client_id if self._pending is not None else None))
        conn.send_packet(ConnAck(False, reason))
        conn.close(publish_will=False)

    def refuse_version(self, exc: UnsupportedProtocolVersion) -> None:
        conn = self.conn
        log.info("unsupported protocol peer=%s protocol_name=%r protocol_level=%s",
                 conn.peer, exc.protocol_name, exc.protocol_level)
        conn.level = 5 if exc.protocol_level == 5 else 4
        conn.refused = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION
        conn.send_packet(ConnAck(False, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION))
        conn.close(publish_will=False)
