"""The management UI's LwM2M routes (issue 20) with the example device simulator: devices listed and paged,
a device's object definitions, read / write / execute through POST .../commands answered by the device."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from core.passwords import PasswordFile
from gateway.http import admin_lwm2m
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.admin_support import eventually, http
from tests.e2e.lwm2m_support import MqttApp, SimulatedDevice, values


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                         http={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                         lwm2m={"awake_window": 0.2}))  # queue-mode devices sleep at once
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def devices(gateway: RunningGateway) -> Iterator[list[SimulatedDevice]]:
    started = [SimulatedDevice(name, lifetime=120).start(gateway) for name in ("ui-meter-b", "ui-meter-a", "ui-pump")]
    eventually(lambda: http(gateway, "GET", "/api/v1/lwm2m/devices").json()["total"] == 3)
    try:
        yield started
    finally:
        for device in started:
            device.stop()


def command(gateway: RunningGateway, endpoint: str, body: object) -> tuple[int, dict]:
    answer = http(gateway, "POST", f"/api/v1/lwm2m/devices/{endpoint}/commands", body)
    return answer.status, answer.json()


def test_devices_are_listed_searched_and_paged(gateway: RunningGateway, devices: list[SimulatedDevice]) -> None:
    body = http(gateway, "GET", "/api/v1/lwm2m/devices?q=METER&offset=1&limit=5").json()
    assert (body["total"], body["count"]) == (2, 1)
    (row,) = body["devices"]
    assert row["endpoint"] == "ui-meter-b"
    assert (row["lifetime"], row["binding"], row["version"], row["queue_mode"]) == (120, "U", "1.1", False)
    assert row["objects"] == ["/1/0", "/3/0", "/3303/0"]
    assert row["address"].startswith(LOOPBACK) and row["registered_at"] <= row["last_update"]
    assert http(gateway, "GET", "/api/v1/lwm2m/devices?limit=0").status == 400


def test_a_device_detail_has_the_definitions_of_its_objects(gateway: RunningGateway,
                                                            devices: list[SimulatedDevice]) -> None:
    detail = http(gateway, "GET", "/api/v1/lwm2m/devices/ui-pump").json()
    assert detail["endpoint"] == "ui-pump" and sorted(detail["definitions"]) == ["1", "3", "3303"]
    device = detail["definitions"]["3"]
    assert device["name"] == "Device"
    assert device["resources"]["0"] == {"name": "Manufacturer", "operations": "R", "type": "String",
                                        "multiple": False}
    assert device["resources"]["4"]["operations"] == "E" and device["resources"]["14"]["operations"] == "RW"
    assert http(gateway, "GET", "/api/v1/lwm2m/devices/nobody").status == 404


def test_read_write_and_execute_are_answered_by_the_device(gateway: RunningGateway,
                                                           devices: list[SimulatedDevice]) -> None:
    app = MqttApp(gateway, "lwm2m/ui-meter-a/up/resp")
    try:
        status, answer = command(gateway, "ui-meter-a", {"reqID": 41, "msgType": "read", "data": {"path": "/3/0"}})
        assert status == 200 and (answer["reqID"], answer["msgType"], answer["data"]["code"]) == (41, "read", "2.05")
        assert values(answer)["/3/0/0"] == "RosettaMQ"
        assert app.answer("ui-meter-a", 41) == answer  # the same JSON an MQTT application gets on up/resp
        status, answer = command(gateway, "ui-meter-a", {"reqID": 42, "msgType": "write",
                                                         "data": {"path": "/3/0/14", "value": "+02:00"}})
        assert status == 200 and answer["data"]["code"] == "2.04", answer
        meter = devices[1]
        meter.wait_until(lambda device: device.tree.values[(3, 0)][14] == "+02:00")
        status, answer = command(gateway, "ui-meter-a", {"reqID": 43, "msgType": "read",
                                                         "data": {"path": "/3/0/14"}})
        assert values(answer) == {"/3/0/14": "+02:00"}
        status, answer = command(gateway, "ui-meter-a", {"reqID": 44, "msgType": "execute",
                                                         "data": {"path": "/3/0/4"}})
        assert status == 200 and answer["data"]["code"] == "2.04"
    finally:
        app.close()


def test_bad_commands_are_400_unknown_endpoints_404_and_silence_504(
        gateway: RunningGateway, devices: list[SimulatedDevice], monkeypatch: pytest.MonkeyPatch) -> None:
    status, error = command(gateway, "ui-pump", {"reqID": 1, "msgType": "dance", "data": {"path": "/3/0"}})
    assert status == 400 and "msgType" in error["error"]["message"]
    assert command(gateway, "ui-pump", {"reqID": 1, "msgType": "execute", "data": {"path": "/3/0/0"}})[0] == 400
    assert command(gateway, "ui-pump", [1, 2])[0] == 400
    assert command(gateway, "nobody", {"reqID": 1, "msgType": "read", "data": {"path": "/3/0"}})[0] == 404
    monkeypatch.setattr(admin_lwm2m, "COMMAND_TIMEOUT", 0.5)
    sleeper = SimulatedDevice("ui-sleeper", lifetime=120, queue_mode=True).start(gateway)
    try:  # asleep once its awake window is over: the command waits in its queue, unanswered
        eventually(lambda: http(gateway, "GET", "/api/v1/lwm2m/devices/ui-sleeper").json().get("awake") is False)
        status, error = command(gateway, "ui-sleeper", {"reqID": 2, "msgType": "read", "data": {"path": "/3/0"}})
        assert status == 504 and error["error"]["status"] == 504
        assert http(gateway, "GET", "/api/v1/lwm2m/devices/ui-sleeper").json()["queued"] == 1
        assert gateway.call(lambda: list(gateway.broker.router.taps)) == []  # the answer tap is gone
    finally:
        sleeper.stop()


def test_a_command_is_published_through_the_door_under_the_signed_in_users_acl(tmp_path: Path) -> None:
    """A user signed in by password (an admin) commands only the devices its topic ACL lets it
    write to on lwm2m/{ep}/dn, as over MQTT; the API token is the administrator."""
    passwords = PasswordFile(tmp_path / "passwords")
    passwords.set("ops", "pw-ops", iterations=1000)
    passwords.save()
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite lwm2m/#\n\nuser ops\ntopic write lwm2m/ui-ok/dn\n")
    running = RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                         http={"enabled": True, "listen": f"{LOOPBACK}:0", "admins": ["ops"]},
                                         auth={"password_file": str(tmp_path / "passwords"), "acl_file": str(acl),
                                               "allow_anonymous": True}, lwm2m={}))
    started = [SimulatedDevice(name, lifetime=120).start(running) for name in ("ui-ok", "ui-no")]
    try:
        ops = ("ops", "pw-ops")
        eventually(lambda: http(running, "GET", "/api/v1/lwm2m/devices", basic=ops).json()["total"] == 2)
        read = {"reqID": 7, "msgType": "read", "data": {"path": "/3/0/0"}}
        answer = http(running, "POST", "/api/v1/lwm2m/devices/ui-ok/commands", read, basic=ops)
        assert answer.status == 200 and answer.json()["data"]["code"] == "2.05"
        refused = http(running, "POST", "/api/v1/lwm2m/devices/ui-no/commands", read, basic=ops)
        assert refused.status == 403 and "lwm2m/ui-no/dn" in refused.json()["error"]["message"]
    finally:
        for device in started:
            device.stop()
        running.stop()
