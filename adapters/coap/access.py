"""Who sent a CoAP request, and whether it may: credentials from the query, checked in one place.

- ``clientid`` + ``token`` of an open connection (POST /mqtt/connection):
  accepted without a password; the username is the connection's.
- otherwise, when the gateway has an authenticator, ``username``/``password``
  (and ``clientid``) go to it as `Credentials("coap", ...)`; a refusal is 4.01.
- no authenticator: anonymous access is allowed, as for every other protocol.
A token that names no live connection is a 4.01 whatever else the request carries.
An OAuth 2.0 access token as ``p=`` (`[auth.jwt]`) is a password the authenticator answers
with a `Grant`: the identity takes its username and rules, and a connection opened with it
ends when the token expires (a request's ``p=`` is checked, or remembered, only until then).

Password checks cost PBKDF2 work (tens of milliseconds), and a sensor may send
its password with every request: an accepted (clientid, username, password)
is remembered for `AuthCache.ttl` seconds (a password change applies within
that time). Refusals are never cached. `begin_login` decides what is cheap
(`core.auth.quick_answer`) and otherwise hands back the `Credentials` the I/O
layer checks off the event loop, then passes to `finish_login`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Hashable

from core.acl_tokens import access_for
from core.auth import Answer, Authenticator, Credentials, Grant, login_name, quick_answer
from core.message import Origin
from core.principal import Principal

from adapters.coap.connections import ConnectionRegistry
from adapters.coap.errors import Unauthorized
from adapters.coap.observers import identity_key
from adapters.coap.query import Query

__all__ = ["AuthCache", "Identity", "authenticate", "begin_login", "finish_login"]


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated requester."""

    client_id: str | None
    username: str | None
    address: str
    grant: Grant | None = field(default=None, compare=False)  # an access token's

    def until(self, now: float) -> float | None:
        """When its access token expires, on the clock of `now` (None: no expiry)."""
        if self.grant is None or self.grant.expires_at is None:
            return None
        return now + (self.grant.expires_at - time.time())

    def principal(self, broker: Any) -> Principal:
        """Who acts for this identity at the door: its ACL view is its token's rules over the ACL file's."""
        principal: Principal = broker.principal("coap", self.client_id or "", self.username, self.address)
        if self.grant is not None and self.grant.rules is not None:
            principal.access = access_for(broker.authorizer, self.client_id or "", self.username, self.grant.rules)
        return principal

    @property
    def key(self) -> Hashable:
        return identity_key(self.client_id, self.username, self.address)

    @property
    def origin(self) -> Origin:
        return Origin("coap", self.client_id or "", self.username)


class AuthCache:
    """Recently accepted credentials, so a password is not re-hashed on every request."""

    def __init__(self, ttl: float = 30.0, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._accepted: dict[tuple[str, str | None, bytes], tuple[float, Identity]] = {}

    @staticmethod
    def _key(query: Query) -> tuple[str, str | None, bytes]:
        return (query.client_id or "", query.username, hashlib.sha256(query.password or b"").digest())

    def accepted(self, query: Query, now: float) -> Identity | None:
        """The identity these credentials logged in as, while remembered."""
        entry = self._accepted.get(self._key(query))
        return entry[1] if entry is not None and entry[0] > now else None

    def remember(self, query: Query, now: float, identity: Identity) -> None:
        """Remember for `ttl` seconds, never past an access token's expiry."""
        if len(self._accepted) >= self.size:
            self._accepted.clear()
        token_until = identity.until(now)
        until = now + self.ttl if token_until is None else min(now + self.ttl, token_until)
        self._accepted[self._key(query)] = (until, identity)


def begin_login(
    query: Query,
    address: str,
    authenticator: Authenticator | None,
    connections: ConnectionRegistry,
    now: float,
    cache: AuthCache | None = None,
) -> Identity | Credentials:
    """The sender's identity when it is cheap to decide, else the credentials to check slowly; raises Unauthorized."""
    if query.token is not None:
        connection = connections.check(query.client_id, query.token, now)
        if connection is None:
            raise Unauthorized("unknown or expired connection token for this clientid")
        return Identity(connection.client_id, connection.username, address, connection.grant)
    remembered = cache.accepted(query, now) if cache is not None else None
    if remembered is not None:
        return Identity(query.client_id, remembered.username, address, remembered.grant)
    if authenticator is None:
        return Identity(query.client_id, query.username, address)
    credentials = Credentials("coap", query.client_id or "", query.username, query.password, address)
    answer = quick_answer(authenticator, credentials)
    if answer is None:
        return credentials
    return finish_login(query, address, answer, now, cache)


def finish_login(query: Query, address: str, accepted: Answer, now: float,
                 cache: AuthCache | None = None) -> Identity:
    """The identity once the authenticator has answered; raises Unauthorized for a refusal."""
    if not accepted:
        raise Unauthorized("bad username or password")
    identity = Identity(query.client_id, login_name(accepted, query.username), address,
                        accepted if isinstance(accepted, Grant) else None)
    if cache is not None:
        cache.remember(query, now, identity)
    return identity


def authenticate(
    query: Query,
    address: str,
    authenticator: Authenticator | None,
    connections: ConnectionRegistry,
    now: float,
    cache: AuthCache | None = None,
) -> Identity:
    """`begin_login` and, when needed, the slow check right here (for callers that may block)."""
    step = begin_login(query, address, authenticator, connections, now, cache)
    if isinstance(step, Identity):
        return step
    assert authenticator is not None
    return finish_login(query, address, authenticator.authenticate(step), now, cache)
