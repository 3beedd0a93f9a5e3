"""The content format the server asks a device for and writes in: its ``ct``, else its version's default."""

from __future__ import annotations

import json

from adapters.lwm2m.commands import parse_command, translate_command
from adapters.lwm2m.formats import ContentFormat
from adapters.lwm2m.negotiation import preferred_formats, read_accept
from adapters.lwm2m.registration import parse_register
from adapters.lwm2m.registrations import RegistrationTable

from .strategies import REGISTRY

WAKAAMA_LINKS = b'</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</31024/10>,</31024/11>'


def registration(query: str = "ep=dev&lwm2m=1.1", payload: bytes = WAKAAMA_LINKS):
    return RegistrationTable().register(parse_register(query, payload), 0).registration


def translate(command: dict, reg=None):
    return translate_command(parse_command(json.dumps(command)), reg, REGISTRY)


def test_the_first_announced_value_format_is_preferred() -> None:
    assert preferred_formats(registration()) == (ContentFormat.SENML_JSON,)
    both = registration(payload=b'</>;rt="oma.lwm2m";ct="60 110 11542",</3/0>')
    assert preferred_formats(both) == (ContentFormat.SENML_JSON, ContentFormat.TLV)


def test_without_ct_lwm2m_1_0_falls_back_to_tlv_and_1_1_to_senml_cbor() -> None:
    assert preferred_formats(registration("ep=d&lwm2m=1.0", b"</3/0>")) == (ContentFormat.TLV,)
    assert preferred_formats(registration("ep=d", b"</3/0>")) == (ContentFormat.TLV,)
    assert preferred_formats(registration("ep=d&lwm2m=1.1", b"</3/0>"))[0] is ContentFormat.SENML_CBOR


def test_a_read_without_content_format_asks_for_the_devices_preferred_one() -> None:
    reg = registration()
    for msg_type, path in (("read", "/3/0"), ("read", "/3/0/0"), ("observe", "/31024/10/1")):
        command = translate({"msgType": msg_type, "data": {"path": path}}, reg)
        assert command.request.accept == 110, (msg_type, path)



def test_a_device_without_ct_gets_tlv_on_multi_value_reads_if_1_0_and_no_accept_otherwise() -> None:
    old = registration("ep=d&lwm2m=1.0", b"</3/0>")
    assert translate({"msgType": "read", "data": {"path": "/3/0"}}, old).request.accept == 11542
    assert translate({"msgType": "observe", "data": {"path": "/3"}}, old).request.accept == 11542
    assert translate({"msgType": "read", "data": {"path": "/3/0/0"}}, old).request.accept is None  # text
    newer = registration("ep=d&lwm2m=1.1", b"</3/0>")
    assert translate({"msgType": "read", "data": {"path": "/3/0"}}, newer).request.accept is None


def test_a_read_of_an_unknown_device_sends_no_accept() -> None:
    assert translate({"msgType": "read", "data": {"path": "/3/0"}}).request.accept is None


def test_an_explicit_content_format_wins_and_is_not_retried() -> None:
    command = translate({"msgType": "read", "data": {"path": "/3/0", "contentFormat": "tlv"}}, registration())
    assert (command.request.accept, command.alternates) == (11542, ())
    assert command.retried("4.06") is None


def test_a_not_acceptable_read_is_retried_once_in_the_devices_next_format() -> None:
    reg = registration(payload=b'</>;rt="oma.lwm2m";ct="110 112",</3/0>')
    command = translate({"msgType": "read", "data": {"path": "/3/0"}}, reg)
    assert (command.request.accept, command.alternates) == (110, (112,))
    assert command.retried("4.04") is None
    retry = command.retried("4.06")
    assert retry is not None and retry.request.accept == 112 and retry.request.path == ("3", "0")
    assert retry.retried("4.06") is None  # once


def test_a_single_resource_read_may_fall_back_to_text() -> None:
    _, others = read_accept(registration(), (3, 0, 0))
    assert others == (0,)
    assert read_accept(registration(), (3, 0))[1] == ()


def test_cancel_observe_is_not_retried() -> None:
    command = translate({"msgType": "cancel-observe", "data": {"path": "/3/0/0"}}, registration())
    assert command.request.accept == 110 and command.alternates == ()


def test_writes_go_in_the_devices_preferred_format() -> None:
    command = translate({"msgType": "write", "data": {"basePath": "/3/0", "content": [
        {"path": "14", "value": "+01:00"}, {"path": "15", "value": "Europe/Paris"}]}}, registration())
    assert command.request.content_format == 110
    assert json.loads(command.request.payload) == [{"bn": "/3/0/", "n": "14", "vs": "+01:00"},
                                                   {"n": "15", "vs": "Europe/Paris"}]
