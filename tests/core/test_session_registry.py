"""SessionRegistry: open/resume/clean start, takeover, wills and their delay, expiry, restart."""

from __future__ import annotations

from core.broker import Broker
from core.door import Door
from core.principal import SYSTEM
from core.message import Message, Origin
from core.router import Router
from core.session_registry import SessionRegistry
from core.session_parts import NEVER_EXPIRES
from core.sessions import Session
from core.stores.memory import MemoryStore
from core.subscriptions import Delivery, SubscriptionOptions

from tests.core.test_sessions import FakeSink


class Clock:
    """A hand-driven wall clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Collector:
    """A router subscriber that keeps every message it receives."""

    is_online = True

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def is_origin_of(self, message: Message) -> bool:
        return False

    def deliver(self, delivery: Delivery, cache: dict) -> None:
        self.messages.append(delivery.message)


def make_registry(clock: Clock, store: MemoryStore | None = None) -> tuple[SessionRegistry, Collector]:
    router = Router()
    wills = Collector()
    router.subscribe(wills, "will/#", SubscriptionOptions(qos=1))
    return SessionRegistry(Door(router), store or MemoryStore(), clock=clock), wills


def will(payload: bytes = b"gone", retain: bool = False) -> Message:
    return Message("will/c1", payload, 1, retain, origin=Origin("mqtt", "c1"))


class LiveSink(FakeSink):
    """A sink that, like a real connection, reports its own disconnect when taken over."""

    def __init__(self, registry: SessionRegistry, session: Session) -> None:
        super().__init__()
        self.registry, self.session = registry, session

    def session_taken_over(self) -> None:
        super().session_taken_over()
        self.registry.disconnected(self.session, publish_will=True)


def connect(registry: SessionRegistry, client_id: str = "c1", *, clean: bool, expiry: int) -> tuple[Session, bool, LiveSink]:
    session, present = registry.open(client_id, clean_start=clean, expiry_interval=expiry)
    sink = LiveSink(registry, session)
    session.attach(sink, resume=present)
    return session, present, sink


# -- open, resume, clean start ---------------------------------------------------------


def test_a_persistent_session_is_resumed_with_session_present() -> None:
    clock = Clock()
    registry, _ = make_registry(clock)
    session, present, _ = connect(registry, clean=False, expiry=60)
    assert present is False
    session.subscribe("a/b", SubscriptionOptions(qos=1))
    registry.disconnected(session, publish_will=False)
    again, present, _ = connect(registry, clean=False, expiry=60)
    assert present is True
    assert again is session
    assert "a/b" in again.subscriptions


def test_clean_start_discards_the_old_session_and_its_subscriptions() -> None:
    clock = Clock()
    registry, _ = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=60)
    session.subscribe("a/b", SubscriptionOptions(qos=1))
    registry.disconnected(session, publish_will=False)
    fresh, present, _ = connect(registry, clean=True, expiry=60)
    assert present is False
    assert fresh is not session
    assert fresh.subscriptions == {}
    assert registry.router.publish(Message("a/b", b"x", 1)) == 0


def test_a_session_with_expiry_zero_ends_at_disconnect() -> None:
    clock = Clock()
    store = MemoryStore()
    registry, _ = make_registry(clock, store)
    session, _, _ = connect(registry, clean=False, expiry=0)
    session.subscribe("a/b", SubscriptionOptions(qos=1))
    registry.disconnected(session, publish_will=False)
    assert registry.get("c1") is None
    assert session.ended
    assert registry.router.publish(Message("a/b", b"x", 1)) == 0
    _, present, _ = connect(registry, clean=False, expiry=0)
    assert present is False


def test_lowering_the_expiry_to_zero_on_reconnect_removes_the_session_from_the_store() -> None:
    clock = Clock()
    store = MemoryStore()
    registry, _ = make_registry(clock, store)
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.disconnected(session, publish_will=False)
    assert "c1" in store.load().sessions
    connect(registry, clean=False, expiry=0)
    assert "c1" not in store.load().sessions


# -- takeover -------------------------------------------------------------------------


def test_a_second_connection_takes_over_and_the_session_continues() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, first = connect(registry, clean=False, expiry=60)
    session.subscribe("a/b", SubscriptionOptions(qos=1))
    again, present, second = connect(registry, clean=False, expiry=60)
    assert first.taken_over is True
    assert present is True and again is session
    assert session.sink is second
    registry.router.publish(Message("a/b", b"after", 1))
    assert second.payloads() == [b"after"]
    assert first.payloads() == []


def test_takeover_publishes_the_old_connections_will() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.set_will(session, will(b"first"))
    connect(registry, clean=False, expiry=60)
    assert [m.payload for m in wills.messages] == [b"first"]


def test_takeover_with_a_delayed_will_and_resumed_session_never_publishes_it() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.set_will(session, will(), delay=10)
    connect(registry, clean=False, expiry=60)
    clock.now += 100
    registry.run_due()
    assert wills.messages == []


def test_takeover_with_clean_start_ends_the_old_session_and_publishes_its_delayed_will() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.set_will(session, will(), delay=10)
    fresh, present, _ = connect(registry, clean=True, expiry=60)
    assert present is False and fresh is not session
    assert [m.payload for m in wills.messages] == [b"gone"]


# -- wills ----------------------------------------------------------------------------


def test_an_abnormal_disconnect_publishes_the_will_at_once_without_delay() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.set_will(session, will())
    registry.disconnected(session, publish_will=True)
    assert [m.payload for m in wills.messages] == [b"gone"]
    assert registry.wills_published == 1
    assert registry.get("c1") is session  # the session itself lives on


def test_a_normal_disconnect_discards_the_will() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.set_will(session, will(), delay=5)
    registry.disconnected(session, publish_will=False)
    clock.now += 1000
    registry.run_due()
    assert wills.messages == []
    assert registry.get("c1") is None  # expired, without a will


def test_a_delayed_will_is_published_when_its_delay_has_passed() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.set_will(session, will(), delay=5)
    registry.disconnected(session, publish_will=True)
    assert wills.messages == []
    assert registry.next_deadline() == clock.now + 5
    registry.run_due(clock.now + 4.9)
    assert wills.messages == []
    registry.run_due(clock.now + 5)
    assert [m.payload for m in wills.messages] == [b"gone"]
    assert registry.get("c1") is session
    assert registry.next_deadline() == clock.now + 60  # then the session's own expiry


def test_the_will_delay_is_capped_by_the_session_expiry() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=10)
    registry.set_will(session, will(), delay=100)
    registry.disconnected(session, publish_will=True)
    assert session.will_at == clock.now + 10
    registry.run_due(clock.now + 9.99)
    assert wills.messages == [] and registry.get("c1") is session
    registry.run_due(clock.now + 10)
    assert [m.payload for m in wills.messages] == [b"gone"]
    assert registry.get("c1") is None
    assert registry.sessions_expired == 1


def test_a_delayed_will_on_a_session_without_expiry_is_published_at_disconnect() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=True, expiry=0)
    registry.set_will(session, will(), delay=30)
    registry.disconnected(session, publish_will=True)
    assert [m.payload for m in wills.messages] == [b"gone"]


def test_reconnecting_within_the_will_delay_cancels_the_will() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.set_will(session, will(), delay=5)
    registry.disconnected(session, publish_will=True)
    clock.now += 3
    connect(registry, clean=False, expiry=60)
    clock.now += 10
    registry.run_due()
    assert wills.messages == []
    assert registry.next_deadline() is None


def test_the_will_expiry_interval_counts_from_when_the_will_is_published() -> None:
    clock = Clock()
    registry, wills = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.set_will(session, will(), delay=5, expiry_interval=30)
    registry.disconnected(session, publish_will=True)
    clock.now += 5
    registry.run_due()
    assert wills.messages[0].expiry == clock.now + 30


def test_an_earlier_deadline_is_announced() -> None:
    clock = Clock()
    registry, _ = make_registry(clock)
    calls: list[float | None] = []
    registry.on_deadline_change = lambda: calls.append(registry.next_deadline())
    session, _, _ = connect(registry, clean=False, expiry=60)
    registry.set_will(session, will(), delay=5)
    registry.disconnected(session, publish_will=True)
    assert calls and calls[-1] == clock.now + 5


# -- expiry --------------------------------------------------------------------------


def test_an_offline_session_expires_after_its_interval() -> None:
    clock = Clock()
    store = MemoryStore()
    registry, _ = make_registry(clock, store)
    session, _, _ = connect(registry, clean=False, expiry=1)
    session.subscribe("a/b", SubscriptionOptions(qos=1))
    registry.disconnected(session, publish_will=False)
    registry.router.publish(Message("a/b", b"queued", 1))
    registry.run_due(clock.now + 0.999)
    assert registry.get("c1") is session
    registry.run_due(clock.now + 1)
    assert registry.get("c1") is None
    assert "c1" not in store.load().sessions
    assert registry.router.publish(Message("a/b", b"x", 1)) == 0
    _, present, _ = connect(registry, clean=False, expiry=1)
    assert present is False


def test_a_session_that_never_expires_has_no_deadline() -> None:
    clock = Clock()
    registry, _ = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=NEVER_EXPIRES)
    registry.disconnected(session, publish_will=False)
    assert registry.next_deadline() is None
    registry.run_due(clock.now + 10**9)
    assert registry.get("c1") is session


def test_reconnecting_before_expiry_keeps_the_session_past_the_old_deadline() -> None:
    clock = Clock()
    registry, _ = make_registry(clock)
    session, _, _ = connect(registry, clean=False, expiry=10)
    registry.disconnected(session, publish_will=False)
    clock.now += 5
    connect(registry, clean=False, expiry=10)
    registry.run_due(clock.now + 100)
    assert registry.get("c1") is session


# -- restart from the store ------------------------------------------------------------


def test_a_new_broker_on_the_same_store_recovers_sessions_messages_and_retained() -> None:
    clock = Clock()
    store = MemoryStore()
    before = Broker(store, clock=clock)
    before.start()
    registry = before.mqtt_sessions
    session, _, sink = connect(registry, clean=False, expiry=3600)
    session.subscribe("a/#", SubscriptionOptions(qos=2))
    sink.receive_maximum = 2
    before.publish(SYSTEM, Message("a/1", b"one", 2))
    before.publish(SYSTEM, Message("a/2", b"two", 1))
    before.publish(SYSTEM, Message("a/3", b"three", 1))
    before.publish(SYSTEM, Message("a/4", b"four", 2))
    before.publish(SYSTEM, Message("r/t", b"kept", 0, retain=True))
    id_one, id_two = sink.sent[0][0], sink.sent[1][0]
    session.release(id_one)  # PUBREC came for "one": PUBREL must follow after restart
    assert session.add_incoming_qos2(42)
    registry.set_will(session, will(), delay=600)
    registry.disconnected(session, publish_will=False)
    after = Broker(store, clock=clock)  # the old broker is simply dropped: a simulated restart
    after.start()
    restored = after.mqtt_sessions.get("c1")
    assert restored is not None and restored is not session
    assert restored.subscriptions == {"a/#": SubscriptionOptions(qos=2)}
    assert restored.incoming_qos2 == {42}
    assert after.router.retained.get("r/t").payload == b"kept"
    after.publish(SYSTEM, Message("a/5", b"five", 1))  # subscriptions are live in the new router
    resumed, present = after.mqtt_sessions.open("c1", clean_start=False, expiry_interval=3600)
    assert present is True and resumed is restored
    sink2 = FakeSink()
    resumed.attach(sink2, resume=True)
    assert sink2.pubrels == [id_one]
    assert sink2.sent[0] == (id_two, b"two", True)
    assert [payload for _, payload, _ in sink2.sent] == [b"two", b"three", b"four", b"five"]
    assert [dup for _, _, dup in sink2.sent] == [True, False, False, False]
    assert id_one not in [pid for pid, _, _ in sink2.sent]  # new ids never collide with in-flight ones


def test_a_restart_resumes_the_expiry_countdown_of_offline_sessions() -> None:
    clock = Clock()
    store = MemoryStore()
    before = Broker(store, clock=clock)
    before.start()
    session, _, _ = connect(before.mqtt_sessions, clean=False, expiry=10)
    before.mqtt_sessions.disconnected(session, publish_will=False)
    clock.now += 4
    after = Broker(store, clock=clock)
    after.start()
    assert after.mqtt_sessions.get("c1") is not None
    assert after.mqtt_sessions.next_deadline() == clock.now + 6
    clock.now += 6
    after.run_due()
    assert after.mqtt_sessions.get("c1") is None


def test_a_session_past_its_expiry_at_restart_is_gone_and_its_will_published() -> None:
    clock = Clock()
    store = MemoryStore()
    before = Broker(store, clock=clock)
    before.start()
    session, _, _ = connect(before.mqtt_sessions, clean=False, expiry=10)
    before.mqtt_sessions.set_will(session, will(), delay=5)
    before.mqtt_sessions.disconnected(session, publish_will=True)
    clock.now += 60
    after = Broker(store, clock=clock)
    wills = Collector()
    after.router.subscribe(wills, "will/#", SubscriptionOptions(qos=1))
    after.start()
    assert after.mqtt_sessions.get("c1") is None
    assert [m.payload for m in wills.messages] == [b"gone"]


def test_a_session_online_at_a_crash_counts_its_expiry_from_the_restart() -> None:
    clock = Clock()
    store = MemoryStore()
    before = Broker(store, clock=clock)
    before.start()
    session, _, _ = connect(before.mqtt_sessions, clean=False, expiry=10)
    before.mqtt_sessions.disconnected(session, publish_will=False)
    clock.now += 5
    connect(before.mqtt_sessions, clean=False, expiry=10)  # back online, for a long time
    clock.now += 1000
    after = Broker(store, clock=clock)  # crash: no disconnect was recorded
    after.start()
    assert after.mqtt_sessions.get("c1") is not None
    assert after.mqtt_sessions.next_deadline() == clock.now + 10


# -- what ending a session writes ---------------------------------------------------------


class DeleteCounter(MemoryStore):
    """A memory store that counts the sessions it is asked to delete."""

    def __init__(self) -> None:
        super().__init__()
        self.deleted: list[str] = []

    def delete_session(self, client_id: str) -> None:
        self.deleted.append(client_id)
        super().delete_session(client_id)


def test_a_clean_session_that_ends_asks_the_store_for_nothing() -> None:
    store = DeleteCounter()
    registry, _ = make_registry(Clock(), store)
    session, _, _ = connect(registry, clean=True, expiry=0)
    session.subscribe("a/b", SubscriptionOptions(qos=1))
    registry.disconnected(session, publish_will=False)
    assert session.ended and store.deleted == [] and store.load().sessions == {}


def test_a_session_that_was_persistent_once_is_deleted_from_the_store_when_it_ends() -> None:
    store = DeleteCounter()
    clock = Clock()
    registry, _ = make_registry(clock, store)
    session, _, _ = connect(registry, clean=False, expiry=60)
    session.subscribe("a/b", SubscriptionOptions(qos=1))
    registry.disconnected(session, publish_will=False)
    assert "c1" in store.load().sessions
    resumed, present, _ = connect(registry, clean=False, expiry=0)  # back, now with expiry 0
    assert present and resumed is session
    registry.disconnected(resumed, publish_will=False)
    assert store.deleted[-1] == "c1" and store.load().sessions == {} and store.load().subscriptions == {}


def test_a_session_persistent_from_the_start_whose_expiry_drops_to_zero_is_deleted() -> None:
    store = DeleteCounter()
    registry, _ = make_registry(Clock(), store)
    session, _, _ = connect(registry, clean=True, expiry=60)
    session.subscribe("a/b", SubscriptionOptions(qos=1))
    session.expiry_interval = 0  # as an MQTT 5 DISCONNECT may set it
    registry.disconnected(session, publish_will=False)
    assert store.deleted == ["c1"] and store.load().sessions == {} and store.load().subscriptions == {}


def test_a_clean_sessions_will_handed_to_the_cluster_is_forgotten_through_the_store_when_it_ends() -> None:
    store = DeleteCounter()
    registry, _ = make_registry(Clock(), store)
    handed: list[str] = []
    registry.on_will = lambda session: handed.append(session.client_id)
    session, _, _ = connect(registry, clean=True, expiry=0)
    registry.set_will(session, will())
    registry.disconnected(session, publish_will=False)
    assert handed == ["c1"] and store.deleted == ["c1"]


def test_a_clean_session_without_a_will_in_a_cluster_asks_the_store_for_nothing_either() -> None:
    store = DeleteCounter()
    registry, _ = make_registry(Clock(), store)
    handed: list[object] = []
    registry.on_will = lambda session: handed.append(session.will)
    session, _, _ = connect(registry, clean=True, expiry=0)
    registry.set_will(session, None)  # (the cluster is told, to clear a will it never got)
    registry.disconnected(session, publish_will=False)
    assert handed == [None] and store.deleted == []

