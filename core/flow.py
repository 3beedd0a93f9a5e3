"""Pausing a producer briefly while what it feeds catches up.

Two things hold a producer (the door's `PublishResult` says which): the gateway as a whole
past its memory budget (core/budget.py), and subscribers whose outbox passed its high-water
mark while their clients were draining it (core/sessions.py: a burst should reach a reading
client whole, not overflow its outbox). A subscriber that stopped reading holds no one: its
outbox's bound and overflow policy deal with it. The producing adapter stops reading the
producer (TCP backpressure) until what it waits on drains, or until a short deadline, so a
producer never waits long, nor for ever on a queue only its own reading could empty.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Protocol


class Drainable(Protocol):
    """A congested receiver a producer can wait on."""

    @property
    def congested(self) -> bool: ...

    def when_drained(self, callback: Callable[[], None]) -> None: ...


_NONE_WAITING: frozenset = frozenset()  # shared: empty frozensets are not singletons since 3.10


class ProducerGate:
    """Holds one producer's input while receivers it fed are congested, for `max_wait` at most.

    No I/O: the owner stops reading while `blocked`, adds `until` to its
    deadlines, calls `expire(now)` when that time comes, and is told through
    `on_open` when it may read again (possibly from inside another connection's
    processing: schedule the actual resume, don't run it inline).
    """

    __slots__ = ("max_wait", "blocked", "until", "closes", "timeouts", "on_open", "_waiting")

    def __init__(self, max_wait: float = 1.0) -> None:
        self.max_wait = max_wait
        self.blocked = False
        self.until: float | None = None
        self.closes = 0  # times this producer was paused
        self.timeouts = 0  # times a pause ended at its deadline rather than by draining
        self.on_open: Callable[[], None] | None = None
        self._waiting: set[Drainable] | frozenset[Drainable] = _NONE_WAITING  # (an empty set is 216 bytes)

    def close_for(self, receivers: list[Drainable], now: float, own: object = None) -> bool:
        """Block until each congested receiver (other than `own`) drains; True if blocked."""
        waiting = {r for r in receivers if r is not own and r.congested}
        if not waiting:
            return False
        self._waiting = waiting
        self.blocked = True
        self.closes += 1
        self.until = now + self.max_wait
        for receiver in waiting:
            receiver.when_drained(partial(self._drained, receiver))
        return self.blocked

    def expire(self, now: float) -> None:
        """Give up waiting once `until` has passed (breaks producer/consumer cycles)."""
        if self.blocked and self.until is not None and now >= self.until:
            self.timeouts += 1
            self._open()

    def _drained(self, receiver: Drainable) -> None:
        waiting = self._waiting
        if receiver in waiting:
            waiting.discard(receiver)  # type: ignore[union-attr]  # (a set while it holds any)
            if not waiting and self.blocked:
                self._open()

    def _open(self) -> None:
        self.blocked = False
        self.until = None
        self._waiting = _NONE_WAITING
        if self.on_open is not None:
            self.on_open()
