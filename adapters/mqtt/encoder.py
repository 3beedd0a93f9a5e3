"""MQTT 3.1/3.1.1/5.0 encoding: packets -> bytes, with no I/O.

`encode` turns a packet into bytes for a protocol level (3 = MQTT 3.1,
4 = 3.1.1, 5 = 5.0); `encode_publish_parts` encodes a PUBLISH once for a whole
fan-out, split around its packet id. Encoding what MQTT cannot carry raises
`LocalProtocolError` (a bug on our side, never the peer's).
"""

from __future__ import annotations

from typing import Final

from .errors import (AUTH_REASONS, CONNACK_REASONS, DISCONNECT_REASONS, PUBACK_REASONS,
    PUBREL_REASONS, SUBACK_REASONS, UNSUBACK_REASONS, LocalProtocolError,
    connack_return_code_v3, suback_code_v3)
from .packets import (Auth, ConnAck, Connect, Disconnect, Packet, PingReq, PingResp,
    PubAck, PubComp, PubRec, PubRel, Publish, SubAck, Subscribe, UnsubAck, Unsubscribe)
from .properties import (NO_PROPERTIES, WILL_PROPERTIES, binary_field,
    encode_properties, encode_varint, utf8_field)

from .decoder import SUPPORTED_PROTOCOLS

__all__ = ["encode", "encode_publish_parts", "encode_puback_success"]


# A PUBLISH's topic field (two length bytes, then the UTF-8), by topic: encoded and checked once for
# every message on a topic, not per message. Restarted when full, as the router's match cache is.
_TOPIC_FIELDS: Final[dict[str, bytes]] = {}
TOPIC_FIELDS_KEPT: Final = 4096
# Every two-byte PUBLISH fixed header (a remaining length under 128), at [flags << 7 | length].
_SHORT_HEADERS: Final = tuple(bytes((0x30 | flags, length)) for flags in range(16) for length in range(128))
# The 3.1/3.1.1 answers of errors.py's mappings, per reason code: a table read, not an interpreted
# call per CONNACK and per SUBACK code (errors.py is not compiled).
_V3_CONNACK_RETURN: Final = {code: connack_return_code_v3(code) for code in CONNACK_REASONS}
# Every 3.1/3.1.1 CONNACK, at [session present << 8 | reason code] (4 bytes each).
_V3_CONNACKS: Final = {present << 8 | code: bytes((0x20, 2, present, _V3_CONNACK_RETURN[code]))
                       for present in (0, 1) for code in CONNACK_REASONS}
_V3_SUBACK_RETURN: Final = {code: suback_code_v3(code) for code in SUBACK_REASONS}


def _topic_field(topic: str | bytes) -> bytes:
    """The topic as a PUBLISH carries it; LocalProtocolError for one MQTT cannot carry."""
    if isinstance(topic, str):
        found = _TOPIC_FIELDS.get(topic)
        if found is not None:
            return found
        try:
            data = topic.encode("utf-8")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"topic {topic!r} is not encodable") from None
    else:
        data = topic
    if b"\x00" in data:
        raise LocalProtocolError("topic contains U+0000 [MQTT-1.5.4-2]")
    if len(data) > 0xFFFF:
        raise LocalProtocolError("topic longer than 65535 bytes")
    field = len(data).to_bytes(2, "big") + data
    if isinstance(topic, str):
        if len(_TOPIC_FIELDS) >= TOPIC_FIELDS_KEPT:
            _TOPIC_FIELDS.clear()
        _TOPIC_FIELDS[topic] = field
    return field


def encode_publish_parts(topic: str | bytes, payload: bytes, qos: int, retain: bool,
                         dup: bool, properties_bytes: bytes, protocol_level: int
                         ) -> tuple[bytes, bytes]:
    """Encode a PUBLISH once for many receivers, split around the packet id.

    QoS 0: the packet is `head + tail`; QoS 1/2: `head + packet_id (2 bytes,
    big endian) + tail`. `properties_bytes` is an encoded property block
    (length prefix included), used at level 5 only.
    """
    field = _topic_field(topic)
    if qos == 0:
        if dup:
            raise LocalProtocolError("DUP on a QoS 0 PUBLISH [MQTT-3.3.1-2]")
        first = 0x31 if retain else 0x30
        extra = 0
    elif qos == 1 or qos == 2:
        first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (1 if retain else 0)
        extra = 2
    else:
        raise LocalProtocolError(f"PUBLISH QoS {qos}")
    if protocol_level == 5:
        tail = properties_bytes + payload
    elif protocol_level == 4 or protocol_level == 3:
        if len(field) == 2:
            raise LocalProtocolError("empty topic name before MQTT 5 [MQTT-4.7.3-1]")
        tail = payload
    else:
        raise LocalProtocolError(f"unknown protocol level {protocol_level}")
    length = len(field) + extra + len(tail)
    if length < 128:
        head = _SHORT_HEADERS[(first & 0x0F) << 7 | length] + field
    elif length < 16384:  # two varint bytes: the usual size of a payload of a few hundred bytes up to 16 KB
        head = bytes((first, (length & 0x7F) | 0x80, length >> 7)) + field
    else:
        head = bytes((first,)) + encode_varint(length) + field
    return head, tail


def encode_puback_success(packet_id: int) -> bytes:
    """A PUBACK with reason 0 and no properties: the same four bytes at every level [3.4.2.1]."""
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


def _frame(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


def _pid(packet_id: int | None) -> bytes:
    if packet_id is None or not 0 < packet_id <= 0xFFFF:
        raise LocalProtocolError(f"invalid packet identifier {packet_id!r}")
    return packet_id.to_bytes(2, "big")


def _reason(code: int, allowed: frozenset[int], name: str) -> int:
    if code not in allowed:
        raise LocalProtocolError(f"reason code {code!r} not allowed in {name}")
    return code


def _encode_connect(p: Connect, level: int) -> bytes:
    if p.protocol_level != level or (p.protocol_name, level) not in SUPPORTED_PROTOCOLS:
        raise LocalProtocolError(
            f"CONNECT {p.protocol_name!r} level {p.protocol_level} sent as level {level}")
    if not 0 <= p.keep_alive <= 0xFFFF:
        raise LocalProtocolError(f"keep alive {p.keep_alive} out of range")
    flags = 0x02 if p.clean_start else 0
    will = p.will
    if will is not None:
        if will.qos not in (0, 1, 2):
            raise LocalProtocolError(f"will QoS {will.qos}")
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if p.username is not None:
        flags |= 0x80
    if p.password is not None:
        if p.username is None and level < 5:
            raise LocalProtocolError("password without user name [MQTT-3.1.2-22]")
        flags |= 0x40
    parts = [utf8_field(p.protocol_name), bytes((level, flags)),
             p.keep_alive.to_bytes(2, "big")]
    if level == 5:
        parts.append(encode_properties(p.properties, 1))
    parts.append(utf8_field(p.client_id))
    if will is not None:
        if level == 5:
            parts.append(encode_properties(will.properties, WILL_PROPERTIES))
        parts += (utf8_field(will.topic), binary_field(will.payload))
    if p.username is not None:
        parts.append(utf8_field(p.username))
    if p.password is not None:
        parts.append(binary_field(p.password))
    return _frame(0x10, b"".join(parts))


def _encode_connack(p: ConnAck, level: int) -> bytes:
    code = _reason(p.reason_code, CONNACK_REASONS, "CONNACK")
    if p.session_present and code:  # [MQTT-3.2.2-4] (3.1.1), [MQTT-3.2.2-6] (v5)
        raise LocalProtocolError("session present on a refused connection")
    if level != 5:
        return _V3_CONNACKS[(256 if p.session_present and level == 4 else 0) | code]
    return _frame(0x20, bytes((1 if p.session_present else 0, code))
                  + encode_properties(p.properties, 2))


def _encode_publish(p: Publish, level: int) -> bytes:
    props = p.properties
    if level == 5:
        if not p.topic and props.topic_alias is None:
            raise LocalProtocolError("empty topic without a topic alias")
        props_bytes = b"\x00" if props is NO_PROPERTIES else encode_properties(props, 3)
    else:
        props_bytes = b""
    head, tail = encode_publish_parts(p.topic, p.payload, p.qos, p.retain, p.dup,
                                      props_bytes, level)
    if p.qos:
        return head + _pid(p.packet_id) + tail
    return head + tail


def _reason_encoder(first: int, reasons: frozenset[int]):  # noqa: ANN202
    """Acks, DISCONNECT and AUTH: v5 short forms when reason 0 / no properties."""
    def encode_reason(p: PubAck | PubRec | PubRel | PubComp | Disconnect | Auth,
                      level: int) -> bytes:
        head = _pid(p.packet_id) if first < 0x80 else b""  # type: ignore[union-attr]
        code = _reason(p.reason_code, reasons, type(p).__name__)
        props = p.properties
        if level != 5:
            if first == 0xF0:
                raise LocalProtocolError("AUTH exists in MQTT 5 only")
            return bytes((first, len(head))) + head
        if props is NO_PROPERTIES:
            if not code:
                return bytes((first, len(head))) + head
            return bytes((first, len(head) + 1)) + head + bytes((code,))
        return _frame(first, head + bytes((code,)) + encode_properties(props, first >> 4))
    return encode_reason


def _encode_subscribe(p: Subscribe, level: int) -> bytes:
    if not p.subscriptions:
        raise LocalProtocolError("SUBSCRIBE without a subscription")
    parts = [_pid(p.packet_id)]
    if level == 5:
        parts.append(encode_properties(p.properties, 8))
    for s in p.subscriptions:
        if s.qos not in (0, 1, 2) or s.retain_handling not in (0, 1, 2):
            raise LocalProtocolError(f"invalid subscription options {s!r}")
        opts = s.qos
        if level == 5:
            opts |= ((4 if s.no_local else 0) | (8 if s.retain_as_published else 0)
                     | (s.retain_handling << 4))
        parts += (utf8_field(s.topic_filter), bytes((opts,)))
    return _frame(0x82, b"".join(parts))


def _encode_suback(p: SubAck, level: int) -> bytes:
    if not p.reason_codes:
        raise LocalProtocolError("SUBACK without reason codes")
    # List comprehensions, not generators: compiled, bytes(generator) iterates through Python calls.
    if level != 5:
        codes = bytes([_V3_SUBACK_RETURN[_reason(c, SUBACK_REASONS, "SUBACK")] for c in p.reason_codes])
        if len(codes) < 126:  # (nearly always: a one-byte remaining length)
            return bytes((0x90, 2 + len(codes))) + _pid(p.packet_id) + codes
        return _frame(0x90, _pid(p.packet_id) + codes)
    codes = bytes([_reason(c, SUBACK_REASONS, "SUBACK") for c in p.reason_codes])
    return _frame(0x90, _pid(p.packet_id) + encode_properties(p.properties, 9) + codes)


def _encode_unsubscribe(p: Unsubscribe, level: int) -> bytes:
    if not p.topic_filters:
        raise LocalProtocolError("UNSUBSCRIBE without a topic filter")
    parts = [_pid(p.packet_id)]
    if level == 5:
        parts.append(encode_properties(p.properties, 10))
    parts += map(utf8_field, p.topic_filters)
    return _frame(0xA2, b"".join(parts))


def _encode_unsuback(p: UnsubAck, level: int) -> bytes:
    if level != 5:
        return b"\xb0\x02" + _pid(p.packet_id)
    if not p.reason_codes:
        raise LocalProtocolError("MQTT 5 UNSUBACK needs one reason code per filter")
    codes = bytes([_reason(c, UNSUBACK_REASONS, "UNSUBACK") for c in p.reason_codes])
    return _frame(0xB0, _pid(p.packet_id) + encode_properties(p.properties, 11) + codes)


_ENCODERS: Final = {
    Connect: _encode_connect, ConnAck: _encode_connack, Publish: _encode_publish,
    PubAck: _reason_encoder(0x40, PUBACK_REASONS),
    PubRec: _reason_encoder(0x50, PUBACK_REASONS),
    PubRel: _reason_encoder(0x62, PUBREL_REASONS),
    PubComp: _reason_encoder(0x70, PUBREL_REASONS),
    Subscribe: _encode_subscribe, SubAck: _encode_suback,
    Unsubscribe: _encode_unsubscribe, UnsubAck: _encode_unsuback,
    PingReq: lambda p, level: b"\xc0\x00", PingResp: lambda p, level: b"\xd0\x00",
    Disconnect: _reason_encoder(0xE0, DISCONNECT_REASONS),
    Auth: _reason_encoder(0xF0, AUTH_REASONS),
}


def encode(packet: Packet | object, protocol_level: int) -> bytes:
    """Encode `packet` for protocol level 3, 4 or 5 (anything else is a `LocalProtocolError`: not
    annotated `Packet` alone, which compiled would let only tuples in, with a TypeError).

    Fields the level cannot carry (properties, most reason codes, v5
    subscription options) are left out; CONNACK and SUBACK reason codes are
    translated to v3 return codes.
    """
    if protocol_level not in (3, 4, 5):
        raise LocalProtocolError(f"unknown protocol level {protocol_level}")
    encoder = _ENCODERS.get(type(packet))
    if encoder is None:
        raise LocalProtocolError(f"not an MQTT packet: {packet!r}")
    return encoder(packet, protocol_level)
