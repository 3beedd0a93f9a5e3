"""MQTT 5.0 properties, plus the wire primitives shared with the codec.

`Properties` holds one optional field per MQTT 5 property. `PROPERTIES` is the
table of MQTT 5.0 section 2.2.2.2: identifier, wire type, and the packet types
each property may appear in (`WILL_PROPERTIES` stands for a CONNECT's will
properties). Packet types are the 4-bit values of `packets.PacketType`, kept as
plain ints here so this module does not import `packets`.

Decoding errors follow the spec: an unknown identifier, a property not allowed
in the packet, or a truncated value is a Malformed Packet (0x81) [2.2.2.2];
duplicates and out-of-range values are Protocol Errors (0x82); Topic Alias 0 is
Topic Alias invalid (0x94) [MQTT-3.3.2-8].
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from operator import attrgetter

from .errors import (LocalProtocolError, MalformedPacket, ProtocolViolation,
                     TopicAliasInvalid)

__all__ = [
    "Properties", "NO_PROPERTIES", "PropertySpec", "PROPERTIES", "BY_IDENTIFIER",
    "BY_NAME", "WireType", "WILL_PROPERTIES", "encode_properties",
    "decode_properties", "encode_varint", "decode_varint", "read_utf8",
    "read_binary", "utf8_field", "binary_field", "MAX_VARINT",
]

MAX_VARINT = 268_435_455  # largest Variable Byte Integer [1.5.5]


# --- wire primitives (section 1.5) -------------------------------------------

def encode_varint(n: int) -> bytes:
    """Variable Byte Integer encoding, e.g. of a remaining length."""
    if n < 128:
        if n < 0:
            raise LocalProtocolError(f"negative variable byte integer {n}")
        return bytes((n,))
    if n > MAX_VARINT:
        raise LocalProtocolError(f"{n} exceeds the variable byte integer maximum")
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode_varint(buf: bytes | bytearray | memoryview, offset: int,
                  end: int | None = None) -> tuple[int, int] | None:
    """Read a Variable Byte Integer at `offset`; return (value, next offset).

    None when the buffer (up to `end`) stops before the last byte;
    MalformedPacket when a fifth byte would be needed [MQTT-1.5.5-1].
    """
    if end is None:
        end = len(buf)
    value = 0
    shift = 0
    pos = offset
    while pos < end:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift == 28:
            raise MalformedPacket("variable byte integer longer than 4 bytes")
    return None


def read_utf8(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    """Read a UTF-8 Encoded String (2-byte length prefix) ending before `end`."""
    if pos + 2 > end:
        raise MalformedPacket("string length runs past the end of the packet")
    stop = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if stop > end:
        raise MalformedPacket("string runs past the end of the packet")
    try:
        s = buf[pos + 2:stop].decode("utf-8")  # strict: no surrogates, no overlongs
    except UnicodeDecodeError:
        raise MalformedPacket("string is not valid UTF-8 [MQTT-1.5.4-1]") from None
    if "\x00" in s:
        raise MalformedPacket("string contains U+0000 [MQTT-1.5.4-2]")
    return s, stop


def read_binary(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """Read Binary Data (2-byte length prefix) ending before `end`."""
    if pos + 2 > end:
        raise MalformedPacket("binary length runs past the end of the packet")
    stop = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if stop > end:
        raise MalformedPacket("binary data runs past the end of the packet")
    return bytes(buf[pos + 2:stop]), stop


def utf8_field(s: str) -> bytes:
    """Encode a UTF-8 Encoded String with its 2-byte length prefix."""
    try:
        data = s.encode("utf-8")
    except (UnicodeEncodeError, AttributeError):
        raise LocalProtocolError(f"cannot encode {s!r} as a UTF-8 string") from None
    if len(data) > 0xFFFF:
        raise LocalProtocolError("string longer than 65535 bytes")
    if "\x00" in s:
        raise LocalProtocolError("string contains U+0000 [MQTT-1.5.4-2]")
    return len(data).to_bytes(2, "big") + data


def binary_field(data: bytes) -> bytes:
    """Encode Binary Data with its 2-byte length prefix."""
    if len(data) > 0xFFFF:
        raise LocalProtocolError("binary data longer than 65535 bytes")
    return len(data).to_bytes(2, "big") + bytes(data)


# --- the Properties value ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Properties:
    """MQTT 5 properties of one packet; None (or `()`) means absent."""

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None

    def __repr__(self) -> str:  # only the properties that are present
        fields = ", ".join(f"{spec.name}={value!r}" for spec, value
                           in zip(PROPERTIES, _GET_ALL(self)) if value is not None and value != ())
        return f"Properties({fields})"


NO_PROPERTIES = Properties()


# --- the property table (section 2.2.2.2) --------------------------------------

class WireType(IntEnum):
    """Data representation of a property value (section 1.5)."""

    BYTE = 1
    TWO_BYTE_INT = 2
    FOUR_BYTE_INT = 4
    VARINT = 5
    UTF8 = 6
    BINARY = 7
    UTF8_PAIR = 8


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """One row of the property table."""

    identifier: int
    name: str
    wire_type: WireType
    packet_types: frozenset[int]


WILL_PROPERTIES = 0  # pseudo packet type for the will properties of CONNECT
(_CONNECT, _CONNACK, _PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP,
 _SUBSCRIBE, _SUBACK, _UNSUBSCRIBE, _UNSUBACK) = range(1, 12)
_DISCONNECT, _AUTH = 14, 15
_W = WireType
_MSG = (_PUBLISH, WILL_PROPERTIES)
_ACKS = (_PUBACK, _PUBREC, _PUBREL, _PUBCOMP, _SUBACK, _UNSUBACK)

PROPERTIES: tuple[PropertySpec, ...] = tuple(
    PropertySpec(ident, name, kind, frozenset(types)) for ident, name, kind, types in (
        (0x01, "payload_format_indicator", _W.BYTE, _MSG),
        (0x02, "message_expiry_interval", _W.FOUR_BYTE_INT, _MSG),
        (0x03, "content_type", _W.UTF8, _MSG),
        (0x08, "response_topic", _W.UTF8, _MSG),
        (0x09, "correlation_data", _W.BINARY, _MSG),
        (0x0B, "subscription_identifiers", _W.VARINT, (_PUBLISH, _SUBSCRIBE)),
        (0x11, "session_expiry_interval", _W.FOUR_BYTE_INT,
         (_CONNECT, _CONNACK, _DISCONNECT)),
        (0x12, "assigned_client_identifier", _W.UTF8, (_CONNACK,)),
        (0x13, "server_keep_alive", _W.TWO_BYTE_INT, (_CONNACK,)),
        (0x15, "authentication_method", _W.UTF8, (_CONNECT, _CONNACK, _AUTH)),
        (0x16, "authentication_data", _W.BINARY, (_CONNECT, _CONNACK, _AUTH)),
        (0x17, "request_problem_information", _W.BYTE, (_CONNECT,)),
        (0x18, "will_delay_interval", _W.FOUR_BYTE_INT, (WILL_PROPERTIES,)),
        (0x19, "request_response_information", _W.BYTE, (_CONNECT,)),
        (0x1A, "response_information", _W.UTF8, (_CONNACK,)),
        (0x1C, "server_reference", _W.UTF8, (_CONNACK, _DISCONNECT)),
        (0x1F, "reason_string", _W.UTF8, (_CONNACK, *_ACKS, _DISCONNECT, _AUTH)),
        (0x21, "receive_maximum", _W.TWO_BYTE_INT, (_CONNECT, _CONNACK)),
        (0x22, "topic_alias_maximum", _W.TWO_BYTE_INT, (_CONNECT, _CONNACK)),
        (0x23, "topic_alias", _W.TWO_BYTE_INT, (_PUBLISH,)),
        (0x24, "maximum_qos", _W.BYTE, (_CONNACK,)),
        (0x25, "retain_available", _W.BYTE, (_CONNACK,)),
        (0x26, "user_properties", _W.UTF8_PAIR,
         (_CONNECT, _CONNACK, *_MSG, *_ACKS, _SUBSCRIBE, _UNSUBSCRIBE, _DISCONNECT,
          _AUTH)),
        (0x27, "maximum_packet_size", _W.FOUR_BYTE_INT, (_CONNECT, _CONNACK)),
        (0x28, "wildcard_subscription_available", _W.BYTE, (_CONNACK,)),
        (0x29, "subscription_identifier_available", _W.BYTE, (_CONNACK,)),
        (0x2A, "shared_subscription_available", _W.BYTE, (_CONNACK,)),
    ))
BY_IDENTIFIER: dict[int, PropertySpec] = {p.identifier: p for p in PROPERTIES}
BY_NAME: dict[str, PropertySpec] = {p.name: p for p in PROPERTIES}

# Every Byte property is a 0/1 flag; these integers may not be 0 (Protocol Error).
_NONZERO = frozenset({"receive_maximum", "maximum_packet_size"})
_MAX: dict[int, int] = {int(_W.BYTE): 1, int(_W.TWO_BYTE_INT): 0xFFFF, int(_W.FOUR_BYTE_INT): 0xFFFF_FFFF,
                        int(_W.VARINT): MAX_VARINT}  # by the wire type's int, as `_ROWS` carries it
_ROWS = tuple((p.identifier, p.name, int(p.wire_type), p.packet_types)
              for p in PROPERTIES)
_GET_ALL = attrgetter(*(p.name for p in PROPERTIES))
_DECODE_ROWS = {p.identifier: (p.name, int(p.wire_type), p.packet_types)
                for p in PROPERTIES}


def encode_properties(props: Properties, packet_type: int) -> bytes:
    """Encode a property block, length prefix included, for `packet_type`."""
    if props is NO_PROPERTIES:
        return b"\x00"
    out = bytearray()
    for (ident, name, kind, allowed), value in zip(_ROWS, _GET_ALL(props)):
        if value is None or value == ():
            continue
        if packet_type not in allowed:
            raise LocalProtocolError(f"{name} is not allowed in packet type {packet_type}")
        if kind == 8:  # user properties: ordered pairs, duplicates allowed
            for key, val in value:
                out.append(ident)
                out += utf8_field(key)
                out += utf8_field(val)
        elif kind == 6:
            out.append(ident)
            out += utf8_field(value)
        elif kind == 7:
            out.append(ident)
            out += binary_field(value)
        elif kind == 5:
            if packet_type != _PUBLISH and len(value) > 1:
                raise LocalProtocolError("only PUBLISH may carry several subscription ids")
            for sid in value:
                if not 0 < sid <= MAX_VARINT:
                    raise LocalProtocolError(f"subscription identifier {sid} out of range")
                out.append(ident)
                out += encode_varint(sid)
        else:
            if not 0 <= value <= _MAX[kind] or (value == 0 and (
                    name in _NONZERO or name == "topic_alias")):
                raise LocalProtocolError(f"{name}={value} is out of range")
            out.append(ident)
            out += value.to_bytes(kind, "big")
    return encode_varint(len(out)) + out


def decode_properties(buf: bytes, offset: int, end: int,
                      packet_type: int) -> tuple[Properties, int]:
    """Decode the property block at `offset` (length prefix included).

    `end` is the end of the enclosing packet. Returns the properties and the
    offset just after the block.
    """
    if offset < end and buf[offset] < 0x80:  # one-byte length: nearly always
        length = buf[offset]
        pos = offset + 1
        if not length:
            return NO_PROPERTIES, pos
    else:
        r = decode_varint(buf, offset, end)
        if r is None:
            raise MalformedPacket("property length runs past the end of the packet")
        length, pos = r
    stop = pos + length
    if stop > end:
        raise MalformedPacket("properties run past the end of the packet")
    values: dict[str, object] = {}
    users: list[tuple[str, str]] = []
    sids: list[int] = []
    while pos < stop:
        ident = buf[pos]
        row = _DECODE_ROWS.get(ident)
        if row is None:
            raise MalformedPacket(f"unknown property identifier 0x{ident:02x}")
        name, kind, allowed = row
        if packet_type not in allowed:
            raise MalformedPacket(f"property {name} is not allowed in this packet")
        pos += 1
        if kind == 8:
            key, pos = read_utf8(buf, pos, stop)
            val, pos = read_utf8(buf, pos, stop)
            users.append((key, val))
            continue
        if kind == 5:
            r = decode_varint(buf, pos, stop)
            if r is None:
                raise MalformedPacket("subscription identifier runs past the properties")
            sid, pos = r
            if sid == 0:
                raise ProtocolViolation("subscription identifier 0 [3.3.2.3.8]")
            if sids and packet_type != _PUBLISH:
                raise ProtocolViolation("subscription identifier included twice")
            sids.append(sid)
            continue
        if name in values:
            raise ProtocolViolation(f"property {name} included more than once")
        value: object  # str, bytes or int, by the wire type
        if kind == 6:
            value, pos = read_utf8(buf, pos, stop)
        elif kind == 7:
            value, pos = read_binary(buf, pos, stop)
        else:
            nxt = pos + kind
            if nxt > stop:
                raise MalformedPacket(f"property {name} runs past the properties")
            value = int.from_bytes(buf[pos:nxt], "big")
            pos = nxt
            if value == 0:
                if name in _NONZERO:
                    raise ProtocolViolation(f"{name} of 0")
                if name == "topic_alias":
                    raise TopicAliasInvalid("topic alias 0 [MQTT-3.3.2-8]")
            elif kind == 1 and value > 1:
                raise ProtocolViolation(f"{name} must be 0 or 1, got {value}")
        values[name] = value
    if users:
        values["user_properties"] = tuple(users)
    if sids:
        values["subscription_identifiers"] = tuple(sids)
    return Properties(**values), stop  # type: ignore[arg-type]
