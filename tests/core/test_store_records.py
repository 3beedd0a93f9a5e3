"""Adapters' opaque records in the stores, and the v1 -> v2 migration that added them."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from core.message import Message
from core.stores.base import StoredDelivery, StoredSession
from core.stores.memory import MemoryStore
from core.stores.sqlite import SqliteStore
from core.stores.sqlite_schema import MIGRATIONS


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "store.db")


def test_records_survive_close_and_reopen_by_kind_and_key(path: str) -> None:
    store = SqliteStore(path)
    store.put_record("amqp.queue", "q1", b"\x00one")
    store.put_record("amqp.queue", "q2", b"two")
    store.put_record("lwm2m.registration", "q1", b"same key, other kind")
    store.put_record("amqp.queue", "q2", b"two, replaced")
    store.delete_record("amqp.queue", "q1")
    store.close()
    store = SqliteStore(path)
    assert store.load_records("amqp.queue") == {"q2": b"two, replaced"}
    assert store.load_records("lwm2m.registration") == {"q1": b"same key, other kind"}
    assert store.load_records("unknown.kind") == {}
    store.close()


def test_a_record_value_given_as_a_function_is_made_on_the_writer_thread_and_skipped_if_deleted(path: str) -> None:
    store = SqliteStore(path, flush_interval=60)
    threads: list[str] = []

    def make() -> bytes:
        threads.append(threading.current_thread().name)
        return b"made late"

    def never() -> bytes:
        raise AssertionError("a record deleted within its batch is never encoded")

    store.put_record("k", "kept", make)
    store.put_record("k", "gone", never)
    store.delete_record("k", "gone")
    assert store.load_records("k") == {"kept": b"made late"}  # load commits what is queued
    assert threads and threads[0].startswith("store-writer")
    store.close()


def test_deleting_a_session_named_like_a_record_kind_keeps_the_records_queued_in_the_same_batch(path: str) -> None:
    store = SqliteStore(path, flush_interval=60)
    store.put_record("amqp.message", "m1", b"body")
    store.put_session(StoredSession("amqp.message", "mqtt", 60))
    store.delete_session("amqp.message")
    assert store.load_records("amqp.message") == {"m1": b"body"}
    assert store.load().sessions == {}
    store.close()


def test_sync_calls_back_only_once_a_queued_record_is_committed(path: str) -> None:
    store = SqliteStore(path, flush_interval=0.05)
    pending_at_callback: list[int] = []
    done = threading.Event()
    store.put_record("amqp.message", "m1", b"body")

    def synced() -> None:
        pending_at_callback.append(store.pending)
        done.set()

    store.sync(synced)
    assert done.wait(5)
    assert pending_at_callback == [0] and store.commits == 1
    store.close()


def test_the_memory_store_keeps_records_like_the_sqlite_store() -> None:
    store = MemoryStore()
    store.put_record("k", "a", b"1")
    store.put_record("k", "b", lambda: b"2")
    store.delete_record("k", "a")
    store.delete_record("k", "missing")
    assert store.load_records("k") == {"b": b"2"}
    assert store.load_records("other") == {}


def test_a_v1_database_written_by_the_v1_code_migrates_to_v2_keeping_its_data(path: str) -> None:
    v1 = SqliteStore(path, migrations=MIGRATIONS[:1])
    v1.put_session(StoredSession("c1", "mqtt", 3600, "alice"))
    v1.put_delivery("c1", StoredDelivery(1, Message("q/1", b"queued", 1), 1, False))
    v1.put_retained(Message("r/1", b"kept", retain=True))
    v1.close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (1,)
        assert raw.execute("SELECT name FROM sqlite_master WHERE name='records'").fetchall() == []

    store = SqliteStore(path)
    state = store.load()
    assert state.sessions["c1"] == StoredSession("c1", "mqtt", 3600, "alice")
    assert state.deliveries["c1"][1].message == Message("q/1", b"queued", 1)
    assert state.retained == {"r/1": Message("r/1", b"kept", retain=True)}
    store.put_record("amqp.exchange", "x", b"new")
    store.close()
    with closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (2,)
        assert raw.execute("SELECT kind, key, value FROM records").fetchall() == [("amqp.exchange", "x", b"new")]
