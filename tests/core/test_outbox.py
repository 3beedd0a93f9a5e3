"""Each subscriber's outbox: bounded by messages and bytes, its own overflow policy, never
slowing the publisher; only the gateway-wide memory budget pauses producers."""

from __future__ import annotations

from core.budget import MemoryBudget
from core.door import Door, PublishStatus
from core.flow import ProducerGate
from core.message import Message
from core.principal import SYSTEM
from core.router import Router
from core.session_parts import SessionLimits
from core.sessions import Session
from core.stores.memory import MemoryStore
from core.subscriptions import SubscriptionOptions


class SlowSink:
    """A connection that never acknowledges (one message in flight) or whose transport is paused."""

    receive_maximum = 1

    def __init__(self, writable: bool = True) -> None:
        self.sent: list[tuple[int | None, bytes]] = []
        self.writable = writable
        self.quota_exceeded_calls = 0

    def can_send(self) -> bool:
        return self.writable

    def send_publish(self, packet_id, delivery, dup, cache) -> bool:  # type: ignore[no-untyped-def]
        self.sent.append((packet_id, delivery.message.payload))
        return True

    def send_pubrel(self, packet_id: int) -> None:
        pass

    def session_taken_over(self) -> None:
        pass

    def quota_exceeded(self) -> None:
        self.quota_exceeded_calls += 1


def online(router: Router, budget: MemoryBudget | None = None, sink: SlowSink | None = None,
           **limits: object) -> tuple[Session, SlowSink]:
    session = Session("sub", protocol="mqtt", router=router, store=MemoryStore(),
                      limits=SessionLimits(**limits), budget=budget)  # type: ignore[arg-type]
    sink = sink or SlowSink()
    session.attach(sink, resume=False)
    session.subscribe("t", SubscriptionOptions(qos=1))
    return session, sink


def publish(door: Door, n: int, qos: int = 1, size: int = 1) -> list[PublishStatus]:
    return [door.publish(SYSTEM, Message("t", str(i).encode().ljust(size, b"."), qos)).status for i in range(n)]


def queued(session: Session) -> list[bytes]:
    return [d.message.payload.rstrip(b".") for _, d in session.queue]


def test_a_full_outbox_drops_the_oldest_qos1_and_the_publisher_never_notices() -> None:
    door = Door(Router())
    session, sink = online(door.router, max_queued=3)
    results = publish(door, 8)
    assert all(status is PublishStatus.ROUTED for status in results)
    assert sink.sent == [(1, b"0")]  # the window of one
    assert queued(session) == [b"5", b"6", b"7"]  # the newest three, in order
    assert session.counters.dropped_oldest == 4


def test_drop_new_keeps_the_oldest_as_mosquitto_does() -> None:
    door = Door(Router())
    session, _ = online(door.router, max_queued=3, overflow="drop_new")
    publish(door, 8)
    assert queued(session) == [b"1", b"2", b"3"]
    assert session.counters.queue_full == 4


def test_disconnect_policy_tells_the_connection_once_per_overflowing_message() -> None:
    door = Door(Router())
    session, sink = online(door.router, max_queued=2, overflow="disconnect")
    publish(door, 4)
    assert sink.quota_exceeded_calls == 1
    assert session.counters.overflow_disconnects == sink.quota_exceeded_calls
    assert queued(session) == [b"1", b"2"]


def test_qos0_past_the_bound_is_dropped_and_counted() -> None:
    door = Door(Router())
    session, sink = online(door.router, sink=SlowSink(writable=False), max_queued=5)
    publish(door, 20, qos=0)
    assert len(session.queue) == 5
    assert session.counters.slow_consumer_qos0 == 15


def test_the_byte_bound_applies_as_well_as_the_message_bound() -> None:
    door = Door(Router())
    session, _ = online(door.router, max_queued=1000, max_queued_bytes=3 * (100 + 1 + 64))
    publish(door, 10, size=100)
    assert len(session.queue) == 3
    assert session.queue.bytes <= 3 * (100 + 1 + 64)


def test_every_byte_held_is_charged_to_the_budget_and_released_when_sent() -> None:
    budget = MemoryBudget()
    door = Door(Router(), budget)
    session, sink = online(door.router, budget, max_queued=100)
    publish(door, 5, size=100)
    assert budget.used == session.queue.bytes > 0
    while session.queue or session.inflight:
        session.acknowledge(sink.sent[-1][0])  # type: ignore[arg-type]
    assert budget.used == 0 and budget.peak > 0


def test_a_slow_subscriber_does_not_hold_the_publisher_but_a_spent_budget_does() -> None:
    budget = MemoryBudget(limit=1000)
    door = Door(Router(), budget)
    session, sink = online(door.router, budget, max_queued=1_000_000)
    holds = [door.publish(SYSTEM, Message("t", b"x" * 100, 1)).hold for _ in range(20)]
    assert holds[0] is False and holds[-1] is True  # only once the whole gateway holds 1000 bytes
    gate, opened = ProducerGate(), []
    gate.on_open = lambda: opened.append(True)
    assert gate.close_for([budget], now=0.0)
    while budget.used > 800:  # the subscriber drains: under the low-water mark the producer resumes
        session.acknowledge(sink.sent[-1][0])  # type: ignore[arg-type]
    assert opened == [True] and not gate.blocked


def test_the_gate_gives_up_at_its_deadline_so_producers_cannot_deadlock() -> None:
    budget = MemoryBudget(limit=10)
    budget.add(100)
    gate = ProducerGate(max_wait=0.5)
    gate.close_for([budget], now=10.0)
    gate.expire(10.4)
    assert gate.blocked
    gate.expire(10.5)
    assert not gate.blocked and gate.timeouts == 1


def test_going_offline_lets_go_of_qos0_and_of_the_memory_of_a_persistent_queue() -> None:
    budget = MemoryBudget()
    door = Door(Router(), budget)
    session, _ = online(door.router, budget, max_queued=100)
    session.expiry_interval = 3600
    publish(door, 5)
    session.detach(1.0)
    assert len(session.queue) == 0 and session.offline_queued == 4
    assert budget.used == 0
