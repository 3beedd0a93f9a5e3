"""Content header properties and field tables: timestamps stay the 64-bit integers of the wire (issue 22)."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from pamqp import commands as c
from pamqp.header import ContentHeader

from adapters.amqp.errors import AMQPError, ReplyCode
from adapters.amqp.frames import decode_content_header
from adapters.amqp.mapping import amqp_from_message, message_from_amqp
from adapters.amqp.properties import Timestamp, decode_header, encode_header, encode_table
from core.message import Message, Origin

from tests.adapters.amqp.wire import Wire

EDGES = [0, 1, 2**31, 2**32 - 1, 2**32, 1_700_000_000_000, 2**62, 2**63, 2**64 - 1]


def header_with_timestamp(value: int, body_size: int = 3) -> bytes:
    """A content header as a client encodes it: flags word with only the timestamp bit, then 8 octets."""
    return struct.pack(">HHQH", 60, 0, body_size, 0x0040) + struct.pack(">Q", value)


def content_headers(data: bytes) -> list[bytes]:
    """The payloads of the content header frames in a server's output."""
    found, at = [], 0
    while at < len(data):
        kind, _, size = struct.unpack_from(">BHI", data, at)
        if kind == 2:
            found.append(data[at + 7 : at + 7 + size])
        at += 8 + size
    return found


@pytest.mark.parametrize("value", EDGES)
def test_a_timestamp_decodes_to_the_integer_on_the_wire_and_encodes_back_unchanged(value: int) -> None:
    raw = header_with_timestamp(value)
    class_id, body_size, properties = decode_header(raw)
    assert (class_id, body_size) == (60, 3)
    assert properties.timestamp == value and isinstance(properties.timestamp, int)
    assert encode_header(properties, 3) == raw


def test_every_property_round_trips_and_matches_what_pamqp_encodes() -> None:
    sent = c.Basic.Properties(content_type="text/plain", content_encoding="gzip", headers={"a": "b"},
                              delivery_mode=2, priority=7, correlation_id="c", reply_to="r", expiration="60000",
                              message_id="m", message_type="t", user_id="guest", app_id="app")
    raw = ContentHeader(0, 10, sent).marshal()
    _, size, properties = decode_header(raw)
    assert size == 10
    for name in c.Basic.Properties.__slots__:
        assert getattr(properties, name) == getattr(sent, name), name
    assert decode_header(encode_header(properties, 10))[2].headers == {"a": "b"}


def test_table_values_of_every_type_round_trip_with_timestamps_as_integers() -> None:
    table = {"t": True, "f": False, "i": -5, "big": 2**40, "d": 1.5, "s": "text", "raw": b"\xff\xfe",
             "bytes": bytearray(b"\x00\x01"), "n": None, "dec": Decimal("3.14"), "when": Timestamp(2**64 - 1),
             "list": [1, "a", Timestamp(7)], "nested": {"k": [{"deep": Timestamp(2**62)}]}}
    header = struct.pack(">HHQH", 60, 0, 0, 0x2000) + encode_table(table)
    decoded = decode_header(header)[2].headers
    assert decoded == table
    assert type(decoded["when"]) is Timestamp and type(decoded["raw"]) is bytes
    assert type(decoded["bytes"]) is bytearray and type(decoded["nested"]["k"][0]["deep"]) is Timestamp
    assert encode_header(decode_header(header)[2], 0) == header


def test_tables_from_other_clients_decode_their_unsigned_and_float_types() -> None:
    values = (b"\x01aB\xff" + b"\x01bu\xff\xff" + b"\x01ci\xff\xff\xff\xff" + b"\x01dL" + b"\xff" * 8
              + b"\x01ef" + struct.pack(">f", 0.5) + b"\x01gT" + b"\xff" * 8)
    header = struct.pack(">HHQH", 60, 0, 0, 0x2000) + struct.pack(">I", len(values)) + values
    assert decode_header(header)[2].headers == {"a": 255, "b": 65535, "c": 2**32 - 1, "d": 2**64 - 1, "e": 0.5,
                                                "g": 2**64 - 1}


@pytest.mark.parametrize("raw", [
    struct.pack(">HHQH", 60, 0, 0, 0x0040) + b"\x00" * 7,  # timestamp cut short
    struct.pack(">HHQH", 60, 0, 0, 0x8000) + b"\x05ab",  # shortstr longer than the payload
    struct.pack(">HHQH", 60, 0, 0, 0x2000) + struct.pack(">I", 100),  # table longer than the payload
    struct.pack(">HHQH", 60, 0, 0, 0x2000) + struct.pack(">I", 3) + b"\x01aZ",  # unknown field type
    struct.pack(">HHQH", 60, 0, 0, 0x8000) + b"\x02\xff\xfe",  # content type not UTF-8
    b"\x00<\x00",
])
def test_a_malformed_header_is_a_501_frame_error(raw: bytes) -> None:
    with pytest.raises(AMQPError) as caught:
        decode_content_header(1, raw)
    assert caught.value.code == ReplyCode.FRAME_ERROR


def test_a_timestamp_reads_as_a_date_only_when_asked_and_falls_back_to_the_integer() -> None:
    assert Timestamp(0).isoformat() == "1970-01-01T00:00:00+00:00"
    assert Timestamp(1_700_000_000).isoformat() == "2023-11-14T22:13:20+00:00"
    assert Timestamp(2**64 - 1).isoformat() == str(2**64 - 1)
    assert str(Timestamp(2**62)) == str(2**62)


def test_an_amqp_timestamp_becomes_a_user_property_and_comes_back_as_the_property() -> None:
    properties = decode_header(header_with_timestamp(2**64 - 1))[2]
    message = message_from_amqp("a.b", properties, b"x", origin=Origin("amqp"), now=0.0)
    assert message is not None and message.user_properties == (("amqp-timestamp", str(2**64 - 1)),)
    _, back = amqp_from_message(message, 1, False, now=0.0)
    assert back.timestamp == 2**64 - 1 and back.headers is None
    assert encode_header(back, 1).endswith(b"\xff" * 8)


def test_an_mqtt_user_property_that_is_no_64_bit_integer_stays_a_header() -> None:
    for text in ("soon", "-1", str(2**64), "１２", ""):
        message = Message("t", b"", user_properties=(("amqp-timestamp", text),))
        _, properties = amqp_from_message(message, 0, False, now=0.0)
        assert properties.timestamp is None and properties.headers == {"amqp-timestamp": text}, text


def test_a_dead_lettered_message_keeps_its_timestamp() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Queue.Declare(queue="dead"),
              c.Queue.Declare(queue="work", arguments={"x-dead-letter-exchange": "",
                                                       "x-dead-letter-routing-key": "dead"}))
    wire.received()
    raw = header_with_timestamp(2**64 - 1, body_size=2)
    wire.send(1, c.Basic.Publish(exchange="", routing_key="work"))
    wire.send_raw(struct.pack(">BHI", 2, 1, len(raw)) + raw + b"\xce" + struct.pack(">BHI", 3, 1, 2) + b"hi\xce")
    wire.send(1, c.Basic.Get(queue="work"))
    (get_ok,) = [m for m in wire.methods() if isinstance(m, c.Basic.GetOk)]
    wire.send(1, c.Basic.Reject(delivery_tag=get_ok.delivery_tag, requeue=False))
    wire.send(1, c.Basic.Get(queue="dead", no_ack=True))
    (header,) = content_headers(wire.conn.data_to_send())
    properties = decode_header(header)[2]
    assert properties.timestamp == 2**64 - 1
    assert properties.headers["x-death"][0]["reason"] == "rejected"
    assert isinstance(properties.headers["x-death"][0]["time"], Timestamp)
