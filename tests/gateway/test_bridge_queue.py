"""The bridges' no-I/O parts: the store-and-forward queue, the backoff, loop marks, the webhook JSON."""

from __future__ import annotations

import base64
import time

from core.budget import MemoryBudget
from core.message import Message, Origin
from core.outbox import OutboxLimits
from core.stores.memory import MemoryStore
from gateway.bridges.base import backoff_delay
from gateway.bridges.marks import VIA, EchoFilter, marked, passed_through, webhook_json
from gateway.bridges.queue import ForwardQueue


def queue(max_messages: int = 10, max_bytes: int = 0, overflow: str = "drop_oldest",
          store: MemoryStore | None = None, budget: MemoryBudget | None = None) -> ForwardQueue:
    q = ForwardQueue("b", OutboxLimits(max_messages, max_bytes, overflow), budget or MemoryBudget(), store)
    q.set_online(True)
    return q


def msg(n: int, qos: int = 1, **fields: object) -> Message:
    return Message(f"t/{n}", str(n).encode(), qos, **fields)  # type: ignore[arg-type]


def topics(q: ForwardQueue) -> list[str]:
    return [entry.message.topic for entry in q]


def test_messages_leave_in_order_and_only_an_acknowledgement_removes_them() -> None:
    q = queue()
    for n in range(3):
        q.push(msg(n))
    first, second = q.take(), q.take()
    assert first is not None and second is not None
    assert (first.message.topic, second.message.topic) == ("t/0", "t/1")
    q.acked(second.seq)
    assert topics(q) == ["t/0", "t/2"]
    q.acked(first.seq)
    assert topics(q) == ["t/2"]


def test_a_lost_connection_puts_what_was_in_flight_back_first_in_order_and_drops_qos0() -> None:
    q = queue()
    for n in range(4):
        q.push(msg(n, qos=0 if n == 3 else 1))
    q.take(), q.take()
    q.set_online(False)
    assert topics(q) == ["t/0", "t/1", "t/2"]
    assert q.dropped["offline_qos0"] == 1
    assert not q.inflight


def test_qos0_is_dropped_and_counted_while_the_upstream_is_down() -> None:
    q = queue()
    q.set_online(False)
    q.push(msg(1, qos=0))
    q.push(msg(2, qos=1))
    assert topics(q) == ["t/2"]
    assert q.dropped["offline_qos0"] == 1


def test_drop_oldest_makes_room_by_dropping_the_oldest_waiting_message() -> None:
    q = queue(max_messages=3)
    for n in range(5):
        q.push(msg(n))
    assert topics(q) == ["t/2", "t/3", "t/4"]
    assert q.dropped["overflow"] == 2


def test_drop_new_keeps_what_is_queued() -> None:
    q = queue(max_messages=3, overflow="drop_new")
    for n in range(5):
        q.push(msg(n))
    assert topics(q) == ["t/0", "t/1", "t/2"]
    assert q.dropped["overflow"] == 2


def test_the_byte_bound_counts_too_and_the_memory_budget_sees_every_byte() -> None:
    budget = MemoryBudget()
    q = queue(max_messages=100, max_bytes=300, budget=budget)
    for n in range(10):
        q.push(Message(f"t/{n}", b"x" * 100, 1))
    assert q.bytes <= 300 and len(q) == 1
    assert budget.used == q.bytes
    entry = q.take()
    assert entry is not None
    q.acked(entry.seq)
    assert budget.used == 0 == q.bytes


def test_expired_messages_are_dropped_before_they_are_sent() -> None:
    q = queue()
    q.push(msg(1, expiry=1.0))  # long past
    q.push(msg(2))
    entry = q.take()
    assert entry is not None and entry.message.topic == "t/2"
    assert q.dropped["expired"] == 1


def test_qos1_messages_are_kept_in_the_store_until_acknowledged_and_come_back_after_a_restart() -> None:
    store = MemoryStore()
    q = queue(store=store)
    q.push(msg(1, content_type="text/plain", origin=Origin("mqtt", "dev", None)))
    q.push(msg(2, qos=0))  # QoS 0 never touches the store
    q.push(msg(3))
    entry = q.take()
    assert entry is not None
    q.acked(entry.seq)  # t/1 is gone from the store
    again = ForwardQueue("b", OutboxLimits(10), MemoryBudget(), store)
    assert again.restore() == 1
    assert topics(again) == ["t/3"]
    restored = again.waiting[0]
    assert restored.message.qos == 1 and restored.time > 0
    again.push(msg(4))
    assert [e.seq for e in again] == sorted(e.seq for e in again)  # numbering goes on after the kept ones


def test_a_refused_message_is_dropped_and_counted() -> None:
    store = MemoryStore()
    q = queue(store=store)
    q.push(msg(1))
    entry = q.take()
    assert entry is not None
    q.refused(entry.seq)
    assert len(q) == 0 and q.dropped["refused"] == 1
    assert store.load_records(q.kind) == {}


def test_a_draining_queue_past_half_its_bound_asks_the_producer_to_pause_and_releases_it() -> None:
    q = queue(max_messages=8)
    q.acked(-1)  # no such message: nothing happens
    q.last_progress = time.monotonic()
    answers = [q.push(msg(n)) for n in range(5)]
    assert answers == [False, False, False, True, True]
    released: list[bool] = []
    q.when_drained(lambda: released.append(True))
    assert not released
    while len(q.waiting) > 2:
        q.take()
    assert released == [True]


def test_backoff_doubles_up_to_its_ceiling_with_jitter_in_the_upper_half() -> None:
    low, high = 0.5, 8.0
    assert [backoff_delay(n, low, high, lambda: 1.0) for n in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert [backoff_delay(n, low, high, lambda: 0.0) for n in range(3)] == [0.25, 0.5, 1]
    assert backoff_delay(10_000, low, high) <= high


def test_the_via_marker_names_the_gateway_a_message_left_through() -> None:
    message = Message("a", b"", 1, user_properties=(("k", "v"),))
    out = marked(message, "gw-a")
    assert out.user_properties == (("k", "v"), (VIA, "gw-a"))
    assert passed_through(out, "gw-a") and not passed_through(out, "gw-b")
    assert not passed_through(message, "gw-a")


def test_the_echo_filter_drops_one_copy_per_message_sent_and_forgets_after_its_ttl() -> None:
    echo = EchoFilter(ttl=10.0)
    echo.sent("a", b"1", now=0.0)
    echo.sent("a", b"1", now=0.0)
    assert echo.is_echo("a", b"1", now=1.0)
    assert echo.is_echo("a", b"1", now=1.0)
    assert not echo.is_echo("a", b"1", now=1.0)  # a third copy is someone else's message
    echo.sent("b", b"2", now=0.0)
    assert not echo.is_echo("b", b"2", now=11.0)
    assert not echo.is_echo("c", b"2", now=0.0)


def test_webhook_json_carries_text_or_base64_payloads_properties_and_origin() -> None:
    message = Message("s/t", "21.5 °C".encode(), 1, True, content_type="text/plain", correlation_data=b"\x01",
                      response_topic="r/1", user_properties=(("k", "v"),), payload_format_utf8=True,
                      origin=Origin("coap", "dev", "u"))
    doc = webhook_json(message, 1700000000.5)
    assert doc == {
        "topic": "s/t", "payload": "21.5 °C", "payload_encoding": "text", "qos": 1, "retain": True,
        "properties": {"content_type": "text/plain", "correlation_data": "AQ==", "response_topic": "r/1",
                       "user_properties": [["k", "v"]], "payload_format_indicator": 1},
        "origin": {"protocol": "coap", "client_id": "dev", "username": "u"}, "timestamp": 1700000000.5,
    }
    binary = webhook_json(Message("b", b"\xff\x00", 0), 0.0)
    assert binary["payload_encoding"] == "base64" and base64.b64decode(binary["payload"]) == b"\xff\x00"
    assert binary["properties"] == {}
