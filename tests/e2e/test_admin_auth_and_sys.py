"""Admin API credentials (bearer token, basic auth against the password file) and $SYS topics under load."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from core.passwords import PasswordFile
from tests.conftest import RunningGateway
from tests.e2e.admin_support import admin_gateway, http
from tests.e2e.clients import PahoClient


def test_the_api_needs_the_token_while_health_and_metrics_stay_open() -> None:
    gateway = admin_gateway(http={"api_token": "s3cret"})
    try:
        refused = http(gateway, "GET", "/api/v1/clients")
        assert refused.status == 401 and refused.json()["error"]["status"] == 401
        assert "Bearer" in refused.headers["WWW-Authenticate"]
        assert http(gateway, "GET", "/api/v1/clients", token="wrong").status == 401
        assert http(gateway, "GET", "/api/v1/clients", token="s3cret").status == 200
        assert http(gateway, "GET", "/api/v1/stats?access_token=s3cret").status == 200
        assert http(gateway, "GET", "/api/v1/health").status == 200
        assert http(gateway, "GET", "/metrics").status == 200
        assert http(gateway, "GET", "/api/v1/openapi.json").status == 200
    finally:
        gateway.stop()


def test_basic_auth_uses_the_password_file_and_the_acl_limits_http_publish(tmp_path: Path) -> None:
    passwords = PasswordFile(tmp_path / "passwords")
    passwords.set("ops", "pw-ops")
    passwords.save()
    acl = tmp_path / "acl"
    acl.write_text("user ops\ntopic write ops/#\n")
    gateway = admin_gateway(auth={"password_file": str(tmp_path / "passwords"), "acl_file": str(acl)},
                            http={"admins": ["ops"]})  # an admin signed in by password keeps its topic ACL
    try:
        assert http(gateway, "GET", "/api/v1/clients").status == 401
        assert http(gateway, "GET", "/api/v1/clients", basic=("ops", "wrong")).status == 401
        assert http(gateway, "GET", "/api/v1/clients", basic=("ops", "pw-ops")).status == 200
        allowed = http(gateway, "POST", "/api/v1/publish", {"topic": "ops/x", "payload": "1"}, basic=("ops", "pw-ops"))
        assert allowed.status == 200
        denied = http(gateway, "POST", "/api/v1/publish", {"topic": "secret/x"}, basic=("ops", "pw-ops"))
        assert denied.status == 403 and denied.json()["error"]["status"] == 403
        # The AMQP publish form reaches the same topics through amq.topic, under the same ACL.
        amqp = "/api/v1/amqp/exchanges/%2F/amq.topic/publish"
        assert http(gateway, "POST", amqp, {"routing_key": "ops.y", "payload": "1"}, basic=("ops", "pw-ops")).status == 200
        denied = http(gateway, "POST", amqp, {"routing_key": "secret.y", "payload": "1"}, basic=("ops", "pw-ops"))
        assert denied.status == 403 and denied.json()["error"]["status"] == 403
    finally:
        gateway.stop()


LAST = "$SYS/broker/load/messages/sent/5min"  # the last topic of each round


def values_until(client: PahoClient, condition: Callable[[dict[str, str]], bool]) -> dict[str, str]:
    """The latest value of every $SYS topic seen, read round by round until `condition` holds."""
    values: dict[str, str] = {}
    while True:  # each round ends with LAST; until_topic fails the test after its timeout
        values.update({m.topic: m.payload.decode() for m in client.inbox.until_topic(LAST)})
        if condition(values):
            return values


def test_sys_topics_are_retained_and_their_values_change_under_load() -> None:
    gateway: RunningGateway = admin_gateway(sys={"interval": 1})
    try:
        watcher = PahoClient(gateway.mqtt_port, "sys-watcher", "311").connect()
        watcher.subscribe("$SYS/broker/#")
        first = values_until(watcher, lambda v: "$SYS/broker/version" in v and "$SYS/broker/messages/received" in v)
        assert first["$SYS/broker/version"].startswith("rosettamq version")
        assert first["$SYS/broker/clients/connected"] == "1"
        for name in ("uptime", "clients/total", "messages/sent", "subscriptions/count", "retained messages/count"):
            assert f"$SYS/broker/{name}" in first, name
        received = int(first["$SYS/broker/messages/received"])
        load = PahoClient(gateway.mqtt_port, "sys-load", "311").connect()
        load.subscribe("load/#")
        load.publish_many([(f"load/{i}", b"x") for i in range(200)], qos=1)
        load.inbox.take(200)

        later = values_until(watcher, lambda v: int(v["$SYS/broker/messages/received"]) >= received + 200)
        assert int(later["$SYS/broker/messages/sent"]) >= 200
        assert later["$SYS/broker/clients/connected"] == "2"
        assert float(later["$SYS/broker/load/messages/received/1min"]) > 0
        fresh = PahoClient(gateway.mqtt_port, "sys-late", "311").connect()
        fresh.subscribe("$SYS/broker/uptime")
        assert fresh.inbox.get().retain  # retained: a new subscriber gets the value at once
        for client in (watcher, load, fresh):
            client.close()
    finally:
        gateway.stop()
