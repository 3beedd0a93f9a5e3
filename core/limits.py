"""Limits that protect the gateway, shared by every protocol: no I/O, time passed in.

- `ConnectionGate`: admission of new connections to one listener, at most
  `max_connections` open at once and, through a shared `RateLimiter`, at
  most `rate` new connections per second per source address (token bucket).
  A refused connection is closed at once, before any protocol byte (as
  Mosquitto does for `max_connections`); each refusal is counted.
- `LoginBackoff` (core/login_backoff.py): failed logins per source address
  and user name slow down later ones.

Compiled with the hot path (core/compiled.py): every accepted connection is admitted and
released here. `LoginBackoff` stays interpreted, in a module of its own.

Addresses are hosts without the port (`address_key`). Tables are bounded: the
oldest entries go first.
"""

from __future__ import annotations

import enum
import ipaddress


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


class AdmittedGate(ConnectionGate):
    """The gate a protocol sees for a connection a TLS listener admitted already, before its
    handshake (adapters/tls/server.py): admits without counting again; `release` gives the place
    back to the real gate."""

    def __init__(self, gate: ConnectionGate) -> None:
        super().__init__()
        self._gate = gate

    def admit(self, address: str, now: float) -> Refusal | None:
        return None

    def release(self) -> None:
        self._gate.release()
