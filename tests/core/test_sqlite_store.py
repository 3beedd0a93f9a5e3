"""SqliteStore: every record through close/reopen, group commit, sync ordering, refusal of bad files, migrations."""

from __future__ import annotations

import queue
import sqlite3
import threading
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

import pytest

from core.message import Message, Origin
from core.stores.base import StoredDelivery, StoredSession, StoreError
from core.stores.sqlite import SqliteStore
from core.stores.sqlite_schema import APPLICATION_ID, MIGRATIONS
from core.subscriptions import SubscriptionOptions

FULL_MESSAGE = Message(
    "a/b", b"\x00payload", 2, True, "application/json", b"corr", "reply/to", (("k", "1"), ("k", "2")),
    1_900_000_000.5, True, Origin("mqtt", "producer", "alice"), extra={"x": (1, b"y", None)},
)


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "store.db")


def raw_db(path: str | Path) -> closing[sqlite3.Connection]:
    """A plain autocommit connection, closed at the end of the `with` (the store wants the file alone)."""
    return closing(sqlite3.connect(path, isolation_level=None))


def reopen(store: SqliteStore, **kwargs: Any) -> SqliteStore:
    store.close()
    return SqliteStore(store.path, **kwargs)


def fill(store: SqliteStore) -> None:
    """One of every record type."""
    store.put_session(StoredSession("c1", "mqtt", 3600, "alice", 1234.5, FULL_MESSAGE, 30, 60))
    store.put_session(StoredSession("c2", "mqtt", 10))
    store.put_subscription("c1", "a/#", SubscriptionOptions(2, True, True, 1, 42))
    store.put_subscription("c1", "b/+", SubscriptionOptions(1))
    store.put_delivery("c1", StoredDelivery(7, FULL_MESSAGE, 1, True, (42, 43), packet_id=5, released=True))
    store.put_delivery("c1", StoredDelivery(3, Message("q/1", b"queued", 1), 1, False))
    store.put_incoming_qos2("c1", 9)
    store.put_incoming_qos2("c1", 10)
    store.put_retained(FULL_MESSAGE)


# -- round trips -------------------------------------------------------------------------


def test_every_record_type_survives_close_and_reopen(path: str) -> None:
    store = SqliteStore(path)
    fill(store)
    store = reopen(store)
    state = store.load()
    store.close()
    assert state.sessions == {
        "c1": StoredSession("c1", "mqtt", 3600, "alice", 1234.5, FULL_MESSAGE, 30, 60),
        "c2": StoredSession("c2", "mqtt", 10),
    }
    assert state.subscriptions == {
        "c1": {"a/#": SubscriptionOptions(2, True, True, 1, 42), "b/+": SubscriptionOptions(1)}
    }
    assert list(state.deliveries["c1"]) == [3, 7]  # in seq order
    assert state.deliveries["c1"][7] == StoredDelivery(7, FULL_MESSAGE, 1, True, (42, 43), packet_id=5, released=True)
    assert state.deliveries["c1"][3] == StoredDelivery(3, Message("q/1", b"queued", 1), 1, False)
    assert state.incoming_qos2 == {"c1": {9, 10}}
    assert state.retained == {"a/b": FULL_MESSAGE}
    assert dict(state.retained["a/b"].extra) == {"x": (1, b"y", None)}  # `extra` is not part of Message equality


def test_load_sees_changes_still_queued(path: str) -> None:
    store = SqliteStore(path, flush_interval=60)
    store.put_retained(Message("r", b"1", retain=True))
    store.put_retained(Message("r", b"2", retain=True))
    assert store.load().retained["r"].payload == b"2"
    store.close()


def test_deleting_a_session_drops_its_records_and_keeps_other_sessions_and_retained(path: str) -> None:
    store = SqliteStore(path)
    fill(store)
    store.put_subscription("c2", "z", SubscriptionOptions(1))
    store.flush()
    store.delete_session("c1")
    store = reopen(store)
    state = store.load()
    store.close()
    assert list(state.sessions) == ["c2"]
    assert state.subscriptions == {"c2": {"z": SubscriptionOptions(1)}}
    assert state.deliveries == {} and state.incoming_qos2 == {}
    assert list(state.retained) == ["a/b"]


def test_single_deletes_and_a_replaced_delivery_are_written(path: str) -> None:
    store = SqliteStore(path)
    fill(store)
    store.flush()
    store.delete_subscription("c1", "b/+")
    store.delete_delivery("c1", 3)
    store.put_delivery("c1", StoredDelivery(7, FULL_MESSAGE, 2, False, packet_id=6))  # same seq: replaces
    store.delete_incoming_qos2("c1", 9)
    store.delete_retained("a/b")
    store = reopen(store)
    state = store.load()
    store.close()
    assert list(state.subscriptions["c1"]) == ["a/#"]
    assert state.deliveries == {"c1": {7: StoredDelivery(7, FULL_MESSAGE, 2, False, packet_id=6)}}
    assert state.incoming_qos2 == {"c1": {10}}
    assert state.retained == {}


def test_within_one_batch_only_the_last_change_of_a_record_counts(path: str) -> None:
    store = SqliteStore(path, flush_interval=60)
    store.put_delivery("c1", StoredDelivery(1, Message("t", b"acked at once"), 1, False, packet_id=1))
    store.delete_delivery("c1", 1)
    store.put_session(StoredSession("c1", "mqtt", 60))
    store.put_subscription("c1", "old", SubscriptionOptions(1))
    store.delete_session("c1")  # clean start: everything before it goes...
    store.put_session(StoredSession("c1", "mqtt", 120))  # ...and the new session's records stay
    store.put_subscription("c1", "new", SubscriptionOptions(2))
    store = reopen(store)
    state = store.load()
    store.close()
    assert state.deliveries == {}
    assert state.sessions == {"c1": StoredSession("c1", "mqtt", 120)}
    assert state.subscriptions == {"c1": {"new": SubscriptionOptions(2)}}


def test_a_record_that_cannot_be_encoded_is_counted_and_logged_and_the_rest_of_its_batch_is_written(
        path: str, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> bytes:
        raise ValueError("no bytes for you")

    store = SqliteStore(path, flush_interval=60)
    store.put_record("bridge", "good", b"kept")
    store.put_record("bridge", "bad", broken)
    store.put_retained(Message("r", b"1", retain=True))
    with caplog.at_level("ERROR", logger="rosettamq.store"):
        assert store.flush(5)
    assert store.encode_failures == 1
    assert "cannot store" in caplog.text and "no bytes for you" in caplog.text
    store = reopen(store)
    assert store.load_records("bridge") == {"good": b"kept"}
    assert list(store.load().retained) == ["r"]
    store.close()


def test_close_folds_the_wal_into_the_database_file(path: str) -> None:
    store = SqliteStore(path)
    fill(store)
    store.close()
    wal = Path(path + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as plain:
        assert plain.execute("SELECT count(*) FROM deliveries").fetchone() == (2,)


# -- group commit and sync ----------------------------------------------------------------


def test_many_changes_are_written_in_a_few_commits(path: str) -> None:
    store = SqliteStore(path)
    for seq in range(1, 5001):
        store.put_delivery("c1", StoredDelivery(seq, Message("t", b"x", 1), 1, False))
    assert store.flush(timeout=30)
    commits = store.commits
    store = reopen(store)
    assert len(store.load().deliveries["c1"]) == 5000
    store.close()
    assert 1 <= commits <= 10


def test_a_commit_comes_before_the_flush_interval_once_max_batch_changes_wait(path: str) -> None:
    store = SqliteStore(path, flush_interval=3600, max_batch=10)
    store.put_retained(Message("first", retain=True))
    store.flush()  # the last commit is now: the next one may wait an hour...
    done = threading.Event()
    for i in range(10):
        store.put_retained(Message(f"r/{i}", retain=True))
    store.sync(done.set)
    assert done.wait(10)  # ...but 10 waiting changes fill a batch
    assert store.commits == 2
    store.close()


def test_sync_with_nothing_pending_calls_back_before_returning(path: str) -> None:
    store = SqliteStore(path, call_soon_threadsafe=lambda fn, *args: pytest.fail("must not wait for the loop"))
    called: list[str] = []
    store.sync(lambda: called.append("now"))
    assert called == ["now"]
    store.close()


class FakeLoop:
    """Stands in for `loop.call_soon_threadsafe`: the test thread runs what the writer hands over."""

    def __init__(self) -> None:
        self.handed: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]]] = queue.Queue()

    def call_soon_threadsafe(self, fn: Callable[..., None], *args: Any) -> None:
        self.handed.put((fn, args))

    def run_until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        while not predicate():
            fn, args = self.handed.get(timeout=timeout)
            fn(*args)


def test_sync_callbacks_run_on_the_loop_after_their_commit_in_the_order_sync_was_called(path: str) -> None:
    loop = FakeLoop()
    store = SqliteStore(path, call_soon_threadsafe=loop.call_soon_threadsafe)
    order: list[tuple[int, int, str]] = []  # (callback, commits so far, thread)

    def callback(n: int) -> Callable[[], None]:
        return lambda: order.append((n, store.commits, threading.current_thread().name))

    store.put_retained(Message("a", retain=True))
    store.sync(callback(1))
    store.put_retained(Message("b", retain=True))
    store.sync(callback(2))
    store.sync(callback(3))  # no write of its own, but must not overtake 1 and 2
    assert order == []  # nothing is durable before a commit
    loop.run_until(lambda: len(order) == 3)
    assert [n for n, _, _ in order] == [1, 2, 3]
    assert all(commits >= 1 for _, commits, _ in order)
    assert {thread for _, _, thread in order} == {threading.current_thread().name}
    loop.run_until(lambda: store.pending == 0 and loop.handed.empty())
    store.sync(callback(4))  # everything released: immediate again
    assert [n for n, _, _ in order] == [1, 2, 3, 4]
    store.close()


# -- files that must be refused ------------------------------------------------------------------


def test_a_garbage_file_is_refused_with_a_store_error_and_left_untouched(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.db"
    content = b"these are not the pages you are looking for\n" * 200
    garbage.write_bytes(content)
    with pytest.raises(StoreError, match=f"{garbage}.*not a readable RosettaMQ store"):
        SqliteStore(str(garbage))
    assert garbage.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_a_database_from_a_newer_schema_is_refused_and_left_untouched(path: str) -> None:
    SqliteStore(path).close()
    with raw_db(path) as raw:
        raw.execute("PRAGMA user_version=7")
    before = Path(path).read_bytes()
    with pytest.raises(StoreError, match=rf"written by a newer RosettaMQ \(schema v7, this build knows v{len(MIGRATIONS)}\)"):
        SqliteStore(path)
    assert Path(path).read_bytes() == before


def test_another_applications_sqlite_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with raw_db(other) as raw:
        raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="another application"):
        SqliteStore(str(other))
    with raw_db(other) as raw:
        raw.execute("PRAGMA application_id=1234")
    with pytest.raises(StoreError, match="not a RosettaMQ store"):
        SqliteStore(str(other))


def test_a_corrupt_database_is_refused_with_an_error_naming_the_file(path: str) -> None:
    store = SqliteStore(path)
    for i in range(300):
        store.put_retained(Message(f"r/{i}", b"x" * 200, retain=True))
    store.close()
    page_size = 4096
    with open(path, "r+b") as f:  # wreck one page of the retained table's b-tree
        f.seek(2 * page_size)
        f.write(b"\xff" * page_size)
    with pytest.raises(StoreError, match=f"{path}.*corrupt"):
        SqliteStore(path)


def test_a_second_store_on_an_open_file_is_refused(path: str) -> None:
    first = SqliteStore(path)
    with pytest.raises(StoreError, match="in use by another process"):
        SqliteStore(path)
    first.close()
    SqliteStore(path).close()  # free again once the first is closed


def test_an_unknown_synchronous_mode_is_refused_before_touching_the_file(path: str) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of"):
        SqliteStore(path, synchronous="FULL; DROP TABLE retained")
    assert not Path(path).exists()


def test_a_path_in_a_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open store"):
        SqliteStore(str(tmp_path / "missing" / "store.db"))


# -- migrations --------------------------------------------------------------------------------


def _next_add_stored_at(db: sqlite3.Connection) -> None:
    """A stand-in for a future schema change: a new column, filled in for existing rows."""
    db.execute("ALTER TABLE retained ADD COLUMN stored_at REAL")
    db.execute("UPDATE retained SET stored_at = 1.5")


def test_a_database_is_migrated_to_the_next_version_by_one_registered_function_and_keeps_its_data(
    path: str,
) -> None:
    current, after = len(MIGRATIONS), len(MIGRATIONS) + 1
    store = SqliteStore(path)
    fill(store)
    store.close()
    store = SqliteStore(path, migrations=[*MIGRATIONS, _next_add_stored_at])
    store.put_retained(Message("after/v2", b"new", retain=True))  # writes still fit the new layout
    state = store.load()
    store.close()
    assert state.retained == {"a/b": FULL_MESSAGE, "after/v2": Message("after/v2", b"new", retain=True)}
    assert len(state.deliveries["c1"]) == 2
    with raw_db(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (after,)
        assert raw.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert raw.execute("SELECT topic, stored_at FROM retained ORDER BY topic").fetchall() == [
            ("a/b", 1.5), ("after/v2", None)
        ]
    with pytest.raises(StoreError, match=f"schema v{after}, this build knows v{current}"):
        SqliteStore(path)  # and the current build now refuses it


def test_a_failing_migration_is_rolled_back_and_the_database_stays_at_its_version(path: str) -> None:
    store = SqliteStore(path)
    fill(store)
    store.close()

    def broken_next(db: sqlite3.Connection) -> None:
        db.execute("DROP TABLE retained")
        raise RuntimeError("disk on fire")

    with pytest.raises(StoreError, match=rf"migration to schema v{len(MIGRATIONS) + 1} failed: disk on fire"):
        SqliteStore(path, migrations=[*MIGRATIONS, broken_next])
    store = SqliteStore(path)
    assert store.load().retained == {"a/b": FULL_MESSAGE}
    store.close()


def test_a_new_file_starts_at_the_newest_schema_with_the_rosettamq_application_id(path: str) -> None:
    SqliteStore(path).close()
    with raw_db(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        assert raw.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
