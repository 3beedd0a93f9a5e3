"""AMQP 0-9-1 framing with no I/O: bytes in, frames out ("need more data" is None).

`FrameReader` splits a byte stream into frames and checks each frame's size
against the negotiated frame_max and its frame-end octet; method payloads are
decoded with pamqp, content headers by properties.py (timestamps stay integers).
The encoders build outgoing frames; the hot ones (basic.deliver, basic.get-ok,
content frames) are packed by hand so a fan-out encodes a message's content once and only the small method
frame per consumer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Union

from pamqp import base, commands, frame as pamqp_frame
from pamqp.exceptions import PAMQPException

from adapters.amqp.errors import frame_error, unexpected_frame
from adapters.amqp.properties import decode_header, encode_header

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = 0xCE
FRAME_OVERHEAD = 8  # 7-octet header + frame-end
FRAME_MIN_SIZE = 4096
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

_HEAD = struct.Struct(">BHI")
_METHOD_ID = struct.Struct(">I")
_END = b"\xce"


@dataclass(frozen=True, slots=True)
class MethodFrame:
    channel: int
    method: base.Frame


@dataclass(frozen=True, slots=True)
class HeaderFrame:
    channel: int
    body_size: int
    properties: commands.Basic.Properties
    raw: bytes = b""  # the payload as received: reused when the message is delivered, not re-encoded


@dataclass(frozen=True, slots=True)
class BodyFrame:
    channel: int
    data: bytes


@dataclass(frozen=True, slots=True)
class HeartbeatFrame:
    channel: int


Frame = Union[MethodFrame, HeaderFrame, BodyFrame, HeartbeatFrame]


class FrameReader:
    """Buffers bytes and hands out whole frames; raises AMQPError (501) on a malformed one."""

    def __init__(self, frame_max: int) -> None:
        self.frame_max = frame_max  # whole frame, header and frame-end included (0: no limit)
        self._buf = bytearray()
        self._pos = 0

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos > 65536:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def peek(self) -> bytes:
        """What is buffered, without consuming it."""
        return bytes(self._buf[self._pos :])

    def take(self, count: int) -> bytes | None:
        """The next `count` raw bytes (the protocol header), or None until they are there."""
        if self.buffered < count:
            return None
        data = bytes(self._buf[self._pos : self._pos + count])
        self._pos += count
        return data

    def next_frame(self) -> Frame | None:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 7:
            return None
        frame_type, channel, size = _HEAD.unpack_from(buf, pos)
        if self.frame_max and size + FRAME_OVERHEAD > self.frame_max:
            raise frame_error(f"frame of {size + FRAME_OVERHEAD} octets exceeds frame_max {self.frame_max}")
        end = pos + 7 + size
        if len(buf) <= end:
            return None
        if buf[end] != FRAME_END:
            raise frame_error(f"frame-end octet is {buf[end]:#04x}, not 0xce")
        payload = bytes(buf[pos + 7 : end])
        self._pos = end + 1
        if frame_type == FRAME_METHOD:
            return MethodFrame(channel, decode_method(payload))
        if frame_type == FRAME_HEADER:
            return decode_content_header(channel, payload)
        if frame_type == FRAME_BODY:
            return BodyFrame(channel, payload)
        if frame_type == FRAME_HEARTBEAT:
            if channel != 0 or size != 0:
                raise frame_error("heartbeat frame must be empty and on channel 0")
            return HeartbeatFrame(channel)
        raise frame_error(f"unknown frame type {frame_type}")


_PUBLISH_INDEX = commands.Basic.Publish.index
_new_publish = object.__new__


def _decode_publish(payload: bytes) -> commands.Basic.Publish:
    """basic.publish, unpacked by hand: it is the one method of every message."""
    try:
        at = 6  # method id, then the reserved short "ticket"
        size = payload[at]
        exchange = payload[at + 1 : at + 1 + size].decode("utf-8")
        at += 1 + size
        size = payload[at]
        routing_key = payload[at + 1 : at + 1 + size].decode("utf-8")
        at += 1 + size
        bits = payload[at]
    except (IndexError, UnicodeDecodeError) as exc:
        raise frame_error(f"cannot decode Basic.Publish: {exc}") from None
    if at + 1 != len(payload):
        raise frame_error("cannot decode Basic.Publish: trailing octets")
    method = _new_publish(commands.Basic.Publish)  # skips pamqp's per-call regex validation
    method.ticket, method.exchange, method.routing_key = 0, exchange, routing_key
    method.mandatory, method.immediate = bool(bits & 1), bool(bits & 2)
    return method


def decode_method(payload: bytes) -> base.Frame:
    if len(payload) < 4:
        raise frame_error("method frame shorter than its method id")
    (index,) = _METHOD_ID.unpack_from(payload)
    if index == _PUBLISH_INDEX:
        return _decode_publish(payload)
    cls = commands.INDEX_MAPPING.get(index)
    if cls is None:
        raise frame_error(f"unknown method {index >> 16}.{index & 0xFFFF}")
    method = cls()
    try:
        method.unmarshal(payload[4:])
    except (struct.error, ValueError, TypeError, IndexError, KeyError, PAMQPException) as exc:
        raise frame_error(f"cannot decode {cls.name}: {exc}") from None
    return method


def decode_content_header(channel: int, payload: bytes) -> HeaderFrame:
    class_id, body_size, properties = decode_header(payload)  # timestamps stay integers (properties.py)
    if class_id != commands.Basic.frame_id:
        raise unexpected_frame(f"content header of class {class_id}")
    return HeaderFrame(channel, body_size, properties, payload)


# -- encoding -----------------------------------------------------------------------


def encode_method(channel: int, method: base.Frame) -> bytes:
    return pamqp_frame.marshal(method, channel)


def encode_properties(properties: commands.Basic.Properties, body_size: int) -> bytes:
    """A content header frame's payload (without the frame around it)."""
    return encode_header(properties, body_size)


def wire_value(value: Any) -> Any:
    """A field-table value pamqp can encode: byte strings as `bytearray` (field type 'x')."""
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, dict):
        return {k: wire_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire_value(v) for v in value]
    return value


def encode_content(channel: int, header_payload: bytes, body: bytes, frame_max: int) -> bytes:
    """The content header frame and as many body frames as frame_max asks for."""
    parts = [_HEAD.pack(FRAME_HEADER, channel, len(header_payload)), header_payload, _END]
    if body:
        chunk = (frame_max - FRAME_OVERHEAD) if frame_max else len(body)
        if len(body) <= chunk:
            parts += (_HEAD.pack(FRAME_BODY, channel, len(body)), body, _END)
        else:
            view = memoryview(body)
            for start in range(0, len(body), chunk):
                piece = view[start : start + chunk]
                parts += (_HEAD.pack(FRAME_BODY, channel, len(piece)), piece, _END)
    return b"".join(parts)


def _shortstr(text: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > 255:
        raise ValueError("shortstr longer than 255 octets")
    return bytes((len(data),)) + data


_DELIVER = struct.Struct(">HH")


def encode_address(exchange: str, routing_key: str) -> bytes:
    """The exchange and routing-key fields that end basic.deliver (cached per message)."""
    return _shortstr(exchange) + _shortstr(routing_key)


_TAG_FLAG = struct.Struct(">QB")


def encode_deliver(channel: int, consumer_tag: bytes, delivery_tag: int, redelivered: bool, address: bytes) -> bytes:
    """basic.deliver, packed by hand from pre-encoded parts: it is built once per message per consumer.

    `consumer_tag` is the tag as a shortstr (`encode_shortstr`), `address` from `encode_address`.
    """
    payload = b"".join((b"\x00\x3c\x00\x3c", consumer_tag, _TAG_FLAG.pack(delivery_tag, redelivered), address))
    return b"".join((_HEAD.pack(FRAME_METHOD, channel, len(payload)), payload, _END))


def encode_shortstr(text: str) -> bytes:
    return _shortstr(text)


def encode_get_ok(
    channel: int, delivery_tag: int, redelivered: bool, exchange: str, routing_key: str, message_count: int
) -> bytes:
    payload = b"".join((
        b"\x00\x3c\x00\x47", struct.pack(">QB", delivery_tag, 1 if redelivered else 0),
        _shortstr(exchange), _shortstr(routing_key), struct.pack(">I", message_count),
    ))
    return b"".join((_HEAD.pack(FRAME_METHOD, channel, len(payload)), payload, _END))


# The methods below carry a queue or exchange name: packed by hand, because pamqp checks names
# against its own pattern (letters, digits and `-_.:@#,/+ `) where RabbitMQ takes any UTF-8 up to
# 255 octets (a NUL, `café`); basic.deliver and basic.get-ok above are packed by hand anyway.


def encode_declare_ok(channel: int, queue: str, message_count: int, consumer_count: int) -> bytes:
    """queue.declare-ok."""
    payload = b"".join((b"\x00\x32\x00\x0b", _shortstr(queue), struct.pack(">II", message_count, consumer_count)))
    return b"".join((_HEAD.pack(FRAME_METHOD, channel, len(payload)), payload, _END))


def encode_return(channel: int, reply_code: int, reply_text: str, exchange: str, routing_key: str) -> bytes:
    """basic.return (before the returned content's frames)."""
    payload = b"".join((b"\x00\x3c\x00\x32", struct.pack(">H", reply_code), _shortstr(reply_text),
                        _shortstr(exchange), _shortstr(routing_key)))
    return b"".join((_HEAD.pack(FRAME_METHOD, channel, len(payload)), payload, _END))
