"""The management UI's routes (issue 20) under the admin API's roles: a monitor reads them all and may do
none of their actions; an administrator may. The users and roles are test_admin_roles.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pika
import pytest

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import TIMEOUT, admin_gateway, eventually, http
from tests.e2e.test_admin_roles import ROLES, USERS, write_passwords

READS = ["/api/v1/clients?limit=5", "/api/v1/sessions", "/api/v1/history", "/api/v1/amqp/queues"]
READS_NOT_FOUND = ["/api/v1/clients/nobody", "/api/v1/retained/value?topic=a"]
ACTIONS = [("DELETE", "/api/v1/amqp/queues/%2F/ui-roles/contents", None),
           ("DELETE", "/api/v1/amqp/queues/%2F/ui-roles", None),
           ("POST", "/api/v1/amqp/exchanges/%2F/amq.direct/publish", {"routing_key": "k", "payload": "x"}),
           ("DELETE", "/api/v1/sessions/someone", None),
           ("POST", "/api/v1/lwm2m/devices/dev/commands", {"msgType": "read", "data": {"path": "/3/0"}})]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    running = admin_gateway(auth={"password_file": str(write_passwords(tmp_path / "passwords")),
                                  "allow_anonymous": True}, http=dict(ROLES))
    try:
        yield running
    finally:
        running.stop()


def test_a_monitor_reads_every_ui_route_and_acts_on_none(gateway: RunningGateway) -> None:
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        LOOPBACK, gateway.gateway.ports["amqp"], credentials=pika.PlainCredentials("alice", USERS["alice"]),
        blocked_connection_timeout=TIMEOUT))
    try:
        channel = connection.channel()
        channel.queue_declare("ui-roles")
        channel.basic_publish("", "ui-roles", b"kept")
        carol, alice = ("carol", USERS["carol"]), ("alice", USERS["alice"])
        for path in READS:
            assert http(gateway, "GET", path, basic=carol).status == 200, path
        for path in READS_NOT_FOUND:
            assert http(gateway, "GET", path, basic=carol).status == 404, path  # read, found nothing
        for method, path, body in ACTIONS:
            answer = http(gateway, method, path, body, basic=carol)
            assert answer.status == 403 and "monitor" in answer.json()["error"]["message"], (method, path)
        assert eventually(lambda: http(gateway, "GET", "/api/v1/amqp/queues", basic=carol).json()["queues"])[0][
            "messages_ready"] == 1
        assert http(gateway, "DELETE", "/api/v1/amqp/queues/%2F/ui-roles/contents", basic=alice).json() == {
            "purged": 1}
    finally:
        connection.close()
