"""A bridge's store-and-forward queue: what waits for the upstream, in order, bounded, kept on disk.

Messages wait in `waiting` (oldest first) and move to `inflight` when the bridge sends them; only
the upstream's acknowledgement (PUBACK, publisher confirm, HTTP 2xx) removes one. A lost connection
puts everything in flight back at the head, in order, to be sent again (at least once).

| message                 | what happens                                                        |
|-------------------------|---------------------------------------------------------------------|
| QoS 0, upstream down    | dropped and counted (`offline_qos0`); queued ones go when it drops  |
| QoS >= 1                | kept in the store (a record per message) until acknowledged, so a   |
|                         | restart or a kill -9 loses none the publisher had acknowledged      |
| queue full              | `drop_oldest` (the oldest waiting goes) or `drop_new`, counted      |
|                         | (`overflow`); bounded by messages and bytes                         |
| expired while waiting   | dropped and counted (`expired`)                                     |

The store write happens inside the router's delivery, before the publisher's acknowledgement
waits on `store.sync`: what the publisher was told is safe is in the same group commit. A message
acknowledged upstream within that commit is never written (the store keeps the last operation).
Every byte held counts against the gateway's memory budget. While the bridge is connected and
draining, a queue past half its bound asks the producer to pause briefly (core/flow.py), as a
reading client's outbox does. No I/O here but the store's calls.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import deque
from typing import Callable, Iterator

from core.budget import MemoryBudget
from core.message import Message
from core.outbox import ENTRY_OVERHEAD, OutboxLimits
from core.stores.base import Store
from core.stores.codec import CodecError, decode_message, encode_message

log = logging.getLogger("rosettamq.bridge")

DROP_REASONS = ("offline_qos0", "overflow", "expired", "refused")
PROGRESS_WINDOW = 1.0  # seconds: an upstream that acknowledged nothing for this long is not draining us
_now = time.monotonic


_TIME = struct.Struct("<d")  # a record is the time the message was queued, then the message (core codec)


class Entry:
    """One message for the upstream; `message` carries the QoS and retain flag it goes out with,
    `time` when it was queued (wall clock)."""

    __slots__ = ("seq", "message", "size", "time")

    def __init__(self, seq: int, message: Message, queued_at: float) -> None:
        self.seq = seq
        self.message = message
        self.size = len(message.payload) + len(message.topic) + ENTRY_OVERHEAD
        self.time = queued_at

    def record(self) -> bytes:
        return _TIME.pack(self.time) + encode_message(self.message)


class ForwardQueue:
    """Waiting and in-flight messages of one bridge, their records in the store, and drop counts."""

    def __init__(self, name: str, limits: OutboxLimits, budget: MemoryBudget, store: Store | None) -> None:
        self.kind = f"bridge.queue.{name}"  # the store's record kind; keys are zero-padded sequence numbers
        self.limits = limits
        self.budget = budget
        self.store = store  # None: nothing survives a restart (the memory store)
        self.waiting: deque[Entry] = deque()
        self.inflight: dict[int, Entry] = {}
        self.bytes = 0
        self.online = False
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.on_ready: Callable[[], None] | None = None  # something new waits (the bridge wakes its sender)
        self.last_progress = 0.0
        self._seq = 0
        self._drain_waiters: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self.waiting) + len(self.inflight)

    # -- in: the router's deliveries, and the store at start ---------------------------------------

    def restore(self) -> int:
        """Load what a previous run left in the store (oldest first); returns how many."""
        if self.store is None:
            return 0
        records = self.store.load_records(self.kind)
        for key in sorted(records):
            seq = int(key)
            self._seq = max(self._seq, seq)
            value = records[key]
            try:
                entry = Entry(seq, decode_message(value[_TIME.size:]), _TIME.unpack_from(value)[0])
            except (CodecError, struct.error) as exc:
                log.error("bridge queue %s: record %s unreadable, dropped: %s", self.kind, key, exc)
                self.store.delete_record(self.kind, key)
                continue
            self._append(entry)
        return len(self.waiting)

    def push(self, message: Message) -> bool:
        """Queue `message` (QoS and retain as it goes out); True when the producer should pause briefly."""
        if message.qos == 0 and not self.online:
            self.dropped["offline_qos0"] += 1
            return False
        entry = Entry(self._seq + 1, message, time.time())
        if self._full_for(entry):
            if self.limits.overflow == "drop_new" or not self.waiting or message.qos == 0:
                self.dropped["overflow"] += 1
                return False
            while self.waiting and self._full_for(entry):
                self._drop(self.waiting.popleft(), "overflow")
        self._seq += 1
        if message.qos and self.store is not None:
            self.store.put_record(self.kind, _key(entry.seq), entry.record)
        self._append(entry)
        if self.on_ready is not None:
            self.on_ready()
        return self.online and len(self.waiting) >= self.high_water and _now() - self.last_progress < PROGRESS_WINDOW

    def _full_for(self, entry: Entry) -> bool:
        limits = self.limits
        if len(self) >= limits.max_messages:
            return True
        return bool(limits.max_bytes) and self.bytes + entry.size > limits.max_bytes

    def _append(self, entry: Entry) -> None:
        self.waiting.append(entry)
        self.bytes += entry.size
        self.budget.add(entry.size)

    # -- out: the bridge's sender -----------------------------------------------------------------

    def take(self, now: float | None = None) -> Entry | None:
        """The oldest waiting message, now in flight (expired ones are dropped on the way)."""
        waiting = self.waiting
        while waiting:
            entry = waiting.popleft()
            if entry.message.expiry is not None and entry.message.is_expired(now):
                self._drop(entry, "expired")
                continue
            self.inflight[entry.seq] = entry
            self._release_if_drained()
            return entry
        return None

    def acked(self, seq: int) -> bool:
        """The upstream has it: forget it here and in the store (False: it was not in flight)."""
        entry = self.inflight.pop(seq, None)
        if entry is None:
            return False
        self.last_progress = _now()
        self._forget(entry)
        return True

    def refused(self, seq: int, reason: str = "refused") -> None:
        """The upstream answered but will not take it (a 4xx, a PUBACK error, a nack): dropped, counted."""
        entry = self.inflight.pop(seq, None)
        if entry is not None:
            self.last_progress = _now()
            self._drop(entry, reason)

    def set_online(self, online: bool) -> None:
        """Connected or not; going down puts what was in flight back in order and lets QoS 0 go."""
        self.online = online
        if not online:
            self.waiting.extendleft(reversed(self.inflight.values()))
            self.inflight.clear()
            kept = [entry for entry in self.waiting if entry.message.qos]
            for entry in self.waiting:
                if not entry.message.qos:
                    self._drop(entry, "offline_qos0")
            self.waiting = deque(kept)
            self._release_producers()
        elif self.waiting and self.on_ready is not None:
            self.on_ready()

    def _drop(self, entry: Entry, reason: str) -> None:
        self.dropped[reason] += 1
        self._forget(entry)

    def _forget(self, entry: Entry) -> None:
        self.bytes -= entry.size
        self.budget.release(entry.size)
        if entry.message.qos and self.store is not None:
            self.store.delete_record(self.kind, _key(entry.seq))

    def __iter__(self) -> Iterator[Entry]:
        yield from self.inflight.values()
        yield from self.waiting

    def close(self) -> None:
        """Give the memory back (the records stay for the next start)."""
        self.budget.release(self.bytes)
        self.bytes = 0
        self.waiting.clear()
        self.inflight.clear()
        self._release_producers()

    # -- flow control (core/flow.py Drainable) ------------------------------------------------------

    @property
    def high_water(self) -> int:
        return max(1, self.limits.max_messages // 2)

    @property
    def congested(self) -> bool:
        return self.online and len(self.waiting) > self.limits.max_messages // 4

    def when_drained(self, callback: Callable[[], None]) -> None:
        if self.congested:
            self._drain_waiters.append(callback)
        else:
            callback()

    def _release_if_drained(self) -> None:
        if self._drain_waiters and not self.congested:
            self._release_producers()

    def _release_producers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for callback in waiters:
            callback()


def _key(seq: int) -> str:
    return f"{seq:020d}"
