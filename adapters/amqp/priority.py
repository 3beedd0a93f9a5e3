"""The ready messages of a queue with x-max-priority: highest priority first, FIFO within one.

RabbitMQ's priority queues: a message's priority is its `priority` property
capped at the queue's maximum (none is 0). `PriorityReady` offers the part of
`collections.deque` a queue uses, so a queue without the argument keeps its
plain deque and pays nothing; a requeued message goes back to the head of
its own priority; dropping the head (max-length) takes the highest one, as
RabbitMQ does.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from adapters.amqp.queues import Entry

MAX_SUPPORTED = 255  # RabbitMQ refuses a higher x-max-priority


class PriorityReady:
    """A deque of entries per priority level; only levels holding messages are kept."""

    __slots__ = ("maximum", "_levels", "_size")

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self._levels: dict[int, deque[Entry]] = {}
        self._size = 0

    def level_of(self, entry: Entry) -> int:
        priority = entry.content.properties.priority
        return min(priority, self.maximum) if isinstance(priority, int) and priority > 0 else 0

    def _top(self) -> deque[Entry]:
        if not self._levels:
            raise IndexError("no ready message")
        return self._levels[max(self._levels)]

    def append(self, entry: Entry) -> None:
        self._levels.setdefault(self.level_of(entry), deque()).append(entry)
        self._size += 1

    def appendleft(self, entry: Entry) -> None:
        self._levels.setdefault(self.level_of(entry), deque()).appendleft(entry)
        self._size += 1

    def popleft(self) -> Entry:
        level = max(self._levels) if self._levels else None
        if level is None:
            raise IndexError("pop from an empty queue")
        entries = self._levels[level]
        entry = entries.popleft()
        if not entries:
            del self._levels[level]
        self._size -= 1
        return entry

    def __getitem__(self, index: int) -> Entry:
        if index != 0:
            raise IndexError("only the head of a priority queue is addressable")
        return self._top()[0]

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __iter__(self) -> Iterator[Entry]:
        """Delivery order: highest priority first."""
        for level in sorted(self._levels, reverse=True):
            yield from self._levels[level]

    def clear(self) -> None:
        self._levels.clear()
        self._size = 0
