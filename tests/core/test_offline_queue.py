"""Offline persistent sessions keep their queue in the store, not in memory, and get it back in order."""

from __future__ import annotations

from pathlib import Path

from core.broker import Broker
from core.principal import SYSTEM
from core.message import Message
from core.stores.memory import MemoryStore
from core.stores.sqlite import SqliteStore
from core.subscriptions import SubscriptionOptions

from tests.core.test_session_registry import Clock, connect
from tests.core.test_sessions import FakeSink, delivery, make_session


def test_an_offline_session_holds_no_queue_in_memory_and_resumes_in_order() -> None:
    store = MemoryStore()
    session = make_session(expiry=60, store=store)
    sink = FakeSink(receive_maximum=1)
    session.attach(sink, resume=False)
    for payload in (b"1", b"2", b"3"):
        session.deliver(delivery(payload))
    assert sink.payloads() == [b"1"] and len(session.queue) == 2
    session.detach(now=0.0)
    session.deliver(delivery(b"4"))
    session.deliver(delivery(b"5"))
    assert list(session.queue) == [] and session.queued == 4
    assert [d.message.payload for d in store.load_deliveries("c1")] == [b"1", b"2", b"3", b"4", b"5"]
    back = FakeSink()
    session.attach(back, resume=True)
    assert back.sent[0][1:] == (b"1", True)  # the in-flight one again, with DUP
    assert back.payloads() == [b"1", b"2", b"3", b"4", b"5"]
    assert session.queued == 0


def test_the_queue_limit_counts_what_waits_in_the_store() -> None:
    session = make_session(expiry=60, max_queued=3)
    session.attach(FakeSink(writable=False), resume=False)
    session.deliver(delivery(b"1"))
    session.deliver(delivery(b"2"))
    session.detach(now=0.0)
    for payload in (b"3", b"4", b"5"):
        session.deliver(delivery(payload))
    assert session.queued == 3 and session.counters.queue_full == 2
    back = FakeSink()
    session.attach(back, resume=True)
    assert back.payloads() == [b"1", b"2", b"3"]


def test_after_a_restart_queued_messages_stay_on_disk_until_the_client_returns(tmp_path: Path) -> None:
    path = str(tmp_path / "broker.db")
    clock = Clock()
    before = Broker(SqliteStore(path), clock=clock)
    before.start()
    session, _, _ = connect(before.mqtt_sessions, clean=False, expiry=3600)
    session.subscribe("a/#", SubscriptionOptions(qos=1))
    before.mqtt_sessions.disconnected(session, publish_will=False)
    for n in range(3):
        before.publish(SYSTEM, Message(f"a/{n}", b"%d" % n, 1))
    assert list(session.queue) == [] and session.queued == 3
    before.close()

    after = Broker(SqliteStore(path), clock=clock)
    after.start()
    restored = after.mqtt_sessions.get("c1")
    assert restored is not None and list(restored.queue) == [] and restored.queued == 3
    after.publish(SYSTEM, Message("a/3", b"3", 1))  # written, not held
    assert list(restored.queue) == [] and restored.queued == 4
    # Coming back without a session expiry: the queue is read before the store forgets the session.
    resumed, present = after.mqtt_sessions.open("c1", clean_start=False, expiry_interval=0)
    assert present and resumed is restored
    sink = FakeSink()
    resumed.attach(sink, resume=True)
    assert sink.payloads() == [b"0", b"1", b"2", b"3"]
    after.close()
