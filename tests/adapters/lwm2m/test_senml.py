"""SenML JSON and CBOR: RFC 8428 examples, the LwM2M 1.1 mapping, round trips, bad input."""

from __future__ import annotations

import json

import cbor2
import pytest
from hypothesis import given

from adapters.lwm2m.errors import ContentError
from adapters.lwm2m.senml import (SenMLRecord, content_to_senml, dump_senml_cbor,
                                  dump_senml_json, parse_senml_cbor, parse_senml_json,
                                  senml_to_content)
from adapters.lwm2m.values import ObjLink, ValueKind

from .strategies import REGISTRY, instance_content, object_content
from .test_tlv import DEVICE_CONTENT

NUMBER = ValueKind.NUMBER

# RFC 8428 section 5.1.3 (multiple measurements) in its CBOR form of section 6.
RFC8428_CBOR = bytes.fromhex(
    "87a721781b75726e3a6465763a6f773a3130653230373361303130383030363a22fb41d303a15b"
    "00106223614120050067766f6c7461676501615602fb405e066666666666a3006763757272656e"
    "74062402fb3ff3333333333333a3006763757272656e74062302fb3ff4cccccccccccda3006763"
    "757272656e74062202fb3ff6666666666666a3006763757272656e74062102f93e00a300676375"
    "7272656e74062002fb3ff999999999999aa3006763757272656e74060002fb3ffb333333333333")
RFC8428_BASE = "urn:dev:ow:10e2073a0108006:"

# LwM2M TS 1.1 section 7.4.4: Read /3/0 answered in SenML JSON.
DEVICE_SENML_JSON = b"""[
 {"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},
 {"n":"1","vs":"Lightweight M2M Client"}, {"n":"2","vs":"345000123"},
 {"n":"3","vs":"1.0"}, {"n":"6/0","v":1}, {"n":"6/1","v":5},
 {"n":"7/0","v":3800}, {"n":"7/1","v":5000}, {"n":"8/0","v":125},
 {"n":"8/1","v":900}, {"n":"9","v":100}, {"n":"10","v":15}, {"n":"11/0","v":0},
 {"n":"13","v":1367491215}, {"n":"14","vs":"+02:00"}, {"n":"16","vs":"U"}]"""


def test_rfc8428_single_datapoint_resolves_name_unit_and_value() -> None:
    records = parse_senml_json(b'[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]')
    assert records == [SenMLRecord("urn:dev:ow:10e2073a01080063", 23.1, NUMBER, "Cel")]


def test_rfc8428_multiple_datapoints_share_the_base_name() -> None:
    records = parse_senml_json(
        b'[{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},'
        b'{"n":"current","u":"A","v":1.2}]')
    assert records == [
        SenMLRecord("urn:dev:ow:10e2073a01080063:voltage", 120.1, NUMBER, "V"),
        SenMLRecord("urn:dev:ow:10e2073a01080063:current", 1.2, NUMBER, "A"),
    ]


def test_rfc8428_cbor_example_resolves_base_time_unit_and_half_floats() -> None:
    records = parse_senml_cbor(RFC8428_CBOR)
    assert records[0] == SenMLRecord(RFC8428_BASE + "voltage", 120.1, NUMBER, "V",
                                     1276020076.001)
    currents = records[1:]
    assert [r.value for r in currents] == [1.2, 1.3, 1.4, 1.5, 1.6, 1.7]
    assert [round(r.time - 1276020076.001, 6) for r in currents] == [-5, -4, -3, -2, -1, 0]
    assert {r.unit for r in currents} == {"A"} and {r.name for r in currents} == {
        RFC8428_BASE + "current"}


def test_rfc8428_cbor_example_matches_its_json_form() -> None:
    as_json = parse_senml_json(json.dumps([
        {"bn": RFC8428_BASE, "bt": 1.276020076001e+09, "bu": "A", "bver": 5,
         "n": "voltage", "u": "V", "v": 120.1},
        {"n": "current", "t": -5, "v": 1.2}, {"n": "current", "t": -4, "v": 1.3},
        {"n": "current", "t": -3, "v": 1.4}, {"n": "current", "t": -2, "v": 1.5},
        {"n": "current", "t": -1, "v": 1.6}, {"n": "current", "v": 1.7}]).encode())
    assert as_json == parse_senml_cbor(RFC8428_CBOR)


def test_base_value_and_base_sum_add_to_each_record() -> None:
    records = parse_senml_json(b'[{"bn":"d:","bv":100,"bs":10,"n":"a","v":1,"s":2},'
                               b'{"n":"b","v":-1},{"n":"c","bv":5}]')
    assert [(r.name, r.value, r.sum) for r in records] == [
        ("d:a", 101, 12), ("d:b", 99, None), ("d:c", 5, None)]


def test_records_dump_with_the_base_name_on_the_first_only() -> None:
    records = [SenMLRecord("/3303/0/5700", 21.5, NUMBER),
               SenMLRecord("/3303/0/5701", "Cel", ValueKind.STRING)]
    assert json.loads(dump_senml_json(records, "/3303/0/")) == [
        {"bn": "/3303/0/", "n": "5700", "v": 21.5}, {"n": "5701", "vs": "Cel"}]


def test_cbor_dump_uses_integer_labels_and_the_shortest_float() -> None:
    encoded = dump_senml_cbor([SenMLRecord("/3303/0/5700", 21.5, NUMBER)], "/3303/0/")
    # map(3): n "5700", v half-float 21.5, bn "/3303/0/"
    assert encoded == bytes.fromhex("81a30064353730300" "2f94d6021682f333330332f302f")


def test_lwm2m_device_example_in_senml_json_matches_the_tlv_example() -> None:
    content = senml_to_content(parse_senml_json(DEVICE_SENML_JSON), (3, 0), REGISTRY)
    assert content == DEVICE_CONTENT


def test_lwm2m_values_use_vd_for_opaque_and_vlo_for_objlnk() -> None:
    content = {"/66/0/0/1": ObjLink(66, 2), "/66/0/7": b"\x00\xff", "/66/0/6": True}
    records, base_name = content_to_senml(content, (66, 0), REGISTRY)
    as_json = json.loads(dump_senml_json(records, base_name))
    assert as_json == [{"bn": "/66/0/", "n": "0/1", "vlo": "66:2"},
                       {"n": "6", "vb": True}, {"n": "7", "vd": "AP8"}]
    as_cbor = cbor2.loads(dump_senml_cbor(records, base_name))
    assert as_cbor[0]["vlo"] == "66:2" and as_cbor[2][8] == b"\x00\xff"


def test_senml_names_without_a_leading_slash_sit_under_the_request_path() -> None:
    records = parse_senml_json(b'[{"n":"5700","v":20}]')
    assert senml_to_content(records, (3303, 0), REGISTRY) == {"/3303/0/5700": 20.0}


def test_integral_numbers_become_ints_for_integer_resources_and_floats_for_float() -> None:
    records = parse_senml_json(b'[{"bn":"/3303/0/","n":"5700","v":20},'
                               b'{"bn":"/3/0/","n":"9","v":87.0}]')
    content = senml_to_content(records, (3,), REGISTRY)
    assert content == {"/3303/0/5700": 20.0, "/3/0/9": 87}
    assert isinstance(content["/3303/0/5700"], float) and isinstance(content["/3/0/9"], int)


@pytest.mark.parametrize("payload", [
    b"{}", b'[1]', b'[{"n":"a","v":"x"}]', b'[{"n":"a","v":1,"vs":"b"}]',
    b'[{"n":"a","vd":"%%%"}]', b'[{"bn":7}]', b"not json",
])
def test_malformed_senml_json_is_a_content_error(payload: bytes) -> None:
    with pytest.raises(ContentError):
        parse_senml_json(payload)


@pytest.mark.parametrize("payload", [b"\xa0", b"\x81\x01", b"\x81\xa1\x02", b"\xff\x00"])
def test_malformed_senml_cbor_is_a_content_error(payload: bytes) -> None:
    with pytest.raises(ContentError):
        parse_senml_cbor(payload)


def test_a_value_that_contradicts_the_definition_is_a_content_error() -> None:
    with pytest.raises(ContentError):
        senml_to_content(parse_senml_json(b'[{"n":"/3/0/9","vs":"full"}]'), (3, 0), REGISTRY)


@given(object_content())
def test_content_round_trips_through_senml_json(content: dict) -> None:
    records, base_name = content_to_senml(content, (66,), REGISTRY)
    decoded = senml_to_content(parse_senml_json(dump_senml_json(records, base_name)),
                               (66,), REGISTRY)
    assert decoded == content


@given(instance_content(instance=3))
def test_content_round_trips_through_senml_cbor(content: dict) -> None:
    records, base_name = content_to_senml(content, (66, 3), REGISTRY)
    decoded = senml_to_content(parse_senml_cbor(dump_senml_cbor(records, base_name)),
                               (66, 3), REGISTRY)
    assert decoded == content
