"""`LoginBackoff`: per source address, the first `free_failures` failed logins are answered at
once; after that each failure's refusal is held back `base_delay * 2**k` seconds (capped at
`max_delay`), and so is every later login attempt from that address (correct or not) until then.
Failures are forgotten after `forget_after` quiet seconds; a success does not reset them (an
attacker with one valid account could otherwise keep resetting). A caller that passes the user
name counts it too, the same way: guessing one account's password from many addresses is held
back as well.

No I/O, time passed in. Addresses are hosts without the port (`core.limits.address_key`); the
table is bounded, the oldest entries go first.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.limits import address_key


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
