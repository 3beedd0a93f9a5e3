"""One bounded outbox per subscriber: what waits to go out, by messages and bytes.

The router only appends (through the subscriber's `deliver`); the connection drains
the outbox at its own pace. What happens at the bound is the outbox's own policy and
never slows the publisher:

| message   | outbox full                                                          |
|-----------|----------------------------------------------------------------------|
| QoS 0     | dropped and counted (`dropped_qos0`)                                 |
| QoS 1, 2  | `overflow`: "drop_oldest" (default: the oldest waiting goes, counted),|
|           | "drop_new" (the new one goes, counted, as Mosquitto), or "disconnect" |
|           | (the client is disconnected: MQTT 5 reason 0x97 Quota exceeded)       |

Every byte held is also counted against the gateway's `MemoryBudget`, which alone may
pause publishers. No I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Final, Iterator, NamedTuple

from core.budget import MemoryBudget
from core.subscriptions import Delivery

OVERFLOW_POLICIES = ("drop_oldest", "drop_new", "disconnect")
ENTRY_OVERHEAD: Final = 64  # bytes an entry costs beyond its payload and topic (tuple, delivery, message)


class OutboxLimits(NamedTuple):
    """The bound of one outbox and what happens past it (a NamedTuple: one is built per session,
    and a frozen dataclass's interpreted __init__ cost more than the rest of the outbox's setup)."""

    max_messages: int = 1000
    max_bytes: int = 0  # 0: bounded by messages only
    overflow: str = "drop_oldest"


def entry_size(delivery: Delivery) -> int:
    message = delivery.message
    return len(message.payload) + len(message.topic) + ENTRY_OVERHEAD


class Outbox:
    """A FIFO of (seq, delivery) with its size in bytes, charged to a memory budget."""

    __slots__ = ("limits", "budget", "bytes", "_entries")

    def __init__(self, limits: OutboxLimits, budget: MemoryBudget | None = None) -> None:
        self.limits = limits
        self.budget = budget if budget is not None else MemoryBudget()
        self.bytes = 0
        # The deque (624 bytes even empty) comes with the first entry: most outboxes of idle
        # connections never hold one.
        self._entries: deque[tuple[int, Delivery]] | tuple[()] = ()

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __iter__(self) -> Iterator[tuple[int, Delivery]]:
        return iter(self._entries)

    def __getitem__(self, index: int) -> tuple[int, Delivery]:
        return self._entries[index]

    def full_for(self, delivery: Delivery, held: int = 0) -> bool:
        """Would one more entry pass the bound? `held`: entries kept elsewhere (offline, in the store)."""
        limits = self.limits
        if len(self._entries) + held >= limits.max_messages:
            return True
        return bool(limits.max_bytes) and self.bytes + entry_size(delivery) > limits.max_bytes

    def append(self, seq: int, delivery: Delivery) -> None:
        size = entry_size(delivery)
        entries = self._entries
        if type(entries) is tuple:
            entries = self._entries = deque()
        entries.append((seq, delivery))  # type: ignore[union-attr]
        self.bytes += size
        self.budget.add(size)

    def popleft(self) -> tuple[int, Delivery]:
        entry = self._entries.popleft()  # type: ignore[union-attr]  # (IndexError when empty, as a deque's)
        size = entry_size(entry[1])
        self.bytes -= size
        self.budget.release(size)
        return entry

    def clear(self) -> None:
        self._entries = ()
        self.budget.release(self.bytes)
        self.bytes = 0

    def keep(self, wanted: "Iterator[tuple[int, Delivery]] | list[tuple[int, Delivery]]") -> None:
        """Replace the entries with `wanted` (a filtered view of them), keeping the accounts right."""
        kept = list(wanted)
        self.clear()
        for seq, delivery in kept:
            self.append(seq, delivery)
