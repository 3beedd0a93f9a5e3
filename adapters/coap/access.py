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
that time). Refusals are never cached.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Hashable

from core.auth import Authenticator, Credentials
from core.message import Origin

from adapters.coap.connections import ConnectionRegistry
from adapters.coap.errors import Unauthorized
from adapters.coap.observers import identity_key
from adapters.coap.query import Query

__all__ = ["AuthCache", "Identity", "authenticate"]


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


def authenticate(
    query: Query,
    address: str,
    authenticator: Authenticator | None,
    connections: ConnectionRegistry,
    now: float,
    cache: AuthCache | None = None,
) -> Identity:
    """The identity of a request's sender; raises Unauthorized."""
    if query.token is not None:
        connection = connections.check(query.client_id, query.token, now)
        if connection is None:
            raise Unauthorized("unknown or expired connection token for this clientid")
        return Identity(connection.client_id, connection.username, address)
    if authenticator is not None and not (cache is not None and cache.accepted(query, now)):
        credentials = Credentials("coap", query.client_id or "", query.username, query.password, address)
        if not authenticator.authenticate(credentials):
            raise Unauthorized("bad username or password")
        if cache is not None:
            cache.remember(query, now)
    return Identity(query.client_id, query.username, address)
