"""The transport driver reads a flooding socket once per event-loop turn (adapters/driver.py):
after a full-sized read it pauses reading until the loop has run its ready callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.driver import FULL_READ, TransportDriver
from core.flow import ProducerGate


class _Connection:
    """The smallest connection a driver can feed: it keeps what it was given."""

    on_output: Any = None
    closing = False

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.input_gate = ProducerGate()

    def receive_data(self, data: bytes) -> None:
        self.received.append(data)

    def data_to_send(self) -> bytes:
        return b""

    def next_deadline(self) -> float | None:
        return None

    def connection_lost(self) -> None:
        pass


def _driver(calls: list[str]) -> tuple[TransportDriver, _Connection]:
    conn = _Connection()
    driver = TransportDriver(conn, lambda data: None, lambda: calls.append("close"),
                             lambda: calls.append("pause"), lambda: calls.append("resume"))
    return driver, conn


async def test_a_full_read_pauses_reading_until_the_next_loop_turn() -> None:
    calls: list[str] = []
    driver, conn = _driver(calls)
    ran_between: list[list[str]] = []
    asyncio.get_running_loop().call_soon(lambda: ran_between.append(list(calls)))  # a callback already ready
    driver.feed(b"x" * FULL_READ)
    driver.feed(b"y" * FULL_READ)  # (a second read in the same turn does not pause twice)
    assert calls == ["pause"] and len(conn.received) == 2
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert ran_between == [["pause"]]  # the ready callback ran while reading was paused
    assert calls == ["pause", "resume"]


async def test_small_reads_never_pause() -> None:
    calls: list[str] = []
    driver, conn = _driver(calls)
    for _ in range(10):
        driver.feed(b"z" * (FULL_READ - 1))
    await asyncio.sleep(0)
    assert calls == [] and len(conn.received) == 10


async def test_a_turn_pause_does_not_resume_a_connection_paused_for_another_reason() -> None:
    calls: list[str] = []
    driver, _ = _driver(calls)
    driver.block_reading("flow")
    driver.feed(b"x" * FULL_READ)
    await asyncio.sleep(0)
    assert calls == ["pause"] and driver.reading_blocked_by("flow")
    driver.unblock_reading("flow")
    assert calls == ["pause", "resume"]


async def test_a_connection_closed_in_its_turn_is_not_resumed() -> None:
    calls: list[str] = []
    driver, _ = _driver(calls)
    driver.feed(b"x" * FULL_READ)
    driver.lost()
    await asyncio.sleep(0)
    assert calls == ["pause"]
