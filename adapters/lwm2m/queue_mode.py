"""Queue mode (binding with Q): commands for a sleeping device wait for it.

A queue-mode device is reachable only for a while after it last sent
something (LwM2M 1.1: MAX_TRANSMIT_WAIT, 93 s, after its last message).
`DownlinkQueue` holds one device's pending commands, with deadlines and no
timers: the wiring calls `seen(now)` when the device sends anything (Register,
Update, a response...), `submit(item, now)` for each new command, and
`expire(now)` when `next_deadline()` comes. Each returns a `Release`: what to
send now, what expired while waiting (answered as timeouts), what was dropped
because the queue was full (the oldest go first).

Without queue mode, `submit` hands every command straight back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, Mapping, TypeVar

__all__ = ["DownlinkQueue", "Release", "AWAKE_WINDOW", "ttl_of"]

T = TypeVar("T")
AWAKE_WINDOW = 93.0  # CoAP MAX_TRANSMIT_WAIT, RFC 7252 4.8.2


@dataclass(frozen=True, slots=True)
class Release(Generic[T]):
    """What a queue operation hands back."""

    send: tuple[T, ...] = ()
    expired: tuple[T, ...] = ()
    dropped: tuple[T, ...] = ()


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    item: T
    deadline: float | None


def ttl_of(command: Mapping[str, Any], default: float | None) -> float | None:
    """A command's own ``"ttl"`` (seconds a queued command may wait), else `default`."""
    ttl = command.get("ttl")
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl > 0:
        return float(ttl)
    return default


class DownlinkQueue(Generic[T]):
    """One device's commands waiting for it to wake up."""

    def __init__(self, *, queue_mode: bool, awake_window: float = AWAKE_WINDOW,
                 default_ttl: float | None = 86400.0, max_items: int = 100) -> None:
        self.queue_mode = queue_mode
        self.awake_window = awake_window
        self.default_ttl = default_ttl
        self.max_items = max_items
        self._awake_until: float | None = None
        self._entries: deque[_Entry[T]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def is_awake(self, now: float) -> bool:
        """Whether a command sent now should reach the device."""
        if not self.queue_mode:
            return True
        return self._awake_until is not None and now < self._awake_until

    def seen(self, now: float) -> Release[T]:
        """The device sent something: it is awake; release what waited for it."""
        self._awake_until = now + self.awake_window
        expired = self._take_expired(now)
        send = tuple(entry.item for entry in self._entries)
        self._entries.clear()
        return Release(send=send, expired=expired)

    def set_queue_mode(self, queue_mode: bool, now: float) -> Release[T]:
        """Follow a binding change; leaving queue mode releases what waited."""
        self.queue_mode = queue_mode
        return Release() if queue_mode else self.seen(now)

    def submit(self, item: T, now: float, ttl: float | None = None) -> Release[T]:
        """A new command: sent now if the device is awake, queued otherwise."""
        if self.is_awake(now):
            return Release(send=(item,))
        ttl = self.default_ttl if ttl is None else ttl
        self._entries.append(_Entry(item, None if ttl is None else now + ttl))
        dropped = []
        while len(self._entries) > self.max_items:
            dropped.append(self._entries.popleft().item)
        return Release(dropped=tuple(dropped))

    def _take_expired(self, now: float) -> tuple[T, ...]:
        kept, expired = deque(), []
        for entry in self._entries:
            if entry.deadline is not None and entry.deadline <= now:
                expired.append(entry.item)
            else:
                kept.append(entry)
        self._entries = kept
        return tuple(expired)

    def expire(self, now: float) -> Release[T]:
        """Drop the commands whose time to wait ran out."""
        return Release(expired=self._take_expired(now))

    def next_deadline(self) -> float | None:
        """When the next queued command expires (None when none can)."""
        deadlines = [e.deadline for e in self._entries if e.deadline is not None]
        return min(deadlines) if deadlines else None

    def clear(self) -> tuple[T, ...]:
        """Empty the queue (the device deregistered); returns what was waiting."""
        items = tuple(entry.item for entry in self._entries)
        self._entries.clear()
        return items
