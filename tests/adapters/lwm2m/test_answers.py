"""CoAP response -> answer JSON, notifications, failures and lifecycle messages.

Where EMQX's LwM2M test suite (emqx_lwm2m_SUITE) shows an exact answer, the
same command and device response must give the same JSON here.
"""

from __future__ import annotations

import json

import pytest

from adapters.lwm2m.answers import (ack_answer, failure_answer, invalid_command_answer,
                                    lifecycle_message, notify_answer, response_answer)
from adapters.lwm2m.coap import CoapResponse
from adapters.lwm2m.commands import parse_command, translate_command
from adapters.lwm2m.errors import CommandError
from adapters.lwm2m.rd import RdEvent
from adapters.lwm2m.registration import parse_register
from adapters.lwm2m.registrations import RegistrationTable
from adapters.lwm2m.topics import (command_filter, endpoint_of_command, lifecycle_topic,
                                   notify_topic, response_topic)

from .strategies import REGISTRY
from .test_tlv import DEVICE_CONTENT, DEVICE_TLV

IDS = {"requestID": 206, "cacheID": 206}


def command(msg_type: str, **data):
    return translate_command(parse_command({**IDS, "msgType": msg_type, "data": data}),
                             None, REGISTRY)


def test_read_of_a_text_resource_matches_emqx() -> None:
    # emqx_lwm2m_SUITE case10_read
    answer = response_answer(command("read", path="/3/0/0"),
                             CoapResponse("2.05", 0, b"EMQ"), REGISTRY)
    assert answer == {**IDS, "msgType": "read", "data": {
        "code": "2.05", "codeMsg": "content", "reqPath": "/3/0/0",
        "content": [{"path": "/3/0/0", "value": "EMQ"}]}}


def test_read_of_the_device_object_in_tlv_lists_every_value_in_order() -> None:
    answer = response_answer(command("read", path="/3/0"),
                             CoapResponse("2.05", 11542, DEVICE_TLV), REGISTRY)
    content = answer["data"]["content"]
    assert content[0] == {"path": "/3/0/0", "value": "Open Mobile Alliance"}
    assert {item["path"]: item["value"] for item in content} == DEVICE_CONTENT
    json.dumps(answer)  # JSON-ready as it is


def test_tlv_types_render_like_emqx() -> None:
    # emqx_lwm2m_SUITE case15_read_tlv_types: Time, Objlnk instances, Float, Opaque.
    device = bytes.fromhex("C40D0000000A" "8816" "0C" "440000010002" "440100010003")
    location = bytes.fromhex("C4003FC00000" "C304010203" "C40500000014")
    assert response_answer(command("read", path="/3/0"), CoapResponse("2.05", 11542, device),
                           REGISTRY)["data"]["content"] == [
        {"path": "/3/0/13", "value": 10}, {"path": "/3/0/22/0", "value": "1:2"},
        {"path": "/3/0/22/1", "value": "1:3"}]
    assert response_answer(command("read", path="/6/0"), CoapResponse("2.05", 11542, location),
                           REGISTRY)["data"]["content"] == [
        {"path": "/6/0/0", "value": 1.5}, {"path": "/6/0/4", "value": "AQID"},
        {"path": "/6/0/5", "value": 20}]


@pytest.mark.parametrize("code, name", [
    ("4.01", "unauthorized"), ("4.04", "not_found"), ("4.05", "method_not_allowed"),
    ("4.15", "unsupported_content_format"), ("5.00", "internal_server_error"),
    ("5.03", "service_unavailable"),
])
def test_device_errors_are_answered_with_code_and_name_only(code: str, name: str) -> None:
    # emqx_lwm2m_SUITE case18_read_error_codes
    answer = response_answer(command("read", path="/3/0/0"), CoapResponse(code, 0, b""),
                             REGISTRY)
    assert answer == {**IDS, "msgType": "read", "data": {
        "reqPath": "/3/0/0", "code": code, "codeMsg": name}}


def test_a_payload_that_does_not_decode_is_a_bad_request_with_the_reason() -> None:
    # emqx_lwm2m_SUITE case17_read_invalid_tlv (a 16-bit id and a cut value)
    answer = response_answer(command("read", path="/3/0"),
                             CoapResponse("2.05", 11542, bytes.fromhex("E9012C01")), REGISTRY)
    data = answer["data"]
    assert (data["code"], data["codeMsg"], data["reqPath"]) == ("4.00", "bad_request", "/3/0")
    assert "content" not in data and "TLV" in data["error"]


def test_text_answering_a_whole_object_is_a_bad_request() -> None:
    # emqx_lwm2m_SUITE case19_read_text_invalid_basename
    answer = response_answer(command("read", path="/3"), CoapResponse("2.05", 0, b"1"), REGISTRY)
    assert answer["data"]["code"] == "4.00"


def test_write_execute_delete_and_write_attr_answers_carry_only_the_code() -> None:
    for msg_type, data, code, name in [
        ("write", {"path": "/3/0/13", "type": "Integer", "value": "12345"}, "2.04", "changed"),
        ("execute", {"path": "/3/0/4"}, "2.04", "changed"),
        ("delete", {"path": "/5/0"}, "2.02", "deleted"),
        ("write-attr", {"path": "/3/0/9", "pmin": "1"}, "4.00", "bad_request"),
    ]:
        answer = response_answer(command(msg_type, **data), CoapResponse(code), REGISTRY)
        assert answer == {**IDS, "msgType": msg_type, "data": {
            "reqPath": data["path"], "code": code, "codeMsg": name}}


def test_write_answers_echo_the_base_path_as_written() -> None:
    # emqx_lwm2m_SUITE case21_write_object: reqPath keeps the trailing slash.
    answer = response_answer(command("write", basePath="/3/0/", content=[
        {"path": "13", "type": "Integer", "value": "12345"}]), CoapResponse("2.04"), REGISTRY)
    assert answer["data"]["reqPath"] == "/3/0/"


def test_create_answers_give_the_new_instance_location() -> None:
    answer = response_answer(command("create", basePath="/6", content=[]),
                             CoapResponse("2.01", location_path=("6", "1")), REGISTRY)
    assert answer["data"] == {"reqPath": "/6", "code": "2.01", "codeMsg": "created",
                              "location": "/6/1"}


def test_create_answers_name_the_instance_of_the_content_when_the_device_gives_no_location() -> None:
    created = command("create", basePath="/3303", content=[{"path": "/3303/4/5700", "value": 1.5}])
    answer = response_answer(created, CoapResponse("2.01"), REGISTRY)
    assert answer["data"] == {"reqPath": "/3303", "code": "2.01", "codeMsg": "created", "location": "/3303/4"}
    refused = response_answer(created, CoapResponse("4.05"), REGISTRY)
    assert "location" not in refused["data"]


def test_discover_answers_list_the_links() -> None:
    # emqx_lwm2m_SUITE case40_discover
    payload = b"</3/0/7>;dim=8;pmin=10;pmax=60;gt=50;lt=42.2,</3/0/8>"
    answer = response_answer(command("discover", path="/3/0/7"),
                             CoapResponse("2.05", 40, payload), REGISTRY)
    assert answer == {**IDS, "msgType": "discover", "data": {
        "reqPath": "/3/0/7", "code": "2.05", "codeMsg": "content",
        "content": ["</3/0/7>;dim=8;pmin=10;pmax=60;gt=50;lt=42.2", "</3/0/8>"]}}


def test_observe_then_notifications_then_cancel_match_emqx() -> None:
    # emqx_lwm2m_SUITE case60_observe
    observe = command("observe", path="/3/0/10")
    assert response_answer(observe, CoapResponse("2.05", 0, b"2048", observe=0), REGISTRY) == {
        **IDS, "msgType": "observe", "data": {
            "reqPath": "/3/0/10", "code": "2.05", "codeMsg": "content",
            "content": [{"path": "/3/0/10", "value": 2048}]}}
    assert notify_answer(observe, CoapResponse("2.05", 0, b"4096", observe=3), REGISTRY) == {
        **IDS, "msgType": "notify", "seqNum": 3, "data": {
            "reqPath": "/3/0/10", "code": "2.05", "codeMsg": "content",
            "content": [{"path": "/3/0/10", "value": 4096}]}}
    cancel = command("cancel-observe", path="/3/0/10")
    assert response_answer(cancel, CoapResponse("2.05", 0, b"1150"), REGISTRY)["data"][
        "content"] == [{"path": "/3/0/10", "value": 1150}]


def test_temperature_notifications_in_senml_are_typed_floats() -> None:
    observe = command("observe", path="/3303/0/5700")
    payload = b'[{"bn":"/3303/0/5700","v":21}]'
    answer = notify_answer(observe, CoapResponse("2.05", 110, payload, observe=12), REGISTRY)
    assert answer["seqNum"] == 12
    assert answer["data"]["content"] == [{"path": "/3303/0/5700", "value": 21.0}]
    assert isinstance(answer["data"]["content"][0]["value"], float)


def test_a_separate_response_is_announced_by_an_ack() -> None:
    # emqx_lwm2m_SUITE case10_read_separate_ack
    assert ack_answer(command("read", path="/3/0/0")) == {
        **IDS, "msgType": "ack", "data": {"path": "/3/0/0"}}


def test_timeouts_and_resets_keep_the_command_data_and_say_what_happened() -> None:
    read = command("read", path="/3/0/0")
    assert failure_answer(read) == {**IDS, "msgType": "coap_timeout", "data": {
        "path": "/3/0/0", "reqPath": "/3/0/0", "code": "5.04", "codeMsg": "gateway_timeout"}}
    assert failure_answer(read, "coap_reset")["data"]["code"] == "5.02"
    assert failure_answer(read, "coap_reset")["msgType"] == "coap_reset"


def test_invalid_commands_are_answered_with_the_reason() -> None:
    raw = {"reqID": 9, "msgType": "read", "data": {"path": "/3/x?y=1"}}
    answer = invalid_command_answer(raw, CommandError("bad path"))
    assert answer == {"reqID": 9, "msgType": "read", "data": {
        "reqPath": "/3/x", "code": "4.00", "codeMsg": "bad_request", "error": "bad path"}}
    unparseable = invalid_command_answer(None, CommandError("command is not JSON"))
    assert unparseable["msgType"] == "error" and unparseable["data"]["reqPath"] is None


def registration(query: str, payload: bytes):
    return RegistrationTable().register(parse_register(query, payload), 0).registration


def test_register_message_matches_emqx() -> None:
    # emqx_lwm2m_SUITE case08_reregister
    reg = registration("ep=urn:oma:lwm2m:oma:3&lt=345&lwm2m=1",
                       b'</lwm2m>;rt="oma.lwm2m";ct=11543,</lwm2m/1/0>,</lwm2m/2/0>,</lwm2m/3/0>')
    assert lifecycle_message(RdEvent("register", reg)) == {"msgType": "register", "data": {
        "alternatePath": "/lwm2m", "ep": "urn:oma:lwm2m:oma:3", "lt": 345, "lwm2m": "1",
        "objectList": ["/1/0", "/2/0", "/3/0"], "b": "U"}}


def test_lifecycle_messages_pass_extra_parameters_but_never_secrets() -> None:
    # emqx_lwm2m_SUITE case02_update_deregister sends password, secret, token...
    reg = registration("ep=a&lt=60&lwm2m=1.1&apn=psmA.eDRX0.ctnb&password=public&secret=top"
                       "&private_key=k&access_token=t&Q&sms=42", b"</3/0>")
    data = lifecycle_message(RdEvent("update", reg))["data"]
    assert data["apn"] == "psmA.eDRX0.ctnb" and data["Q"] is True and data["sms"] == "42"
    assert not {"password", "secret", "private_key", "access_token"} & set(data)


def test_deregister_messages_say_why() -> None:
    reg = registration("ep=a", b"</3/0>")
    for reason in ("deregister", "expired", "replaced"):
        message = lifecycle_message(RdEvent("deregister", reg, reason))
        assert message["msgType"] == "deregister" and message["data"]["reason"] == reason
        assert message["data"]["ep"] == "a"


def test_topics_follow_the_design() -> None:
    assert command_filter("dev1") == "lwm2m/dev1/dn/#"
    assert endpoint_of_command("lwm2m/dev1/dn") == "dev1"
    assert endpoint_of_command("lwm2m/dev1/dn/dm") == "dev1"
    assert endpoint_of_command("lwm2m/dev1/up/resp") is None
    assert response_topic("dev1") == "lwm2m/dev1/up/resp"
    assert notify_topic("dev1") == "lwm2m/dev1/up/notify"
    assert lifecycle_topic("dev1", "deregister") == "lwm2m/dev1/up/deregister"
    with pytest.raises(ValueError):
        lifecycle_topic("dev1", "resp")
