"""Every connection's next deadline on one event-loop timer per loop, in slots of 10 ms.

A connection driver (adapters/driver.py) always has a deadline: its CONNECT timeout, then
its keep-alive, a login held back, an input gate's brief hold. One uvloop timer per
connection cost about 6 us of a connect + subscribe's 60 (a TimerHandle, a libuv timer to
start, stop and close). Here a deadline is rounded up to the end of its 10 ms slot; the
slot's owners are kept in a dict (O(1) to add and to remove), the slots with owners in a
heap, and the loop runs one timer at the earliest slot. So a deadline is met at most about
11 ms late, never early.

A wheel serves one loop (`deadlines_for`). Its timer stays armed when its last deadline is
removed (a connection between CONNECT and CONNACK is often the only one with a deadline, and
re-arming per connection would cost what the wheel saves); the wheel forgets itself when
that timer fires with nothing left. It does no I/O itself: the loop is only asked for its
time and to call back at a time.
"""

from __future__ import annotations

import heapq
import logging
from typing import Callable, Protocol

log = logging.getLogger("rosettamq.net")

SLOTS_PER_SECOND = 100  # 10 ms slots
MARGIN = 0.001  # uvloop's timers count whole milliseconds: fire a millisecond after a slot's end, not before


class DeadlineOwner(Protocol):
    def deadline_reached(self, slot: int, now: float) -> None: ...


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Loop(Protocol):
    """What a wheel asks of an event loop (an asyncio loop is one)."""

    def time(self) -> float: ...

    def is_closed(self) -> bool: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Cancellable: ...


class DeadlineWheel:
    """The deadlines of one event loop's connections; see the module docstring."""

    __slots__ = ("_loop", "_slots", "_order", "_timer", "_timer_slot")

    def __init__(self, loop: Loop) -> None:
        self._loop = loop
        self._slots: dict[int, dict[DeadlineOwner, None]] = {}  # slot -> its owners (insertion order)
        self._order: list[int] = []  # heap of slot numbers (a slot emptied and made again may be twice)
        self._timer: Cancellable | None = None
        self._timer_slot = 0

    def add(self, owner: DeadlineOwner, deadline: float) -> int:
        """Call `owner.deadline_reached(slot, now)` once `deadline` (loop time) has passed; the slot,
        for `remove`. An owner is in one slot at a time: it removes itself before it adds again."""
        slot = int(deadline * SLOTS_PER_SECOND) + 1
        owners = self._slots.get(slot)
        if owners is None:
            owners = self._slots[slot] = {}
            heapq.heappush(self._order, slot)
            if self._timer is None or slot < self._timer_slot:
                self._arm(slot)
        owners[owner] = None
        return slot

    def remove(self, owner: DeadlineOwner, slot: int) -> None:
        owners = self._slots.get(slot)
        if owners is None:
            return
        owners.pop(owner, None)
        if not owners:
            del self._slots[slot]  # its heap entry is skipped when it comes up; the timer stays

    def _arm(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_slot = slot
        self._timer = self._loop.call_at(slot / SLOTS_PER_SECOND + MARGIN, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        last_due = int(now * SLOTS_PER_SECOND)  # slots that ended by now
        order, slots = self._order, self._slots
        due: list[tuple[int, DeadlineOwner]] = []
        while order and order[0] <= last_due:
            slot = heapq.heappop(order)
            owners = slots.pop(slot, None)
            if owners is not None:
                due.extend((slot, owner) for owner in owners)
        while order and order[0] not in slots:  # emptied slots
            heapq.heappop(order)
        if order:
            self._arm(order[0])
        else:  # every slot with owners has a heap entry: none is left
            self._retire()
        for slot, owner in due:
            try:
                owner.deadline_reached(slot, now)
            except Exception:  # one connection's bug must not keep the others' deadlines
                log.exception("deadline of %r failed", owner)

    def _retire(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if _WHEELS.get(self._loop) is self:
            del _WHEELS[self._loop]


_WHEELS: dict[Loop, DeadlineWheel] = {}


def deadlines_for(loop: Loop) -> DeadlineWheel:
    """The wheel of `loop`: made on first use, forgotten when its timer finds it empty (or, once
    its loop is closed with deadlines pending, when the next wheel is made)."""
    wheel = _WHEELS.get(loop)
    if wheel is None:
        for closed in [other for other in _WHEELS if other.is_closed()]:
            del _WHEELS[closed]  # its timer will never fire (tests make many loops)
        wheel = _WHEELS[loop] = DeadlineWheel(loop)
    return wheel
