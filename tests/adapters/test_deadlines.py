"""The loop's deadline wheel (adapters/deadlines.py): never early, each owner once, removals honoured."""

from __future__ import annotations

import asyncio

import pytest

from adapters import deadlines
from adapters.deadlines import SLOTS_PER_SECOND, deadlines_for

TIMEOUT = 5.0


async def _forgotten(loop: asyncio.AbstractEventLoop) -> None:
    while loop in deadlines._WHEELS:
        await asyncio.sleep(0.01)


class Owner:
    def __init__(self, name: str, calls: list[tuple[str, float]], done: asyncio.Event | None = None,
                 fail: bool = False) -> None:
        self.name, self.calls, self.done, self.fail = name, calls, done, fail
        self.slot = 0

    def deadline_reached(self, slot: int, now: float) -> None:
        self.calls.append((self.name, now))
        if self.done is not None:
            self.done.set()
        if self.fail:
            raise RuntimeError("a bug in one connection")


async def test_a_deadline_is_met_after_it_passes_never_before() -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[str, float]] = []
    done = asyncio.Event()
    deadline = loop.time() + 0.05
    deadlines_for(loop).add(Owner("a", calls, done), deadline)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert len(calls) == 1 and calls[0][1] >= deadline


async def test_an_earlier_deadline_added_later_is_not_held_back_by_a_later_one() -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[str, float]] = []
    done = asyncio.Event()
    wheel = deadlines_for(loop)
    late = Owner("late", calls)
    late_slot = wheel.add(late, loop.time() + 0.3)
    wheel.add(Owner("early", calls, done), loop.time() + 0.02)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert [name for name, _ in calls] == ["early"]
    wheel.remove(late, late_slot)
    # No deadlines left: the wheel forgets itself when its timer next fires, and calls nobody.
    await asyncio.wait_for(_forgotten(loop), TIMEOUT)
    assert [name for name, _ in calls] == ["early"]


async def test_a_removed_owner_is_never_called_and_its_slot_neighbours_are() -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[str, float]] = []
    done = asyncio.Event()
    wheel = deadlines_for(loop)
    at = loop.time() + 0.03
    gone, stays = Owner("gone", calls), Owner("stays", calls, done)
    gone_slot = wheel.add(gone, at)
    assert wheel.add(stays, at) == gone_slot  # one slot, two owners
    wheel.remove(gone, gone_slot)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert [name for name, _ in calls] == ["stays"]


async def test_one_owner_failing_does_not_cost_the_others_their_deadline(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[str, float]] = []
    done = asyncio.Event()
    wheel = deadlines_for(loop)
    at = loop.time() + 0.02
    wheel.add(Owner("broken", calls, fail=True), at)
    wheel.add(Owner("fine", calls, done), at)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert [name for name, _ in calls] == ["broken", "fine"]
    assert "deadline of" in caplog.text


async def test_many_deadlines_fire_in_slot_order_on_one_timer() -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[str, float]] = []
    done = asyncio.Event()
    wheel = deadlines_for(loop)
    start = loop.time()
    for i in reversed(range(20)):  # added latest first: each add is an earlier slot, and re-arms
        wheel.add(Owner(f"{i:02d}", calls, done if i == 19 else None), start + 0.01 + i / SLOTS_PER_SECOND)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    names = [name for name, _ in calls]
    assert names == sorted(names) and len(names) == 20
    assert loop not in deadlines._WHEELS


def test_the_wheel_of_a_loop_closed_with_deadlines_pending_is_dropped_when_another_is_made() -> None:
    closed = asyncio.new_event_loop()
    deadlines_for(closed).add(Owner("never", []), closed.time() + 60)
    closed.close()
    assert closed in deadlines._WHEELS
    other = asyncio.new_event_loop()
    try:
        deadlines_for(other)
        assert closed not in deadlines._WHEELS and other in deadlines._WHEELS
    finally:
        deadlines._WHEELS.pop(other, None)
        other.close()
