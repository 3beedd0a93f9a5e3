"""The default store: one SQLite file in WAL mode, written by one thread in group commits.

Design (after mosquitto's persist-sqlite plugin: one event per state change,
committed in batches):

- The core's `put_*`/`delete_*` calls run on the event loop and only append a
  tuple to a list under a lock. Everything else — turning messages into bytes
  (`core.stores.codec`), SQL, commits — happens on the writer thread.
- Group commit: the writer takes what is queued and writes it in one
  transaction. Commits start at least `flush_interval` (2 ms) apart, so under
  load the batches grow instead of the commit count; a commit comes sooner when
  `max_batch` operations wait. A lone write after a quiet spell is committed
  at once. Under load a batch is what was queued before the wait between
  commits began: what comes during the wait goes in the next one, so a
  delivery its subscriber acknowledges within about 2 ms is never written (a
  window-100 QoS 1 flow to an acknowledging persistent subscriber then writes
  almost nothing: 57k -> 76k msg/s, 16.5 -> 11.7 us of CPU per message; with
  commits 1 ms apart too few settle, 4 ms apart was slower). Within a batch only the
  last operation per record counts
  (`core.stores.sqlite_batch`). A delivery acknowledged before its row reached
  the file costs no SQL: still queued, its puts are dropped in place and no
  delete is queued; in one batch with its delete, neither is written.
- `sync(callback)` is how acks wait for durability: with nothing written and
  not yet committed it calls back at once (a QoS 1 publish nobody persistent
  subscribed to costs nothing); otherwise once every earlier write is
  committed or no longer needed, on the event loop through
  `call_soon_threadsafe`, in the order `sync` was called. A failed commit is
  retried, never acknowledged.
- No longer needed: a delivery whose `delete_delivery` (its subscriber's
  PUBACK/PUBCOMP, or a drop) is queued no longer holds back `sync`, written
  or not. The message is acknowledged, so a kill -9 loses nothing a publisher
  was acknowledged for; at worst the delete is not yet durable and the message
  is sent again after a restart (at least once, as after any crash before the
  delete's commit). Deletes of deliveries never hold back `sync` either. So with
  a subscriber acknowledging faster than an fsync, a publisher's PUBACK waits
  for the subscriber's PUBACK, not for the disk; an offline or slow subscriber's
  messages are waited for until committed, as before.

Durability: `synchronous=FULL`. In WAL mode, NORMAL syncs the log only at
checkpoints: a kill -9 loses nothing committed (the OS still holds the
writes), but a power cut or kernel crash can roll back the last commits —
PUBACKs already sent. FULL syncs the log at every commit, and group commit
spreads that one fsync over the whole batch. (mosquitto's plugin uses NORMAL
with a 5 s flush period and acknowledges before its commit, so it can lose up
to 5 s of acknowledged messages even on a kill -9.)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

from core.message import Message
from core.metrics import LatencyHistogram
from core.stores.base import RecordValue, Store, StoredDelivery, StoredSession, StoredState, StoreError
from core.stores.sqlite_batch import (
    DEL_DELIVERY, DEL_RECORD, DEL_RETAINED, DEL_SESSION, DEL_SUB, DEL_QOS2, PUT_DELIVERY, PUT_QOS2, PUT_RECORD,
    PUT_RETAINED, PUT_SESSION, PUT_SUB, Written, compact, sql_rows, write_transaction,
)
from core.stores.sqlite_read import read_deliveries, read_records, read_state
from core.stores.sqlite_schema import MIGRATIONS, Migration, open_database
from core.subscriptions import SubscriptionOptions

log = logging.getLogger("rosettamq.store")

CallSoon = Callable[..., Any]

RETRY_DELAY = 1.0  # seconds between attempts after a failed commit


class SqliteStore(Store):
    """Persistence in one SQLite file; see the module docstring for the write path."""

    reads_wait_for_writes = True  # load_deliveries commits what is queued first (a commit, an fsync)

    def __init__(
        self,
        path: str,
        *,
        call_soon_threadsafe: CallSoon | None = None,
        flush_interval: float = 0.002,
        max_batch: int = 1000,
        synchronous: str = "FULL",
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        """Open (or create) `path`; raises StoreError if it is not a usable RosettaMQ store.

        Without `call_soon_threadsafe`, `sync` callbacks run on the writer thread (or on the thread
        of the `delete_delivery` that released them).
        """
        self.path = path
        self.commits = 0  # transactions committed (group commit keeps this far below the write count)
        self.encode_failures = 0  # changes dropped because they could not be encoded (a local bug)
        self.commit_latency = LatencyHistogram()  # seconds per transaction (fed to metrics)
        self._db = open_database(path, migrations=migrations, synchronous=synchronous)
        try:
            self._written = Written(self._db)  # which delivery rows may be on disk (raised by the writer)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{path}: cannot read deliveries: {exc}") from exc
        self._call_soon = call_soon_threadsafe
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits on it
        self._done = threading.Condition(self._lock)  # `flush` waits on it
        self._db_lock = threading.Lock()
        self._ops: list[tuple[Any, ...] | None] = []  # None: a delivery put dropped by its delete
        self._enqueued = 0  # operations ever queued
        self._committed = 0  # of those, how many the writer has committed
        # Indices (0-based, in `_enqueued` order) of queued changes that `sync` waits for, oldest first;
        # committed ones (index < `_committed`) and cancelled ones are dropped lazily from the front.
        self._holding: deque[int] = deque()
        self._cancelled: set[int] = set()  # held indices released early: their delivery was deleted
        # The queue index of each delivery's put, by (client, seq): still queued (`_puts`; a later put
        # of it takes that one's place), and in the batch being written (`_puts_writing`).
        self._puts: dict[tuple[str, int], int] = {}
        self._puts_writing: dict[tuple[str, int], int] = {}
        self._release_scheduled = False
        self._waiters: deque[tuple[int, Callable[[], None]]] = deque()
        self._writer_idle = False
        self._writer_waiting = False
        self._urgent = False
        self._closing = False
        self._closed = False
        # (Not `_thread`: compiled, the attribute would be C's `__thread` keyword.)
        self._writer_thread = threading.Thread(target=self._run_logged, name=f"store-writer:{path}", daemon=True)
        self._writer_thread.start()

    # -- the core's calls (event loop thread) ------------------------------------------------

    def put_session(self, session: StoredSession) -> None:
        self._push((PUT_SESSION, session.client_id, session))

    def delete_session(self, client_id: str) -> None:
        self._push((DEL_SESSION, client_id))

    def put_subscription(self, client_id: str, topic_filter: str, options: SubscriptionOptions) -> None:
        self._push((PUT_SUB, client_id, topic_filter, options))

    def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        self._push((DEL_SUB, client_id, topic_filter))

    def put_delivery(self, client_id: str, delivery: StoredDelivery) -> None:
        seq = delivery.seq
        op = (PUT_DELIVERY, client_id, seq, delivery)
        with self._lock:
            queued = self._puts.get((client_id, seq))
            if queued is not None and not self._closing:
                # Its put is still queued (a queued message now sent, with its packet id): the new
                # row takes that put's place, and whoever waits for that put waits for this row.
                ops = self._ops
                ops[queued - (self._enqueued - len(ops))] = op
                return
            index = self._push_locked(op, True)
            if index >= 0:
                self._puts[(client_id, seq)] = index

    def delete_delivery(self, client_id: str, seq: int) -> None:
        """Queue the delete, or drop the delivery's queued put if its row was never written; either
        way its puts stop holding back `sync` (see the module docstring)."""
        with self._lock:
            key = (client_id, seq)
            queued = self._puts.pop(key, None)
            writing = self._puts_writing.pop(key, None) if self._puts_writing else None
            if queued is not None and writing is None and not self._closing and not self._written.maybe_on_disk(
                    client_id, seq):
                # Its put is still queued and none reached the file: the writer never sees it.
                # (The writer raises `_written` before it lets go of `_puts_writing`, under this lock.)
                ops = self._ops
                ops[queued - (self._enqueued - len(ops))] = None
            elif self._push_locked((DEL_DELIVERY, client_id, seq), False) < 0:
                return
            if queued is None and writing is None:
                return
            if queued is not None:
                self._cancelled.add(queued)
            if writing is not None:
                self._cancelled.add(writing)
            waiters = self._waiters
            if not waiters or waiters[0][0] > self._first_holding():
                return
            if self._call_soon is not None:
                if self._release_scheduled:
                    return
                self._release_scheduled = True
        self._schedule_release()

    def put_incoming_qos2(self, client_id: str, packet_id: int) -> None:
        self._push((PUT_QOS2, client_id, packet_id))

    def delete_incoming_qos2(self, client_id: str, packet_id: int) -> None:
        self._push((DEL_QOS2, client_id, packet_id))

    def put_retained(self, message: Message) -> None:
        self._push((PUT_RETAINED, message.topic, message))

    def delete_retained(self, topic: str) -> None:
        self._push((DEL_RETAINED, topic))

    def put_record(self, kind: str, key: str, value: RecordValue) -> None:
        self._push((PUT_RECORD, kind, key, value))

    def delete_record(self, kind: str, key: str) -> None:
        self._push((DEL_RECORD, kind, key))

    def sync(self, callback: Callable[[], None]) -> None:
        with self._lock:
            upto = self._enqueued
            if self._waiters or self._first_holding() < upto:
                self._waiters.append((upto, callback))
                return
        callback()

    def _push(self, op: tuple[Any, ...]) -> None:
        with self._lock:
            self._push_locked(op, True)

    def _push_locked(self, op: tuple[Any, ...], holds: bool) -> int:
        """Queue `op` (under the lock); its index, or -1 when closing. `holds`: `sync` waits for it."""
        if self._closing:
            log.warning("store %s: change after close ignored: %r", self.path, op[:2])
            return -1
        ops = self._ops
        ops.append(op)
        index = self._enqueued
        self._enqueued = index + 1
        if holds:
            self._holding.append(index)
        if self._writer_idle or (self._writer_waiting and len(ops) >= self._max_batch):
            self._wake.notify()
        return index

    def _first_holding(self) -> int:
        """The index of the oldest change `sync` still waits for (`_enqueued` if none); under the lock."""
        holding, cancelled, committed = self._holding, self._cancelled, self._committed
        while holding:
            first = holding[0]
            if first >= committed and first not in cancelled:
                return first
            holding.popleft()
            cancelled.discard(first)
        return self._enqueued

    # -- whole-store operations -------------------------------------------------------------

    def load(self) -> StoredState:
        """Everything committed, after committing whatever is still queued."""
        self.flush()
        with self._db_lock:
            return read_state(self._db, self.path)

    def load_deliveries(self, client_id: str) -> list[StoredDelivery]:
        """One session's committed messages in `seq` order, after committing whatever is still queued."""
        self.flush()
        with self._db_lock:
            return read_deliveries(self._db, self.path, client_id)

    def load_records(self, kind: str) -> dict[str, bytes]:
        """Every committed record of `kind`, after committing whatever is still queued."""
        self.flush()
        with self._db_lock:
            return read_records(self._db, self.path, kind)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued so far is committed; False on timeout."""
        with self._lock:
            target = self._enqueued
            if self._committed >= target:
                return True
            self._urgent = True
            self._wake.notify()
            return self._done.wait_for(lambda: self._committed >= target or self._closed, timeout) and (
                self._committed >= target
            )

    def close(self) -> None:
        """Commit what is queued, stop the writer, checkpoint the WAL into the file and close it."""
        if self._closed:
            return
        with self._lock:
            self._closing = True
            self._urgent = True
            self._wake.notify()
        self._writer_thread.join()
        with self._db_lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("store %s: final checkpoint failed: %s", self.path, exc)
            self._db.close()
        with self._lock:
            self._closed = True
            self._done.notify_all()

    @property
    def pending(self) -> int:
        """Changes queued or being written, not yet committed."""
        with self._lock:
            return self._enqueued - self._committed

    # -- the writer thread ---------------------------------------------------------------------

    def _run_logged(self) -> None:
        try:
            self._run()
        except BaseException:  # a bug: say so loudly, acknowledgements stop from here on
            log.critical("store %s: writer thread failed; nothing more will be acknowledged", self.path, exc_info=True)
            raise

    def _run(self) -> None:
        last_start = float("-inf")  # when the last transaction began: commits start flush_interval apart
        while True:
            with self._lock:
                while not self._ops and not self._closing:
                    self._writer_idle = True
                    self._wake.wait()
                    self._writer_idle = False
                if not self._ops:
                    return  # closing, and everything is written
                settled = len(self._ops)  # what was queued by the end of the last commit
                deadline = last_start + self._flush_interval
                while not self._urgent and len(self._ops) < self._max_batch:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._writer_waiting = True
                    self._wake.wait(remaining)
                    self._writer_waiting = False
                batch = self._take(len(self._ops) if self._urgent or len(self._ops) >= self._max_batch else settled)
                upto = self._committed + len(batch)
                self._urgent = False
            last_start = time.monotonic()
            if not self._write(batch):
                return  # closing with a failing disk: nothing of it was acknowledged
            took = time.monotonic() - last_start
            with self._lock:
                self.commit_latency.observe(took)
                self.commits += 1
                self._committed = upto
                self._puts_writing = {}
                self._done.notify_all()
            self._schedule_release()

    def _take(self, count: int) -> list[tuple[Any, ...] | None]:
        """The first `count` queued changes, as the next batch (under the lock).

        Under load the batch is what was queued before the wait between commits began: what comes
        during the wait waits for the next commit, so a delivery acknowledged within about
        `flush_interval` of its put is dropped from the queue and never written (nor deleted)."""
        batch, self._ops = self._ops[:count], self._ops[count:]
        if not self._ops:
            self._puts_writing, self._puts = self._puts, {}
            return batch
        first_left = self._committed + count
        writing: dict[tuple[str, int], int] = {}
        puts = self._puts
        for key, index in puts.items():  # (in queue order)
            if index >= first_left:
                break
            writing[key] = index
        for key in writing:
            del puts[key]
        self._puts_writing = writing
        return batch

    def _write(self, batch: list[tuple[Any, ...] | None]) -> bool:
        """Commit `batch`, retrying after failures; False if it was given up at close."""
        wipes, final, puts = compact(batch, self._written)
        rows = sql_rows(final, self._encode_failed)
        if not wipes and not rows:
            return True  # everything in it cancelled out: nothing to write, nothing to fsync
        while True:
            try:
                with self._db_lock:
                    write_transaction(self._db, wipes, rows)
                self._written.committed(puts)
                return True
            except sqlite3.Error as exc:
                log.error("store %s: commit of %d changes failed: %s", self.path, len(batch), exc)
                with self._lock:
                    if self._closing:
                        log.error("store %s: closing; %d unacknowledged changes dropped", self.path, len(batch))
                        return False
                    self._wake.wait(RETRY_DELAY)

    def _encode_failed(self, op: tuple[Any, ...], exc: Exception) -> None:
        # A failing record encoder: a local bug (the door refuses unstorable messages).
        self.encode_failures += 1
        log.error("store %s: cannot store %r: %s", self.path, op[:3], exc)

    def _schedule_release(self) -> None:
        if self._call_soon is None:
            self._run_callbacks()
            return
        try:
            self._call_soon(self._run_callbacks)
        except RuntimeError:  # the event loop is closed: nobody is left to acknowledge
            pass

    def _run_callbacks(self) -> None:
        ready: list[Callable[[], None]] = []
        with self._lock:
            self._release_scheduled = False
            first = self._first_holding()
            waiters = self._waiters
            while waiters and waiters[0][0] <= first:
                ready.append(waiters.popleft()[1])
        for callback in ready:
            try:
                callback()
            except Exception:
                log.exception("store %s: sync callback failed", self.path)
