"""Backpressure: congested online sessions pause the producers that fed them, for a bounded time."""

from __future__ import annotations

from core.flow import ProducerGate
from core.message import Message
from core.router import Router
from core.sessions import Session, SessionLimits
from core.stores.memory import MemoryStore
from core.subscriptions import Delivery, SubscriptionOptions


class SlowSink:
    """A connection that never acknowledges: one message in flight, the rest queue."""

    receive_maximum = 1

    def __init__(self) -> None:
        self.sent: list[int | None] = []

    def can_send(self) -> bool:
        return True

    def send_publish(self, packet_id, delivery, dup, cache) -> bool:  # type: ignore[no-untyped-def]
        self.sent.append(packet_id)
        return True

    def send_pubrel(self, packet_id: int) -> None:
        pass

    def session_taken_over(self) -> None:
        pass


def online_session(router: Router, max_queued: int = 8) -> tuple[Session, SlowSink]:
    session = Session("sub", protocol="mqtt", router=router, store=MemoryStore(), limits=SessionLimits(max_queued=max_queued))
    sink = SlowSink()
    session.attach(sink, resume=False)
    session.subscribe("t", SubscriptionOptions(qos=1))
    return session, sink


def publish(router: Router, n: int) -> list:  # type: ignore[type-arg]
    hits = []
    for i in range(n):
        router.publish(Message("t", str(i).encode(), 1))
        hits += router.flow.take_hits()
    return hits


def test_an_online_session_reports_itself_once_its_queue_reaches_high_water() -> None:
    router = Router()
    session, _ = online_session(router)  # high water 4: 1 in flight + 4 queued
    assert publish(router, 4) == []
    assert publish(router, 1) == [session]
    assert session.congested


def test_an_offline_session_never_pauses_producers() -> None:
    router = Router()
    session, _ = online_session(router)
    session.detach(0.0)
    assert publish(router, 8) == []
    assert not session.congested


def test_the_gate_opens_when_every_session_it_waits_on_drains_to_low_water() -> None:
    router = Router()
    session, sink = online_session(router)
    gate, opened = ProducerGate(), []
    gate.on_open = lambda: opened.append(True)
    assert gate.close_for(publish(router, 6), now=0.0)
    assert gate.blocked and gate.until == 1.0
    for packet_id in list(sink.sent)[:2]:  # acknowledge: queue 5 -> 3 -> still above low water 2
        session.acknowledge(packet_id)  # type: ignore[arg-type]
    assert gate.blocked
    while session.queue:
        session.acknowledge(sink.sent[-1])  # type: ignore[arg-type]
    assert not gate.blocked and opened == [True]


def test_the_gate_gives_up_at_its_deadline_so_producers_cannot_deadlock() -> None:
    router = Router()
    session, _ = online_session(router)
    gate = ProducerGate(max_wait=0.5)
    gate.close_for(publish(router, 6), now=10.0)
    gate.expire(10.4)
    assert gate.blocked
    gate.expire(10.5)
    assert not gate.blocked and gate.timeouts == 1


def test_a_producer_never_waits_on_its_own_session() -> None:
    router = Router()
    session, _ = online_session(router)
    gate = ProducerGate()
    assert not gate.close_for(publish(router, 6), now=0.0, own=session)


def test_a_session_that_goes_offline_releases_its_producers() -> None:
    router = Router()
    session, _ = online_session(router)
    gate = ProducerGate()
    gate.close_for(publish(router, 6), now=0.0)
    session.detach(1.0)
    assert not gate.blocked


def test_hits_left_by_a_publish_nobody_collected_do_not_leak_into_the_next() -> None:
    router = Router()
    online_session(router)
    for i in range(6):
        router.publish(Message("t", b"x", 1))  # nobody takes the hits
    router.publish(Message("other", b"x", 1))
    assert router.flow.hits == []


def test_deliveries_keep_their_order_through_the_queue() -> None:
    router = Router()
    session, sink = online_session(router, max_queued=100)
    publish(router, 10)
    order = [d.message.payload for _, d in session.queue]
    assert order == [str(i).encode() for i in range(1, 10)]
    assert isinstance(session.queue[0][1], Delivery)
