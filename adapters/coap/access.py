"""Who sent a CoAP request, and whether it may: credentials from the query, checked in one place.

- ``clientid`` + ``token`` of an open connection (POST /mqtt/connection):
  accepted without a password; the username is the connection's.
- otherwise, when the gateway has an authenticator, ``username``/``password``
  (and ``clientid``) go to it as `Credentials("coap", ...)`; a refusal is 4.01.
- no authenticator: anonymous access is allowed, as for every other protocol.
A token that names no live connection is a 4.01 whatever else the request carries.

Password checks cost PBKDF2 work (tens of milliseconds), and a sensor may send
its password with every request: an accepted (clientid, username, password)
is remembered for `AuthCache.ttl` seconds (a password change applies within
that time). Refusals are never cached. `begin_login` decides what is cheap
(`core.auth.quick_answer`) and otherwise hands back the `Credentials` the I/O
layer checks off the event loop, then passes to `finish_login`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Hashable

from core.auth import Authenticator, Credentials, quick_answer
from core.message import Origin

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
        self._accepted: dict[tuple[str, str | None, bytes], float] = {}

    @staticmethod
    def _key(query: Query) -> tuple[str, str | None, bytes]:
        return (query.client_id or "", query.username, hashlib.sha256(query.password or b"").digest())

    def accepted(self, query: Query, now: float) -> bool:
        until = self._accepted.get(self._key(query))
        return until is not None and until > now

    def remember(self, query: Query, now: float) -> None:
        if len(self._accepted) >= self.size:
            self._accepted.clear()
        self._accepted[self._key(query)] = now + self.ttl


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
        return Identity(connection.client_id, connection.username, address)
    identity = Identity(query.client_id, query.username, address)
    if authenticator is None or (cache is not None and cache.accepted(query, now)):
        return identity
    credentials = Credentials("coap", query.client_id or "", query.username, query.password, address)
    answer = quick_answer(authenticator, credentials)
    if answer is None:
        return credentials
    return finish_login(query, address, answer, now, cache)


def finish_login(query: Query, address: str, accepted: bool, now: float, cache: AuthCache | None = None) -> Identity:
    """The identity once the authenticator has answered; raises Unauthorized for a refusal."""
    if not accepted:
        raise Unauthorized("bad username or password")
    if cache is not None:
        cache.remember(query, now)
    return Identity(query.client_id, query.username, address)


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
