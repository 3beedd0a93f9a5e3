"""A session handed from one node's registry to another's (core/session_handover.py)."""

from __future__ import annotations

from core.door import Door
from core.message import Message, Origin
from core.principal import SYSTEM
from core.session_handover import adopt_session, export_session
from core.subscriptions import SubscriptionOptions
from core.stores.memory import MemoryStore
from tests.core.test_session_registry import Clock, connect, make_registry


def publish(registry, topic: str, payload: bytes, qos: int = 1) -> None:  # type: ignore[no-untyped-def]
    Door(registry.router).publish(SYSTEM, Message(topic, payload, qos, origin=Origin("mqtt", "pub")))


def test_an_offline_session_moves_with_its_subscriptions_queue_in_flight_and_qos2_ids() -> None:
    clock = Clock()
    store_a, store_b = MemoryStore(), MemoryStore()
    node_a, _ = make_registry(clock, store_a)
    node_b, _ = make_registry(clock, store_b)
    session, _, sink = connect(node_a, clean=False, expiry=600)
    node_a.router.subscribe(session, "s/#", SubscriptionOptions(qos=1))
    session.subscriptions["s/#"] = SubscriptionOptions(qos=1)
    session.add_incoming_qos2(7)  # a QoS 2 PUBLISH received, its PUBREL not yet
    publish(node_a, "s/1", b"in flight")
    assert [p for p, _, _ in sink.sent] == [1]  # sent, never acknowledged
    node_a.disconnected(session, publish_will=False)
    for n in range(3):
        publish(node_a, f"s/{n}", f"queued {n}".encode())

    snapshot = export_session(node_a, "c1")
    assert snapshot is not None
    assert "c1" not in node_a.sessions
    result = Door(node_a.router).publish(SYSTEM, Message("s/x", b"", 1, origin=Origin("mqtt", "pub")))
    assert result.deliveries == 0  # its subscription left the old node's router
    assert store_a.load().sessions == {}  # gone from the old node's store too

    adopt_session(node_b, snapshot)
    assert "c1" in store_b.load().sessions and store_b.load().subscriptions["c1"] == {"s/#": SubscriptionOptions(qos=1)}
    resumed, present, new_sink = connect(node_b, clean=False, expiry=600)
    assert present and resumed.incoming_qos2 == {7}
    assert new_sink.sent[0] == (1, b"in flight", True)  # same packet id, DUP
    assert [payload for _, payload, _ in new_sink.sent[1:]] == [b"queued 0", b"queued 1", b"queued 2"]
    publish(node_b, "s/after", b"routed on the new node")
    assert new_sink.sent[-1][1] == b"routed on the new node"


def test_an_online_session_is_taken_over_first_and_a_clean_one_does_not_move() -> None:
    clock = Clock()
    node_a, _ = make_registry(clock)
    persistent, _, sink = connect(node_a, "p1", clean=False, expiry=60)
    assert export_session(node_a, "p1") is not None and sink.taken_over
    clean, _, clean_sink = connect(node_a, "c2", clean=True, expiry=0)
    assert export_session(node_a, "c2") is None and clean_sink.taken_over  # its session ended with its connection
    assert export_session(node_a, "nobody") is None


def test_the_will_travels_and_is_published_once_by_the_new_node_when_its_delay_runs_out() -> None:
    clock = Clock()
    node_a, wills_a = make_registry(clock)
    node_b, wills_b = make_registry(clock)
    session, _, _ = connect(node_a, clean=False, expiry=600)
    node_a.set_will(session, Message("will/c1", b"gone", 1, origin=Origin("mqtt", "c1")), delay=30)
    node_a.disconnected(session, publish_will=True)  # the will waits for its delay
    snapshot = export_session(node_a, "c1")
    assert snapshot is not None and snapshot.session.will is not None
    adopt_session(node_b, snapshot)
    clock.now += 31
    node_a.run_due(clock.now)
    node_b.run_due(clock.now)
    assert wills_a.messages == [] and [m.payload for m in wills_b.messages] == [b"gone"]
