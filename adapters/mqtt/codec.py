"""MQTT 3.1/3.1.1/5.0 wire codec: bytes in -> packets out, packets -> bytes.

No I/O: `MQTTDecoder` is fed bytes and hands back complete packets, or None
when it needs more data; `encode` turns a packet into bytes for a protocol
level (3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0). Limits are arguments.

Errors: bad input raises a `RemoteProtocolError` subclass whose `reason_code`
is what a v5 peer should be told; after one, the stream is out of sync and the
connection must be closed. Choices where the spec leaves room: a packet
identifier of 0 is a ProtocolViolation (0x82), as in the v5 definition of a
Protocol Error and in mosquitto; an invalid reason code in an acknowledgement
is a ProtocolViolation. MQTT 3.1 (level 3) predates the reserved fixed-header
flag rule [MQTT-2.2.2-2], so it is not enforced at that level (as mosquitto).
Encoding what MQTT cannot carry raises `LocalProtocolError`.
"""

from __future__ import annotations

from .errors import (AUTH_REASONS, CONNACK_REASONS, DISCONNECT_REASONS,
                     PUBACK_REASONS, PUBREL_REASONS, SUBACK_REASONS,
                     UNSUBACK_REASONS, V3_CONNACK_REASONS, V3_SUBACK_CODES,
                     LocalProtocolError, MalformedPacket, PacketTooLarge,
                     ProtocolViolation, TopicNameInvalid,
                     UnsupportedProtocolVersion, connack_return_code_v3,
                     suback_code_v3)
from .packets import (Auth, ConnAck, Connect, Disconnect, Packet, PingReq, PingResp,
                      PubAck, PubComp, PubRec, PubRel, Publish, SubAck, Subscribe,
                      SubscriptionRequest, UnsubAck, Unsubscribe, Will)
from .properties import (NO_PROPERTIES, WILL_PROPERTIES, binary_field,
                         decode_properties, decode_varint, encode_properties,
                         encode_varint, read_binary, read_utf8, utf8_field)

__all__ = ["MQTTDecoder", "encode", "encode_publish_parts", "encode_remaining_length",
           "decode_varint"]

encode_remaining_length = encode_varint  # Variable Byte Integer [1.5.5]

#: (protocol name, level) pairs we speak [MQTT-3.1.2-2].
SUPPORTED_PROTOCOLS = frozenset({("MQIsdp", 3), ("MQTT", 4), ("MQTT", 5)})
# Required low nibble of the fixed header per packet type (None: PUBLISH, or
# a type that does not exist) [MQTT-2.1.3-1] (v5), [MQTT-2.2.2-2] (3.1.1).
_FLAGS = (None, 0, 0, None, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0)
_COMPACT_AT = 1 << 16  # drop consumed bytes once this many are behind us


def _packet_id(buf: bytearray, pos: int, end: int) -> int:
    if pos + 2 > end:
        raise MalformedPacket("packet too short for a packet identifier")
    pid = (buf[pos] << 8) | buf[pos + 1]
    if not pid:  # [MQTT-2.3.1-1] (3.1.1), [MQTT-2.2.1-3] (v5)
        raise ProtocolViolation("packet identifier 0")
    return pid


def _check_topic_name(topic: str) -> None:
    if "+" in topic or "#" in topic:
        raise TopicNameInvalid(f"wildcard in topic name {topic!r} [MQTT-3.3.2-2]")


class MQTTDecoder:
    """Incremental decoder: `feed` bytes, then call `next_packet` until None.

    `protocol_level` is None until a CONNECT is decoded (it is set as soon as
    the CONNECT's level is read, so it is known even if the rest of that
    CONNECT is malformed); until then packets are decoded as level 4. A client
    sets it itself. `max_packet_size` bounds the whole packet, fixed header
    included, and is checked as soon as the fixed header is complete.
    """

    __slots__ = ("max_packet_size", "protocol_level", "_buf", "_pos")

    def __init__(self, max_packet_size: int | None = None) -> None:
        self.max_packet_size = max_packet_size
        self.protocol_level: int | None = None
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        """Append received bytes to the buffer."""
        self._buf += data

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as packets."""
        return len(self._buf) - self._pos

    def next_packet(self) -> Packet | None:
        """Return the next complete packet, or None if more data is needed."""
        buf = self._buf
        pos = self._pos
        size = len(buf)
        if size - pos < 2:
            return None
        first = buf[pos]
        length = buf[pos + 1]
        start = pos + 2
        if length & 0x80:  # multi-byte remaining length (rare: >= 128 bytes)
            r = decode_varint(buf, pos + 1)  # MalformedPacket after 4 bytes
            if r is None:
                return None
            length, start = r
        end = start + length
        limit = self.max_packet_size
        if limit is not None and end - pos > limit:
            raise PacketTooLarge(f"packet of {end - pos} bytes exceeds the maximum {limit}")
        if end > size:
            return None
        self._pos = end
        level = self.protocol_level or 4
        ptype = first >> 4
        if ptype == 3:
            packet: Packet = _decode_publish(first, buf, start, end, level)
        elif ptype == 1:
            packet = self._decode_connect(first & 0x0F, buf, start, end)
        else:
            flags = _FLAGS[ptype]
            if flags is None or (ptype == 15 and level != 5):
                raise MalformedPacket(f"reserved packet type {ptype}")
            if first & 0x0F != flags and level != 3:
                raise MalformedPacket(f"reserved fixed header flags 0x{first:02x}")
            packet = _DECODERS[ptype](buf, start, end, level)
        if end == size:
            buf.clear()
            self._pos = 0
        elif end >= _COMPACT_AT and end * 2 >= size:  # amortized O(n)
            del buf[:end]
            self._pos = 0
        return packet

    def _decode_connect(self, flags: int, buf: bytearray, pos: int, end: int) -> Connect:
        if flags:
            raise MalformedPacket("reserved CONNECT fixed header flags")
        name, pos = read_utf8(buf, pos, end)
        if pos >= end:
            raise MalformedPacket("CONNECT ends before the protocol level")
        level = buf[pos]
        if (name, level) not in SUPPORTED_PROTOCOLS:  # [MQTT-3.1.2-2]
            raise UnsupportedProtocolVersion(
                f"unsupported protocol {name!r} level {level}", name, level)
        self.protocol_level = level
        if pos + 4 > end:
            raise MalformedPacket("CONNECT ends inside the variable header")
        cflags = buf[pos + 1]
        keep_alive = (buf[pos + 2] << 8) | buf[pos + 3]
        pos += 4
        if cflags & 0x01:
            raise MalformedPacket("reserved connect flag set [MQTT-3.1.2-3]")
        will_qos = (cflags >> 3) & 3
        if cflags & 0x04:
            if will_qos == 3:  # [MQTT-3.1.2-14] (3.1.1), [MQTT-3.1.2-12] (v5)
                raise MalformedPacket("will QoS 3")
        elif will_qos or cflags & 0x20:  # [MQTT-3.1.2-13/15] (3.1.1), -11/-13 (v5)
            raise MalformedPacket("will QoS or retain set without the will flag")
        if cflags & 0x40 and not cflags & 0x80 and level < 5:
            raise MalformedPacket("password flag without user name flag [MQTT-3.1.2-22]")
        props = NO_PROPERTIES
        if level == 5:
            props, pos = decode_properties(buf, pos, end, 1)
        client_id, pos = read_utf8(buf, pos, end)
        will = None
        if cflags & 0x04:
            will_props = NO_PROPERTIES
            if level == 5:
                will_props, pos = decode_properties(buf, pos, end, WILL_PROPERTIES)
            will_topic, pos = read_utf8(buf, pos, end)
            if not will_topic:
                raise TopicNameInvalid("empty will topic [MQTT-4.7.3-1]")
            _check_topic_name(will_topic)
            will_payload, pos = read_binary(buf, pos, end)
            will = Will(will_topic, will_payload, will_qos, bool(cflags & 0x20), will_props)
        username = password = None
        if cflags & 0x80:
            username, pos = read_utf8(buf, pos, end)
        if cflags & 0x40:
            password, pos = read_binary(buf, pos, end)
        if pos != end:
            raise MalformedPacket("bytes left over at the end of CONNECT")
        return Connect(client_id, name, level, bool(cflags & 0x02), keep_alive,
                       username, password, will, props)


def _decode_publish(first: int, buf: bytearray, pos: int, end: int, level: int) -> Publish:
    qos = (first >> 1) & 3
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3 [MQTT-3.3.1-4]")
    dup = first & 0x08
    if dup and not qos:
        raise MalformedPacket("DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]")
    if pos + 2 > end:
        raise MalformedPacket("PUBLISH too short for a topic")
    stop = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if stop > end:
        raise MalformedPacket("topic runs past the end of the PUBLISH")
    try:
        topic = buf[pos + 2:stop].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("topic is not valid UTF-8 [MQTT-1.5.4-1]") from None
    if "\x00" in topic:
        raise MalformedPacket("topic contains U+0000 [MQTT-1.5.4-2]")
    pos = stop
    packet_id = None
    if qos:
        packet_id = _packet_id(buf, pos, end)
        pos += 2
    props = NO_PROPERTIES
    if level == 5:
        if pos < end and buf[pos] == 0:
            pos += 1
        else:
            props, pos = decode_properties(buf, pos, end, 3)
        if not topic and props.topic_alias is None:
            raise ProtocolViolation("empty topic without a topic alias [MQTT-3.3.2-1]")
    elif not topic:
        raise ProtocolViolation("empty topic name [MQTT-4.7.3-1]")
    if "+" in topic or "#" in topic:
        _check_topic_name(topic)
    payload = bytes(buf[pos:end]) if end - pos < 4096 else memoryview(buf)[pos:end].tobytes()
    return Publish(topic, payload, qos, bool(first & 1), bool(dup), packet_id, props)


def _reason_decoder(cls: type, ptype: int, reasons: frozenset[int], with_id: bool):  # noqa: ANN202
    """Packets ending in an optional v5 reason code and properties.

    PUBACK/PUBREC/PUBREL/PUBCOMP: remaining length 2 means reason 0, 3 means no
    properties [3.4.2.1]; DISCONNECT/AUTH: remaining length 0 means reason 0
    [3.14.2.1], [3.15.2.1].
    """
    def decode(buf: bytearray, pos: int, end: int, level: int) -> Packet:
        args: tuple[int, ...] = ()
        if with_id:
            args = (_packet_id(buf, pos, end),)
            pos += 2
        if pos == end:
            return cls(*args)
        if level != 5:
            raise MalformedPacket(f"{cls.__name__} longer than MQTT 3 allows")
        rc = buf[pos]
        if rc not in reasons:
            raise ProtocolViolation(f"reason code 0x{rc:02x} not allowed in {cls.__name__}")
        props = NO_PROPERTIES
        if end - pos > 1:
            props, pos = decode_properties(buf, pos + 1, end, ptype)
            if pos != end:
                raise MalformedPacket(f"bytes left over at the end of {cls.__name__}")
        return cls(*args, rc, props)
    return decode


def _decode_connack(buf: bytearray, pos: int, end: int, level: int) -> ConnAck:
    if end - pos < 2:
        raise MalformedPacket("CONNACK too short")
    ack_flags, code = buf[pos], buf[pos + 1]
    if ack_flags & 0xFE and level != 3:
        raise MalformedPacket("reserved connect acknowledge flags [MQTT-3.2.2-1]")
    if level != 5:
        if end - pos != 2:
            raise MalformedPacket("CONNACK remaining length is not 2")
        reason = V3_CONNACK_REASONS.get(code)
        if reason is None:
            raise ProtocolViolation(f"reserved CONNACK return code {code}")
        return ConnAck(level == 4 and bool(ack_flags & 1), int(reason))
    if code not in CONNACK_REASONS:
        raise ProtocolViolation(f"reason code 0x{code:02x} not allowed in CONNACK")
    props, pos = decode_properties(buf, pos + 2, end, 2)
    if pos != end:
        raise MalformedPacket("bytes left over at the end of CONNACK")
    return ConnAck(bool(ack_flags & 1), code, props)


def _decode_subscribe(buf: bytearray, pos: int, end: int, level: int) -> Subscribe:
    pid = _packet_id(buf, pos, end)
    pos += 2
    props = NO_PROPERTIES
    if level == 5:
        props, pos = decode_properties(buf, pos, end, 8)
    subs = []
    while pos < end:
        topic_filter, pos = read_utf8(buf, pos, end)
        if pos >= end:
            raise MalformedPacket("subscription options missing")
        opts = buf[pos]
        pos += 1
        qos = opts & 3
        if level != 5:
            if opts & 0xFC or qos == 3:  # [MQTT-3-8.3-4] (3.1.1)
                raise MalformedPacket(f"invalid requested QoS byte 0x{opts:02x}")
            subs.append(SubscriptionRequest(topic_filter, qos))
            continue
        if opts & 0xC0:
            raise MalformedPacket("reserved subscription option bits [MQTT-3.8.3-5]")
        if qos == 3:
            raise ProtocolViolation("subscription maximum QoS 3 [3.8.3.1]")
        retain_handling = (opts >> 4) & 3
        if retain_handling == 3:
            raise ProtocolViolation("retain handling 3 [3.8.3.1]")
        subs.append(SubscriptionRequest(topic_filter, qos, bool(opts & 4), bool(opts & 8),
                                        retain_handling))
    if not subs:  # [MQTT-3.8.3-3] (3.1.1), [MQTT-3.8.3-2] (v5)
        raise ProtocolViolation("SUBSCRIBE without a topic filter")
    return Subscribe(pid, tuple(subs), props)


def _decode_unsubscribe(buf: bytearray, pos: int, end: int, level: int) -> Unsubscribe:
    pid = _packet_id(buf, pos, end)
    pos += 2
    props = NO_PROPERTIES
    if level == 5:
        props, pos = decode_properties(buf, pos, end, 10)
    filters = []
    while pos < end:
        topic_filter, pos = read_utf8(buf, pos, end)
        filters.append(topic_filter)
    if not filters:  # [MQTT-3.10.3-2]
        raise ProtocolViolation("UNSUBSCRIBE without a topic filter")
    return Unsubscribe(pid, tuple(filters), props)


def _codes(buf: bytearray, pos: int, end: int, allowed: frozenset[int], name: str
           ) -> tuple[int, ...]:
    codes = tuple(buf[pos:end])
    if not codes:
        raise ProtocolViolation(f"{name} without reason codes")
    for code in codes:
        if code not in allowed:
            raise ProtocolViolation(f"reason code 0x{code:02x} not allowed in {name}")
    return codes


def _decode_suback(buf: bytearray, pos: int, end: int, level: int) -> SubAck:
    pid = _packet_id(buf, pos, end)
    if level != 5:
        return SubAck(pid, _codes(buf, pos + 2, end, V3_SUBACK_CODES, "SUBACK"))
    props, pos = decode_properties(buf, pos + 2, end, 9)
    return SubAck(pid, _codes(buf, pos, end, SUBACK_REASONS, "SUBACK"), props)


def _decode_unsuback(buf: bytearray, pos: int, end: int, level: int) -> UnsubAck:
    pid = _packet_id(buf, pos, end)
    if level != 5:
        if end - pos != 2:
            raise MalformedPacket("UNSUBACK remaining length is not 2")
        return UnsubAck(pid)
    props, pos = decode_properties(buf, pos + 2, end, 11)
    return UnsubAck(pid, _codes(buf, pos, end, UNSUBACK_REASONS, "UNSUBACK"), props)


def _empty(cls: type):  # noqa: ANN202
    packet = cls()

    def decode(buf: bytearray, pos: int, end: int, level: int) -> Packet:
        if end != pos:
            raise MalformedPacket(f"{cls.__name__} with a non-zero remaining length")
        return packet
    return decode


_DECODERS = {
    2: _decode_connack, 4: _reason_decoder(PubAck, 4, PUBACK_REASONS, True),
    5: _reason_decoder(PubRec, 5, PUBACK_REASONS, True),
    6: _reason_decoder(PubRel, 6, PUBREL_REASONS, True),
    7: _reason_decoder(PubComp, 7, PUBREL_REASONS, True), 8: _decode_subscribe,
    9: _decode_suback, 10: _decode_unsubscribe, 11: _decode_unsuback,
    12: _empty(PingReq), 13: _empty(PingResp),
    14: _reason_decoder(Disconnect, 14, DISCONNECT_REASONS, False),
    15: _reason_decoder(Auth, 15, AUTH_REASONS, False),
}


# --- encoding ---------------------------------------------------------------

def encode_publish_parts(topic: str | bytes, payload: bytes, qos: int, retain: bool,
                         dup: bool, properties_bytes: bytes, protocol_level: int
                         ) -> tuple[bytes, bytes]:
    """Encode a PUBLISH once for many receivers, split around the packet id.

    QoS 0: the packet is `head + tail`; QoS 1/2: `head + packet_id (2 bytes,
    big endian) + tail`. `properties_bytes` is an encoded property block
    (length prefix included), used at level 5 only.
    """
    if isinstance(topic, str):
        try:
            topic = topic.encode("utf-8")  # type: ignore[union-attr]
        except UnicodeEncodeError:
            raise LocalProtocolError(f"topic {topic!r} is not encodable") from None
    if b"\x00" in topic:
        raise LocalProtocolError("topic contains U+0000 [MQTT-1.5.4-2]")
    tlen = len(topic)
    if tlen > 0xFFFF:
        raise LocalProtocolError("topic longer than 65535 bytes")
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
        if not tlen:
            raise LocalProtocolError("empty topic name before MQTT 5 [MQTT-4.7.3-1]")
        tail = payload
    else:
        raise LocalProtocolError(f"unknown protocol level {protocol_level}")
    length = 2 + tlen + extra + len(tail)
    if length < 128:
        head = bytes((first, length, tlen >> 8, tlen & 0xFF)) + topic
    else:
        head = (bytes((first,)) + encode_varint(length)
                + bytes((tlen >> 8, tlen & 0xFF)) + topic)
    return head, tail


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
        return bytes((0x20, 2, 1 if p.session_present and level == 4 else 0,
                      connack_return_code_v3(code)))
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
    codes = bytes(_reason(c, SUBACK_REASONS, "SUBACK") for c in p.reason_codes)
    if level != 5:
        return _frame(0x90, _pid(p.packet_id) + bytes(suback_code_v3(c) for c in codes))
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
    codes = bytes(_reason(c, UNSUBACK_REASONS, "UNSUBACK") for c in p.reason_codes)
    return _frame(0xB0, _pid(p.packet_id) + encode_properties(p.properties, 11) + codes)


_ENCODERS = {
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


def encode(packet: Packet, protocol_level: int) -> bytes:
    """Encode `packet` for protocol level 3, 4 or 5.

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
