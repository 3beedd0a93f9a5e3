"""Admin API roles (issue 24) over real HTTP: `[http] admins` act, `monitors` read, anyone else gets 403.

alice is an admin, carol a monitor, bob has no role; the API token is an
administrator's credential. Every refusal leaves the data untouched.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest

from core.passwords import PasswordFile
from gateway.config import ConfigError
from gateway.reload import Reloader
from tests.conftest import RunningGateway, make_config
from tests.e2e.admin_support import admin_gateway, http
from tests.e2e.clients import PahoClient

TOKEN = "t0ken-of-the-admin"
USERS = {"alice": "wonderland", "bob": "builder", "carol": "c4r0l"}
ROLES = {"admins": ["alice"], "monitors": ["carol"]}


def write_passwords(path: Path) -> Path:
    passwords = PasswordFile(path)
    for name, password in USERS.items():
        passwords.set(name, password, iterations=1000)
    passwords.save()
    return path


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    running = admin_gateway(auth={"password_file": str(write_passwords(tmp_path / "passwords")),
                                  "allow_anonymous": True},  # the MQTT devices
                            http={"api_token": TOKEN, **ROLES})
    try:
        yield running
    finally:
        running.stop()


def as_user(name: str) -> tuple[str, str]:
    return name, USERS[name]


def test_bob_without_a_role_gets_403_on_every_route_and_changes_nothing(gateway: RunningGateway) -> None:
    device = PahoClient(gateway.mqtt_port, "device-1", "5").connect()
    device.publish("plant/state", b"on", qos=1, retain=True)
    bob = as_user("bob")
    for method, path, body in [("GET", "/api/v1/clients", None), ("GET", "/api/v1/retained", None),
                               ("DELETE", "/api/v1/retained?topic=%23", None),
                               ("DELETE", "/api/v1/clients/device-1", None),
                               ("POST", "/api/v1/publish", {"topic": "plant/state", "payload": "off"})]:
        answer = http(gateway, method, path, body, basic=bob)
        assert answer.status == 403, (method, path)
        assert answer.json()["error"] == {"status": 403, "message": answer.json()["error"]["message"]}
        assert "bob" in answer.json()["error"]["message"] and "[http] admins" in answer.json()["error"]["message"]
    retained = http(gateway, "GET", "/api/v1/retained", token=TOKEN).json()["retained"]
    assert [(m["topic"], m["payload"]) for m in retained] == [("plant/state", "on")]
    clients = http(gateway, "GET", "/api/v1/clients", token=TOKEN).json()["clients"]
    assert [c["id"] for c in clients] == ["device-1"]


def test_alice_the_admin_and_the_token_may_do_everything(gateway: RunningGateway) -> None:
    watcher = PahoClient(gateway.mqtt_port, "watcher", "5").connect()
    watcher.subscribe("plant/#", qos=1)
    PahoClient(gateway.mqtt_port, "device-2", "5").connect()
    for credential in ({"basic": as_user("alice")}, {"token": TOKEN}):
        assert http(gateway, "GET", "/api/v1/clients", **credential).status == 200  # type: ignore[arg-type]
        published = http(gateway, "POST", "/api/v1/publish",
                         {"topic": "plant/state", "payload": "on", "retain": True, "qos": 1}, **credential)  # type: ignore[arg-type]
        assert published.status == 200 and published.json()["deliveries"] == 1
        assert watcher.inbox.take(1)[0].payload == b"on"
        deleted = http(gateway, "DELETE", "/api/v1/retained?topic=plant/%23", **credential)  # type: ignore[arg-type]
        assert deleted.status == 200 and deleted.json()["deleted"] == ["plant/state"]
    assert http(gateway, "DELETE", "/api/v1/clients/device-2", basic=as_user("alice")).status == 200
    assert http(gateway, "GET", "/api/v1/whoami", basic=as_user("alice")).json() == {"user": "alice", "role": "admin"}
    assert http(gateway, "GET", "/api/v1/whoami", token=TOKEN).json() == {"user": None, "role": "admin"}


def test_carol_the_monitor_may_read_but_not_act(gateway: RunningGateway) -> None:
    device = PahoClient(gateway.mqtt_port, "device-3", "5").connect()
    device.publish("plant/level", b"0.8", qos=1, retain=True)
    carol = as_user("carol")
    for path in ("/api/v1/clients", "/api/v1/subscriptions", "/api/v1/retained", "/api/v1/stats",
                 "/api/v1/topics", "/api/v1/amqp/queues", "/api/v1/bridges"):
        assert http(gateway, "GET", path, basic=carol).status == 200, path
    assert http(gateway, "GET", "/api/v1/whoami", basic=carol).json() == {"user": "carol", "role": "monitor"}
    for method, path, body in [("DELETE", "/api/v1/retained", None), ("DELETE", "/api/v1/clients/device-3", None),
                               ("POST", "/api/v1/publish", {"topic": "plant/level", "payload": "0"})]:
        answer = http(gateway, method, path, body, basic=carol)
        assert answer.status == 403 and "read-only" in answer.json()["error"]["message"], (method, path)
    assert http(gateway, "GET", "/api/v1/retained", basic=carol).json()["retained"][0]["payload"] == "0.8"
    assert http(gateway, "GET", "/api/v1/clients", basic=carol).json()["count"] == 1


def test_a_user_who_lost_api_access_is_named_once_with_how_to_grant_it(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="rosettamq.http"):
        for _ in range(3):
            assert http(gateway, "GET", "/api/v1/stats", basic=as_user("bob")).status == 403
        assert http(gateway, "GET", "/api/v1/stats", basic=as_user("alice")).status == 200
    lines = [r.getMessage() for r in caplog.records if "no role" in r.getMessage()]
    assert len(lines) == 1
    assert "user=bob" in lines[0] and "[http] admins" in lines[0] and "[http] monitors" in lines[0]


def test_roles_follow_a_reload(tmp_path: Path) -> None:
    passwords = write_passwords(tmp_path / "passwords")
    sections = {"auth": {"password_file": str(passwords)}, "http": {"enabled": True, "listen": "127.0.0.1:0"}}
    running = RunningGateway(make_config(**sections))
    try:
        assert http(running, "GET", "/api/v1/clients", basic=as_user("bob")).status == 403
        new = make_config(**{**sections, "http": {**sections["http"], "monitors": ["bob"]}})
        assert running.call(lambda: Reloader(running.gateway, lambda: new).reload())
        assert running.call(lambda: running.gateway.security.is_monitor("bob"))
        assert http(running, "GET", "/api/v1/clients", basic=as_user("bob")).status == 200
        assert http(running, "DELETE", "/api/v1/retained", basic=as_user("bob")).status == 403
    finally:
        running.stop()


@pytest.mark.parametrize("http_section, message", [
    ({"admins": "alice"}, "http.admins: expected array"),
    ({"admins": ["alice", 3]}, "http.admins: expected user names"),
    ({"monitors": [" carol"]}, "http.monitors: expected user names"),
    ({"admins": ["alice"], "monitors": ["alice"]}, "alice already in http.admins"),
    ({"header_timeout": 0}, "http.header_timeout: must be from 0.5"),
    ({"max_body_size": 10}, "http.max_body_size: must be from 1024"),
    ({"admin": ["alice"]}, "did you mean 'admins'"),
])
def test_role_and_limit_settings_are_checked(http_section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        make_config(http=http_section)


def test_the_settings_are_read() -> None:
    config = make_config(http={"admins": ["alice", "alice"], "monitors": ["carol"], "header_timeout": 2,
                               "max_body_size": 4096})
    assert config.http.admins == ("alice",) and config.http.monitors == ("carol",)
    assert config.http.header_timeout == 2.0 and config.http.max_body_size == 4096
