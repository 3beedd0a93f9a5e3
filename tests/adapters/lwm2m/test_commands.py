"""Command JSON -> CoAP request, for every msgType (EMQX's examples where it has them)."""

from __future__ import annotations

import json

import pytest

from adapters.lwm2m.coap import CoapRequest
from adapters.lwm2m.commands import choose_format, parse_command, translate_command
from adapters.lwm2m.errors import CommandError
from adapters.lwm2m.formats import ContentFormat, decode_content
from adapters.lwm2m.registration import parse_register
from adapters.lwm2m.registrations import RegistrationTable
from adapters.lwm2m.values import ObjLink

from .strategies import REGISTRY


def registration(query: str = "ep=dev&lwm2m=1.0", payload: bytes = b"</3/0>"):
    return RegistrationTable().register(parse_register(query, payload), 0).registration


def translate(command: dict, reg=None):
    return translate_command(parse_command(json.dumps(command)), reg, REGISTRY)


def test_read_is_a_get_on_the_path() -> None:
    command = translate({"reqID": 1, "msgType": "read", "data": {"path": "/3/0"}})
    assert command.request == CoapRequest("GET", ("3", "0"))
    assert (command.msg_type, command.path, command.req_path) == ("read", (3, 0), "/3/0")


def test_read_may_ask_for_a_content_format() -> None:
    command = translate({"msgType": "read", "data": {"path": "/3/0", "contentFormat": "senml+cbor"}})
    assert command.request.accept == 112


def test_discover_asks_for_link_format() -> None:
    request = translate({"msgType": "discover", "data": {"path": "/3/0/7"}}).request
    assert request == CoapRequest("GET", ("3", "0", "7"), accept=40)


def test_observe_and_cancel_observe_set_the_observe_option() -> None:
    observe = translate({"msgType": "observe", "data": {"path": "/3303/0/5700"}}).request
    cancel = translate({"msgType": "cancel-observe", "data": {"path": "/3303/0/5700"}}).request
    assert observe == CoapRequest("GET", ("3303", "0", "5700"), observe=0)
    assert cancel == CoapRequest("GET", ("3303", "0", "5700"), observe=1)


def test_single_write_sends_text_plain_typed_by_the_definition() -> None:
    # EMQX case20_single_write's command; the value goes as text, which every client reads.
    request = translate({"msgType": "write", "data": {
        "path": "/3/0/13", "type": "Integer", "value": "12345"}}).request
    assert request == CoapRequest("PUT", ("3", "0", "13"), content_format=0, payload=b"12345")
    boolean = translate({"msgType": "write", "data": {"path": "/3311/0/5850", "value": True}})
    assert boolean.request.payload == b"1"


def test_single_write_of_opaque_bytes_goes_as_octet_stream() -> None:
    request = translate({"msgType": "write", "data": {
        "path": "/5/0/0", "type": "Opaque", "value": "AQID"}}).request
    assert (request.content_format, request.payload) == (42, b"\x01\x02\x03")


def test_instance_write_is_a_partial_update_in_tlv() -> None:
    # EMQX case21_write_object: basePath /3/0/ with resources 13, 14 and instance 6/0.
    command = translate({"msgType": "write", "data": {"basePath": "/3/0/", "content": [
        {"path": "13", "type": "Integer", "value": "12345"},
        {"path": "14", "type": "String", "value": "87x"},
        {"path": "6/0", "type": "Integer", "value": "1"}]}})
    request = command.request
    assert (request.method, request.path, request.content_format) == ("POST", ("3", "0"), 11542)
    assert command.req_path == "/3/0/"
    assert decode_content(11542, request.payload, (3, 0), REGISTRY) == {
        "/3/0/6/0": 1, "/3/0/13": 12345, "/3/0/14": "87x"}


def test_instance_write_in_replace_mode_is_a_put() -> None:
    request = translate({"msgType": "write", "data": {
        "basePath": "/3/0", "mode": "replace", "content": [{"path": "14", "value": "+01:00"}]}}).request
    assert request.method == "PUT"


def test_multiple_resource_write_replaces_its_instances_last_entry_winning() -> None:
    # EMQX case23_write_multi_resource_instance: the repeated "1" keeps 1:4.
    request = translate({"msgType": "write", "data": {"basePath": "/3/0/22", "content": [
        {"path": "0", "type": "Objlnk", "value": "1:2"},
        {"path": "1", "type": "Objlnk", "value": "1:3"},
        {"path": "1", "type": "Objlnk", "value": "1:4"}]}}).request
    assert (request.method, request.path) == ("PUT", ("3", "0", "22"))
    assert request.payload == bytes.fromhex("88160C" "440000010002" "440100010004")
    assert decode_content(11542, request.payload, (3, 0, 22), REGISTRY) == {
        "/3/0/22/0": ObjLink(1, 2), "/3/0/22/1": ObjLink(1, 4)}


def test_write_with_a_chosen_format() -> None:
    request = translate({"msgType": "write", "data": {
        "basePath": "/3303/0", "contentFormat": 110,
        "content": [{"path": "5750", "value": "kitchen"}]}}).request
    assert request.content_format == 110
    assert json.loads(request.payload) == [{"bn": "/3303/0/", "n": "5750", "vs": "kitchen"}]


def test_multi_value_writes_follow_the_formats_the_device_announced() -> None:
    content = {"/3/0/14": "+01:00", "/3/0/15": "Europe/Paris"}
    assert choose_format(content, (3, 0), None) is ContentFormat.TLV
    assert choose_format(content, (3, 0), registration()) is ContentFormat.TLV
    assert choose_format(content, (3, 0), registration("ep=d&lwm2m=1.1")) is ContentFormat.SENML_CBOR
    senml_json_only = registration("ep=d&lwm2m=1.1", b'</>;rt="oma.lwm2m";ct="60 110",</3/0>')
    assert choose_format(content, (3, 0), senml_json_only) is ContentFormat.SENML_JSON
    json_only = registration("ep=d", b'</>;rt="oma.lwm2m";ct=11543,</3/0>')
    assert choose_format(content, (3, 0), json_only) is ContentFormat.LWM2M_JSON


def test_write_attr_puts_the_attributes_as_query_skipping_nulls_and_unknowns() -> None:
    # EMQX case50_write_attribute.
    request = translate({"msgType": "write-attr", "data": {
        "path": "/3/0/9", "pmin": "1", "pmax": "5", "lt": "5", "st": None,
        "ignored": "1"}}).request
    assert request == CoapRequest("PUT", ("3", "0", "9"), query=("pmin=1", "pmax=5", "lt=5"))
    numbers = translate({"msgType": "write-attr", "data": {"path": "/3303/0/5700", "gt": 30.5,
                                                           "epmin": 1}}).request
    assert numbers.query == ("gt=30.5", "epmin=1")


def test_execute_posts_its_arguments_as_text() -> None:
    # EMQX case31_execute_error's command, and case30's "undefined" meaning no arguments.
    with_args = translate({"msgType": "execute", "data": {"path": "/3/0/4", "args": "2,7"}})
    assert with_args.request == CoapRequest("POST", ("3", "0", "4"), content_format=0,
                                            payload=b"2,7")
    no_args = translate({"msgType": "execute", "data": {"path": "/3/0/4", "args": "undefined"}})
    assert no_args.request == CoapRequest("POST", ("3", "0", "4"))


def test_create_posts_new_instances_to_the_object() -> None:
    # EMQX case_create_with_content: instances 0 and 1 of Location.
    command = translate({"msgType": "create", "data": {"basePath": "/6", "content": [
        {"path": "0/0", "type": "Float", "value": "1.5"},
        {"path": "0/4", "type": "Opaque", "value": "AQID"},
        {"path": "1/0", "type": "Float", "value": "2.5"}]}})
    assert (command.request.method, command.request.path) == ("POST", ("6",))
    assert decode_content(11542, command.request.payload, (6,), REGISTRY) == {
        "/6/0/0": 1.5, "/6/0/4": b"\x01\x02\x03", "/6/1/0": 2.5}


def test_create_without_content_sends_an_empty_payload() -> None:
    request = translate({"msgType": "create", "data": {"basePath": "/5", "content": []}}).request
    assert (request.method, request.path, request.payload) == ("POST", ("5",), b"")


def test_delete_is_a_delete_on_the_path() -> None:
    request = translate({"msgType": "delete", "data": {"path": "/5/0"}}).request
    assert request == CoapRequest("DELETE", ("5", "0"))


def test_the_alternate_path_prefixes_every_request() -> None:
    reg = registration("ep=d", b'</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>')
    command = translate({"msgType": "read", "data": {"path": "/3/0/0"}}, reg)
    assert command.request.path == ("lwm2m", "3", "0", "0") and command.path == (3, 0, 0)


def test_a_query_in_the_path_becomes_uri_query() -> None:
    command = translate({"msgType": "observe", "data": {"path": "/3/0/9?pmin=10&pmax=60"}})
    assert command.request.query == ("pmin=10", "pmax=60") and command.req_path == "/3/0/9"


@pytest.mark.parametrize("payload", [
    b"{bad json", b"[1, 2]", b'{"msgType": "read"}', b'{"msgType": "read", "data": 3}',
])
def test_unparseable_commands_are_command_errors(payload: bytes) -> None:
    with pytest.raises(CommandError):
        parse_command(payload)


@pytest.mark.parametrize("command, reason", [
    ({"msgType": "reboot", "data": {"path": "/3/0/4"}}, "msgType"),
    ({"msgType": "read", "data": {}}, "path"),
    ({"msgType": "read", "data": {"path": "/3/zero"}}, "not an LwM2M path"),
    ({"msgType": "read", "data": {"path": "/"}}, "at least an object"),
    ({"msgType": "execute", "data": {"path": "/3/0/9"}}, "not an executable"),
    ({"msgType": "execute", "data": {"path": "/3/0"}}, "resource path"),
    ({"msgType": "write", "data": {"path": "/3/0", "value": 1}}, "resource path"),
    ({"msgType": "write", "data": {"basePath": "/3", "content": []}}, "instance"),
    ({"msgType": "write", "data": {"path": "/3/0/9", "value": "full"}}, "not a valid Integer"),
    ({"msgType": "write", "data": {"path": "/3/0/9", "type": "String", "value": "x"}},
     "cannot write"),
    ({"msgType": "write", "data": {"path": "/3/0/4", "value": 1}}, "executable"),
    ({"msgType": "write", "data": {"basePath": "/3/0", "content": {"14": "x"}}}, "list"),
    ({"msgType": "write", "data": {"basePath": "/3/0", "content": [{"path": "14"}]}},
     "no value"),
    ({"msgType": "write", "data": {"path": "/3/0/14", "value": "x", "type": "Decimal"}},
     "unknown LwM2M resource type"),
    ({"msgType": "write", "data": {"path": "/3/0/14", "value": "x", "contentFormat": "xml"}},
     "unknown content format"),
    ({"msgType": "create", "data": {"basePath": "/6/0", "content": []}}, "object"),
    ({"msgType": "write-attr", "data": {"path": "/3/0/9", "pmin": [1]}}, "attribute pmin"),
    ({"msgType": "write", "data": {"path": "/66/0/7", "value": "not base64!"}}, "Opaque"),
])
def test_commands_that_cannot_be_sent_say_why(command: dict, reason: str) -> None:
    with pytest.raises(CommandError, match=reason) as caught:
        translate(command)
    assert caught.value.code == "4.00"


def test_create_takes_absolute_content_paths_under_the_object() -> None:
    # The shape issue 18 saw refused: basePath "/31024" with the paths written in full.
    command = translate({"msgType": "create", "data": {"basePath": "/3303", "content": [
        {"path": "/3303/1/5700", "value": 20.5}, {"path": "/3303/1/5701", "value": "Cel"}]}})
    assert (command.request.method, command.request.path, command.path) == ("POST", ("3303",), (3303, 1))
    assert decode_content(11542, command.request.payload, (3303,), REGISTRY) == {
        "/3303/1/5700": 20.5, "/3303/1/5701": "Cel"}


def test_create_with_relative_and_absolute_paths_gives_the_same_request() -> None:
    relative = translate({"msgType": "create", "data": {"basePath": "/3303", "content": [
        {"path": "1/5700", "value": 20.5}]}})
    slashed = translate({"msgType": "create", "data": {"basePath": "/3303", "content": [
        {"path": "/1/5700", "value": 20.5}]}})
    absolute = translate({"msgType": "create", "data": {"basePath": "/3303", "content": [
        {"path": "/3303/1/5700", "value": 20.5}]}})
    assert relative.request == slashed.request == absolute.request
