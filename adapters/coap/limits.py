"""The gateway's shared limits applied to CoAP, where there are no connections: no I/O, time passed in.

- New client identities: CoAP has no connection to admit, so each *new*
  identity (``identity_key``: the clientid with the username, else the source
  address and port) takes one token of the shared per-address `RateLimiter`
  (the one MQTT, WS and AMQP connections take theirs from). An identity seen
  within `remember` seconds is not new. Refused: 4.29 Too Many Requests.
- Login backoff: before a password is checked, `LoginBackoff.hold(address)`;
  a held login is answered at once with 4.29 Too Many Requests and Max-Age =
  the seconds left (RFC 8516: a CoAP client waits that long before retrying),
  without checking the password. CoAP has no connection a refusal could be
  held on, and a UDP flood must not pile up waiting requests: answering now
  keeps nothing per attempt. Each failed login is `failed(address)` (its own
  answer is the 4.01). Requests naming an open connection by token, and
  credentials accepted recently (`access.AuthCache`), are not logins.

Times are the event loop's `loop.time()`, the clock of the shared limiters.
Counters are plain integers for `CoAPListener.metrics()`.
"""

from __future__ import annotations

import math
from typing import Hashable

from core.limits import RateLimiter, address_key
from core.login_backoff import LoginBackoff

from adapters.coap.errors import TooManyRequests

__all__ = ["CoAPLimits", "retry_after"]


def retry_after(seconds: float) -> int:
    """Whole seconds for Max-Age, at least 1."""
    return max(1, math.ceil(seconds))


class CoAPLimits:
    """Per-address admission of new identities and the login backoff of one CoAP listener."""

    def __init__(self, rate_limiter: RateLimiter | None = None, login_backoff: LoginBackoff | None = None,
                 remember: float = 600.0, max_identities: int = 10_000) -> None:
        self.rate_limiter = rate_limiter
        self.login_backoff = login_backoff
        self.remember = remember
        self.max_identities = max_identities
        self._seen: dict[Hashable, float] = {}  # identity -> last request (insertion order: oldest first)
        self.refused_rate = 0  # requests of new identities refused by the rate limiter
        self.refused_login_backoff = 0  # logins answered 4.29 while their address was held
        self.login_failures = 0  # logins refused with 4.01

    def admit(self, identity: Hashable, address: str, now: float) -> None:
        """Let a request from `identity` in, or raise TooManyRequests when it is new and its address is over rate."""
        limiter = self.rate_limiter
        if limiter is None:
            return
        last = self._seen.pop(identity, None)
        if last is None or now - last > self.remember:
            if not limiter.allow(address_key(address), now):
                self.refused_rate += 1
                raise TooManyRequests("too many new clients from this address", retry_after(1.0 / limiter.rate))
            if len(self._seen) >= self.max_identities:
                del self._seen[next(iter(self._seen))]
        self._seen[identity] = now

    def check_login(self, address: str, now: float, username: str | None = None) -> None:
        """Before a password check: raise TooManyRequests while `address` (or `username`) is held by
        the login backoff."""
        if self.login_backoff is None:
            return
        hold = self.login_backoff.hold(address, now, username)
        if hold > 0:
            self.refused_login_backoff += 1
            raise TooManyRequests("too many failed logins from this address or for this user", retry_after(hold))

    def login_failed(self, address: str, now: float, username: str | None = None) -> None:
        """A login from `address` (as `username`) was refused (4.01): later ones may be held."""
        self.login_failures += 1
        if self.login_backoff is not None:
            self.login_backoff.failed(address, now, username)
