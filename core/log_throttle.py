"""Log lines about bad input, at most once per key (a peer, a client) per interval.

A hostile or broken peer can send thousands of bad packets a second; each is counted in
metrics, but only the first per interval is logged. No I/O and no clock of its own: the
caller passes `now`, so tests drive time.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable


class LogThrottle:
    """Says whether to log an event for `key` now, and how many were held back since the last line."""

    def __init__(self, interval: float = 60.0, max_keys: int = 4096) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._last: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()

    def allow(self, key: Hashable, now: float) -> int | None:
        """None to stay silent; otherwise the number of events for `key` suppressed before this one."""
        entry = self._last.get(key)
        if entry is not None and now - entry[0] < self.interval:
            self._last[key] = (entry[0], entry[1] + 1)
            return None
        suppressed = entry[1] if entry is not None else 0
        self._last[key] = (now, 0)
        self._last.move_to_end(key)
        while len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        return suppressed
