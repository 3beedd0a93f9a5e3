"""Bytes-only tests of MQTT 5 properties and the wire primitives.

Also home of the hypothesis strategies shared with test_codec.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.mqtt.errors import (LocalProtocolError, MalformedPacket, ProtocolViolation,
                                  ReasonCode, TopicAliasInvalid)
from adapters.mqtt.packets import PacketType
from adapters.mqtt.properties import (BY_NAME, MAX_VARINT, NO_PROPERTIES, PROPERTIES,
                                      WILL_PROPERTIES, Properties, WireType,
                                      decode_properties, decode_varint,
                                      encode_properties, encode_varint)

PROPERTY_PACKET_TYPES = (
    PacketType.CONNECT, PacketType.CONNACK, PacketType.PUBLISH, PacketType.PUBACK,
    PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP, PacketType.SUBSCRIBE,
    PacketType.SUBACK, PacketType.UNSUBSCRIBE, PacketType.UNSUBACK,
    PacketType.DISCONNECT, PacketType.AUTH, WILL_PROPERTIES)
_NONZERO = {"receive_maximum", "maximum_packet_size", "topic_alias"}


# --- strategies shared with test_codec.py ------------------------------------

def mqtt_text(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Strings MQTT can carry: no surrogates, no U+0000."""
    return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                   min_size=min_size, max_size=max_size)


def _value(spec_name: str, wire_type: WireType) -> st.SearchStrategy[object]:
    low = 1 if spec_name in _NONZERO else 0
    return {
        WireType.BYTE: st.integers(0, 1),
        WireType.TWO_BYTE_INT: st.integers(low, 0xFFFF),
        WireType.FOUR_BYTE_INT: st.integers(low, 0xFFFF_FFFF),
        WireType.UTF8: mqtt_text(),
        WireType.BINARY: st.binary(max_size=16),
    }[wire_type]


def properties_for(packet_type: int) -> st.SearchStrategy[Properties]:
    """Any valid Properties for `packet_type`, every allowed property possible."""
    fields: dict[str, st.SearchStrategy[object]] = {}
    for spec in PROPERTIES:
        if packet_type not in spec.packet_types:
            continue
        if spec.name == "user_properties":
            strategy = st.lists(st.tuples(mqtt_text(), mqtt_text()), max_size=3).map(tuple)
        elif spec.name == "subscription_identifiers":
            most = 3 if packet_type == PacketType.PUBLISH else 1
            strategy = st.lists(st.integers(1, MAX_VARINT), max_size=most).map(tuple)
        else:
            strategy = st.none() | _value(spec.name, spec.wire_type)
        fields[spec.name] = strategy
    return st.just(NO_PROPERTIES) | st.builds(Properties, **fields)


def block(*items: bytes) -> bytes:
    """A property block: length prefix + the raw properties."""
    body = b"".join(items)
    return encode_varint(len(body)) + body


def decode_all(data: bytes, packet_type: int) -> Properties:
    props, end = decode_properties(data, 0, len(data), packet_type)
    assert end == len(data)
    return props


# --- variable byte integers ---------------------------------------------------

@pytest.mark.parametrize("value, wire", [
    (0, "00"), (127, "7f"), (128, "8001"), (16_383, "ff7f"), (16_384, "808001"),
    (2_097_151, "ffff7f"), (2_097_152, "80808001"), (268_435_455, "ffffff7f"),
])
def test_variable_byte_integers_match_the_spec_table(value: int, wire: str) -> None:
    assert encode_varint(value) == bytes.fromhex(wire)
    assert decode_varint(bytes.fromhex(wire), 0) == (value, len(wire) // 2)


def test_an_incomplete_variable_byte_integer_needs_more_data() -> None:
    assert decode_varint(b"\xff\xff", 0) is None
    assert decode_varint(b"\x05\xff\x01", 1, 2) is None


def test_a_five_byte_variable_byte_integer_is_malformed() -> None:
    with pytest.raises(MalformedPacket) as exc:
        decode_varint(b"\xff\xff\xff\xff\x01", 0)
    assert exc.value.reason_code == ReasonCode.MALFORMED_PACKET


@pytest.mark.parametrize("value", [-1, MAX_VARINT + 1])
def test_encoding_an_out_of_range_variable_byte_integer_is_a_local_error(value: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_varint(value)


@given(st.integers(0, MAX_VARINT))
def test_every_variable_byte_integer_round_trips(value: int) -> None:
    assert decode_varint(encode_varint(value), 0) == (value, len(encode_varint(value)))


# --- property blocks ------------------------------------------------------------

def test_encoding_no_properties_is_a_single_zero_byte() -> None:
    assert encode_properties(NO_PROPERTIES, PacketType.PUBLISH) == b"\x00"
    assert encode_properties(Properties(), PacketType.PUBLISH) == b"\x00"


def test_decoding_an_empty_block_returns_the_shared_no_properties() -> None:
    props, end = decode_properties(b"\x00", 0, 1, PacketType.PUBLISH)
    assert props is NO_PROPERTIES and end == 1


def test_the_table_has_every_mqtt5_property_once() -> None:
    assert len(PROPERTIES) == 27
    assert len({p.identifier for p in PROPERTIES}) == 27
    assert set(BY_NAME) == set(Properties.__dataclass_fields__)


@pytest.mark.parametrize("packet_type", PROPERTY_PACKET_TYPES)
@given(data=st.data())
def test_every_allowed_property_round_trips(packet_type: int, data: st.DataObject) -> None:
    props = data.draw(properties_for(packet_type))
    assert decode_all(encode_properties(props, packet_type), packet_type) == props


def test_known_publish_property_bytes() -> None:
    props = Properties(payload_format_indicator=1, message_expiry_interval=10,
                       content_type="a", topic_alias=5, user_properties=(("k", "v"),),
                       subscription_identifiers=(1, 300))
    wire = bytes.fromhex("1a" "0101" "020000000a" "03" "000161" "0b01" "0bac02" "230005"
                         "26" "00016b" "000176")
    assert encode_properties(props, PacketType.PUBLISH) == wire
    assert decode_all(wire, PacketType.PUBLISH) == props


def test_user_properties_keep_their_order_and_duplicates() -> None:
    pairs = (("b", "1"), ("a", "2"), ("b", "1"))
    wire = encode_properties(Properties(user_properties=pairs), PacketType.PUBACK)
    assert decode_all(wire, PacketType.PUBACK).user_properties == pairs


def test_a_publish_may_carry_several_subscription_identifiers() -> None:
    props = decode_all(block(b"\x0b\x01", b"\x0b\x02"), PacketType.PUBLISH)
    assert props.subscription_identifiers == (1, 2)


def test_a_subscribe_with_two_subscription_identifiers_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolViolation) as exc:
        decode_all(block(b"\x0b\x01", b"\x0b\x02"), PacketType.SUBSCRIBE)
    assert exc.value.reason_code == ReasonCode.PROTOCOL_ERROR


def test_a_duplicate_property_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolViolation) as exc:
        decode_all(block(b"\x03\x00\x01a", b"\x03\x00\x01b"), PacketType.PUBLISH)
    assert exc.value.reason_code == ReasonCode.PROTOCOL_ERROR


def test_an_unknown_property_identifier_is_malformed() -> None:
    with pytest.raises(MalformedPacket) as exc:
        decode_all(block(b"\x07\x00"), PacketType.PUBLISH)
    assert exc.value.reason_code == ReasonCode.MALFORMED_PACKET


@pytest.mark.parametrize("packet_type, raw", [
    (PacketType.CONNECT, b"\x23\x00\x01"),        # topic alias in CONNECT
    (PacketType.PUBLISH, b"\x11\x00\x00\x00\x01"),  # session expiry in PUBLISH
    (PacketType.PUBACK, b"\x01\x01"),             # payload format in PUBACK
    (WILL_PROPERTIES, b"\x23\x00\x01"),           # topic alias in will properties
    (PacketType.CONNACK, b"\x18\x00\x00\x00\x01"),  # will delay in CONNACK
])
def test_a_property_not_allowed_in_the_packet_type_is_malformed(packet_type: int,
                                                               raw: bytes) -> None:
    with pytest.raises(MalformedPacket) as exc:
        decode_all(block(raw), packet_type)
    assert exc.value.reason_code == ReasonCode.MALFORMED_PACKET


def test_a_subscription_identifier_of_0_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolViolation):
        decode_all(block(b"\x0b\x00"), PacketType.PUBLISH)


@pytest.mark.parametrize("raw", [b"\x21\x00\x00", b"\x27\x00\x00\x00\x00"])
def test_a_receive_maximum_or_maximum_packet_size_of_0_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolViolation) as exc:
        decode_all(block(raw), PacketType.CONNECT)
    assert exc.value.reason_code == ReasonCode.PROTOCOL_ERROR


def test_a_topic_alias_of_0_is_topic_alias_invalid() -> None:
    with pytest.raises(TopicAliasInvalid) as exc:
        decode_all(block(b"\x23\x00\x00"), PacketType.PUBLISH)
    assert exc.value.reason_code == ReasonCode.TOPIC_ALIAS_INVALID


@pytest.mark.parametrize("spec", [p for p in PROPERTIES if p.wire_type == WireType.BYTE],
                         ids=lambda p: p.name)
def test_a_byte_property_other_than_0_or_1_is_a_protocol_error(spec) -> None:  # noqa: ANN001
    packet_type = min(spec.packet_types)
    with pytest.raises(ProtocolViolation) as exc:
        decode_all(block(bytes((spec.identifier, 2))), packet_type)
    assert exc.value.reason_code == ReasonCode.PROTOCOL_ERROR


@pytest.mark.parametrize("raw", [
    b"\x02\x00\x00",        # four-byte integer cut short
    b"\x03\x00\x05ab",      # string longer than the block
    b"\x09\x00",            # binary length cut short
    b"\x0b\x80",            # variable byte integer cut short
    b"\x26\x00\x01k",       # user property without its value
])
def test_a_property_running_past_its_block_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode_all(block(raw), PacketType.PUBLISH)


def test_a_property_block_longer_than_the_packet_is_malformed() -> None:
    with pytest.raises(MalformedPacket):
        decode_properties(b"\x05\x01\x01", 0, 3, PacketType.PUBLISH)


@pytest.mark.parametrize("raw", [b"\x03\x00\x02\xc3\x28", b"\x03\x00\x03\xed\xa0\x80",
                                 b"\x03\x00\x01\x00"])
def test_a_string_property_that_is_not_valid_mqtt_utf8_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode_all(block(raw), PacketType.PUBLISH)


@pytest.mark.parametrize("props, packet_type", [
    (Properties(topic_alias=1), PacketType.CONNECT),
    (Properties(topic_alias=0), PacketType.PUBLISH),
    (Properties(receive_maximum=0), PacketType.CONNECT),
    (Properties(maximum_qos=2), PacketType.CONNACK),
    (Properties(message_expiry_interval=2**32), PacketType.PUBLISH),
    (Properties(subscription_identifiers=(0,)), PacketType.PUBLISH),
    (Properties(subscription_identifiers=(1, 2)), PacketType.SUBSCRIBE),
    (Properties(content_type="a\x00b"), PacketType.PUBLISH),
    (Properties(correlation_data=bytes(70_000)), PacketType.PUBLISH),
])
def test_encoding_invalid_properties_is_a_local_error(props: Properties,
                                                      packet_type: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_properties(props, packet_type)
