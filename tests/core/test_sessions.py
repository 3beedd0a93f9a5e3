"""Session: the in-flight window, the ordered queue, packet ids, bounds, expiry and resumption."""

from __future__ import annotations

from core.message import Message
from core.router import Router
from core.session_parts import SessionLimits
from core.sessions import Session
from core.stores.memory import MemoryStore
from core.subscriptions import Delivery, SubscriptionOptions

EXPIRED = 1.0  # an absolute deadline long past (1970)


class FakeSink:
    """A connection stand-in that records what the session sends through it."""

    def __init__(self, receive_maximum: int = 65535, writable: bool = True, accept: bool = True) -> None:
        self.receive_maximum = receive_maximum
        self.writable = writable
        self.accept = accept
        self.sent: list[tuple[int | None, bytes, bool]] = []  # (packet id, payload, dup)
        self.pubrels: list[int] = []
        self.taken_over = False

    def can_send(self) -> bool:
        return self.writable

    def send_publish(self, packet_id, delivery, dup, cache) -> bool:  # type: ignore[no-untyped-def]
        self.sent.append((packet_id, delivery.message.payload, dup))
        return self.accept

    def send_pubrel(self, packet_id: int) -> None:
        self.pubrels.append(packet_id)

    def session_taken_over(self) -> None:
        self.taken_over = True

    def payloads(self) -> list[bytes]:
        return [payload for _, payload, _ in self.sent]


def make_session(expiry: int = 0, store: MemoryStore | None = None, **limits: int) -> Session:
    return Session(
        "c1",
        protocol="mqtt",
        router=Router(),
        store=store if store is not None else MemoryStore(),
        expiry_interval=expiry,
        limits=SessionLimits(**limits),
    )


def delivery(payload: bytes, qos: int = 1, expiry: float | None = None) -> Delivery:
    return Delivery(Message("t", payload, qos, expiry=expiry), qos, False)


def attached(session: Session, **sink_args: object) -> FakeSink:
    sink = FakeSink(**sink_args)  # type: ignore[arg-type]
    session.attach(sink, resume=False)
    return sink


# -- window and queue -------------------------------------------------------------


def test_qos1_messages_beyond_the_receive_maximum_wait_in_the_queue_in_order() -> None:
    session = make_session()
    sink = attached(session, receive_maximum=2)
    for n in range(5):
        session.deliver(delivery(b"%d" % n))
    assert sink.payloads() == [b"0", b"1"]
    assert [d.message.payload for _, d in session.queue] == [b"2", b"3", b"4"]
    assert len(session.inflight) == 2


def test_acknowledging_opens_the_window_and_sends_the_next_queued_message() -> None:
    session = make_session()
    sink = attached(session, receive_maximum=2)
    for n in range(4):
        session.deliver(delivery(b"%d" % n))
    first_id = sink.sent[0][0]
    assert session.acknowledge(first_id) is True
    assert sink.payloads() == [b"0", b"1", b"2"]
    assert first_id not in session.inflight
    assert session.acknowledge(first_id) is False  # unknown the second time


def test_a_new_message_never_overtakes_queued_ones_when_the_window_reopens() -> None:
    session = make_session()
    sink = attached(session, receive_maximum=1)
    session.deliver(delivery(b"a"))
    session.deliver(delivery(b"b"))
    session.acknowledge(sink.sent[0][0])  # "b" goes out, window full again
    session.deliver(delivery(b"c"))
    session.acknowledge(sink.sent[1][0])
    assert sink.payloads() == [b"a", b"b", b"c"]


def test_a_new_message_waits_behind_queued_ones_even_when_the_window_is_open() -> None:
    session = make_session()
    sink = attached(session, writable=False)
    session.deliver(delivery(b"first"))
    sink.writable = True  # the transport drained, the queue has not been pumped yet
    session.deliver(delivery(b"second"))
    session.pump()
    assert sink.payloads() == [b"first", b"second"]


def test_the_session_limit_caps_the_window_below_the_clients_receive_maximum() -> None:
    session = make_session(max_inflight=3)
    sink = attached(session, receive_maximum=100)
    for n in range(10):
        session.deliver(delivery(b"%d" % n))
    assert len(sink.sent) == 3
    assert len(session.queue) == 7


def test_qos0_goes_straight_out_and_is_not_tracked() -> None:
    session = make_session()
    sink = attached(session, receive_maximum=1)
    session.deliver(delivery(b"busy", qos=1))
    session.deliver(delivery(b"q0", qos=0))
    assert sink.sent[-1] == (None, b"q0", False)
    assert len(session.inflight) == 1
    assert not session.queue


def test_qos0_for_an_offline_session_is_dropped_and_counted() -> None:
    session = make_session(expiry=60)
    session.deliver(delivery(b"q0", qos=0))
    session.deliver(delivery(b"q1", qos=1))
    assert session.counters.offline_qos0 == 1
    assert attached(session).payloads() == [b"q1"]


def test_a_paused_transport_holds_qos0_and_qos1_in_order_until_it_drains() -> None:
    session = make_session()
    sink = attached(session, writable=False)
    session.deliver(delivery(b"q0", qos=0))
    session.deliver(delivery(b"q1", qos=1))
    assert sink.sent == []
    assert session.counters.slow_consumer_qos0 == 0
    sink.writable = True
    session.pump()
    assert sink.payloads() == [b"q0", b"q1"]
    assert [packet_id is None for packet_id, _, _ in sink.sent] == [True, False]


def test_qos0_is_dropped_and_counted_only_once_the_queue_bound_is_reached() -> None:
    session = make_session(max_queued=3)
    sink = attached(session, writable=False)
    for n in range(5):
        session.deliver(delivery(b"%d" % n, qos=0))
    assert session.counters.slow_consumer_qos0 == 2
    sink.writable = True
    session.pump()
    assert sink.payloads() == [b"0", b"1", b"2"]


def test_held_qos0_messages_are_not_kept_for_an_offline_persistent_session() -> None:
    session = make_session(expiry=60)
    attached(session, writable=False)
    session.deliver(delivery(b"q0", qos=0))
    session.deliver(delivery(b"q1", qos=1))
    session.detach(0.0)
    assert session.counters.offline_qos0 == 1
    assert session.queued == 1


def test_a_message_the_connection_discards_counts_as_done() -> None:
    session = make_session()
    sink = attached(session, accept=False)
    session.deliver(delivery(b"too big"))
    assert sink.payloads() == [b"too big"]
    assert session.inflight == {}


# -- bounds and expiry ------------------------------------------------------------


def test_the_queue_is_bounded_and_drops_newest_messages_with_a_count() -> None:
    session = make_session(expiry=60, max_queued=3)
    for n in range(5):
        session.deliver(delivery(b"%d" % n))
    assert session.queued == 3 and session.counters.queue_full == 2
    assert attached(session).payloads() == [b"0", b"1", b"2"]


def test_expired_queued_messages_are_dropped_when_the_queue_drains() -> None:
    store = MemoryStore()
    session = make_session(expiry=60, store=store)
    session.deliver(delivery(b"old", expiry=EXPIRED))
    session.deliver(delivery(b"fresh"))
    session.deliver(delivery(b"forever", expiry=None))
    assert len(store.load().deliveries["c1"]) == 3
    sink = attached(session)
    assert sink.payloads() == [b"fresh", b"forever"]
    assert session.counters.expired == 1
    assert all(d.packet_id is not None for d in store.load().deliveries["c1"].values())


# -- packet identifiers -----------------------------------------------------------


def test_packet_ids_start_at_one_and_increase() -> None:
    session = make_session()
    sink = attached(session)
    for n in range(3):
        session.deliver(delivery(b"%d" % n))
    assert [pid for pid, _, _ in sink.sent] == [1, 2, 3]


def test_packet_ids_wrap_from_65535_to_1_skipping_ids_still_in_flight() -> None:
    session = make_session()
    sink = attached(session)
    session.deliver(delivery(b"held"))  # id 1 stays in flight
    session._next_packet_id = 65534
    for n in range(3):
        session.deliver(delivery(b"%d" % n))
    assert [pid for pid, _, _ in sink.sent] == [1, 65534, 65535, 2]
    assert set(session.inflight) == {1, 2, 65534, 65535}


def test_an_in_flight_id_65535_is_skipped_over_to_the_lowest_free_id() -> None:
    session = make_session()
    sink = attached(session)
    session.deliver(delivery(b"one"))  # id 1
    session._next_packet_id = 65535
    session.deliver(delivery(b"top"))  # id 65535
    session._next_packet_id = 65535  # both 65535 and 1 are still in flight
    session.deliver(delivery(b"next"))
    assert [pid for pid, _, _ in sink.sent] == [1, 65535, 2]


def test_packet_ids_are_never_zero_and_unique_across_a_full_cycle() -> None:
    session = make_session()
    sink = attached(session)
    for n in range(70000):
        session.deliver(delivery(b"x"))
        session.acknowledge(sink.sent[-1][0])
    ids = [pid for pid, _, _ in sink.sent]
    assert 0 not in ids
    assert min(ids) == 1 and max(ids) == 65535
    assert ids[65535] == 1  # the 65536th message reuses id 1


# -- QoS 2 and resumption -----------------------------------------------------------


def test_pubrec_marks_a_qos2_message_released_and_pubcomp_completes_it() -> None:
    session = make_session()
    sink = attached(session)
    session.deliver(delivery(b"q2", qos=2))
    pid = sink.sent[0][0]
    assert session.release(pid) is True
    assert session.inflight[pid].released is True
    assert session.release(pid) is True  # a repeated PUBREC is harmless
    assert session.acknowledge(pid) is True
    assert session.inflight == {}


def test_pubrec_for_a_qos1_or_unknown_packet_id_is_refused() -> None:
    session = make_session()
    sink = attached(session)
    session.deliver(delivery(b"q1", qos=1))
    assert session.release(sink.sent[0][0]) is False
    assert session.release(999) is False


def test_resuming_resends_unacknowledged_publishes_with_dup_and_pubrel_for_released_ones() -> None:
    session = make_session(expiry=60)
    first = attached(session)
    session.deliver(delivery(b"one", qos=1))
    session.deliver(delivery(b"two", qos=2))
    session.deliver(delivery(b"three", qos=2))
    ids = [pid for pid, _, _ in first.sent]
    session.release(ids[2])
    session.detach(now=0.0)
    session.deliver(delivery(b"queued", qos=1))
    second = FakeSink()
    session.attach(second, resume=True)
    assert second.sent == [(ids[0], b"one", True), (ids[1], b"two", True), (4, b"queued", False)]
    assert second.pubrels == [ids[2]]


def test_attaching_without_resume_sends_nothing_old() -> None:
    session = make_session(expiry=60)
    first = attached(session)
    session.deliver(delivery(b"one"))
    session.detach(now=0.0)
    second = FakeSink()
    session.attach(second, resume=False)
    assert second.sent == []


def test_an_inbound_qos2_packet_id_is_recorded_once_until_pubrel() -> None:
    store = MemoryStore()
    session = make_session(expiry=60, store=store)
    assert session.add_incoming_qos2(7) is True
    assert session.add_incoming_qos2(7) is False
    assert store.load().incoming_qos2["c1"] == {7}
    assert session.complete_incoming_qos2(7) is True
    assert session.complete_incoming_qos2(7) is False
    assert store.load().incoming_qos2["c1"] == set()


# -- persistence --------------------------------------------------------------------


def test_a_persistent_session_writes_subscriptions_and_messages_to_the_store() -> None:
    store = MemoryStore()
    session = make_session(expiry=60, store=store)
    session.subscribe("a/+", SubscriptionOptions(qos=1))
    sink = attached(session, receive_maximum=1)
    session.deliver(delivery(b"sent"))
    session.deliver(delivery(b"queued"))
    state = store.load()
    assert state.subscriptions["c1"] == {"a/+": SubscriptionOptions(qos=1)}
    stored = sorted(state.deliveries["c1"].values(), key=lambda d: d.seq)
    assert [(d.message.payload, d.packet_id) for d in stored] == [(b"sent", 1), (b"queued", None)]
    session.acknowledge(sink.sent[0][0])
    stored = list(store.load().deliveries["c1"].values())
    assert [(d.message.payload, d.packet_id) for d in stored] == [(b"queued", 2)]
    session.unsubscribe("a/+")
    assert store.load().subscriptions["c1"] == {}


def test_a_session_without_expiry_writes_nothing_to_the_store() -> None:
    store = MemoryStore()
    session = make_session(expiry=0, store=store)
    session.subscribe("a", SubscriptionOptions(qos=1))
    attached(session)
    session.deliver(delivery(b"x"))
    state = store.load()
    assert state.subscriptions == {} and state.deliveries == {}
