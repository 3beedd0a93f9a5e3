"""Limits that protect the gateway, shared by every protocol: no I/O, time passed in.

- `ConnectionGate`: admission of new connections to one listener, at most
  `max_connections` open at once and, through a shared `RateLimiter`, at
  most `rate` new connections per second per source address (token bucket).
  A refused connection is closed at once, before any protocol byte (as
  Mosquitto does for `max_connections`); each refusal is counted.
- `LoginBackoff`: per source address, the first `free_failures` failed
  logins are answered at once; after that each failure's refusal is held
  back `base_delay * 2**k` seconds (capped at `max_delay`), and so is every
  later login attempt from that address (correct or not) until then. Failures
  are forgotten after `forget_after` quiet seconds; a success does not reset
  them (an attacker with one valid account could otherwise keep resetting).
  A caller that passes the user name counts it too, the same way: guessing
  one account's password from many addresses is held back as well.

Addresses are hosts without the port (`address_key`). Tables are bounded: the
oldest entries go first.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass


def address_key(peer: str) -> str:
    """What limits count by: the host of "host:port", "[v6]:port" or a bare address; an IPv6
    address by its /64 (one subscriber line or host gets a whole /64, so counting single
    addresses would let it rotate through 2**64 of them), an IPv4-mapped IPv6 address as IPv4."""
    if peer.startswith("["):
        host = peer[1:].partition("]")[0]
    elif peer.count(":") == 1:
        return peer.partition(":")[0]
    else:
        host = peer  # a bare IPv4/IPv6 address (X-Forwarded-For) or an empty/unknown peer
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class RateLimiter:
    """A token bucket per key: `rate` tokens per second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float | None = None, max_keys: int = 10_000) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, rate) if burst is None else burst
        self.max_keys = max_keys
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill time]

    def allow(self, key: str, now: float) -> bool:
        """Take one token for `key` if there is one."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        return False

    def _prune(self, now: float) -> None:
        """Drop buckets that have refilled (they hold no memory of anything); else the oldest half."""
        full = [k for k, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]


class Refusal(enum.Enum):
    """Why a new connection was turned away."""

    MAX_CONNECTIONS = "max_connections"
    RATE = "max_connection_rate"


class ConnectionGate:
    """Admission control of one listener; counters are plain integers for metrics."""

    def __init__(self, max_connections: int = 0, rate_limiter: RateLimiter | None = None) -> None:
        self.max_connections = max_connections  # 0: unlimited
        self.rate_limiter = rate_limiter  # may be shared by several listeners
        self.open = 0
        self.accepted = 0
        self.refused_max_connections = 0
        self.refused_rate = 0

    def admit(self, address: str, now: float) -> Refusal | None:
        """None: admitted (call `release` when it closes); else why it must be closed now."""
        if self.max_connections and self.open >= self.max_connections:
            self.refused_max_connections += 1
            return Refusal.MAX_CONNECTIONS
        if self.rate_limiter is not None and not self.rate_limiter.allow(address_key(address), now):
            self.refused_rate += 1
            return Refusal.RATE
        self.open += 1
        self.accepted += 1
        return None

    def release(self) -> None:
        self.open -= 1


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    not_before: float


class LoginBackoff:
    """Exponential, capped delay of logins from an address that keeps failing."""

    def __init__(
        self,
        free_failures: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        forget_after: float = 600.0,
        max_addresses: int = 10_000,
    ) -> None:
        self.free_failures = free_failures
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_addresses = max_addresses
        self._table: dict[str, _Failures] = {}
        self.failures = 0  # failed logins seen
        self.delayed = 0  # refusals held back

    def hold(self, peer: str, now: float, username: str | None = None) -> float:
        """Seconds a login from `peer` (as `username`) must wait before it is even checked (0: check now)."""
        if not self._table:  # no failure on record: every login is checked now (the usual case)
            return 0.0
        holds = [0.0]
        for key in _keys(peer, username):
            entry = self._entry(key, now)
            if entry is not None:
                holds.append(entry.not_before - now)
        return max(holds)

    def failed(self, peer: str, now: float, username: str | None = None) -> float:
        """Record a failed login from `peer` (as `username`); returns the seconds to hold back its refusal."""
        self.failures += 1
        delay = max(self._failed(key, now) for key in _keys(peer, username))
        if delay > 0:
            self.delayed += 1
        return delay

    def _failed(self, key: str, now: float) -> float:
        entry = self._entry(key, now)
        if entry is None:
            if len(self._table) >= self.max_addresses:
                del self._table[next(iter(self._table))]  # the oldest
            entry = self._table[key] = _Failures(0, now, now)
        entry.count += 1
        entry.last = now
        excess = entry.count - self.free_failures
        if excess <= 0:
            return 0.0
        delay = min(self.base_delay * 2 ** min(excess - 1, 62), self.max_delay)
        entry.not_before = max(entry.not_before, now + delay)
        return entry.not_before - now

    def _entry(self, key: str, now: float) -> _Failures | None:
        entry = self._table.get(key)
        if entry is not None and now - entry.last > self.forget_after and now >= entry.not_before:
            del self._table[key]
            return None
        return entry


def _keys(peer: str, username: str | None) -> tuple[str, ...]:
    """The table keys of a login: its address and, when given, its user name (a NUL-prefixed key,
    which no address can be)."""
    return (address_key(peer),) if not username else (address_key(peer), "\0user:" + username)
