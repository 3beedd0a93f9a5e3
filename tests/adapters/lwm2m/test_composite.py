"""Composite commands (LwM2M 1.1) -> FETCH / iPATCH with SenML, and their answers."""

from __future__ import annotations

import json

import cbor2
import pytest

from adapters.lwm2m.answers import notify_answer, response_answer
from adapters.lwm2m.coap import CoapResponse
from adapters.lwm2m.commands import parse_command, translate_command
from adapters.lwm2m.errors import CommandError
from adapters.lwm2m.observations import ObservationTable
from adapters.lwm2m.registration import parse_register
from adapters.lwm2m.registrations import RegistrationTable

from .strategies import REGISTRY


def registration(payload: bytes = b'</>;rt="oma.lwm2m";ct=110,</3/0>', query: str = "ep=d&lwm2m=1.1"):
    return RegistrationTable().register(parse_register(query, payload), 0).registration


def translate(msg_type: str, reg=None, **data):
    return translate_command(parse_command({"msgType": msg_type, "data": data}), reg, REGISTRY)


def test_read_composite_is_a_fetch_of_the_root_naming_each_path_in_the_devices_senml() -> None:
    command = translate("read-composite", registration(), paths=["/3/0/0", "/3303/0"])
    request = command.request
    assert (request.method, request.path, request.content_format, request.accept, request.observe) == (
        "FETCH", (), 110, 110, None)
    assert json.loads(request.payload) == [{"n": "/3/0/0"}, {"n": "/3303/0"}]
    assert (command.path, command.paths, command.req_path) == ((), ((3, 0, 0), (3303, 0)), "/")


def test_without_announced_senml_the_request_is_senml_cbor_under_the_alternate_path() -> None:
    reg = registration(b'</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>')
    request = translate("observe-composite", reg, paths=["/3/0/0"]).request
    assert (request.path, request.content_format, request.observe) == (("lwm2m",), 112, 0)
    assert cbor2.loads(request.payload) == [{0: "/3/0/0"}]
    assert translate("cancel-observe-composite", reg, paths=["/3/0/0"]).request.observe == 1


def test_write_composite_is_an_ipatch_of_typed_values_with_absolute_names() -> None:
    command = translate("write-composite", registration(), content=[
        {"path": "/3/0/14", "value": "+02:00"}, {"path": "/3303/0/5700", "value": 20}])
    assert (command.request.method, command.request.content_format) == ("iPATCH", 110)
    assert json.loads(command.request.payload) == [{"n": "/3/0/14", "vs": "+02:00"},
                                                   {"n": "/3303/0/5700", "v": 20.0}]
    assert command.paths == ((3, 0, 14), (3303, 0, 5700))


@pytest.mark.parametrize("msg_type, data, reason", [
    ("read-composite", {}, "paths"),
    ("read-composite", {"paths": []}, "paths"),
    ("read-composite", {"paths": ["/"]}, "at least an object"),
    ("read-composite", {"paths": ["/3/x"]}, "not an LwM2M path"),
    ("read-composite", {"paths": ["/3/0"], "contentFormat": "tlv"}, "SenML"),
    ("write-composite", {"content": []}, "content"),
])
def test_composite_commands_that_cannot_be_sent_say_why(msg_type: str, data: dict, reason: str) -> None:
    with pytest.raises(CommandError, match=reason):
        translate(msg_type, registration(), **data)


def test_answers_and_notifications_decode_the_absolute_names_and_list_the_paths() -> None:
    command = translate("observe-composite", registration(), paths=["/3/0/0", "/3303/0/5700"])
    payload = json.dumps([{"n": "/3/0/0", "vs": "ACME"}, {"n": "/3303/0/5700", "v": 21}]).encode()
    answer = response_answer(command, CoapResponse("2.05", 110, payload, observe=3), REGISTRY)
    assert answer["data"] == {"reqPath": "/", "code": "2.05", "codeMsg": "content",
                              "paths": ["/3/0/0", "/3303/0/5700"],
                              "content": [{"path": "/3/0/0", "value": "ACME"}, {"path": "/3303/0/5700", "value": 21.0}]}
    notification = notify_answer(command, CoapResponse("2.05", 110, payload, observe=4), REGISTRY)
    assert notification["msgType"] == "notify" and notification["seqNum"] == 4


def test_a_composite_observation_is_found_by_its_exact_paths() -> None:
    table = ObservationTable()
    composite = translate("observe-composite", registration(), paths=["/3/0/0", "/3/0/1"])
    single = translate("observe", registration(), path="/3/0/0")
    table.add(b"c", composite)
    table.add(b"s", single)
    assert table.by_path((), ((3, 0, 0), (3, 0, 1))).token == b"c"
    assert table.by_path((3, 0, 0)).token == b"s"
    assert table.by_path((), ((3, 0, 0),)) is None
