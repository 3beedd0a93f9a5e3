"""Bytes-only tests of the MQTT codec: round trips, spec vectors, malformed input."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.mqtt.codec import (MQTTDecoder, decode_varint, encode, encode_publish_parts,
                                 encode_remaining_length)
from adapters.mqtt.errors import (AUTH_REASONS, CONNACK_REASONS, DISCONNECT_REASONS,
                                  PUBACK_REASONS, PUBREL_REASONS, SUBACK_REASONS,
                                  UNSUBACK_REASONS, V3_CONNACK_REASONS, LocalProtocolError,
                                  MalformedPacket, PacketTooLarge, ProtocolViolation,
                                  ReasonCode, RemoteProtocolError, TopicAliasInvalid,
                                  TopicNameInvalid, UnsupportedProtocolVersion,
                                  connack_return_code_v3, suback_code_v3)
from adapters.mqtt.packets import (Auth, ConnAck, Connect, Disconnect, Packet, PacketType,
                                   PingReq, PingResp, PubAck, PubComp, PubRec, PubRel,
                                   Publish, SubAck, Subscribe, SubscriptionRequest, UnsubAck,
                                   Unsubscribe, Will)
from adapters.mqtt.properties import (NO_PROPERTIES, WILL_PROPERTIES, Properties,
                                      encode_properties)

from .test_properties import mqtt_text, properties_for

LEVELS = (3, 4, 5)


# --- strategies -------------------------------------------------------------------

def _props(level: int, packet_type: int) -> st.SearchStrategy[Properties]:
    return properties_for(packet_type) if level == 5 else st.just(NO_PROPERTIES)


topic_names = mqtt_text(1, 20).filter(lambda t: "+" not in t and "#" not in t)
packet_ids = st.integers(1, 0xFFFF)


def _codes(allowed: frozenset[int]) -> st.SearchStrategy[int]:
    return st.sampled_from(sorted(allowed))


def _connect(level: int) -> st.SearchStrategy[Connect]:
    will = st.none() | st.builds(Will, topic_names, st.binary(max_size=20), st.integers(0, 2),
                                 st.booleans(), _props(level, WILL_PROPERTIES))
    username = st.none() | mqtt_text()
    password = st.none() | st.binary(max_size=10)
    connect = st.builds(Connect, mqtt_text(), st.just("MQIsdp" if level == 3 else "MQTT"),
                        st.just(level), st.booleans(), st.integers(0, 0xFFFF), username,
                        password, will, _props(level, PacketType.CONNECT))
    return connect.filter(lambda c: level == 5 or c.password is None or c.username is not None)


def _connack(level: int) -> st.SearchStrategy[ConnAck]:
    return st.builds(ConnAck, st.booleans(), _codes(CONNACK_REASONS),
                     _props(level, PacketType.CONNACK)).map(
        lambda c: c._replace(session_present=False) if c.reason_code else c)


def _publish(level: int) -> st.SearchStrategy[Publish]:
    def build(topic: str, payload: bytes, qos: int, retain: bool, dup: bool, pid: int,
              props: Properties) -> Publish:
        if level == 5 and props.topic_alias is not None and dup:
            topic = ""  # v5: the alias stands for the topic
        return Publish(topic, payload, qos, retain, dup and qos > 0, pid if qos else None,
                       props)
    return st.builds(build, topic_names, st.binary(max_size=300), st.integers(0, 2),
                     st.booleans(), st.booleans(), packet_ids,
                     _props(level, PacketType.PUBLISH))


def _subscription(level: int) -> st.SearchStrategy[SubscriptionRequest]:
    return st.builds(SubscriptionRequest, mqtt_text(1), st.integers(0, 2), st.booleans(),
                     st.booleans(), st.integers(0, 2))


def packets(level: int) -> st.SearchStrategy[Packet]:
    """Every packet type valid at `level`."""
    def ack(cls: type, reasons: frozenset[int]) -> st.SearchStrategy[Packet]:
        return st.builds(cls, packet_ids, _codes(reasons), _props(level, cls.packet_type))
    strategies = [
        _connect(level), _connack(level), _publish(level),
        ack(PubAck, PUBACK_REASONS), ack(PubRec, PUBACK_REASONS),
        ack(PubRel, PUBREL_REASONS), ack(PubComp, PUBREL_REASONS),
        st.builds(Subscribe, packet_ids, st.lists(_subscription(level), min_size=1,
                                                  max_size=4).map(tuple),
                  _props(level, PacketType.SUBSCRIBE)),
        st.builds(SubAck, packet_ids, st.lists(_codes(SUBACK_REASONS), min_size=1,
                                               max_size=4).map(tuple),
                  _props(level, PacketType.SUBACK)),
        st.builds(Unsubscribe, packet_ids, st.lists(mqtt_text(1), min_size=1,
                                                    max_size=4).map(tuple),
                  _props(level, PacketType.UNSUBSCRIBE)),
        st.builds(UnsubAck, packet_ids, st.lists(_codes(UNSUBACK_REASONS), min_size=1,
                                                 max_size=4).map(tuple),
                  _props(level, PacketType.UNSUBACK)),
        st.just(PingReq()), st.just(PingResp()),
        st.builds(Disconnect, _codes(DISCONNECT_REASONS), _props(level, PacketType.DISCONNECT)),
    ]
    if level == 5:
        strategies.append(st.builds(Auth, _codes(AUTH_REASONS), _props(5, PacketType.AUTH)))
    return st.one_of(strategies)


def expected(packet: Packet, level: int) -> Packet:
    """What a decoder returns for `packet` encoded at `level` (v3/v4 drop v5-only fields)."""
    if level == 5:
        return packet
    if isinstance(packet, Connect):
        will = packet.will and replace(packet.will, properties=NO_PROPERTIES)
        return packet._replace(will=will, properties=NO_PROPERTIES)
    if isinstance(packet, ConnAck):
        code = V3_CONNACK_REASONS[connack_return_code_v3(packet.reason_code)]
        return ConnAck(packet.session_present and level == 4, code)
    if isinstance(packet, Publish):
        return packet._replace(properties=NO_PROPERTIES)
    if isinstance(packet, (PubAck, PubRec, PubRel, PubComp)):
        return type(packet)(packet.packet_id)
    if isinstance(packet, Subscribe):
        subs = tuple(SubscriptionRequest(s.topic_filter, s.qos) for s in packet.subscriptions)
        return Subscribe(packet.packet_id, subs)
    if isinstance(packet, SubAck):
        return SubAck(packet.packet_id, tuple(map(suback_code_v3, packet.reason_codes)))
    if isinstance(packet, UnsubAck):
        return UnsubAck(packet.packet_id)
    if isinstance(packet, Disconnect):
        return Disconnect()
    return packet


def decoder(level: int | None = 4, max_packet_size: int | None = None) -> MQTTDecoder:
    d = MQTTDecoder(max_packet_size)
    d.protocol_level = level
    return d


def decode_one(data: bytes, level: int | None = 4) -> Packet:
    d = decoder(level)
    d.feed(data)
    packet = d.next_packet()
    assert packet is not None
    assert d.next_packet() is None and d.buffered == 0
    return packet


def raises(exc_type: type[RemoteProtocolError], code: ReasonCode, data: bytes,
           level: int | None = 4) -> RemoteProtocolError:
    d = decoder(level)
    d.feed(data)
    with pytest.raises(exc_type) as info:
        d.next_packet()
    assert type(info.value) is exc_type
    assert info.value.reason_code == code
    return info.value


def frame(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_remaining_length(len(body)) + body


def s(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


# --- round trips -------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
@given(data=st.data())
def test_every_packet_round_trips_in_one_chunk(level: int, data: st.DataObject) -> None:
    packet = data.draw(packets(level))
    assert decode_one(encode(packet, level), level) == expected(packet, level)


@pytest.mark.parametrize("level", LEVELS)
@given(data=st.data())
def test_every_packet_round_trips_fed_byte_by_byte(level: int, data: st.DataObject) -> None:
    packet = data.draw(packets(level))
    wire = encode(packet, level)
    d = decoder(level)
    for i in range(len(wire) - 1):
        d.feed(wire[i:i + 1])
        assert d.next_packet() is None
    d.feed(wire[-1:])
    assert d.next_packet() == expected(packet, level)


@pytest.mark.parametrize("level", LEVELS)
@given(data=st.data())
def test_concatenated_packets_decode_in_order(level: int, data: st.DataObject) -> None:
    batch = data.draw(st.lists(packets(level), min_size=2, max_size=4))
    d = decoder(level)
    d.feed(b"".join(encode(p, level) for p in batch))
    decoded = [d.next_packet() for _ in batch]
    assert decoded == [expected(p, level) for p in batch]
    assert d.next_packet() is None and d.buffered == 0


@pytest.mark.parametrize("level", LEVELS)
def test_decoding_a_connect_sets_the_protocol_level(level: int) -> None:
    d = MQTTDecoder()
    assert d.protocol_level is None
    d.feed(encode(Connect("c", "MQIsdp" if level == 3 else "MQTT", level), level))
    assert isinstance(d.next_packet(), Connect)
    assert d.protocol_level == level


def test_packets_before_a_connect_decode_as_level_4() -> None:
    assert decode_one(bytes.fromhex("40020001"), None) == PubAck(1)
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, bytes.fromhex("4003000110"), None)


def test_many_small_packets_in_one_big_chunk_are_all_decoded() -> None:
    d = decoder(4)
    d.feed(b"\xc0\x00" * 100_000 + b"\xc0")
    count = 0
    while d.next_packet() is not None:
        count += 1
    assert count == 100_000 and d.buffered == 1
    d.feed(b"\x00")
    assert d.next_packet() == PingReq() and d.buffered == 0


def test_a_large_packet_fed_in_many_reads_is_joined_once_when_complete() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    wire = encode(Publish("big/one", payload, 0), 4) + b"\xc0\x00"
    d = decoder(4)
    chunk = 4096
    for i in range(0, len(wire) - chunk, chunk):
        d.feed(wire[i:i + chunk])
        assert d.next_packet() is None
        # Waiting for the rest: no join (a copy of all so far) per read; the buffer is the first read.
        assert len(d._buf) == chunk and d.buffered == i + chunk
    d.feed(wire[i + chunk:])
    assert d.next_packet() == Publish("big/one", payload, 0)
    assert d.next_packet() == PingReq() and d.buffered == 0


def test_a_packet_trickled_in_one_byte_reads_costs_about_its_own_size_in_memory() -> None:
    wire = encode(Publish("slow", b"x" * 20_000, 0), 4)
    d = decoder(4)
    for i in range(len(wire) - 1):
        d.feed(wire[i:i + 1])
        assert d.next_packet() is None
    # One object per read would be ~35 bytes each: 20 KB trickled must not cost 700 KB.
    assert sys.getsizeof(d._buf) + sys.getsizeof(d._more) < 2 * len(wire)
    d.feed(wire[-1:])
    assert d.next_packet() == Publish("slow", b"x" * 20_000, 0)


def test_a_fed_bytearray_is_copied_so_the_caller_may_reuse_it() -> None:
    d = decoder(4)
    data = bytearray(b"\xc0\x00\xc0")
    d.feed(data)
    data[2] = 0x40  # the caller reuses its buffer: the decoder took a copy
    assert d.next_packet() == PingReq() and d.buffered == 1
    d.feed(b"\x00")
    assert d.next_packet() == PingReq()


# --- publish hot path --------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
@given(topic=topic_names, payload=st.binary(max_size=400), qos=st.integers(0, 2),
       retain=st.booleans(), pid=packet_ids)
def test_publish_parts_splice_the_packet_id_between_head_and_tail(
        level: int, topic: str, payload: bytes, qos: int, retain: bool, pid: int) -> None:
    props = Properties(content_type="text/plain") if level == 5 else NO_PROPERTIES
    head, tail = encode_publish_parts(topic.encode(), payload, qos, retain, False,
                                      encode_properties(props, PacketType.PUBLISH), level)
    wire = head + pid.to_bytes(2, "big") + tail if qos else head + tail
    packet = Publish(topic, payload, qos, retain, False, pid if qos else None, props)
    assert wire == encode(packet, level)
    assert decode_one(wire, level) == packet


def test_publish_parts_ignore_properties_before_mqtt_5() -> None:
    head, tail = encode_publish_parts("a/b", b"hi", 0, False, False, b"\x02\x01\x01", 4)
    assert head + tail == bytes.fromhex("30070003612f626869")


def test_a_v5_publish_may_use_an_empty_topic_with_a_topic_alias() -> None:
    packet = Publish("", b"x", properties=Properties(topic_alias=3))
    assert encode(packet, 5) == bytes.fromhex("3007" "0000" "03230003" "78")
    assert decode_one(encode(packet, 5), 5) == packet


def test_a_large_publish_uses_a_multi_byte_remaining_length() -> None:
    wire = encode(Publish("t", bytes(200_000)), 4)
    assert wire[:4] == b"\x30" + encode_remaining_length(200_003)
    assert decode_one(wire).payload == bytes(200_000)


# --- known byte vectors ------------------------------------------------------

def test_a_mosquitto_pub_v311_connect_decodes() -> None:
    wire = bytes.fromhex("101500044d5154540402003c00096d6f73712d74657374")
    assert decode_one(wire, None) == Connect("mosq-test", "MQTT", 4, True, 60)
    assert encode(Connect("mosq-test"), 4) == wire


def test_a_v31_connect_with_will_and_credentials_decodes() -> None:
    wire = frame(0x10, s("MQIsdp") + bytes((3, 0xEE)) + b"\x00\x0a" + s("id")
                 + s("w/t") + s("bye") + s("user") + s("pw"))
    assert decode_one(wire, None) == Connect(
        "id", "MQIsdp", 3, True, 10, "user", b"pw", Will("w/t", b"bye", 1, True))


def test_a_v5_connect_reads_connect_and_will_properties() -> None:
    wire = frame(0x10, s("MQTT") + bytes((5, 0x06)) + b"\x00\x3c"
                 + b"\x05\x11\x00\x00\x00\x0a" + s("c")
                 + b"\x02\x01\x01" + s("w") + s("x"))
    assert decode_one(wire, None) == Connect(
        "c", "MQTT", 5, True, 60, will=Will("w", b"x", properties=Properties(
            payload_format_indicator=1)), properties=Properties(session_expiry_interval=10))


@pytest.mark.parametrize("level, packet, hexwire", [
    (4, PingReq(), "c000"),
    (4, PingResp(), "d000"),
    (4, ConnAck(), "20020000"),
    (4, ConnAck(True), "20020100"),
    (5, ConnAck(reason_code=ReasonCode.NOT_AUTHORIZED), "2003008700"),
    (4, ConnAck(reason_code=ReasonCode.BANNED), "20020003"),
    (4, ConnAck(reason_code=ReasonCode.BAD_USER_NAME_OR_PASSWORD), "20020004"),
    (5, PubAck(1), "40020001"),
    (5, PubAck(1, ReasonCode.NO_MATCHING_SUBSCRIBERS), "4003000110"),
    (4, PubAck(1, ReasonCode.NO_MATCHING_SUBSCRIBERS), "40020001"),
    (4, PubRel(7), "62020007"),
    (4, Publish("a/b", b"hi"), "30070003612f626869"),
    (4, Publish("a/b", b"hi", 1, True, True, 10), "3b090003612f62000a6869"),
    (5, Publish("a/b", b"hi", 1, packet_id=10), "320a0003612f62000a006869"),
    (4, Subscribe(1, (SubscriptionRequest("a/b", 1),)), "820800010003612f6201"),
    (5, Subscribe(1, (SubscriptionRequest("a/b", 1, True, True, 2),)),
     "82090001000003612f622d"),
    (4, SubAck(1, (1, ReasonCode.NOT_AUTHORIZED)), "9004000101" "80"),
    (5, SubAck(1, (1, ReasonCode.NOT_AUTHORIZED)), "900500010001" "87"),
    (4, Unsubscribe(2, ("a",)), "a20500020001" "61"),
    (4, UnsubAck(2), "b0020002"),
    (5, UnsubAck(2, (0x11,)), "b00400020011"),
    (4, Disconnect(), "e000"),
    (5, Disconnect(), "e000"),
    (5, Disconnect(ReasonCode.DISCONNECT_WITH_WILL), "e00104"),
    (5, Auth(ReasonCode.CONTINUE_AUTHENTICATION,
             Properties(authentication_method="x")), "f00618" "0415000178"),
])
def test_known_byte_vectors(level: int, packet: Packet, hexwire: str) -> None:
    wire = bytes.fromhex(hexwire)
    assert encode(packet, level) == wire
    assert decode_one(wire, level) == expected(packet, level)


def test_v5_short_forms_decode_with_defaults() -> None:
    assert decode_one(bytes.fromhex("5003000110"), 5) == PubRec(1, 0x10)
    assert decode_one(bytes.fromhex("700400019200"), 5) == PubComp(1, 0x92)
    assert decode_one(bytes.fromhex("e000"), 5) == Disconnect()
    assert decode_one(bytes.fromhex("f000"), 5) == Auth()
    assert decode_one(bytes.fromhex("e0028e00"), 5) == Disconnect(0x8E)


# --- malformed input: fixed header ------------------------------------------------

@pytest.mark.parametrize("hexwire", [
    "c100", "d800", "e200", "22020000", "41020001", "43020001", "60020001", "72020001",
    "800600010001" "6100", "a00500010001" "61",
])
def test_reserved_fixed_header_flags_are_malformed(hexwire: str) -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, bytes.fromhex(hexwire))


def test_reserved_flags_are_not_checked_for_mqtt_31() -> None:
    assert decode_one(bytes.fromhex("6a020001"), 3) == PubRel(1)  # 3.1 PUBREL retry with DUP


@pytest.mark.parametrize("first", [0x00, 0xF0])
def test_reserved_packet_types_are_malformed(first: int) -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, bytes((first, 0)))


def test_a_remaining_length_of_more_than_4_bytes_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, b"\x30\xff\xff\xff\xff\x01")


def test_an_incomplete_remaining_length_needs_more_data() -> None:
    d = decoder()
    d.feed(b"\x30\xff\xff")
    assert d.next_packet() is None


def test_a_packet_over_the_maximum_size_is_rejected_from_the_fixed_header_alone() -> None:
    d = decoder(max_packet_size=100)
    d.feed(b"\x30" + encode_remaining_length(1_000_000))
    with pytest.raises(PacketTooLarge) as info:
        d.next_packet()
    assert info.value.reason_code == ReasonCode.PACKET_TOO_LARGE


def test_the_maximum_packet_size_includes_the_fixed_header() -> None:
    wire = encode(Publish("t", bytes(95)), 4)  # 2 + 3 + 95 = 100 bytes
    d = decoder(max_packet_size=100)
    d.feed(wire)
    assert d.next_packet() is not None
    d = decoder(max_packet_size=99)
    d.feed(wire)
    with pytest.raises(PacketTooLarge):
        d.next_packet()


# --- malformed input: PUBLISH ------------------------------------------------------

def test_publish_with_qos_3_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, frame(0x36, s("t") + b"\x00\x01"))


def test_publish_with_dup_on_qos_0_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, frame(0x38, s("t")))


def test_publish_with_packet_id_0_is_a_protocol_error() -> None:
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, frame(0x32, s("t") + b"\x00\x00"))


def test_publish_with_a_topic_longer_than_the_packet_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, frame(0x30, b"\x00\x09abc"))


def test_publish_without_room_for_its_packet_id_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, frame(0x32, s("t") + b"\x01"))


@pytest.mark.parametrize("topic", [b"\xc3\x28", b"\xed\xa0\x80", b"a\x00b", b"\xc0\xaf"])
def test_publish_with_a_topic_that_is_not_valid_mqtt_utf8_is_malformed(topic: bytes) -> None:
    raw = len(topic).to_bytes(2, "big") + topic
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, frame(0x30, raw))


@pytest.mark.parametrize("topic", ["a/+", "#", "a/#"])
def test_publish_with_a_wildcard_topic_is_topic_name_invalid(topic: str) -> None:
    raises(TopicNameInvalid, ReasonCode.TOPIC_NAME_INVALID, frame(0x30, s(topic)))


def test_publish_with_an_empty_topic_is_a_protocol_error_before_mqtt_5() -> None:
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, frame(0x30, s("") + b"x"))


def test_v5_publish_with_an_empty_topic_and_no_alias_is_a_protocol_error() -> None:
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, frame(0x30, s("") + b"\x00"), 5)


def test_v5_publish_with_topic_alias_0_is_topic_alias_invalid() -> None:
    raises(TopicAliasInvalid, ReasonCode.TOPIC_ALIAS_INVALID,
           frame(0x30, s("t") + b"\x03\x23\x00\x00"), 5)


def test_v5_publish_without_its_property_length_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, frame(0x32, s("t") + b"\x00\x01"), 5)


# --- malformed input: CONNECT ----------------------------------------------------

def connect(name: str = "MQTT", level: int = 4, flags: int = 0x02, rest: bytes = s("c"),
            first: int = 0x10) -> bytes:
    return frame(first, s(name) + bytes((level, flags)) + b"\x00\x3c" + rest)


@pytest.mark.parametrize("name, level", [("MQTT", 3), ("MQTT", 6), ("MQIsdp", 4),
                                         ("HTTP", 4), ("mqtt", 5)])
def test_an_unknown_protocol_name_or_level_is_unsupported(name: str, level: int) -> None:
    error = raises(UnsupportedProtocolVersion, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
                   connect(name, level), None)
    assert (error.protocol_name, error.protocol_level) == (name, level)


def test_an_unsupported_level_is_reported_after_reading_only_name_and_level() -> None:
    wire = frame(0x10, s("MQTT") + b"\x07")  # nothing after the level
    error = raises(UnsupportedProtocolVersion, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION, wire)
    assert error.protocol_level == 7


def test_a_connect_cut_before_the_level_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, frame(0x10, s("MQTT")), None)


def test_connect_with_reserved_fixed_header_flags_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, connect(first=0x12), None)


def test_connect_with_the_reserved_connect_flag_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, connect(flags=0x03), None)


@pytest.mark.parametrize("flags", [0x08, 0x10, 0x20])
def test_will_qos_or_retain_without_the_will_flag_is_malformed(flags: int) -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, connect(flags=flags), None)


def test_will_qos_3_is_malformed() -> None:
    rest = s("c") + s("w") + s("x")
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, connect(flags=0x1C, rest=rest), None)


@pytest.mark.parametrize("level", [3, 4])
def test_a_password_without_a_user_name_is_malformed_before_mqtt_5(level: int) -> None:
    wire = connect("MQIsdp" if level == 3 else "MQTT", level, 0x42, s("c") + s("pw"))
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, wire, None)


def test_a_password_without_a_user_name_is_allowed_in_mqtt_5() -> None:
    wire = connect("MQTT", 5, 0x42, b"\x00" + s("c") + s("pw"))
    assert decode_one(wire, None) == Connect("c", protocol_level=5, password=b"pw")


def test_a_connect_with_bytes_left_over_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, connect(rest=s("c") + b"\x00"), None)


def test_a_connect_with_a_missing_user_name_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, connect(flags=0x82), None)


def test_a_client_id_that_is_not_valid_utf8_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, connect(rest=b"\x00\x01\xff"), None)


def test_a_will_topic_with_a_wildcard_is_topic_name_invalid() -> None:
    rest = s("c") + s("w/#") + s("x")
    raises(TopicNameInvalid, ReasonCode.TOPIC_NAME_INVALID, connect(flags=0x06, rest=rest))


def test_the_level_is_known_even_when_the_rest_of_a_connect_is_malformed() -> None:
    d = MQTTDecoder()
    d.feed(connect("MQTT", 5, 0x03))
    with pytest.raises(MalformedPacket):
        d.next_packet()
    assert d.protocol_level == 5


# --- malformed input: acknowledgements, SUBSCRIBE, UNSUBSCRIBE ------------------------

@pytest.mark.parametrize("hexwire", ["4000", "400100", "500100"])
def test_an_ack_too_short_for_its_packet_id_is_malformed(hexwire: str) -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, bytes.fromhex(hexwire), 5)


@pytest.mark.parametrize("hexwire", ["40020000", "90030000" "00", "b0020000", "a2050000" "000161",
                                     "82060000" "00016100"])
def test_a_packet_id_of_0_is_a_protocol_error(hexwire: str) -> None:
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, bytes.fromhex(hexwire))


def test_a_v311_puback_with_extra_bytes_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, bytes.fromhex("4003000100"), 4)


def test_a_v5_puback_with_bytes_after_its_properties_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, bytes.fromhex("400500010000ff"), 5)


def test_a_reason_code_not_allowed_in_the_packet_is_a_protocol_error() -> None:
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, bytes.fromhex("6203000110"), 5)
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, bytes.fromhex("e00118"), 5)


def test_a_reserved_v311_connack_return_code_is_a_protocol_error() -> None:
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, bytes.fromhex("20020006"), 4)


def test_connack_with_reserved_acknowledge_flags_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, bytes.fromhex("20020200"), 4)


@pytest.mark.parametrize("level", [4, 5])
def test_subscribe_with_no_filters_is_a_protocol_error(level: int) -> None:
    body = b"\x00\x01" + (b"\x00" if level == 5 else b"")
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, frame(0x82, body), level)


@pytest.mark.parametrize("level", [4, 5])
def test_unsubscribe_with_no_filters_is_a_protocol_error(level: int) -> None:
    body = b"\x00\x01" + (b"\x00" if level == 5 else b"")
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, frame(0xA2, body), level)


def test_subscribe_without_its_options_byte_is_malformed() -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, frame(0x82, b"\x00\x01" + s("a")))


@pytest.mark.parametrize("options", [0x03, 0x04, 0x08, 0x10, 0x40, 0x80])
def test_v311_subscription_options_other_than_qos_0_to_2_are_malformed(options: int) -> None:
    wire = frame(0x82, b"\x00\x01" + s("a") + bytes((options,)))
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, wire, 4)


@pytest.mark.parametrize("options", [0x40, 0x80])
def test_v5_reserved_subscription_option_bits_are_malformed(options: int) -> None:
    wire = frame(0x82, b"\x00\x01\x00" + s("a") + bytes((options,)))
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, wire, 5)


@pytest.mark.parametrize("options", [0x03, 0x30])
def test_v5_subscription_qos_3_or_retain_handling_3_is_a_protocol_error(options: int) -> None:
    wire = frame(0x82, b"\x00\x01\x00" + s("a") + bytes((options,)))
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, wire, 5)


@pytest.mark.parametrize("hexwire", ["c001" "00", "d001" "00", "e001" "00", "b003" "000100"])
def test_v311_packets_with_an_unexpected_payload_are_malformed(hexwire: str) -> None:
    raises(MalformedPacket, ReasonCode.MALFORMED_PACKET, bytes.fromhex(hexwire), 4)


def test_suback_with_a_reserved_v311_return_code_is_a_protocol_error() -> None:
    raises(ProtocolViolation, ReasonCode.PROTOCOL_ERROR, bytes.fromhex("9003000103"), 4)


# --- encoding errors are local ---------------------------------------------------------

@pytest.mark.parametrize("packet, level", [
    (Publish("t", b"", 1), 4),                      # QoS 1 without a packet id
    (Publish("t", b"", 3, packet_id=1), 4),
    (Publish("t", b"", 0, dup=True), 4),
    (Publish("", b""), 4),
    (Publish("", b""), 5),                          # empty topic, no alias
    (Publish("x" * 70_000), 4),
    (Publish("a\x00b"), 4),
    (PubAck(0), 4),
    (PubAck(70_000), 4),
    (PubAck(1, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND), 5),
    (Subscribe(1, ()), 4),
    (Subscribe(1, (SubscriptionRequest("a", 3),)), 4),
    (Unsubscribe(1, ()), 4),
    (SubAck(1, ()), 4),
    (UnsubAck(1), 5),
    (ConnAck(True, ReasonCode.NOT_AUTHORIZED), 4),
    (ConnAck(reason_code=ReasonCode.NO_MATCHING_SUBSCRIBERS), 5),
    (Connect("c", protocol_level=5), 4),
    (Connect("c", "MQIsdp", 4), 4),
    (Connect("c", password=b"p"), 4),
    (Connect("c", keep_alive=70_000), 4),
    (Connect("c", will=Will("w", b"", 3)), 4),
    (Auth(), 4),
    (Disconnect(ReasonCode.GRANTED_QOS_1), 5),
    (PingReq(), 6),
])
def test_encoding_what_mqtt_cannot_carry_is_a_local_error(packet: Packet, level: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode(packet, level)


def test_encoding_something_that_is_not_a_packet_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        encode("PINGREQ", 4)  # type: ignore[arg-type]


def test_decode_varint_is_exported_for_callers() -> None:
    assert decode_varint(b"\x80\x01", 0) == (128, 2)
