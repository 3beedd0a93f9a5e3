"""The connection handshake: protocol header, start/start-ok (login), tune/tune-ok, open.

A mixin of `AMQPConnection` (connection.py), kept apart so each file holds one
concern; the states it moves through are listed in connection.py's header.
"""

from __future__ import annotations

import enum
import logging
import time
from typing import TYPE_CHECKING, Any

from pamqp import commands as c

from core.acl_tokens import access_for
from core.auth import Answer, Credentials, Grant, login_name, quick_answer
from core.message import Origin
from core.principal import Principal

from adapters.amqp import errors
from adapters.amqp.errors import AMQPError
from adapters.amqp.frames import FRAME_MIN_SIZE, PROTOCOL_HEADER
from adapters.amqp.sasl import MECHANISMS, credentials
from adapters.amqp.settings import PRODUCT, VERSION

log = logging.getLogger("rosettamq.amqp")

SERVER_CAPABILITIES = {
    "publisher_confirms": True, "exchange_exchange_bindings": True, "basic.nack": True,
    "consumer_cancel_notify": True, "connection.blocked": True, "consumer_priorities": True,
    "authentication_failure_close": True, "per_consumer_qos": True, "direct_reply_to": True,
}


class State(enum.Enum):
    AWAIT_HEADER = "await-header"
    AWAIT_START_OK = "await-start-ok"
    VERIFYING = "verifying"
    AWAIT_TUNE_OK = "await-tune-ok"
    AWAIT_OPEN = "await-open"
    OPEN = "open"
    CLOSING = "closing"  # we sent connection.close: waiting for close-ok
    DRAINING = "draining"  # we sent close-ok: waiting for the client to close the socket
    CLOSED = "closed"



class Handshake:
    """Connection-class methods of the handshake (mixed into AMQPConnection).

    Login backoff (`settings.login_backoff`, shared with the other listeners): a login from an
    address that failed too often waits in VERIFYING until `hold_until` before it is checked, and
    a failed one past the free failures holds its refusal (403) until `hold_until`.
    """

    hold_until: float | None = None  # a login backoff deadline (the owner's clock), while VERIFYING
    _held_login: Credentials | None = None  # checked at `hold_until`; None: refused then
    grant: Grant | None = None  # an access token's grant ([auth.jwt]), None for a password login
    auth_expires: float | None = None  # when that token expires (the owner's clock): the connection ends

    if TYPE_CHECKING:
        state: State
        pending_login: Credentials | None
        _mechanism: str
        def __getattr__(self, name: str) -> Any: ...

    # -- handshake -----------------------------------------------------------------------------

    def _protocol_header(self) -> bool:
        header = self.reader.take(8)
        if header is None:
            buffered = self.reader.peek()
            if PROTOCOL_HEADER.startswith(buffered[:4]):
                return False  # so far it could be our header: wait for all 8 octets
            header = buffered
        if header != PROTOCOL_HEADER:
            log.info("wrong protocol header peer=%s header=%r", self.peer, header[:8])
            self.send_bytes(PROTOCOL_HEADER)  # tell the client what we speak, then close
            self._finish()
            return False
        self.state = State.AWAIT_START_OK
        self.send_method(0, c.Connection.Start(
            server_properties={"product": PRODUCT, "version": VERSION, "platform": "Python",
                               "capabilities": SERVER_CAPABILITIES, "cluster_name": "rosettamq"},
            mechanisms=MECHANISMS, locales="en_US"))
        return True

    def _start_ok(self, m: c.Connection.StartOk) -> None:
        self.client_properties = dict(m.client_properties or {})
        username, password = credentials(m.mechanism, m.response)
        client_id = str(self.client_properties.get("connection_name") or self.peer)
        login = Credentials("amqp", client_id, username, password, self.peer)
        self._mechanism = m.mechanism
        backoff = self.settings.login_backoff
        wait = 0.0 if backoff is None else backoff.hold(self.peer, self.clock(), username)
        if wait > 0:  # this address failed too often: not even checked before the deadline
            self._hold(login, wait)
            return
        self._check_login(login)

    def _check_login(self, login: Credentials) -> None:
        authenticator = self.settings.authenticator
        answer = True if authenticator is None else quick_answer(authenticator, login)
        if answer is None:  # a password hash to check: off the event loop, input held meanwhile
            self.state = State.VERIFYING
            self.pending_login = login
            return
        self._logged_in(login, answer)

    def login_decided(self, accepted: Answer) -> None:
        """The owner's answer to `pending_login`; held input is processed after it."""
        login = self.pending_login
        if self.closing or self.state is not State.VERIFYING or login is None:
            return
        self.pending_login = None
        try:
            self._logged_in(login, accepted)
        except AMQPError as exc:
            self._close_connection(exc, 10, 11)
        self.receive_data(b"")
        if self.on_output is not None:
            self.on_output()

    def _logged_in(self, login: Credentials, accepted: Answer) -> None:
        if not accepted:
            log.warning("login refused peer=%s username=%s", self.peer, login.username)
            backoff = self.settings.login_backoff
            delay = 0.0 if backoff is None else backoff.failed(self.peer, self.clock(), login.username)
            if delay > 0:
                self._hold(None, delay)  # the refusal waits
                return
            raise errors.access_refused(f"Login was refused using authentication mechanism {self._mechanism}")
        # An access token's grant ([auth.jwt]) names the user; `grant.expires_at` says when it expires.
        self._granted(accepted if isinstance(accepted, Grant) else None)
        self.username = login_name(accepted, login.username)
        self.origin = Origin("amqp", login.client_id, self.username)
        self.state = State.AWAIT_TUNE_OK
        self.send_method(0, c.Connection.Tune(channel_max=self.settings.channel_max,
                                              frame_max=self.settings.frame_max,
                                              heartbeat=self.settings.heartbeat))

    def _granted(self, grant: Grant | None) -> None:
        self.grant = grant
        expires = None if grant is None else grant.expires_at
        self.auth_expires = None if expires is None else self.clock() + (expires - time.time())

    def _update_secret(self, m: c.Connection.UpdateSecret) -> None:
        """RabbitMQ's connection.update-secret: a fresh access token for the same user keeps the
        connection open past the old one's expiry; anything else closes it with 403."""
        secret = m.new_secret if isinstance(m.new_secret, bytes) else str(m.new_secret).encode()
        authenticator = self.settings.authenticator
        login = Credentials("amqp", self.origin.client_id, self.username, secret, self.peer)
        answer = None if authenticator is None else quick_answer(authenticator, login)
        if not isinstance(answer, Grant) or answer.username != self.username:
            why = ("its key is not at hand" if answer is None and authenticator is not None
                   else "it is not a valid access token of this connection's user")
            log.warning("update-secret refused peer=%s username=%s: %s", self.peer, self.username, why)
            raise errors.access_refused(f"connection.update-secret refused: {why}")
        self._granted(answer)
        log.info("update-secret accepted peer=%s username=%s reason=%s", self.peer, self.username, m.reason)
        self.send_method(0, c.Connection.UpdateSecretOk())

    def _hold(self, login: Credentials | None, seconds: float) -> None:
        self.state = State.VERIFYING
        self._held_login = login
        self.hold_until = self.clock() + seconds
        self._deadline = max(self._deadline, self.hold_until + self.settings.handshake_timeout)

    def _hold_ended(self) -> None:
        """`hold_until` passed: check the held login, or send the held refusal; then the held input."""
        login, self._held_login, self.hold_until = self._held_login, None, None
        try:
            if login is None:
                raise errors.access_refused(f"Login was refused using authentication mechanism {self._mechanism}")
            self._check_login(login)
        except AMQPError as exc:
            self._close_connection(exc, 10, 11)
        self.receive_data(b"")

    def _tune_ok(self, m: c.Connection.TuneOk) -> None:
        ours = self.settings
        if m.frame_max and (m.frame_max < FRAME_MIN_SIZE or m.frame_max > ours.frame_max):
            raise errors.not_allowed(f"frame_max={m.frame_max} outside [{FRAME_MIN_SIZE}, {ours.frame_max}]")
        if m.channel_max > ours.channel_max:
            raise errors.not_allowed(f"channel_max={m.channel_max} > {ours.channel_max}")
        self.frame_max = m.frame_max or ours.frame_max
        self.reader.frame_max = self.frame_max
        self.channel_max = m.channel_max or ours.channel_max
        self.heartbeat = m.heartbeat
        self.state = State.AWAIT_OPEN

    def _open(self, m: c.Connection.Open) -> None:
        vhost = self.broker.vhosts.get(m.virtual_host)
        if vhost is None:
            raise errors.not_allowed(f"vhost {m.virtual_host} not found")
        self.vhost = vhost
        # The ACL file: topics on the shared amq.topic, queue and exchange rules in every vhost.
        grant: Grant | None = getattr(self, "grant", None)
        self.access = access_for(self.broker.core.authorizer, self.origin.client_id, self.username,
                                 grant.rules if grant is not None else None)
        self.principal = Principal("amqp", self.origin.client_id, self.username, access=self.access,
                                   address=str(self.peer))
        self.state = State.OPEN
        self.broker.alarm_listeners.add(self._alarm)
        if self.broker.blocked:
            self._alarm(True)
        self.send_method(0, c.Connection.OpenOk())
        log.info("client connected listener=%s peer=%s username=%s vhost=%s heartbeat=%d frame_max=%d",
                 self.listener, self.peer, self.username, vhost.name, self.heartbeat, self.frame_max)
