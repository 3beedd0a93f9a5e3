"""Queue and exchange names as RabbitMQ takes them: any UTF-8 up to 255 octets, CR and LF stripped.

pamqp checks names against a narrower pattern when it builds a method, so the client frames
here are packed by hand (pika, which packs its own, does the same in tests/e2e/test_amqp_names.py).
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import pytest
from pamqp import commands as c, encode, header as pamqp_header, body as pamqp_body, frame as pamqp_frame

from adapters.amqp.broker import AMQPBroker
from adapters.amqp.durable import MemoryLog, QueueRecord
from adapters.amqp.settings import AMQPSettings
from core.broker import Broker

from tests.adapters.amqp.wire import Clock, Wire

NAMES = ["café", "nul\x00inside", "emoji-🚀", "x" * 255, "é" * 127]


def method(channel: int, class_id: int, method_id: int, *fields: bytes) -> bytes:
    payload = struct.pack(">HH", class_id, method_id) + b"".join(fields)
    return struct.pack(">BHI", 1, channel, len(payload)) + payload + b"\xce"


def shortstr(text: str) -> bytes:
    data = text.encode()
    return bytes((len(data),)) + data


def declare(name: str, *, bits: int = 0, arguments: dict[str, Any] | None = None) -> bytes:
    """queue.declare (bits: passive 1, durable 2, exclusive 4, auto-delete 8, nowait 16)."""
    return method(1, 50, 10, b"\x00\x00", shortstr(name), bytes((bits,)), encode.field_table(arguments or {}))


def declare_exchange(name: str, kind: str = "direct") -> bytes:
    return method(1, 40, 10, b"\x00\x00", shortstr(name), shortstr(kind), b"\x00", encode.field_table({}))


def publish(wire: Wire, exchange: str, routing_key: str, body: bytes, *, mandatory: bool = False) -> None:
    wire.send_raw(method(1, 60, 40, b"\x00\x00", shortstr(exchange), shortstr(routing_key), bytes((mandatory,))))
    wire.send(1, pamqp_header.ContentHeader(0, len(body), c.Basic.Properties()), pamqp_body.ContentBody(body))


def get(name: str) -> bytes:
    return method(1, 60, 70, b"\x00\x00", shortstr(name), b"\x01")


def opened(log: MemoryLog | None = None) -> Wire:
    wall = Clock(1_700_000_000.0)
    wire = Wire(broker=AMQPBroker(Broker(), AMQPSettings(), log=log, clock=wall), wall=wall)
    wire.handshake()
    wire.open_channel()
    return wire


@pytest.mark.parametrize("name", NAMES, ids=["accent", "nul", "emoji", "255-octets", "254-octets-of-e-acute"])
def test_any_utf8_name_up_to_255_octets_is_declared_answered_and_used(name: str) -> None:
    log = MemoryLog()
    wire = opened(log)
    wire.send_raw(declare(name, bits=2))
    (ok,) = wire.methods()
    assert isinstance(ok, c.Queue.DeclareOk) and ok.queue == name
    publish(wire, "", name, b"hello")
    wire.send_raw(get(name))
    assert [f.value for _, f in wire.received() if hasattr(f, "value")] == [b"hello"]
    assert ("/", name) in log.records().queues


def test_an_unroutable_mandatory_message_comes_back_with_an_exchange_name_pamqp_would_refuse() -> None:
    wire = opened()
    wire.send_raw(declare_exchange("café"))
    assert wire.names() == ["Exchange.DeclareOk"]
    publish(wire, "café", "nowhere", b"back", mandatory=True)
    returned = wire.methods()[0]
    assert isinstance(returned, c.Basic.Return) and returned.exchange == "café" and returned.reply_code == 312


def test_line_breaks_are_stripped_from_declared_names_as_rabbitmq_does() -> None:
    wire = opened()
    wire.send_raw(declare("two\r\nlines"))
    (ok,) = wire.methods()
    assert ok.queue == "twolines" and "twolines" in wire.broker.vhosts["/"].queues


def test_a_refusal_naming_a_long_multibyte_name_still_fits_a_short_string() -> None:
    wire = opened()
    wire.send_raw(declare("amq." + "é" * 125))  # the reserved prefix: 403 with the name in its text
    (close,) = wire.methods()
    assert close.reply_code == 403 and len(close.reply_text.encode()) <= 255
    assert close.reply_text.startswith("ACCESS_REFUSED - queue name 'amq.éé")


def test_a_name_that_is_not_utf8_closes_the_connection_without_storing_anything() -> None:
    log = MemoryLog()
    wire = opened(log)
    payload = struct.pack(">HH", 50, 10) + b"\x00\x00" + b"\x02\xc3\x28" + b"\x00" + encode.field_table({})
    wire.send_raw(struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce")
    (close,) = wire.methods()
    assert isinstance(close, c.Connection.Close) and close.reply_code == 501
    assert not log.records().queues


def test_stored_names_an_older_version_accepted_load_and_an_unusable_one_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture
) -> None:
    log = MemoryLog()
    for name in ("café", "nul\x00inside", "y" * 300):
        log.put_queue(QueueRecord("/", name, False, {}))
    with caplog.at_level(logging.WARNING, "rosettamq.amqp"):
        wire = opened(log)
    assert set(wire.broker.vhosts["/"].queues) == {"café", "nul\x00inside"}
    assert "no AMQP client can use" in caplog.text
    wire.send_raw(declare("café", bits=1))
    assert wire.methods()[0].queue == "café"


def test_pamqp_itself_still_refuses_these_names_so_the_hand_packed_answers_matter() -> None:
    with pytest.raises(ValueError):
        pamqp_frame.marshal(c.Queue.DeclareOk(queue="café", message_count=0, consumer_count=0), 1)
