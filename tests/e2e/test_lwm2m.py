"""LwM2M end to end: the example simulator (aiocoap) registers with the gateway and an MQTT app manages it.

The device runs examples/lwm2m_device.py on its own event loop; the MQTT side
is paho. Commands go to ``lwm2m/{ep}/dn`` and answers are read from
``lwm2m/{ep}/up/...``. Timers are short and come from the config ([lwm2m]
min_lifetime, lifetime_grace, command_timeout, awake_window); every wait is
on a message or an event with a timeout.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from aiocoap import Message
from aiocoap.numbers.codes import Code

from tests.conftest import RunningGateway
from tests.e2e.coap_clients import RawCoAP, request
from tests.e2e.lwm2m_support import MqttApp, app, SimulatedDevice, coap_port, lwm2m_gateway, values

__all__ = ["app"]  # an MQTT app on this module's gateway (a fixture)
EP = "sim-1"


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = lwm2m_gateway(min_lifetime=1, lifetime_grace=0, command_timeout=0.5)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def device(gateway: RunningGateway, app: MqttApp) -> Iterator[SimulatedDevice]:
    simulated = SimulatedDevice(EP, lifetime=60).start(gateway)
    app.next_on(f"lwm2m/{EP}/up/register")
    try:
        yield simulated
    finally:
        simulated.stop()


def lwm2m(gateway: RunningGateway) -> Any:
    server = gateway.gateway.lwm2m
    assert server is not None
    return server


# -- registration -------------------------------------------------------------------------------------------


def test_a_registering_device_is_announced_on_up_register(gateway: RunningGateway, app: MqttApp) -> None:
    simulated = SimulatedDevice("announced", lifetime=45).start(gateway)
    try:
        message = app.next_on("lwm2m/announced/up/register")
        assert message["msgType"] == "register"
        data = message["data"]
        assert (data["ep"], data["lt"], data["lwm2m"], data["b"]) == ("announced", 45, "1.1", "U")
        assert data["objectList"] == ["/1/0", "/3/0", "/3303/0"]
        assert simulated.run(lambda: simulated.device.location).startswith("/rd/")
    finally:
        simulated.stop()


def test_a_deregistering_device_is_announced_and_no_longer_takes_commands(
        gateway: RunningGateway, app: MqttApp, device: SimulatedDevice) -> None:
    subscriptions = gateway.call(lambda: gateway.broker.router.subscription_count())
    assert device.call(device.device.deregister()) == Code.DELETED
    message = app.next_on(f"lwm2m/{EP}/up/deregister")
    assert message["data"]["reason"] == "deregister"
    assert gateway.call(lambda: gateway.broker.router.subscription_count()) == subscriptions - 1
    assert gateway.call(lambda: len(lwm2m(gateway).table)) == 0


def test_a_device_that_stops_updating_expires_with_reason_expired(gateway: RunningGateway, app: MqttApp) -> None:
    simulated = SimulatedDevice("short-lived", lifetime=1).start(gateway)
    try:
        app.next_on("lwm2m/short-lived/up/register")
        expired = app.next_on("lwm2m/short-lived/up/deregister", timeout=10)
        assert expired["data"]["reason"] == "expired" and expired["data"]["lt"] == 1
        assert simulated.call(simulated.device.update()) == Code.NOT_FOUND  # the server forgot it
    finally:
        simulated.stop(deregister=False)


def test_an_update_is_announced_and_keeps_the_registration(
        gateway: RunningGateway, app: MqttApp, device: SimulatedDevice) -> None:
    assert device.call(device.device.update()) == Code.CHANGED
    assert app.next_on(f"lwm2m/{EP}/up/update")["data"]["ep"] == EP


# -- device management from MQTT --------------------------------------------------------------------------


def test_an_mqtt_read_of_the_device_object_gets_its_decoded_resources(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "read", {"path": "/3/0"})
    assert answer["msgType"] == "read" and answer["reqID"] >= 100
    assert {k: answer["data"][k] for k in ("reqPath", "code", "codeMsg")} == {
        "reqPath": "/3/0", "code": "2.05", "codeMsg": "content"}
    content = values(answer)
    assert content["/3/0/0"] == "RosettaMQ"
    assert content["/3/0/1"] == "lwm2m-device.py"
    assert content["/3/0/2"] == f"SIM-{EP}"
    assert content["/3/0/3"] == "1.0.0"
    assert isinstance(content["/3/0/13"], int) and content["/3/0/16"] == "U"


def test_a_single_resource_read_is_typed_by_the_object_definition(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "read", {"path": "/3303/0/5700"})
    assert values(answer) == {"/3303/0/5700": 21.5}  # text/plain "21.5" read as the Float it is


def test_a_written_resource_reads_back(app: MqttApp, device: SimulatedDevice) -> None:
    written = app.ask(EP, "write", {"path": "/3/0/14", "value": "+02:00"})
    assert written["data"]["code"] == "2.04"
    assert values(app.ask(EP, "read", {"path": "/3/0/14"})) == {"/3/0/14": "+02:00"}


def test_a_partial_update_of_an_instance_writes_several_resources(app: MqttApp, device: SimulatedDevice) -> None:
    written = app.ask(EP, "write", {"basePath": "/3/0", "content": [
        {"path": "14", "value": "+05:30"}, {"path": "15", "value": "Asia/Kolkata"}]})
    assert written["data"]["code"] == "2.04"
    content = values(app.ask(EP, "read", {"path": "/3/0"}))
    assert (content["/3/0/14"], content["/3/0/15"]) == ("+05:30", "Asia/Kolkata")


def test_writing_a_read_only_resource_returns_the_devices_refusal(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "write", {"path": "/3/0/0", "value": "Someone else"})
    assert (answer["data"]["code"], answer["data"]["codeMsg"]) == ("4.05", "method_not_allowed")


def test_execute_runs_the_resource_on_the_device_with_its_arguments(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "execute", {"path": "/3/0/4", "args": "'soft'"})
    assert answer["data"]["code"] == "2.04"
    assert device.run(lambda: device.device.executed) == [("/3/0/4", b"'soft'")]


def test_discover_lists_the_resources_of_an_instance(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "discover", {"path": "/3303/0"})
    assert answer["data"]["code"] == "2.05"
    assert answer["data"]["content"] == ["</3303/0>", "</3303/0/5601>", "</3303/0/5602>", "</3303/0/5605>",
                                         "</3303/0/5700>", "</3303/0/5701>"]


def test_a_missing_instance_is_answered_with_the_devices_not_found(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "read", {"path": "/3303/7"})
    assert (answer["data"]["code"], answer["data"]["codeMsg"]) == ("4.04", "not_found")


def test_a_command_that_cannot_be_sent_is_answered_with_4_00(app: MqttApp, device: SimulatedDevice) -> None:
    answer = app.ask(EP, "dance", {"path": "/3/0"})
    assert answer["data"]["code"] == "4.00" and "msgType" in answer["data"]["error"]
    assert [r for r in device.requests() if r[0] != "GET"] == []


# -- observe --------------------------------------------------------------------------------------------------


def test_observed_temperatures_arrive_on_up_notify_until_the_observation_is_cancelled(
        app: MqttApp, device: SimulatedDevice) -> None:
    path = "/3303/0/5700"
    started = app.ask(EP, "observe", {"path": path})
    assert started["data"]["code"] == "2.05" and values(started) == {path: 21.5}

    seen = []
    for temperature in (22.25, 23.5, 19.75):
        device.run(lambda t=temperature: device.device.set_temperature(t))
        notification = app.next_on(f"lwm2m/{EP}/up/notify")
        assert notification["msgType"] == "notify" and notification["data"]["reqPath"] == path
        assert values(notification) == {path: temperature}
        seen.append(notification["seqNum"])
    assert seen == sorted(seen) and len(set(seen)) == 3

    cancelled = app.ask(EP, "cancel-observe", {"path": path})
    assert cancelled["data"]["code"] == "2.05"
    device.wait_until(lambda d: d.observers.get((3303, 0, 5700)) == 0)
    app.seen.clear()
    device.run(lambda: device.device.set_temperature(30.0))
    assert values(app.ask(EP, "read", {"path": path})) == {path: 30.0}
    assert [m for m in app.seen if m.topic.endswith("/up/notify")] == []


def test_auto_observe_on_registration_republishes_the_plain_value() -> None:
    running = lwm2m_gateway(auto_observe=["/3303/0/5700", "/3304/0/5700"],
                            republish={"/3303/0/5700": "sensors/{ep}/temperature"})
    app = MqttApp(running, "lwm2m/+/up/#", "sensors/#")
    simulated = SimulatedDevice("auto", lifetime=60).start(running)
    try:
        app.next_on("lwm2m/auto/up/register")
        first = app.next_on("lwm2m/auto/up/resp")
        assert first["msgType"] == "observe" and first["autoObserve"] is True
        assert values(first) == {"/3303/0/5700": 21.5}
        simulated.run(lambda: simulated.device.set_temperature(24.75))
        notification = app.next_on("lwm2m/auto/up/notify")
        assert notification["autoObserve"] is True and values(notification) == {"/3303/0/5700": 24.75}
        assert app.next_raw("sensors/auto/temperature") == b"24.75"
        plain = [m.payload for m in app.seen if m.topic == "sensors/auto/temperature"]
        assert plain == [b"21.5", b"24.75"]
        assert [r for r in simulated.requests() if r[1].startswith("/3304")] == []  # not announced: not observed
    finally:
        simulated.stop()
        app.close()
        running.stop()


# -- failures --------------------------------------------------------------------------------------------------


def register_raw(gateway: RunningGateway, endpoint: str) -> RawCoAP:
    """A 'device' that registers and then never answers on its own (a raw UDP socket)."""
    raw = RawCoAP(coap_port(gateway))
    answer = raw.ask(request(Code.POST, "/rd", query=(f"ep={endpoint}", "lt=60", "lwm2m=1.1", "b=U"),
                             payload=b"</3/0>", token=b"\x11"))
    assert answer.code == Code.CREATED
    return raw


def test_a_device_that_does_not_answer_gets_a_coap_timeout_answer(gateway: RunningGateway, app: MqttApp) -> None:
    raw = register_raw(gateway, "silent")
    try:
        app.next_on("lwm2m/silent/up/register")
        answer = app.ask("silent", "read", {"path": "/3/0/0"})
        assert answer["msgType"] == "coap_timeout"
        assert {k: answer["data"][k] for k in ("reqPath", "code", "codeMsg", "path")} == {
            "reqPath": "/3/0/0", "code": "5.04", "codeMsg": "gateway_timeout", "path": "/3/0/0"}
        sent = Message.decode(raw.pending()[0])
        assert (sent.code, sent.opt.uri_path) == (Code.GET, ("3", "0", "0"))
    finally:
        raw.close()


def test_a_device_that_resets_the_request_gets_a_coap_reset_answer(gateway: RunningGateway, app: MqttApp) -> None:
    raw = register_raw(gateway, "resetting")
    try:
        app.next_on("lwm2m/resetting/up/register")
        req_id = app.command("resetting", "read", {"path": "/3/0/0"})
        raw.ack(raw.receive(), reset=True)
        answer = app.answer("resetting", req_id)
        assert (answer["msgType"], answer["data"]["code"]) == ("coap_reset", "5.02")
    finally:
        raw.close()


# -- queue mode and NAT rebinding -------------------------------------------------------------------------------


def test_a_command_for_a_sleeping_device_is_sent_when_it_next_updates() -> None:
    running = lwm2m_gateway(awake_window=0)  # a queue-mode device never counts as awake between updates
    app = MqttApp(running)
    simulated = SimulatedDevice("sleepy", lifetime=60, queue_mode=True).start(running)
    try:
        assert app.next_on("lwm2m/sleepy/up/register")["data"]["b"] == "UQ"
        app.seen.clear()
        req_id = app.command("sleepy", "read", {"path": "/3/0/2"})
        running.call(lambda: None)  # the command has been routed (QoS 1 acknowledged) and handled
        assert running.call(lambda: lwm2m(running).metrics()["queued_commands"]) == 1
        assert simulated.requests() == []
        assert simulated.call(simulated.device.update()) == Code.CHANGED
        answer = app.answer("sleepy", req_id)
        assert values(answer) == {"/3/0/2": "SIM-sleepy"}
        assert [m.topic for m in app.seen] == ["lwm2m/sleepy/up/update", "lwm2m/sleepy/up/resp"]
        assert running.call(lambda: lwm2m(running).metrics()["queued_commands"]) == 0
    finally:
        simulated.stop()
        app.close()
        running.stop()


def test_a_queued_command_whose_ttl_runs_out_is_answered_with_coap_timeout() -> None:
    running = lwm2m_gateway(awake_window=0)
    app = MqttApp(running)
    simulated = SimulatedDevice("sleepier", lifetime=60, queue_mode=True).start(running)
    try:
        app.next_on("lwm2m/sleepier/up/register")
        answer = app.ask("sleepier", "read", {"path": "/3/0/2"}, ttl=0.2)
        assert (answer["msgType"], answer["data"]["code"]) == ("coap_timeout", "5.04")
        assert simulated.requests() == []
    finally:
        simulated.stop()
        app.close()
        running.stop()


def test_commands_follow_a_device_that_updates_from_a_new_port(
        gateway: RunningGateway, app: MqttApp, device: SimulatedDevice) -> None:
    old_port = device.run(lambda: device.device.port)
    new_port = device.call(device.device.rebind())
    assert new_port != old_port
    app.next_on(f"lwm2m/{EP}/up/update")
    answer = app.ask(EP, "read", {"path": "/3/0/0"})
    assert values(answer) == {"/3/0/0": "RosettaMQ"}
    assert device.requests()[-1] == ("GET", "/3/0/0", None)


def test_a_device_that_registers_again_from_a_new_port_replaces_its_old_registration(
        gateway: RunningGateway, app: MqttApp, device: SimulatedDevice) -> None:
    old_location = device.run(lambda: device.device.location)
    device.call(device.device.rebind_only())
    new_location = device.call(device.device.register())
    assert new_location != old_location
    assert app.next_on(f"lwm2m/{EP}/up/deregister")["data"]["reason"] == "replaced"
    app.next_on(f"lwm2m/{EP}/up/register")
    assert values(app.ask(EP, "read", {"path": "/3/0/1"})) == {"/3/0/1": "lwm2m-device.py"}
    assert gateway.call(lambda: gateway.broker.router.subscription_count()) == 2  # the app's and the device's
