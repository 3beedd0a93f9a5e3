"""SqliteStore.sync: a delivery deleted (acknowledged) before its commit no longer holds back `sync`;
everything else still waits for its commit. The writer is held off the file by taking its
connection lock, so "released before any commit" is observed, not raced."""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from core.message import Message
from core.stores.base import StoredDelivery
from core.stores.sqlite import SqliteStore
from core.stores.sqlite_batch import DEL_DELIVERY, PUT_DELIVERY

MESSAGE = Message("a/b", b"payload", 1)


class FakeLoop:
    """Stands in for `loop.call_soon_threadsafe`: the test thread runs what the store hands over."""

    def __init__(self) -> None:
        self.handed: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]]] = queue.Queue()

    def call_soon_threadsafe(self, fn: Callable[..., None], *args: Any) -> None:
        self.handed.put((fn, args))

    def run_ready(self) -> None:
        while not self.handed.empty():
            fn, args = self.handed.get()
            fn(*args)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        while not predicate():
            fn, args = self.handed.get(timeout=timeout)
            fn(*args)


@pytest.fixture
def loop() -> FakeLoop:
    return FakeLoop()


@pytest.fixture
def store(tmp_path: Path, loop: FakeLoop) -> Iterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "store.db"), call_soon_threadsafe=loop.call_soon_threadsafe)
    yield store
    if store._db_lock.locked():
        store._db_lock.release()
    store.close()


def delivery(seq: int) -> StoredDelivery:
    return StoredDelivery(seq, MESSAGE, 1, False, packet_id=seq)


def test_a_delivery_deleted_before_its_commit_releases_sync_without_waiting_for_the_disk(
    store: SqliteStore, loop: FakeLoop
) -> None:
    store._db_lock.acquire()  # no commit can finish until the test lets go
    called: list[int] = []
    store.put_delivery("sub", delivery(1))
    store.sync(lambda: called.append(store.commits))
    loop.run_ready()
    assert called == []  # the delivery is needed until its subscriber acknowledges it
    store.delete_delivery("sub", 1)  # the subscriber's PUBACK
    loop.run_until(lambda: called != [])
    assert called == [0]  # released with nothing committed
    store._db_lock.release()
    store.close()
    reopened = SqliteStore(store.path)
    assert reopened.load().deliveries == {}
    reopened.close()


def test_a_message_still_owed_to_another_session_holds_sync_until_its_commit(
    store: SqliteStore, loop: FakeLoop
) -> None:
    store._db_lock.acquire()
    called: list[int] = []
    store.put_delivery("s1", delivery(1))
    store.put_delivery("s2", delivery(1))
    store.sync(lambda: called.append(store.commits))
    store.delete_delivery("s1", 1)  # s1 acknowledged; s2 has not
    store.delete_delivery("s2", 2)  # another message of s2: not this one
    loop.run_ready()
    assert called == []
    store._db_lock.release()
    loop.run_until(lambda: called != [])
    assert called[0] >= 1  # after a commit
    store.close()
    reopened = SqliteStore(store.path)
    assert list(reopened.load().deliveries) == ["s2"]  # what s2 still owes survives a restart
    reopened.close()


def test_other_changes_still_wait_for_their_commit_and_callbacks_keep_their_order(
    store: SqliteStore, loop: FakeLoop
) -> None:
    store._db_lock.acquire()
    order: list[tuple[str, int]] = []
    store.put_retained(Message("r", b"kept", retain=True))
    store.sync(lambda: order.append(("retained", store.commits)))
    store.put_delivery("sub", delivery(1))
    store.sync(lambda: order.append(("delivery", store.commits)))
    store.delete_delivery("sub", 1)
    loop.run_ready()
    assert order == []  # the acknowledged delivery may not overtake the retained message's sync
    store._db_lock.release()
    loop.run_until(lambda: len(order) == 2)
    assert [name for name, _ in order] == ["retained", "delivery"]
    assert all(commits >= 1 for _, commits in order)


def test_deletes_of_committed_deliveries_do_not_hold_back_sync(store: SqliteStore, loop: FakeLoop) -> None:
    store.put_delivery("sub", delivery(1))
    assert store.flush(timeout=10)
    loop.run_until(lambda: loop.handed.empty())
    store._db_lock.acquire()
    store.delete_delivery("sub", 1)  # acknowledged after it was written: resent after a crash at worst
    called: list[str] = []
    store.sync(lambda: called.append("now"))
    assert called == ["now"]
    store._db_lock.release()
    store.close()
    reopened = SqliteStore(store.path)
    assert reopened.load().deliveries == {}  # the delete is committed at close
    reopened.close()


def test_a_replaced_delivery_holds_sync_until_every_put_is_released(store: SqliteStore, loop: FakeLoop) -> None:
    store._db_lock.acquire()
    called: list[int] = []
    store.put_delivery("sub", StoredDelivery(1, MESSAGE, 1, False))  # queued
    store.sync(lambda: called.append(store.commits))
    store.put_delivery("sub", delivery(1))  # sent: same seq, now with a packet id
    loop.run_ready()
    assert called == []
    store.delete_delivery("sub", 1)
    loop.run_until(lambda: called != [])
    assert called == [0]


def test_a_delivery_put_and_deleted_in_one_batch_costs_no_sql(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "store.db"))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    with store._lock:  # both changes reach the writer in one batch
        store._push_locked((PUT_DELIVERY, "sub", 1, delivery(1)), True)
        store._push_locked((DEL_DELIVERY, "sub", 1), False)
    assert store.flush(timeout=10)
    assert not [s for s in statements if "deliveries" in s]
    store.close()


def test_a_delivery_written_before_a_restart_is_still_deleted_after_it(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    store = SqliteStore(path)
    store.put_delivery("sub", delivery(5))
    store.put_delivery("sub", delivery(7))
    store.close()
    store = SqliteStore(path)  # knows seq 7 may be on disk from the file, not from its own commits
    with store._lock:
        store._push_locked((DEL_DELIVERY, "sub", 5), False)
        store._push_locked((PUT_DELIVERY, "sub", 6, delivery(6)), True)
        store._push_locked((DEL_DELIVERY, "sub", 6), False)
    assert store.flush(timeout=10)
    store.delete_delivery("sub", 7)
    store.close()
    store = SqliteStore(path)
    assert store.load().deliveries == {}
    store.close()


def test_a_delivery_acknowledged_while_still_queued_never_reaches_the_writer(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "store.db"))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store._db_lock.acquire()
    store.put_retained(Message("r", b"kept", retain=True))
    deadline = time.monotonic() + 10
    while store._ops and time.monotonic() < deadline:  # until the writer took it (and waits for the file)
        time.sleep(0.001)
    assert store._ops == []
    store.put_delivery("sub", delivery(1))
    store.delete_delivery("sub", 1)
    assert store._ops == [None]  # the put is dropped in place; no delete is queued
    store._db_lock.release()
    assert store.flush(timeout=10)
    assert not [s for s in statements if "deliveries" in s]
    store.close()


def _wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_delivery_put_while_the_writer_waits_between_commits_is_left_for_its_ack(tmp_path: Path) -> None:
    """Under load a batch is what was queued before the wait between commits: a delivery put during
    that wait is not written by the commit that ends it, so its ack, coming soon after, drops it."""
    store = SqliteStore(str(tmp_path / "store.db"), flush_interval=0.5)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store.put_retained(Message("r/1", b"first", retain=True))  # a quiet store commits at once
    _wait_for(lambda: store.commits == 1)
    store.put_retained(Message("r/2", b"second", retain=True))  # queued before the wait: the next batch
    _wait_for(lambda: store._writer_waiting)
    store.put_delivery("sub", delivery(1))  # during the wait
    _wait_for(lambda: store.commits == 2)
    assert store.pending == 1  # the delivery, still queued
    store.delete_delivery("sub", 1)  # its ack
    assert store.flush(timeout=10)
    assert not [s for s in statements if "deliveries" in s]
    assert store.load().deliveries == {} and store.load().retained.keys() == {"r/1", "r/2"}
    store.close()


def test_a_queued_delivery_sent_with_its_packet_id_takes_its_queued_puts_place(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "store.db"))
    store._db_lock.acquire()  # the writer cannot commit: both puts meet in the queue
    store.put_retained(Message("r", b"kept", retain=True))
    _wait_for(lambda: not store._ops)  # the writer took it and waits for the file
    store.put_delivery("sub", StoredDelivery(1, MESSAGE, 1, False))  # queued for an online session
    store.put_delivery("sub", delivery(1))  # sent: the same seq, now with its packet id
    assert store.pending == 2  # the retained message and one row for the delivery
    store._db_lock.release()
    assert store.flush(timeout=10)
    assert store.load().deliveries == {"sub": {1: delivery(1)}}
    store.close()
