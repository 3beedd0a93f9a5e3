"""LwM2M JSON, text/plain, opaque and the content-format dispatch, across formats."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.lwm2m.errors import ContentError, LocalError, UnsupportedContentFormat
from adapters.lwm2m.formats import (ContentFormat, decode_content, encode_content,
                                    format_name, parse_format)
from adapters.lwm2m.lwm2m_json import decode_lwm2m_json, encode_lwm2m_json
from adapters.lwm2m.paths import format_path
from adapters.lwm2m.values import ObjLink

from .strategies import REGISTRY, object_content, single_value
from .test_tlv import DEVICE_CONTENT, DEVICE_TLV

# LwM2M TS 1.0 section 6.4.4: Read /3/0 answered in LwM2M JSON.
DEVICE_LWM2M_JSON = b"""{"bn":"/3/0/",
 "e":[{"n":"0","sv":"Open Mobile Alliance"}, {"n":"1","sv":"Lightweight M2M Client"},
 {"n":"2","sv":"345000123"}, {"n":"3","sv":"1.0"},
 {"n":"6/0","v":1}, {"n":"6/1","v":5}, {"n":"7/0","v":3800}, {"n":"7/1","v":5000},
 {"n":"8/0","v":125}, {"n":"8/1","v":900}, {"n":"9","v":100}, {"n":"10","v":15},
 {"n":"11/0","v":0}, {"n":"13","v":1367491215}, {"n":"14","sv":"+02:00"},
 {"n":"16","sv":"U"}]}"""

VALUED_FORMATS = [ContentFormat.TLV, ContentFormat.LWM2M_JSON, ContentFormat.SENML_JSON,
                  ContentFormat.SENML_CBOR]


def test_lwm2m_json_device_example_matches_the_tlv_example() -> None:
    assert decode_lwm2m_json(DEVICE_LWM2M_JSON, (3, 0), REGISTRY) == DEVICE_CONTENT
    assert decode_content(11542, DEVICE_TLV, (3, 0), REGISTRY) == DEVICE_CONTENT


def test_lwm2m_json_encodes_with_the_instance_as_base_name() -> None:
    encoded = json.loads(encode_lwm2m_json(DEVICE_CONTENT, (3, 0), REGISTRY))
    assert encoded == json.loads(DEVICE_LWM2M_JSON)


def test_lwm2m_json_tags_booleans_objlnks_and_base64_opaque() -> None:
    content = {"/66/1/6": False, "/66/1/0/0": ObjLink(3, 0), "/66/1/7": b"\x01\x02"}
    encoded = json.loads(encode_lwm2m_json(content, (66, 1), REGISTRY))
    assert encoded == {"bn": "/66/1/", "e": [
        {"n": "0/0", "ov": "3:0"}, {"n": "6", "bv": False}, {"n": "7", "sv": "AQI="}]}
    assert decode_lwm2m_json(json.dumps(encoded).encode(), (66, 1), REGISTRY) == content


def test_lwm2m_json_names_join_the_base_name_with_exactly_one_slash() -> None:
    payload = b'{"bn":"/3/0","e":[{"n":"/9","v":50},{"n":"10","v":1}]}'
    assert decode_lwm2m_json(payload, (3, 0), REGISTRY) == {"/3/0/9": 50, "/3/0/10": 1}


def test_lwm2m_json_without_base_name_is_relative_to_the_request() -> None:
    payload = b'{"e":[{"n":"","v":42}]}'
    assert decode_lwm2m_json(payload, (3, 0, 9), REGISTRY) == {"/3/0/9": 42}


def test_lwm2m_json_timestamped_entries_keep_the_latest_value() -> None:
    payload = (b'{"bn":"/3303/0/5700","bt":1000,"e":[{"v":20.5,"t":-10},'
               b'{"v":21.0,"t":0}]}')
    assert decode_lwm2m_json(payload, (3303, 0, 5700), REGISTRY) == {"/3303/0/5700": 21.0}


@pytest.mark.parametrize("payload", [
    b"[]", b'{"bn":"/3/0/"}', b'{"e":[{"n":"9"}]}', b'{"e":[{"n":"9","v":1,"sv":"1"}]}',
    b'{"bn":"/3/x/","e":[{"n":"9","v":1}]}', b'{"bn":"/3/0/","e":[{"n":"9","bv":true}]}',
])
def test_malformed_lwm2m_json_is_a_content_error(payload: bytes) -> None:
    with pytest.raises(ContentError):
        decode_lwm2m_json(payload, (3, 0), REGISTRY)


def test_text_plain_values_are_typed_by_the_definition() -> None:
    assert decode_content(0, b"2048", (3, 0, 10), REGISTRY) == {"/3/0/10": 2048}
    assert decode_content(0, b"21.5", (3303, 0, 5700), REGISTRY) == {"/3303/0/5700": 21.5}
    assert decode_content(0, b"1", (3311, 0, 5850), REGISTRY) == {"/3311/0/5850": True}
    assert decode_content(0, b"3:1", (3, 0, 22, 0), REGISTRY) == {"/3/0/22/0": ObjLink(3, 1)}
    assert decode_content(0, b"EMQ", (3, 0, 0), REGISTRY) == {"/3/0/0": "EMQ"}


def test_a_response_without_content_format_is_read_as_text_like_lwm2m_node_lib() -> None:
    assert decode_content(None, b"87", (3, 0, 9), REGISTRY) == {"/3/0/9": 87}


def test_legacy_content_format_numbers_of_old_clients_are_understood() -> None:
    assert decode_content(1541, b"87", (3, 0, 9), REGISTRY) == {"/3/0/9": 87}
    assert decode_content(1542, bytes.fromhex("C10957"), (3, 0, 9), REGISTRY) == {"/3/0/9": 87}
    assert parse_format(1543) is ContentFormat.LWM2M_JSON


def test_text_plain_writes_booleans_as_digits_and_floats_with_a_point() -> None:
    assert encode_content(0, {"/3311/0/5850": True}, (3311, 0, 5850), REGISTRY) == b"1"
    assert encode_content(0, {"/3323/0/5821": 2.0}, (3323, 0, 5821), REGISTRY) == b"2.0"
    assert encode_content(0, {"/3/0/13": 1700000000}, (3, 0, 13), REGISTRY) == b"1700000000"


def test_opaque_carries_the_raw_bytes_of_one_resource() -> None:
    assert decode_content(42, b"\x00\x01", (5, 0, 0), REGISTRY) == {"/5/0/0": b"\x00\x01"}
    assert encode_content(42, {"/5/0/0": b"\xfe"}, (5, 0, 0), REGISTRY) == b"\xfe"


@pytest.mark.parametrize("fmt, content", [
    (0, {"/5/0/0": b"\x00"}), (42, {"/3/0/9": 1}), (0, {"/3/0/9": 1, "/3/0/10": 2}),
])
def test_single_value_formats_refuse_what_they_cannot_carry(fmt: int, content: dict) -> None:
    base = tuple(int(p) for p in next(iter(content)).split("/")[1:])
    with pytest.raises(LocalError):
        encode_content(fmt, content, base, REGISTRY)


def test_text_plain_cannot_answer_a_request_on_an_object_instance() -> None:
    with pytest.raises(ContentError):
        decode_content(0, b"1", (3, 0), REGISTRY)


def test_text_that_is_not_of_the_resource_type_is_a_content_error() -> None:
    with pytest.raises(ContentError):
        decode_content(0, b"lots", (3, 0, 9), REGISTRY)


def test_unknown_content_formats_map_to_4_15() -> None:
    with pytest.raises(UnsupportedContentFormat) as caught:
        decode_content(50, b"{}", (3, 0), REGISTRY)
    assert caught.value.code == "4.15"


def test_format_names_accept_numbers_short_names_and_media_types() -> None:
    assert parse_format("senml+cbor") is ContentFormat.SENML_CBOR
    assert parse_format("application/vnd.oma.lwm2m+tlv") is ContentFormat.TLV
    assert parse_format("110") is ContentFormat.SENML_JSON
    assert format_name(11543) == "application/vnd.oma.lwm2m+json"
    with pytest.raises(ValueError):
        parse_format("xml")


@pytest.mark.parametrize("fmt", VALUED_FORMATS)
def test_the_device_example_reencodes_identically_in_every_format(fmt: ContentFormat) -> None:
    payload = encode_content(fmt, DEVICE_CONTENT, (3, 0), REGISTRY)
    assert decode_content(fmt, payload, (3, 0), REGISTRY) == DEVICE_CONTENT


@given(st.sampled_from(VALUED_FORMATS), object_content())
def test_object_content_round_trips_in_every_multi_value_format(fmt: ContentFormat,
                                                               content: dict) -> None:
    payload = encode_content(fmt, content, (66,), REGISTRY)
    assert decode_content(fmt, payload, (66,), REGISTRY) == content


@given(single_value())
def test_single_values_round_trip_through_text_or_opaque(case: tuple) -> None:
    base, value = case
    content = {format_path(base): value}
    fmt = ContentFormat.OPAQUE if isinstance(value, bytes) else ContentFormat.TEXT
    assert decode_content(fmt, encode_content(fmt, content, base, REGISTRY), base,
                          REGISTRY) == content
