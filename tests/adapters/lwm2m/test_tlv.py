"""TLV codec: the LwM2M TS examples byte for byte, value encodings, round trips, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.lwm2m.errors import ContentError, LocalError
from adapters.lwm2m.tlv import (Tlv, TlvKind, content_to_tlv, decode_tlv, decode_value,
                                encode_tlv, encode_value, tlv_to_content)
from adapters.lwm2m.values import ObjLink, ResourceType

from .strategies import REGISTRY, VALUES, instance_content, object_content

# LwM2M TS 1.0 section 6.4.3.1, "Single Object Instance Request" (Read /3/0):
# the Device object with multiple-instance resources 6, 7, 8 and 11.
DEVICE_TLV = bytes.fromhex(
    "C800144F70656E204D6F62696C6520416C6C69616E6365"
    "C801164C69676874776569676874204D324D20436C69656E74"
    "C80209333435303030313233"
    "C303312E30"
    "8606" "410001" "410105"
    "880708" "42000ED8" "42011388"
    "8708" "41007D" "42010384"
    "C10964" "C10A0F"
    "830B" "410000"
    "C40D5182428F"
    "C60E2B30323A3030"
    "C11055")
DEVICE_CONTENT = {
    "/3/0/0": "Open Mobile Alliance", "/3/0/1": "Lightweight M2M Client",
    "/3/0/2": "345000123", "/3/0/3": "1.0",
    "/3/0/6/0": 1, "/3/0/6/1": 5, "/3/0/7/0": 3800, "/3/0/7/1": 5000,
    "/3/0/8/0": 125, "/3/0/8/1": 900, "/3/0/9": 100, "/3/0/10": 15, "/3/0/11/0": 0,
    "/3/0/13": 1367491215, "/3/0/14": "+02:00", "/3/0/16": "U",
}

# TS 1.0 6.4.3.1, "Multiple Object Instance Request" (Read /2): two Access Control
# instances, one ACL with a 16-bit resource instance id (310). The TS table prints
# the second ACL header as 0x86 (6 bytes) for 7 bytes of instances: 0x87 is right.
ACCESS_CONTROL_TLV = bytes.fromhex(
    "08000E" "C10001" "C10100" "8302417F07" "C1037F"
    "080212" "C10003" "C10100" "8702417F0761013601" "C1037F")
ACCESS_CONTROL_CONTENT = {
    "/2/0/0": 1, "/2/0/1": 0, "/2/0/2/127": 7, "/2/0/3": 127,
    "/2/2/0": 3, "/2/2/1": 0, "/2/2/2/127": 7, "/2/2/2/310": 1, "/2/2/3": 127,
}


def test_device_object_example_decodes_to_typed_values() -> None:
    assert tlv_to_content(DEVICE_TLV, (3, 0), REGISTRY) == DEVICE_CONTENT


def test_device_object_example_is_what_the_encoder_writes() -> None:
    assert content_to_tlv(DEVICE_CONTENT, (3, 0), REGISTRY) == DEVICE_TLV


def test_access_control_example_round_trips_byte_for_byte() -> None:
    assert tlv_to_content(ACCESS_CONTROL_TLV, (2,), REGISTRY) == ACCESS_CONTROL_CONTENT
    assert content_to_tlv(ACCESS_CONTROL_CONTENT, (2,), REGISTRY) == ACCESS_CONTROL_TLV


def test_device_instance_wrapped_in_an_object_instance_is_read_the_same() -> None:
    # TS 6.4.3.1 also shows Read /3 answered with the instance wrapped (08 00 79).
    wrapped = bytes([0x08, 0x00, len(DEVICE_TLV)]) + DEVICE_TLV
    assert len(DEVICE_TLV) == 0x79
    assert tlv_to_content(wrapped, (3,), REGISTRY) == DEVICE_CONTENT
    assert tlv_to_content(wrapped, (3, 0), REGISTRY) == DEVICE_CONTENT


def test_server_object_example_decodes() -> None:
    # TS 6.4.3.1, Read /1 with one instance; the TS prints the length as 0x0D for
    # the 15 bytes that follow (an erratum), 0x0F is used here.
    payload = bytes.fromhex("08000F" "C10001" "C40100015180" "C10601" "C10755")
    assert tlv_to_content(payload, (1,), REGISTRY) == {
        "/1/0/0": 1, "/1/0/1": 86400, "/1/0/6": True, "/1/0/7": "U"}


def test_objlnk_example_decodes_with_the_loaded_custom_object() -> None:
    # TS 6.4.3.3 example of an object 66 instance: an Objlnk multiple resource.
    payload = bytes.fromhex("88000C" "440000420000" "440100420001"
                            "C8010D38363133383030373535353030" "C40212345678")
    assert tlv_to_content(payload, (66, 0), REGISTRY) == {
        "/66/0/0/0": ObjLink(66, 0), "/66/0/0/1": ObjLink(66, 1),
        "/66/0/1": "8613800755500", "/66/0/2": 0x12345678}


def test_single_resource_read_answers_with_one_resource() -> None:
    assert tlv_to_content(bytes.fromhex("C10964"), (3, 0, 9), REGISTRY) == {"/3/0/9": 100}


def test_multiple_resource_read_gives_instance_paths() -> None:
    payload = bytes.fromhex("8606" "410001" "410105")
    assert tlv_to_content(payload, (3, 0, 6), REGISTRY) == {"/3/0/6/0": 1, "/3/0/6/1": 5}


def test_bare_resource_instances_sit_under_the_requested_resource() -> None:
    assert tlv_to_content(bytes.fromhex("410105"), (3, 0, 6, 1), REGISTRY) == {"/3/0/6/1": 5}
    assert tlv_to_content(bytes.fromhex("410001410105"), (3, 0, 6), REGISTRY) == {
        "/3/0/6/0": 1, "/3/0/6/1": 5}


def test_resource_of_an_undefined_object_stays_opaque_bytes() -> None:
    assert tlv_to_content(bytes.fromhex("C3012A2B2C"), (9999, 0), REGISTRY) == {
        "/9999/0/1": b"*+,"}


@pytest.mark.parametrize("length, header", [
    (7, bytes([0xC7, 0x00])),
    (8, bytes([0xC8, 0x00, 8])),
    (255, bytes([0xC8, 0x00, 255])),
    (256, bytes([0xD0, 0x00, 0x01, 0x00])),
    (65536, bytes([0xD8, 0x00, 0x01, 0x00, 0x00])),
])
def test_encoder_picks_the_shortest_length_field(length: int, header: bytes) -> None:
    encoded = encode_tlv([Tlv(TlvKind.RESOURCE, 0, b"a" * length)])
    assert encoded[:len(header)] == header and len(encoded) == len(header) + length
    assert decode_tlv(encoded) == [Tlv(TlvKind.RESOURCE, 0, b"a" * length)]


def test_identifiers_above_255_use_the_16_bit_form() -> None:
    encoded = encode_tlv([Tlv(TlvKind.RESOURCE, 5700, b"\x01")])
    assert encoded == bytes([0xE1, 0x16, 0x44, 0x01])
    assert decode_tlv(encoded) == [Tlv(TlvKind.RESOURCE, 5700, b"\x01")]


@pytest.mark.parametrize("value, encoded", [
    (0, "00"), (127, "7F"), (-128, "80"), (128, "0080"), (-129, "FF7F"),
    (32767, "7FFF"), (32768, "00008000"), (2**31, "0000000080000000"),
    (-2**63, "8000000000000000"),
])
def test_integers_take_the_shortest_of_1_2_4_8_bytes(value: int, encoded: str) -> None:
    assert encode_value(value, ResourceType.INTEGER) == bytes.fromhex(encoded)
    assert decode_value(bytes.fromhex(encoded), ResourceType.INTEGER) == value


def test_unsigned_integers_use_all_bits() -> None:
    assert encode_value(255, ResourceType.UNSIGNED_INTEGER) == b"\xff"
    assert encode_value(2**64 - 1, ResourceType.UNSIGNED_INTEGER) == b"\xff" * 8
    assert decode_value(b"\xff\xff", ResourceType.UNSIGNED_INTEGER) == 65535


def test_floats_use_four_bytes_only_when_lossless() -> None:
    assert encode_value(1.5, ResourceType.FLOAT) == bytes.fromhex("3FC00000")
    assert encode_value(0.1, ResourceType.FLOAT) == bytes.fromhex("3FB999999999999A")
    assert encode_value(1e300, ResourceType.FLOAT) == bytes.fromhex("7E37E43C8800759C")
    assert decode_value(bytes.fromhex("3FC00000"), ResourceType.FLOAT) == 1.5


def test_booleans_objlnks_and_strings_have_their_fixed_forms() -> None:
    assert encode_value(True, ResourceType.BOOLEAN) == b"\x01"
    assert encode_value(ObjLink(3, 65535), ResourceType.OBJLNK) == b"\x00\x03\xff\xff"
    assert decode_value(b"\xff\xff\xff\xff", ResourceType.OBJLNK) == ObjLink(65535, 65535)
    assert encode_value("é", ResourceType.STRING) == "é".encode()
    assert decode_value(b"</3/0>", ResourceType.CORELNK) == "</3/0>"


@pytest.mark.parametrize("payload", [
    "C8",              # header cut after the type byte
    "C80014414243",    # says 20 bytes, has 3
    "E816",            # 16-bit id cut in half
    "0200C1007F",      # a resource running past the end of its object instance
    "8303C10001",      # a resource with value inside a multiple resource
    "02000001",        # an object instance inside an object instance
])
def test_malformed_tlv_is_a_content_error(payload: str) -> None:
    with pytest.raises(ContentError):
        tlv_to_content(bytes.fromhex(payload), (3, 0), REGISTRY)


@pytest.mark.parametrize("rtype, raw", [
    (ResourceType.INTEGER, b""), (ResourceType.INTEGER, b"\x00" * 9),
    (ResourceType.FLOAT, b"\x00\x00"), (ResourceType.BOOLEAN, b"\x02"),
    (ResourceType.OBJLNK, b"\x00\x01\x02"), (ResourceType.STRING, b"\xff\xfe"),
])
def test_values_of_the_wrong_size_or_form_are_content_errors(rtype: ResourceType,
                                                            raw: bytes) -> None:
    with pytest.raises(ContentError):
        decode_value(raw, rtype)


def test_encoding_a_value_of_the_wrong_type_is_a_local_error() -> None:
    with pytest.raises(LocalError):
        content_to_tlv({"/3/0/9": "full"}, (3, 0), REGISTRY)
    with pytest.raises(LocalError):
        content_to_tlv({"/3/0/4": 1}, (3, 0), REGISTRY)  # Reboot is executable


@given(st.integers(0, 0xFFFF).flatmap(
    lambda inst: st.tuples(st.just(inst), instance_content(instance=inst))))
def test_instance_content_round_trips(case: tuple) -> None:
    instance, content = case
    base = (66, instance)
    assert tlv_to_content(content_to_tlv(content, base, REGISTRY), base, REGISTRY) == content


@given(object_content())
def test_object_content_round_trips_through_object_instances(content: dict) -> None:
    assert tlv_to_content(content_to_tlv(content, (66,), REGISTRY), (66,), REGISTRY) == content


@given(st.sampled_from(sorted(VALUES, key=str)).flatmap(
    lambda t: st.tuples(st.just(t), VALUES[t])))
def test_every_value_type_round_trips(typed: tuple) -> None:
    rtype, value = typed
    assert decode_value(encode_value(value, rtype), rtype) == value


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_a_content_error(payload: bytes) -> None:
    try:
        tlv_to_content(payload, (66, 0), REGISTRY)
    except ContentError:
        pass


def test_content_outside_the_request_path_is_a_local_error() -> None:
    with pytest.raises(LocalError):
        content_to_tlv({"/3/0/9": 1}, (3, 0, 10), REGISTRY)
    with pytest.raises(LocalError):
        content_to_tlv({"/3/0/22": ObjLink(1, 1)}, (3, 0, 22, 1), REGISTRY)
