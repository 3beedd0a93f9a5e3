"""Content header properties and field tables (AMQP 0-9-1 section 4.2.5), packed by hand.

`basic.properties.timestamp` and table values of type 'T' are 64-bit unsigned
integers on the wire. They stay integers here (`Timestamp`, an `int` that
re-encodes as 'T'): a client may send any 64-bit value (Go's amqp091 sends
random ones, others milliseconds), and a broker carries it untouched. Only a
reader of the message turns it into a date (`Timestamp.isoformat`).
pamqp, the codec of our methods, decodes timestamps into `datetime` (which
fails past the year 9999 and divides values above 2**32 by 1000), so content
headers do not go through it.

Tables decode as pamqp does (a long string that is not UTF-8 as `bytes`, a
byte array 'x' as `bytearray`) and encode back to the same types; integers go
out as the smallest of RabbitMQ's signed types, floats as doubles. A malformed
header raises `AMQPError` 501 (FRAME_ERROR).
"""

from __future__ import annotations

import datetime
import struct
from decimal import Decimal
from typing import Any

from pamqp.commands import Basic

from adapters.amqp.errors import frame_error

_TIMESTAMP_MAX = 2**64 - 1


class Timestamp(int):
    """An AMQP timestamp: the 64-bit integer from the wire (seconds since the epoch, by convention)."""

    __slots__ = ()

    def isoformat(self) -> str:
        """The date a human reads (UTC), or the bare integer when no calendar date is that far."""
        try:
            return datetime.datetime.fromtimestamp(int(self), datetime.timezone.utc).isoformat()
        except (OverflowError, OSError, ValueError):
            return str(int(self))


# Property flags, in wire order (the first property is the highest bit of the first flag word).
_NAMES = ("content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
          "reply_to", "expiration", "message_id", "timestamp", "message_type", "user_id", "app_id", "cluster_id")
_FLAGS = tuple(1 << (15 - i) for i in range(len(_NAMES)))
_SHORTSTR, _TABLE, _OCTET, _TIMESTAMP = 0, 1, 2, 3
_KINDS = (_SHORTSTR, _SHORTSTR, _TABLE, _OCTET, _OCTET, _SHORTSTR, _SHORTSTR, _SHORTSTR, _SHORTSTR, _TIMESTAMP,
          _SHORTSTR, _SHORTSTR, _SHORTSTR, _SHORTSTR)
_FIELDS = tuple(zip(_NAMES, _FLAGS, _KINDS))

_HEAD = struct.Struct(">HHQH")  # class id, weight, body size, first flag word
_U16, _U32, _U64 = struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q")
_new_properties = object.__new__


class _Reader:
    """A cursor over one header payload; every read is bounds-checked by struct or by length."""

    __slots__ = ("data", "at")

    def __init__(self, data: bytes, at: int) -> None:
        self.data, self.at = data, at

    def take(self, count: int) -> bytes:
        end = self.at + count
        if end > len(self.data):
            raise IndexError("truncated")
        chunk = self.data[self.at : end]
        self.at = end
        return chunk

    def unpack(self, fmt: struct.Struct) -> Any:
        value = fmt.unpack_from(self.data, self.at)
        self.at += fmt.size
        return value[0] if len(value) == 1 else value

    def shortstr(self) -> str:
        return self.take(self.data[self.at] + 1)[1:].decode("utf-8")

    def table(self) -> dict[str, Any]:
        end = self.at + 4 + self.unpack(_U32)
        if end > len(self.data):
            raise IndexError("truncated table")
        table: dict[str, Any] = {}
        while self.at < end:
            key = self.shortstr()
            table[key] = self.value()
        if self.at != end:
            raise ValueError("table value runs past the table's length")
        return table

    def array(self) -> list[Any]:
        end = self.at + 4 + self.unpack(_U32)
        if end > len(self.data):
            raise IndexError("truncated array")
        items = []
        while self.at < end:
            items.append(self.value())
        if self.at != end:
            raise ValueError("array value runs past the array's length")
        return items

    def value(self) -> Any:
        kind = self.take(1)
        simple = _SIMPLE.get(kind)
        if simple is not None:
            return self.unpack(simple)
        if kind == b"S":
            raw = self.take(self.unpack(_U32))
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw
        if kind == b"F":
            return self.table()
        if kind == b"A":
            return self.array()
        if kind == b"T":
            return Timestamp(self.unpack(_U64))
        if kind == b"t":
            return self.take(1) != b"\x00"
        if kind == b"D":
            scale, mantissa = self.unpack(_DECIMAL)
            return Decimal(mantissa).scaleb(-scale)
        if kind == b"x":
            return bytearray(self.take(self.unpack(_U32)))
        if kind in (b"V", b"\x00"):
            return None
        raise ValueError(f"unknown field type {kind!r}")


_SIMPLE = {b"b": struct.Struct(">b"), b"B": struct.Struct(">B"), b"s": struct.Struct(">h"),
           b"u": struct.Struct(">H"), b"I": struct.Struct(">i"), b"i": struct.Struct(">I"),
           b"l": struct.Struct(">q"), b"L": struct.Struct(">Q"), b"f": struct.Struct(">f"),
           b"d": struct.Struct(">d")}
_DECIMAL = struct.Struct(">Bi")


def decode_header(payload: bytes) -> tuple[int, int, Basic.Properties]:
    """A content header payload as (class id, body size, properties)."""
    try:
        class_id, _weight, body_size, flags = _HEAD.unpack_from(payload)
        reader = _Reader(payload, _HEAD.size)
        extra = flags
        while extra & 1:  # continuation flag words: no 0-9-1 property lives there
            extra = reader.unpack(_U16)
        properties = _new_properties(Basic.Properties)  # skips pamqp's per-call validation
        for name, flag, kind in _FIELDS:
            if not flags & flag:
                value: Any = "" if name == "cluster_id" else None
            elif kind == _SHORTSTR:
                value = reader.shortstr()
            elif kind == _TABLE:
                value = reader.table()
            elif kind == _OCTET:
                value = reader.take(1)[0]
            else:
                value = Timestamp(reader.unpack(_U64))
            setattr(properties, name, value)
    except (struct.error, IndexError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise frame_error(f"cannot decode content header: {exc}") from None
    return class_id, body_size, properties


def copy_properties(properties: Basic.Properties, **changes: Any) -> Basic.Properties:
    """A copy with `changes`; not through Basic.Properties' constructor, which would check the
    values (a client's cluster_id included) the wire already delivered."""
    copy = _new_properties(Basic.Properties)
    for name in _NAMES:
        setattr(copy, name, changes[name] if name in changes else getattr(properties, name, None))
    return copy


def encode_header(properties: Basic.Properties, body_size: int, class_id: int = 60) -> bytes:
    """A content header payload (without the frame around it). TypeError/ValueError for an unencodable value."""
    flags = 0
    parts: list[bytes] = []
    for name, flag, kind in _FIELDS:
        value = getattr(properties, name, None)
        if value is None or value == "":
            continue
        flags |= flag
        if kind == _SHORTSTR:
            parts.append(_shortstr(value))
        elif kind == _TABLE:
            parts.append(encode_table(value))
        elif kind == _OCTET:
            parts.append(bytes((value,)))
        else:
            parts.append(_U64.pack(_timestamp(value)))
    return _HEAD.pack(class_id, 0, body_size, flags) + b"".join(parts)


def encode_table(table: dict[str, Any]) -> bytes:
    body = b"".join(_shortstr(key) + _value(value) for key, value in table.items())
    return _U32.pack(len(body)) + body


def _shortstr(text: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > 255:
        raise ValueError("shortstr longer than 255 octets")
    return bytes((len(data),)) + data


def _timestamp(value: Any) -> int:
    if isinstance(value, datetime.datetime):  # set by code, never decoded: encode as seconds
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        value = int(value.timestamp())
    if not isinstance(value, int) or not 0 <= value <= _TIMESTAMP_MAX:
        raise ValueError(f"timestamp {value!r} is no 64-bit unsigned integer")
    return value


def _value(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, Timestamp):
        return b"T" + _U64.pack(_timestamp(value))
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return b"I" + struct.pack(">i", value)
        if -(2**63) <= value < 2**63:
            return b"l" + struct.pack(">q", value)
        return b"S" + _longstr(str(value).encode())  # beyond RabbitMQ's integer types: its text
    if isinstance(value, str):
        return b"S" + _longstr(value.encode("utf-8"))
    if isinstance(value, bytes):  # a long string that was not UTF-8: the same octets back
        return b"S" + _longstr(value)
    if isinstance(value, (bytearray, memoryview)):
        return b"x" + _longstr(bytes(value))
    if isinstance(value, float):
        return b"d" + struct.pack(">d", value)
    if isinstance(value, dict):
        return b"F" + encode_table(value)
    if isinstance(value, (list, tuple)):
        body = b"".join(_value(item) for item in value)
        return b"A" + _U32.pack(len(body)) + body
    if value is None:
        return b"V"
    if isinstance(value, Decimal):
        sign, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):
            raise ValueError(f"cannot encode {value} as a decimal")
        scale = max(0, -exponent)
        return b"D" + _DECIMAL.pack(scale, int(value.scaleb(scale)))
    if isinstance(value, datetime.datetime):
        return b"T" + _U64.pack(_timestamp(value))
    raise TypeError(f"cannot encode a {type(value).__name__} in a field table")


def _longstr(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data
