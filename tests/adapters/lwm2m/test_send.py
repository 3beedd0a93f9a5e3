"""LwM2M 1.1 Send payloads -> the content published on up/send."""

from __future__ import annotations

import json

import cbor2
import pytest

from adapters.lwm2m.errors import ContentError, UnsupportedContentFormat
from adapters.lwm2m.send import decode_send, send_message
from adapters.lwm2m.topics import send_topic

from .strategies import REGISTRY


def test_senml_json_with_base_name_and_times_keeps_every_record_in_order() -> None:
    payload = json.dumps([{"bn": "/3303/0/", "bt": 1700000000, "n": "5700", "v": 22},
                          {"n": "5700", "v": 22.75, "t": 10}, {"n": "5701", "vs": "Cel"}]).encode()
    assert decode_send(110, payload, REGISTRY) == [
        {"path": "/3303/0/5700", "value": 22.0, "time": 1700000000},  # a Float by its definition
        {"path": "/3303/0/5700", "value": 22.75, "time": 1700000010},
        {"path": "/3303/0/5701", "value": "Cel", "time": 1700000000}]


def test_senml_cbor_is_read_too() -> None:
    payload = cbor2.dumps([{0: "/3/0/0", 3: "ACME"}, {0: "/3/0/9", 2: 80}])
    assert decode_send(112, payload, REGISTRY) == [{"path": "/3/0/0", "value": "ACME"},
                                                   {"path": "/3/0/9", "value": 80}]


@pytest.mark.parametrize("fmt, payload, error", [
    (0, b"21.5", UnsupportedContentFormat),
    (None, b"[]", UnsupportedContentFormat),
    (11542, b"\xc1\x00\x01", UnsupportedContentFormat),
    (110, b"not json", ContentError),
    (110, b'[{"n": "5700", "v": 1}]', ContentError),        # relative name: whose resource?
    (110, b'[{"n": "/3303/0", "v": 1}]', ContentError),     # not a resource
    (110, b"[]", ContentError),
])
def test_what_cannot_be_published_maps_to_its_coap_code(fmt, payload: bytes, error: type) -> None:
    with pytest.raises(error) as caught:
        decode_send(fmt, payload, REGISTRY)
    assert caught.value.code == ("4.15" if error is UnsupportedContentFormat else "4.00")


def test_the_message_and_topic() -> None:
    assert send_topic("ep1") == "lwm2m/ep1/up/send"
    assert send_message([{"path": "/3/0/0", "value": "x"}]) == {"msgType": "send", "data": {
        "reqPath": "/dp", "code": "2.04", "codeMsg": "changed", "content": [{"path": "/3/0/0", "value": "x"}]}}
