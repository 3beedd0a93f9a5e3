"""The gateway-wide memory budget: bytes held in every subscriber's outbox.

Outboxes (`core.outbox`) add what they hold and release what leaves. One slow
subscriber never slows a publisher: its own outbox bound and policy deal with it.
Only when the whole gateway holds more than `limit` bytes are publishers paused
(through `core.flow.ProducerGate`, which waits on anything `Drainable`), until
usage falls back under the low-water mark. No I/O; `limit` 0 means no budget.
"""

from __future__ import annotations

import logging
from typing import Callable, Final

log = logging.getLogger("rosettamq.core")

LOW_WATER: Final = 0.8  # publishers resume once usage is back under this share of the limit


class MemoryBudget:
    """Bytes queued for subscribers across the gateway, against `[limits] max_memory`."""

    __slots__ = ("limit", "used", "peak", "congestions", "_low", "_over", "_waiters")

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self.congestions = 0  # times the budget was passed (a metric)
        self._low = int(limit * LOW_WATER)
        self._over = False
        self._waiters: list[Callable[[], None]] = []

    def set_limit(self, limit: int) -> None:
        """A new limit (SIGHUP); publishers paused under the old one resume once usage is under the new."""
        self.limit = limit
        self._low = int(limit * LOW_WATER)
        if self._over and (not limit or self.used <= self._low):
            self._resume()

    def add(self, size: int) -> None:
        used = self.used = self.used + size
        if used > self.peak:
            self.peak = used
        if self.limit and not self._over and used >= self.limit:
            self._over = True
            self.congestions += 1
            log.warning("memory budget passed: %d bytes queued for subscribers, limit %d; publishers paused",
                        used, self.limit)

    def release(self, size: int) -> None:
        used = self.used = self.used - size
        if self._over and used <= self._low:
            self._resume()

    def _resume(self) -> None:
        self._over = False
        log.info("memory budget: %d bytes queued, under %d again; publishers resume", self.used, self._low)
        waiters, self._waiters = self._waiters, []
        for callback in waiters:
            callback()

    # -- Drainable (core.flow) ----------------------------------------------------

    @property
    def congested(self) -> bool:
        return self._over

    def when_drained(self, callback: Callable[[], None]) -> None:
        if self._over:
            self._waiters.append(callback)
        else:
            callback()
