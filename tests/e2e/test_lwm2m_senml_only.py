"""Issue 18 with a SenML-JSON-only LwM2M 1.1 device (wakaama's lwm2mclient without TLV, as
tests/e2e/lwm2m_senml_device.py reproduces it): its ``ct=110`` is what the gateway asks for and
writes in, a 4.06 is retried in another format, and create takes EMQX's command shapes.

The device runs on its own event loop (aiocoap); the MQTT side is paho. Every wait is on a
message or an event with a timeout.
"""

from __future__ import annotations

import base64
import json
from typing import Iterator

import pytest
from aiocoap.numbers.codes import Code

from tests.conftest import RunningGateway
from tests.e2e.lwm2m_senml_device import SENML_JSON, SenmlDevice
from tests.e2e.lwm2m_support import MqttApp, app, SimulatedDevice, lwm2m_gateway, values

__all__ = ["app"]  # an MQTT app on this module's gateway (a fixture)
EP = "wakaama-1"


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = lwm2m_gateway(command_timeout=5)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def device(gateway: RunningGateway, app: MqttApp) -> Iterator[SimulatedDevice]:
    simulated = SimulatedDevice(EP, SenmlDevice, lifetime=60).start(gateway)
    registered = app.next_on(f"lwm2m/{EP}/up/register")["data"]
    assert (registered["lwm2m"], registered["objectList"][:2]) == ("1.1", ["/1/0", "/3/0"])
    try:
        yield simulated
    finally:
        simulated.stop()


def last_request(device: SimulatedDevice, method: str = "GET") -> tuple:
    return [r for r in device.requests() if r[0] == method][-1]


# -- (1) the device's preferred format --------------------------------------------------------------------------


@pytest.mark.parametrize("path, expected", [
    ("/3/0", {"/3/0/0": "Open Mobile Alliance", "/3/0/2": f"WK-{EP}", "/3/0/7/0": 3800, "/3/0/7/1": 5000}),
    ("/3/0/0", {"/3/0/0": "Open Mobile Alliance"}),
    ("/31024/10/1", {"/31024/10/1": 1}),
])
def test_reads_without_content_format_ask_for_the_senml_json_the_device_announced(
        app: MqttApp, device: SimulatedDevice, path: str, expected: dict) -> None:
    answer = app.ask(EP, "read", {"path": path})
    assert (answer["data"]["code"], answer["data"]["codeMsg"]) == ("2.05", "content")
    content = values(answer)
    assert {key: content[key] for key in expected} == expected
    assert last_request(device)[1:3] == (path, SENML_JSON)


def test_the_device_fails_a_read_without_accept_as_issue_18_saw(app: MqttApp, device: SimulatedDevice) -> None:
    """The stand-in is faithful: an explicit TLV is refused (4.06, not retried as the user chose it)."""
    answer = app.ask(EP, "read", {"path": "/3/0", "contentFormat": "tlv"})
    assert answer["data"]["code"] == "4.06"
    assert [r for r in device.requests() if r[0] == "GET"] == [("GET", "/3/0", 11542, None)]


def test_an_observation_asks_for_senml_json_and_its_notifications_decode(
        app: MqttApp, device: SimulatedDevice) -> None:
    started = app.ask(EP, "observe", {"path": "/3303/0/5700"})
    assert started["data"]["code"] == "2.05" and values(started) == {"/3303/0/5700": 21.5}
    assert last_request(device)[2] == SENML_JSON
    device.run(lambda: device.device.set_value((3303, 0, 5700), 23.25))
    notification = app.next_on(f"lwm2m/{EP}/up/notify")
    assert values(notification) == {"/3303/0/5700": 23.25}


def test_writes_without_content_format_go_in_senml_json(app: MqttApp, device: SimulatedDevice) -> None:
    written = app.ask(EP, "write", {"basePath": "/3/0", "content": [
        {"path": "14", "value": "+05:30"}, {"path": "15", "value": "Asia/Kolkata"}]})
    assert written["data"]["code"] == "2.04"
    assert last_request(device, "POST")[3] == SENML_JSON
    content = values(app.ask(EP, "read", {"path": "/3/0"}))
    assert (content["/3/0/14"], content["/3/0/15"]) == ("+05:30", "Asia/Kolkata")


def test_a_not_acceptable_read_is_retried_once_with_another_format(gateway: RunningGateway, app: MqttApp) -> None:
    """A device that announced ``ct="112 110"`` but cannot write SenML CBOR after all: 4.06, then 110."""
    class CborClaimingDevice(SenmlDevice):
        def object_links(self) -> bytes:
            return super().object_links().replace(b"ct=110", b'ct="112 110"')

    simulated = SimulatedDevice("claims-cbor", CborClaimingDevice, lifetime=60).start(gateway)
    try:
        app.next_on("lwm2m/claims-cbor/up/register")
        answer = app.ask("claims-cbor", "read", {"path": "/3/0"})
        assert answer["data"]["code"] == "2.05" and values(answer)["/3/0/0"] == "Open Mobile Alliance"
        assert [r[2] for r in simulated.requests() if r[0] == "GET"] == [112, 110]
    finally:
        simulated.stop()


# -- (2) create with EMQX's command shapes ---------------------------------------------------------------------


@pytest.mark.parametrize("instance, content", [
    (20, [{"path": "20/1", "value": 7}, {"path": "20/3", "value": 0.5}]),             # relative
    (21, [{"path": "/31024/21/1", "value": 7}, {"path": "/31024/21/3", "value": 0.5}]),  # absolute
])
def test_create_takes_basepath_with_relative_or_absolute_content_and_answers_the_new_instance(
        app: MqttApp, device: SimulatedDevice, instance: int, content: list) -> None:
    answer = app.ask(EP, "create", {"basePath": "/31024", "content": content})
    assert answer["data"] == {"reqPath": "/31024", "code": "2.01", "codeMsg": "created",
                              "location": f"/31024/{instance}"}
    assert last_request(device, "POST")[1:] == ("/31024", None, SENML_JSON)
    assert values(app.ask(EP, "read", {"path": f"/31024/{instance}"})) == {
        f"/31024/{instance}/1": 7, f"/31024/{instance}/3": 0.5}


def test_create_of_an_existing_instance_returns_the_devices_refusal(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "create", {"basePath": "/31024", "content": [{"path": "10/1", "value": 3}]})
    assert answer["data"] == {"reqPath": "/31024", "code": "4.06", "codeMsg": "not_acceptable"}


# -- (3) Send (LwM2M 1.1, POST /dp) ----------------------------------------------------------------------------


def test_values_a_device_sends_are_published_on_up_send(app: MqttApp, device: SimulatedDevice) -> None:
    device.run(lambda: device.device.objects[3303][0].update({5700: 24.5}))
    reply = device.call(device.device.send([(3303, 0, 5700), (3, 0, 0)]))
    assert reply.code == Code.CHANGED
    message = app.next_on(f"lwm2m/{EP}/up/send")
    assert message == {"msgType": "send", "data": {
        "reqPath": "/dp", "code": "2.04", "codeMsg": "changed",
        "content": [{"path": "/3303/0/5700", "value": 24.5}, {"path": "/3/0/0", "value": "Open Mobile Alliance"}]}}


def test_sent_values_are_republished_like_notifications_each_with_its_time() -> None:
    running = lwm2m_gateway(republish={"/3303/0/5700": "sensors/{ep}/temperature"})
    app = MqttApp(running, "lwm2m/+/up/#", "sensors/#")
    simulated = SimulatedDevice("sender", SenmlDevice, lifetime=60).start(running)
    try:
        app.next_on("lwm2m/sender/up/register")
        reply = simulated.call(simulated.device.send([(3303, 0, 5700)], timestamps=[1700000000, 1700000060]))
        assert reply.code == Code.CHANGED
        sent = app.next_on("lwm2m/sender/up/send")
        assert sent["data"]["content"] == [{"path": "/3303/0/5700", "value": 21.5, "time": 1700000000},
                                           {"path": "/3303/0/5700", "value": 21.5, "time": 1700000060}]
        assert [app.next_raw("sensors/sender/temperature") for _ in range(2)] == [b"21.5", b"21.5"]
    finally:
        simulated.stop()
        app.close()
        running.stop()


def test_a_send_from_an_unregistered_address_is_refused_and_not_published(
        gateway: RunningGateway, app: MqttApp) -> None:
    stranger = SimulatedDevice("stranger", SenmlDevice).start(gateway, register=False)
    try:
        reply = stranger.call(stranger.device.send([(3303, 0, 5700)]))
        assert reply.code == Code.NOT_FOUND
    finally:
        stranger.stop(deregister=False)
    app.seen.clear()
    probe = SimulatedDevice("probe", SenmlDevice).start(gateway)  # what was published before this register
    try:
        app.next_on("lwm2m/probe/up/register")
        assert [m.topic for m in app.seen] == ["lwm2m/probe/up/register"]
    finally:
        probe.stop()


def test_a_send_in_a_format_other_than_senml_is_answered_4_15(app: MqttApp, device: SimulatedDevice) -> None:
    reply = device.call(device.device.ask(Code.POST, "/dp", [], b"21.5", 0))
    assert reply.code == Code.UNSUPPORTED_CONTENT_FORMAT


# -- (4) composite operations (LwM2M 1.1 FETCH / iPATCH with SenML) ---------------------------------------------


def test_read_composite_fetches_several_paths_in_one_senml_request(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "read-composite", {"paths": ["/3/0/0", "/3303/0", "/31024/11/3"]})
    data = answer["data"]
    assert (data["reqPath"], data["code"], data["paths"]) == ("/", "2.05", ["/3/0/0", "/3303/0", "/31024/11/3"])
    assert values(answer) == {"/3/0/0": "Open Mobile Alliance", "/3303/0/5700": 21.5, "/3303/0/5701": "Cel",
                              "/31024/11/3": 2.5}
    assert last_request(device, "FETCH")[1:] == ("/", SENML_JSON, SENML_JSON)


def test_observe_composite_notifies_a_change_under_any_of_its_paths_until_cancelled(
        app: MqttApp, device: SimulatedDevice) -> None:
    paths = ["/3303/0/5700", "/3/0/14"]
    started = app.ask(EP, "observe-composite", {"paths": paths})
    assert started["data"]["code"] == "2.05"
    assert values(started) == {"/3303/0/5700": 21.5, "/3/0/14": "+01:00"}
    device.run(lambda: device.device.set_value((3, 0, 14), "+03:00"))
    notification = app.next_on(f"lwm2m/{EP}/up/notify")
    assert notification["data"]["paths"] == paths
    assert values(notification) == {"/3303/0/5700": 21.5, "/3/0/14": "+03:00"}

    cancelled = app.ask(EP, "cancel-observe-composite", {"paths": paths})
    assert cancelled["data"]["code"] == "2.05"
    device.wait_until(lambda d: d.observations == [])
    app.seen.clear()
    device.run(lambda: device.device.set_value((3303, 0, 5700), 30.0))
    assert values(app.ask(EP, "read", {"path": "/3303/0/5700"})) == {"/3303/0/5700": 30.0}
    assert [m for m in app.seen if m.topic.endswith("/up/notify")] == []


def test_write_composite_patches_resources_of_several_objects(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "write-composite", {"content": [
        {"path": "/3/0/14", "value": "-02:00"}, {"path": "/31024/10/1", "value": 42, "type": "Integer"}]})
    assert answer["data"]["code"] == "2.04"
    assert last_request(device, "iPATCH")[1:] == ("/", None, SENML_JSON)
    assert values(app.ask(EP, "read-composite", {"paths": ["/3/0/14", "/31024/10/1"]})) == {
        "/3/0/14": "-02:00", "/31024/10/1": 42}


# -- (6) firmware update (object 5) ----------------------------------------------------------------------------


def observe_firmware(app: MqttApp) -> None:
    for path in ("/5/0/3", "/5/0/5"):
        started = app.ask(EP, "observe", {"path": path})
        assert (started["data"]["code"], values(started)) == ("2.05", {path: 0})


def notified(app: MqttApp, since: int, *expected: tuple[str, int]) -> None:
    """Wait until each (path, value) has been notified since `app.seen[since]` (a notification may
    come before the answer of the command that caused it), whatever the order across observations."""
    waiting = set(expected)

    def seen(message: dict) -> bool:
        waiting.discard((message["data"]["reqPath"], values(message).get(message["data"]["reqPath"])))
        return not waiting
    for earlier in app.seen[since:]:
        if earlier.topic == f"lwm2m/{EP}/up/notify":
            seen(json.loads(earlier.payload))
    if waiting:
        app.next_on(f"lwm2m/{EP}/up/notify", seen)


def test_a_firmware_package_is_pushed_block_wise_and_its_state_and_result_are_reported_up(
        app: MqttApp, device: SimulatedDevice) -> None:
    observe_firmware(app)
    since = len(app.seen)
    package = bytes(range(256)) * 20  # 5 KiB: Block1 (1 KiB blocks)
    written = app.ask(EP, "write", {"path": "/5/0/0", "type": "Opaque",
                                    "value": base64.b64encode(package).decode()})
    assert written["data"]["code"] == "2.04"
    assert device.run(lambda: device.device.package) == package
    assert device.run(lambda: device.device.blocks_received) >= 5
    notified(app, since, ("/5/0/3", 2))  # Downloaded
    since = len(app.seen)
    assert app.ask(EP, "execute", {"path": "/5/0/2"})["data"]["code"] == "2.04"
    notified(app, since, ("/5/0/5", 1), ("/5/0/3", 0))  # updated successfully, idle again
    assert values(app.ask(EP, "read", {"path": "/3/0/3"})) == {"/3/0/3": "2.0"}


def test_a_firmware_package_uri_is_written_and_the_update_reported_the_same_way(
        app: MqttApp, device: SimulatedDevice) -> None:
    observe_firmware(app)
    since = len(app.seen)
    written = app.ask(EP, "write", {"path": "/5/0/1", "value": "coap://127.0.0.1:5683/fw/v2.bin"})
    assert written["data"]["code"] == "2.04"
    assert last_request(device, "PUT")[3] == 0  # text/plain
    notified(app, since, ("/5/0/3", 2))
    since = len(app.seen)
    assert app.ask(EP, "execute", {"path": "/5/0/2"})["data"]["code"] == "2.04"
    notified(app, since, ("/5/0/5", 1))
    since = len(app.seen)
    refused = app.ask(EP, "write", {"path": "/5/0/1", "value": "ftp://nowhere/fw.bin"})
    assert refused["data"]["code"] == "4.00"
    notified(app, since, ("/5/0/5", 7))  # Unsupported protocol
