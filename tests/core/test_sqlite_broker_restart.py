"""A real Broker on a SqliteStore, closed and rebuilt from the file: what must come back does, what ended stays gone."""

from __future__ import annotations

from pathlib import Path

from core.broker import Broker
from core.principal import SYSTEM
from core.message import Message
from core.stores.sqlite import SqliteStore
from core.subscriptions import SubscriptionOptions

from tests.core.test_session_registry import Clock, Collector, connect, will
from tests.core.test_sessions import FakeSink


def test_a_broker_reopened_on_the_sqlite_file_recovers_sessions_messages_qos2_ids_wills_and_retained(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "broker.db")
    clock = Clock()
    before = Broker(SqliteStore(path), clock=clock)
    before.start()
    registry = before.mqtt_sessions
    session, _, sink = connect(registry, clean=False, expiry=3600)
    session.subscribe("a/#", SubscriptionOptions(qos=2, subscription_id=7))
    sink.receive_maximum = 2
    before.publish(SYSTEM, Message("a/1", b"one", 2))
    before.publish(SYSTEM, Message("a/2", b"two", 1))
    before.publish(SYSTEM, Message("a/3", b"three", 1))
    before.publish(SYSTEM, Message("a/4", b"four", 2, content_type="text/plain", user_properties=(("k", "v"),)))
    before.publish(SYSTEM, Message("r/t", b"kept", 0, retain=True))
    id_one, id_two = sink.sent[0][0], sink.sent[1][0]
    session.release(id_one)  # PUBREC came for "one": PUBREL must follow after the restart
    assert session.add_incoming_qos2(42)
    registry.set_will(session, will(), delay=600)
    registry.disconnected(session, publish_will=True)  # the network dropped: the delayed will waits
    before.close()

    after = Broker(SqliteStore(path), clock=clock)
    wills = Collector()
    after.router.subscribe(wills, "will/#", SubscriptionOptions(qos=1))
    after.start()
    restored = after.mqtt_sessions.get("c1")
    assert restored is not None
    assert restored.subscriptions == {"a/#": SubscriptionOptions(qos=2, subscription_id=7)}
    assert restored.incoming_qos2 == {42}
    assert after.router.retained.get("r/t").payload == b"kept"
    assert after.mqtt_sessions.next_deadline() == clock.now + 600  # the delayed will is still pending
    after.publish(SYSTEM, Message("a/5", b"five", 1))  # the subscription is live in the new router
    resumed, present = after.mqtt_sessions.open("c1", clean_start=False, expiry_interval=3600)
    assert present is True and resumed is restored
    sink2 = FakeSink()
    resumed.attach(sink2, resume=True)
    assert sink2.pubrels == [id_one]
    assert sink2.sent[0] == (id_two, b"two", True)
    assert [payload for _, payload, _ in sink2.sent] == [b"two", b"three", b"four", b"five"]
    assert [dup for _, _, dup in sink2.sent] == [True, False, False, False]
    assert wills.messages == []  # reconnecting cancelled the will
    after.close()


def test_what_ended_before_a_restart_stays_gone_after_it(tmp_path: Path) -> None:
    path = str(tmp_path / "broker.db")
    clock = Clock()
    before = Broker(SqliteStore(path), clock=clock)
    before.start()
    registry = before.mqtt_sessions
    session, _, sink = connect(registry, clean=False, expiry=3600)
    session.subscribe("a/#", SubscriptionOptions(qos=1))
    before.publish(SYSTEM, Message("a/1", b"acked", 1))
    assert session.acknowledge(sink.sent[0][0])
    assert session.add_incoming_qos2(5) and session.complete_incoming_qos2(5)
    assert session.unsubscribe("a/#")
    connect(registry, "gone", clean=False, expiry=3600)
    connect(registry, "gone", clean=True, expiry=0)  # clean start ends the old persistent session
    before.publish(SYSTEM, Message("r/t", b"kept", 0, retain=True))
    before.publish(SYSTEM, Message("r/t", b"", 0, retain=True))  # an empty retained message clears it
    before.close()

    after = Broker(SqliteStore(path), clock=clock)
    after.start()
    restored = after.mqtt_sessions.get("c1")
    assert restored is not None
    assert restored.subscriptions == {} and restored.inflight == {} and restored.incoming_qos2 == set()
    assert after.mqtt_sessions.get("gone") is None
    assert after.router.retained.get("r/t") is None
    after.close()


def test_expired_retained_messages_leave_the_store_on_lookup_on_the_sweep_and_at_start(tmp_path: Path) -> None:
    path = str(tmp_path / "broker.db")
    clock = Clock()
    broker = Broker(SqliteStore(path), clock=clock)
    broker.start()
    for name in ("looked-up", "swept", "at-start"):
        broker.publish(SYSTEM, Message(f"r/{name}", b"v", retain=True, expiry=clock.now + 10))
    broker.publish(SYSTEM, Message("r/forever", b"v", retain=True))
    clock.now += 11
    assert broker.router.retained.get("r/looked-up", clock.now) is None  # a lookup prunes it
    assert broker.next_deadline() is not None
    broker.run_due(clock.now + 60)  # the periodic sweep
    assert sorted(m.topic for m in broker.router.retained) == ["r/forever"]
    broker.store.flush()
    assert sorted(broker.store.load().retained) == ["r/forever"]
    broker.publish(SYSTEM, Message("r/at-start", b"v", retain=True, expiry=clock.now + 1))
    broker.close()
    clock.now += 5
    again = Broker(SqliteStore(path), clock=clock)
    again.start()  # expired while the gateway was down: dropped from the file as well
    again.store.flush()
    assert sorted(again.store.load().retained) == ["r/forever"]
    again.close()
