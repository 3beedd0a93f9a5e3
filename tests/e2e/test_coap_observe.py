"""CoAP Observe at the datagram level: deregistration, NAT rebinding, bounded queues, malformed input.

A raw UDP client (tests.e2e.coap_clients.RawCoAP) controls tokens, message
types and ACKs, which aiocoap's client would choose itself. The gateway runs
with short CON transmission parameters where a test waits for retransmissions
to run out. Waits are socket reads and events with timeouts, never sleeps.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Iterator

import pytest
from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from core.message import Message as CoreMessage
from core.stores.memory import MemoryStore
from core.principal import SYSTEM
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.coap_clients import RawCoAP, TIMEOUT, coap_gateway, coap_port, parses, raw, request

__all__ = ["raw"]  # fixtures from tests.e2e.coap_clients

TOKEN = b"\x0a\x0b\x0c"


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = coap_gateway(ack_timeout_ms=40, max_retransmit=2, observer_queue=3)
    try:
        yield running
    finally:
        running.stop()


def publish(gateway: RunningGateway, topic: str, payload: bytes, qos: int = 1) -> None:
    gateway.call(lambda: gateway.broker.publish(SYSTEM, CoreMessage(topic, payload, qos=qos)))


def observers(gateway: RunningGateway) -> Any:
    coap = gateway.gateway.coap
    assert coap is not None
    return coap.observers


def removal(gateway: RunningGateway) -> threading.Event:
    """An event set when the gateway ends an observation."""
    removed = threading.Event()
    gateway.call(lambda: observers(gateway).on_remove.append(lambda observer: removed.set()))
    return removed


def register(raw: RawCoAP, path: str, *, query: tuple[str, ...] = (), mtype: Type = Type.CON,
             token: bytes = TOKEN) -> Message:
    answer = raw.ask(request(Code.GET, path, query=query, observe=0, token=token, mtype=mtype))
    assert answer.code == Code.CONTENT and answer.opt.observe is not None, answer
    return answer


def subscriptions(gateway: RunningGateway) -> int:
    return gateway.call(lambda: gateway.broker.router.subscription_count())


# -- deregistration ---------------------------------------------------------------------------


def test_a_get_with_observe_1_ends_the_observation(gateway: RunningGateway, raw: RawCoAP) -> None:
    register(raw, "/ps/dereg/a")
    assert (len(gateway.call(lambda: observers(gateway).of_all())), subscriptions(gateway)) == (1, 1)
    answer = raw.ask(request(Code.GET, "/ps/dereg/a", observe=1, token=TOKEN))
    assert answer.code == Code.CONTENT and answer.opt.observe is None
    assert (len(gateway.call(lambda: observers(gateway).of_all())), subscriptions(gateway)) == (0, 0)


def test_an_rst_to_a_con_notification_ends_the_observation(gateway: RunningGateway, raw: RawCoAP) -> None:
    register(raw, "/ps/dereg/con")
    removed = removal(gateway)
    publish(gateway, "dereg/con", b"v", qos=1)
    notification = raw.receive()
    assert (notification.mtype, notification.payload) == (Type.CON, b"v")
    raw.ack(notification, reset=True)
    assert removed.wait(TIMEOUT)
    assert subscriptions(gateway) == 0


def test_an_rst_to_a_non_notification_ends_the_observation(gateway: RunningGateway, raw: RawCoAP) -> None:
    register(raw, "/ps/dereg/non", mtype=Type.NON)  # a NON registration subscribes at QoS 0
    removed = removal(gateway)
    publish(gateway, "dereg/non", b"v", qos=1)
    notification = raw.receive()
    assert (notification.mtype, notification.payload) == (Type.NON, b"v")
    raw.ack(notification, reset=True)
    assert removed.wait(TIMEOUT)
    assert subscriptions(gateway) == 0


def test_a_con_notification_left_unacknowledged_ends_the_observation_after_its_retransmissions(
    gateway: RunningGateway, raw: RawCoAP
) -> None:
    register(raw, "/ps/dereg/silent")
    removed = removal(gateway)
    publish(gateway, "dereg/silent", b"v", qos=1)
    copies = [raw.receive() for _ in range(1 + 2)]  # the first transmission and max_retransmit = 2 more
    assert {(m.mid, m.payload, m.mtype) for m in copies} == {(copies[0].mid, b"v", Type.CON)}
    assert removed.wait(TIMEOUT)
    assert subscriptions(gateway) == 0


# -- identity ----------------------------------------------------------------------------------


def test_an_observer_re_registering_from_a_new_port_keeps_its_subscription_and_gets_no_duplicate(
    gateway: RunningGateway, raw: RawCoAP
) -> None:
    first = register(raw, "/ps/nat/t", query=("c=dev1",))
    moved = RawCoAP(coap_port(gateway))  # the same device behind a rebound NAT port
    try:
        assert moved.port != raw.port
        again = register(moved, "/ps/nat/t", query=("c=dev1",))
        assert again.opt.observe > first.opt.observe  # sequence numbers carry on
        assert (len(gateway.call(lambda: observers(gateway).of_all())), subscriptions(gateway)) == (1, 1)
        publish(gateway, "nat/t", b"one")
        publish(gateway, "nat/t", b"two")
        got = []
        for _ in range(2):
            notification = moved.receive()
            moved.ack(notification)
            got.append((notification.payload, notification.opt.observe))
        assert [payload for payload, _ in got] == [b"one", b"two"]  # once each, in order
        assert again.opt.observe < got[0][1] < got[1][1]
        assert raw.pending() == []  # the old port got neither a notification nor a final response
    finally:
        moved.close()


def test_without_a_clientid_a_new_port_is_a_new_observer(gateway: RunningGateway, raw: RawCoAP) -> None:
    register(raw, "/ps/nat/anon")
    other = RawCoAP(coap_port(gateway))
    try:
        register(other, "/ps/nat/anon")
        assert len(gateway.call(lambda: observers(gateway).of_all())) == 2
    finally:
        other.close()


# -- bounded queue -----------------------------------------------------------------------------


@pytest.fixture
def patient_gateway() -> Iterator[RunningGateway]:
    """CON notifications wait 10 s for their ACK: the test decides when they are acknowledged."""
    running = coap_gateway(ack_timeout_ms=10_000, observer_queue=3)
    try:
        yield running
    finally:
        running.stop()


def test_a_slow_observer_keeps_the_newest_notifications_and_counts_the_dropped_ones(
    patient_gateway: RunningGateway,
) -> None:
    gateway = patient_gateway
    raw = RawCoAP(coap_port(gateway))
    register(raw, "/ps/slow/feed")
    publish(gateway, "slow/feed", b"m0")
    in_flight = raw.receive()  # not acknowledged yet: the observer's queue fills behind it
    assert in_flight.payload == b"m0"
    gateway.call(lambda: [gateway.broker.publish(SYSTEM, CoreMessage("slow/feed", b"m%d" % i, qos=1)) for i in range(1, 10)])
    assert gateway.call(lambda: (observers(gateway).dropped, observers(gateway).of_all()[0].dropped)) == (6, 6)
    assert gateway.call(lambda: gateway.gateway.coap.metrics())["notifications_dropped"] == 6
    seen = {in_flight.mid}
    raw.ack(in_flight)
    payloads = []
    while len(payloads) < 3:
        notification = raw.receive_skipping(seen)
        raw.ack(notification)
        payloads.append(notification.payload)
    raw.close()
    assert payloads == [b"m7", b"m8", b"m9"]  # the oldest (m1 .. m6) were dropped


# -- bad input -----------------------------------------------------------------------------------


GARBAGE = [
    b"\x00",  # shorter than a header
    b"\x80\x01\x00\x01",  # version 2
    b"\x40\x01\x00\x01\xf0",  # option delta 15 that is not the payload marker
    b"\x40\x01\x00\x01\xd0",  # extended option delta with its byte missing
    b"\x40\x01\x00\x01\x0d",  # extended option length with its byte missing
    bytes(range(256)),  # version 0
]


def test_malformed_datagrams_are_dropped_and_other_clients_carry_on(
    gateway: RunningGateway, raw: RawCoAP, caplog: pytest.LogCaptureFixture
) -> None:
    listener = RawCoAP(coap_port(gateway))
    try:
        register(listener, "/ps/healthy/t")
        caplog.set_level(logging.WARNING)
        for data in GARBAGE:
            assert not parses(data), data
            raw.send_bytes(data)
        answer = raw.ask(request(Code.POST, "/ps/healthy/t", payload=b"still here"))
        assert answer.code == Code.CHANGED
        notification = listener.receive()
        assert notification.payload == b"still here"
        listener.ack(notification)
    finally:
        listener.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_request_with_an_unknown_critical_option_is_answered_4_02_and_nothing_is_published(
    gateway: RunningGateway, raw: RawCoAP
) -> None:
    message = request(Code.POST, "/ps/opt/t", payload=b"x")
    message.opt.add_option(message.opt._options.get(0) or _critical_option())
    answer = raw.ask(message)
    assert answer.code == Code.BAD_OPTION
    assert gateway.call(lambda: gateway.broker.router.published) == 0


def _critical_option() -> Any:
    from aiocoap.optiontypes import OpaqueOption

    return OpaqueOption(65001, b"?")  # odd: critical, and unknown to everyone


def test_a_notification_unacknowledged_at_the_old_port_is_sent_again_to_the_new_one(
    patient_gateway: RunningGateway,
) -> None:
    gateway = patient_gateway
    old, new = RawCoAP(coap_port(gateway)), RawCoAP(coap_port(gateway))
    try:
        register(old, "/ps/nat/inflight", query=("c=dev2",))
        publish(gateway, "nat/inflight", b"lost in the NAT")
        assert old.receive().payload == b"lost in the NAT"  # never acknowledged: the port is gone
        register(new, "/ps/nat/inflight", query=("c=dev2",))
        resent = new.receive()
        new.ack(resent)
        assert (resent.payload, resent.mtype) == (b"lost in the NAT", Type.CON)  # at least once
        publish(gateway, "nat/inflight", b"next")
        following = new.receive()
        new.ack(following)
        assert following.payload == b"next" and following.opt.observe > resent.opt.observe
    finally:
        old.close()
        new.close()


class HeldStore(MemoryStore):
    """A store whose durability callbacks wait until the test releases them."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Any] = []
        self.asked = threading.Event()

    def sync(self, callback: Any) -> None:
        self.held.append(callback)
        self.asked.set()

    def release(self) -> None:
        held, self.held = self.held, []
        for callback in held:
            callback()


def test_the_2_04_of_a_con_publish_waits_for_the_store() -> None:
    store = HeldStore()
    gateway = RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"}), store=store)
    raw = RawCoAP(coap_port(gateway))
    try:
        post = request(Code.POST, "/ps/held/t", query=("retain=true",), payload=b"v")
        raw.send(post)
        assert store.asked.wait(TIMEOUT)
        early = [Message.decode(data) for data in raw.pending()]
        assert all(m.code == Code.EMPTY for m in early)  # at most the empty ACK of the request, no 2.04
        gateway.call(store.release)
        while True:
            answer = raw.receive()
            if answer.code != Code.EMPTY:
                break
        if answer.mtype is Type.CON:
            raw.ack(answer)
        assert (answer.token, answer.code) == (post.token, Code.CHANGED)
    finally:
        raw.close()
        gateway.stop()
