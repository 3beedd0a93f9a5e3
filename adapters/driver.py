"""Driving a no-I/O connection state machine from an asyncio transport, for every TCP-like adapter.

A connection (MQTT, AMQP) exposes `receive_data`, `data_to_send`, `closing`,
`next_deadline`, `handle_timeout`, `connection_lost`, an `on_output`
callback and an `input_gate`. `TransportDriver` feeds it, writes its output once per event-loop
turn (coalesced), closes the transport when it is done, keeps its next deadline on the
loop's one timer (adapters/deadlines.py), and gates reading for reasons that add up
("writes", "login", "flow", "alarm", "turn"). Protocol adapters subclass it for their own hooks.

"flow": a connection whose `input_gate` (core/flow.py `ProducerGate`) closed because
subscribers it fed fell behind stops being read; when the gate opens, reading resumes
on the next loop turn and the packets or frames that waited in the connection's
buffer are fed.

One read per turn: uvloop (libuv) reads a readable socket up to 32 times in one
event-loop iteration, 256 KiB each, before any callback scheduled with
`call_soon` runs. A client flooding one connection would then hold the loop for
up to 8 MiB of packets (~100,000 small PUBLISHes, tens of milliseconds) while
coalesced writes to its subscribers, the cluster's forwarding to NATS and every
other ready callback wait. After a full-sized read the driver pauses reading
until the next iteration ("turn"), as asyncio's own selector loop reads a
socket once per iteration.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from adapters.deadlines import DeadlineWheel, deadlines_for

# A read at least this big means the socket had more queued: let the loop turn before reading on.
FULL_READ = 65536


class TransportDriver:
    """Feeding, coalesced flushing, deadlines, a reading gate and closing for one connection."""

    # One per connection: slots, and no set until reading is first blocked (idle memory, issue 17).
    __slots__ = ("conn", "_write", "_close_transport", "_pause_reading", "_resume_reading", "_read_blockers",
                 "_loop", "_flush_scheduled", "_slot", "_wheel", "_timer_at", "_closed")

    def __init__(
        self,
        conn: Any,
        write: Callable[[bytes], None],
        close: Callable[[], None],
        pause_reading: Callable[[], None] | None = None,
        resume_reading: Callable[[], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """`loop`: the running loop, when the caller has it (asyncio's lookup costs a getpid() per connection)."""
        self.conn = conn
        self._write = write
        self._close_transport = close
        self._pause_reading = pause_reading
        self._resume_reading = resume_reading
        self._read_blockers: set[str] | None = None
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._flush_scheduled = False
        self._slot = 0  # the deadline's slot in the loop's wheel (adapters/deadlines.py); 0: none
        self._wheel: DeadlineWheel | None = None  # that wheel, while a slot is held (it lives as long)
        self._timer_at: float | None = None
        self._closed = False
        conn.on_output = self._schedule_flush
        conn.input_gate.on_open = self._schedule_input

    def feed(self, data: bytes) -> None:
        if len(data) >= FULL_READ:
            self.yield_turn()
        conn = self.conn
        conn.receive_data(data)
        if conn.input_gate.blocked:
            self.block_reading("flow")  # subscribers it fed are behind: stop reading it
        self._after_receive()
        self.flush()

    def _after_receive(self) -> None:
        """Protocol hook, run after each chunk is fed, before the flush."""

    def yield_turn(self) -> None:
        """Read no more in this event-loop iteration (see the module docstring)."""
        if not self.reading_blocked_by("turn"):
            self.block_reading("turn")
            self._loop.call_soon(self.unblock_reading, "turn")

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._closed:
            return
        conn = self.conn
        data = conn.data_to_send()
        if data:
            self._write(data)
        if conn.closing:
            self._closed = True
            self._cancel_timer()
            self._close_transport()
            return
        self._after_output()
        self._arm_timer()

    def _after_output(self) -> None:
        """Protocol hook, run after each flush of a connection that stays open."""

    def block_reading(self, reason: str) -> None:
        """Stop reading the transport for `reason`; reasons add up."""
        blockers = self._read_blockers
        if blockers is None:
            blockers = self._read_blockers = set()
        if not blockers and self._pause_reading is not None:
            self._pause_reading()
        blockers.add(reason)

    def unblock_reading(self, reason: str) -> None:
        blockers = self._read_blockers
        if blockers is not None and reason in blockers:
            blockers.discard(reason)
            if not blockers and self._resume_reading is not None and not self._closed:
                self._resume_reading()

    def _schedule_input(self) -> None:
        # Called while another connection is being processed: resume on the next loop turn.
        self._loop.call_soon(self._resume_input)

    def _resume_input(self) -> None:
        if self._closed or self.conn.input_gate.blocked:
            return
        self.unblock_reading("flow")
        self.feed(b"")  # what waited in the connection's buffer

    def reading_blocked_by(self, reason: str) -> bool:
        blockers = self._read_blockers
        return blockers is not None and reason in blockers

    def lost(self) -> None:
        self._closed = True
        self._cancel_timer()
        self.conn.connection_lost()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._closed:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def _arm_timer(self) -> None:
        deadline = self.conn.next_deadline()
        if deadline is None:
            self._cancel_timer()
            return
        # Keep an earlier deadline: when it is reached the driver re-arms at the current one.
        if self._slot and self._timer_at is not None and self._timer_at <= deadline:
            return
        self._cancel_timer()
        self._timer_at = deadline
        wheel = self._wheel = deadlines_for(self._loop)
        self._slot = wheel.add(self, deadline)

    def deadline_reached(self, slot: int, now: float) -> None:
        """The wheel's call: the deadline armed in `slot` has passed (a stale call is ignored)."""
        if slot != self._slot:
            return
        self._slot = 0
        self._wheel = None
        self._timer_at = None
        self.conn.handle_timeout(now)
        self._after_timeout()

    def _after_timeout(self) -> None:
        """Protocol hook after `handle_timeout`; by default, write what it produced."""
        self.flush()

    def _cancel_timer(self) -> None:
        wheel = self._wheel
        if wheel is not None:  # (a wheel with a slot held is not retired: this is the loop's wheel)
            wheel.remove(self, self._slot)
            self._slot = 0
            self._wheel = None
        self._timer_at = None
