"""MQTT 3.1/3.1.1/5.0 decoding: bytes in -> packets out, with no I/O.

`MQTTDecoder` is fed bytes and hands back complete packets, or None when it
needs more data. Bad input raises a `RemoteProtocolError` subclass whose
`reason_code` is what a v5 peer should be told; after one, the stream is out of
sync and the connection must be closed. Choices where the spec leaves room: a
packet identifier of 0 is a ProtocolViolation (0x82), as in the v5 definition
of a Protocol Error and in mosquitto; an invalid reason code in an
acknowledgement is a ProtocolViolation. MQTT 3.1 (level 3) predates the
reserved fixed-header flag rule [MQTT-2.2.2-2], so it is not enforced at that
level (as mosquitto).
"""

from __future__ import annotations

from typing import Final

from .errors import (AUTH_REASONS, CONNACK_REASONS, DISCONNECT_REASONS, PUBACK_REASONS,
    PUBREL_REASONS, SUBACK_REASONS, UNSUBACK_REASONS, V3_CONNACK_REASONS,
    V3_SUBACK_CODES, MalformedPacket, PacketTooLarge, ProtocolViolation,
    TopicNameInvalid, UnsupportedProtocolVersion)
from .packets import (Auth, ConnAck, Connect, Disconnect, Packet, PingReq, PingResp,
    PubAck, PubComp, PubRec, PubRel, Publish, SubAck, Subscribe, SubscriptionRequest,
    UnsubAck, Unsubscribe, Will)
from .properties import (NO_PROPERTIES, WILL_PROPERTIES, decode_properties,
    decode_varint, read_binary, read_utf8)

__all__ = ["MQTTDecoder", "SUPPORTED_PROTOCOLS"]

#: (protocol name, level) pairs we speak [MQTT-3.1.2-2].
SUPPORTED_PROTOCOLS = frozenset({("MQIsdp", 3), ("MQTT", 4), ("MQTT", 5)})
# Required low nibble of the fixed header per packet type (None: PUBLISH, or
# a type that does not exist) [MQTT-2.1.3-1] (v5), [MQTT-2.2.2-2] (3.1.1).
_FLAGS: Final = (None, 0, 0, None, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0)
_tuple_new: Final = tuple.__new__  # a packet without the NamedTuple's Python-level __new__
_NO_PROPERTIES: Final = NO_PROPERTIES


def _packet_id(buf: bytes, pos: int, end: int) -> int:
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

    The buffer is the `bytes` a read returned, decoded in place: no copy on feed, and a payload
    is one slice of it. Bytes fed while a packet is incomplete wait in a bytearray, joined to the
    buffer once they complete it (a large packet arriving in many reads is copied about twice,
    not once per read, and a read of one byte costs one byte).
    """

    __slots__ = ("max_packet_size", "protocol_level", "_buf", "_pos", "_more", "_need")

    def __init__(self, max_packet_size: int | None = None) -> None:
        self.max_packet_size = max_packet_size
        self.protocol_level: int | None = None
        self._buf = b""
        self._pos = 0
        self._more = bytearray()  # fed after `_buf`, not joined yet
        self._need = 0  # bytes from `_pos` the incomplete packet at it needs (0: not known yet)

    def feed(self, data: bytes | bytearray) -> None:
        """Take received bytes (`bytes` are kept as they are, a `bytearray` is copied)."""
        if self._pos == len(self._buf) and not self._more:
            self._buf = data if isinstance(data, bytes) else bytes(data)
            self._pos = 0
        else:
            self._more += data

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as packets."""
        return len(self._buf) - self._pos + len(self._more)

    def _gather(self) -> bool:
        """Join the bytes fed since into the buffer, once they can complete the packet at `_pos`."""
        more = self._more
        if not more or len(self._buf) - self._pos + len(more) < self._need:
            return False
        self._buf = b"".join((memoryview(self._buf)[self._pos:], more))
        self._pos = 0
        self._more = bytearray()
        self._need = 0
        return True

    def next_packet(self) -> Packet | None:
        """Return the next complete packet, or None if more data is needed."""
        while True:
            buf = self._buf
            pos = self._pos
            size = len(buf)
            if size - pos < 2:
                self._need = 0
                if self._gather():
                    continue
                return None
            first = buf[pos]
            length = buf[pos + 1]
            start = pos + 2
            if length & 0x80:  # multi-byte remaining length (rare: >= 128 bytes)
                r = decode_varint(buf, pos + 1)  # MalformedPacket after 4 bytes
                if r is None:
                    self._need = 0
                    if self._gather():
                        continue
                    return None
                length, start = r
            end = start + length
            limit = self.max_packet_size
            if limit is not None and end - pos > limit:
                raise PacketTooLarge(f"packet of {end - pos} bytes exceeds the maximum {limit}")
            if end > size:
                self._need = end - pos
                if self._gather():
                    continue
                return None
            break
        self._pos = end
        level = self.protocol_level or 4
        ptype = first >> 4
        if ptype == 3:
            packet: Packet = _decode_publish(first, buf, start, end, level)
        elif ptype == 4 and length == 2 and first == 0x40:  # the usual PUBACK: reason 0, no properties
            packet = _tuple_new(PubAck, (_packet_id(buf, start, end), 0, _NO_PROPERTIES))
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
            self._buf = b""  # (not kept until the next read: it may be a large one)
            self._pos = 0
        return packet

    def _decode_connect(self, flags: int, buf: bytes, pos: int, end: int) -> Connect:
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
        props = _NO_PROPERTIES
        if level == 5:
            props, pos = decode_properties(buf, pos, end, 1)
        client_id, pos = read_utf8(buf, pos, end)
        will = None
        if cflags & 0x04:
            will_props = _NO_PROPERTIES
            if level == 5:
                will_props, pos = decode_properties(buf, pos, end, WILL_PROPERTIES)
            will_topic, pos = read_utf8(buf, pos, end)
            if not will_topic:
                raise TopicNameInvalid("empty will topic [MQTT-4.7.3-1]")
            _check_topic_name(will_topic)
            will_payload, pos = read_binary(buf, pos, end)
            will = Will(will_topic, will_payload, will_qos, cflags & 0x20 != 0, will_props)
        username = password = None
        if cflags & 0x80:
            username, pos = read_utf8(buf, pos, end)
        if cflags & 0x40:
            password, pos = read_binary(buf, pos, end)
        if pos != end:
            raise MalformedPacket("bytes left over at the end of CONNECT")
        return _tuple_new(Connect, (client_id, name, level, cflags & 0x02 != 0,  # type: ignore[no-any-return]
                                    keep_alive, username, password, will, props))


def _decode_publish(first: int, buf: bytes, pos: int, end: int, level: int) -> Publish:
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
    props = _NO_PROPERTIES
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
    payload = buf[pos:end]
    return _tuple_new(Publish, (topic, payload, qos, first & 1 != 0, dup != 0, packet_id, props))  # type: ignore[no-any-return]


def _reason_decoder(cls: type, ptype: int, reasons: frozenset[int], with_id: bool):  # noqa: ANN202
    """Packets ending in an optional v5 reason code and properties.

    PUBACK/PUBREC/PUBREL/PUBCOMP: remaining length 2 means reason 0, 3 means no
    properties [3.4.2.1]; DISCONNECT/AUTH: remaining length 0 means reason 0
    [3.14.2.1], [3.15.2.1].
    """
    def decode(buf: bytes, pos: int, end: int, level: int) -> Packet:
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
        props = _NO_PROPERTIES
        if end - pos > 1:
            props, pos = decode_properties(buf, pos + 1, end, ptype)
            if pos != end:
                raise MalformedPacket(f"bytes left over at the end of {cls.__name__}")
        return cls(*args, rc, props)
    return decode


def _decode_connack(buf: bytes, pos: int, end: int, level: int) -> ConnAck:
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
        return ConnAck(level == 4 and ack_flags & 1 != 0, int(reason))
    if code not in CONNACK_REASONS:
        raise ProtocolViolation(f"reason code 0x{code:02x} not allowed in CONNACK")
    props, pos = decode_properties(buf, pos + 2, end, 2)
    if pos != end:
        raise MalformedPacket("bytes left over at the end of CONNACK")
    return ConnAck(ack_flags & 1 != 0, code, props)


def _decode_subscribe(buf: bytes, pos: int, end: int, level: int) -> Subscribe:
    pid = _packet_id(buf, pos, end)
    pos += 2
    props = _NO_PROPERTIES
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
            subs.append(_tuple_new(SubscriptionRequest, (topic_filter, qos, False, False, 0)))
            continue
        if opts & 0xC0:
            raise MalformedPacket("reserved subscription option bits [MQTT-3.8.3-5]")
        if qos == 3:
            raise ProtocolViolation("subscription maximum QoS 3 [3.8.3.1]")
        retain_handling = (opts >> 4) & 3
        if retain_handling == 3:
            raise ProtocolViolation("retain handling 3 [3.8.3.1]")
        subs.append(_tuple_new(SubscriptionRequest, (topic_filter, qos, opts & 4 != 0, opts & 8 != 0,
                                                     retain_handling)))
    if not subs:  # [MQTT-3.8.3-3] (3.1.1), [MQTT-3.8.3-2] (v5)
        raise ProtocolViolation("SUBSCRIBE without a topic filter")
    return _tuple_new(Subscribe, (pid, tuple(subs), props))  # type: ignore[no-any-return]


def _decode_unsubscribe(buf: bytes, pos: int, end: int, level: int) -> Unsubscribe:
    pid = _packet_id(buf, pos, end)
    pos += 2
    props = _NO_PROPERTIES
    if level == 5:
        props, pos = decode_properties(buf, pos, end, 10)
    filters = []
    while pos < end:
        topic_filter, pos = read_utf8(buf, pos, end)
        filters.append(topic_filter)
    if not filters:  # [MQTT-3.10.3-2]
        raise ProtocolViolation("UNSUBSCRIBE without a topic filter")
    return Unsubscribe(pid, tuple(filters), props)


def _codes(buf: bytes, pos: int, end: int, allowed: frozenset[int], name: str
           ) -> tuple[int, ...]:
    codes = tuple(buf[pos:end])
    if not codes:
        raise ProtocolViolation(f"{name} without reason codes")
    for code in codes:
        if code not in allowed:
            raise ProtocolViolation(f"reason code 0x{code:02x} not allowed in {name}")
    return codes


def _decode_suback(buf: bytes, pos: int, end: int, level: int) -> SubAck:
    pid = _packet_id(buf, pos, end)
    if level != 5:
        return SubAck(pid, _codes(buf, pos + 2, end, V3_SUBACK_CODES, "SUBACK"))
    props, pos = decode_properties(buf, pos + 2, end, 9)
    return SubAck(pid, _codes(buf, pos, end, SUBACK_REASONS, "SUBACK"), props)


def _decode_unsuback(buf: bytes, pos: int, end: int, level: int) -> UnsubAck:
    pid = _packet_id(buf, pos, end)
    if level != 5:
        if end - pos != 2:
            raise MalformedPacket("UNSUBACK remaining length is not 2")
        return UnsubAck(pid)
    props, pos = decode_properties(buf, pos + 2, end, 11)
    return UnsubAck(pid, _codes(buf, pos, end, UNSUBACK_REASONS, "UNSUBACK"), props)


def _empty(cls: type):  # noqa: ANN202
    packet = cls()

    def decode(buf: bytes, pos: int, end: int, level: int) -> Packet:
        if end != pos:
            raise MalformedPacket(f"{cls.__name__} with a non-zero remaining length")
        return packet
    return decode


_DECODERS: Final = {
    2: _decode_connack, 4: _reason_decoder(PubAck, 4, PUBACK_REASONS, True),
    5: _reason_decoder(PubRec, 5, PUBACK_REASONS, True),
    6: _reason_decoder(PubRel, 6, PUBREL_REASONS, True),
    7: _reason_decoder(PubComp, 7, PUBREL_REASONS, True), 8: _decode_subscribe,
    9: _decode_suback, 10: _decode_unsubscribe, 11: _decode_unsuback,
    12: _empty(PingReq), 13: _empty(PingResp),
    14: _reason_decoder(Disconnect, 14, DISCONNECT_REASONS, False),
    15: _reason_decoder(Auth, 15, AUTH_REASONS, False),
}
