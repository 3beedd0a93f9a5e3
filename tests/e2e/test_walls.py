"""What one user owns, no other user may take (issue 24): MQTT sessions belong to their user.

Two accounts as in the issue (`alice`: `topic readwrite #`; `bob`: `topic readwrite public/#`),
anonymous access on too. Bob (or an anonymous client) asking for alice's client id, over TCP
or WebSocket, v5 or 3.1.1, online or offline, is refused (0x87 / return code 5); alice stays
connected, or finds her session and her queued message when she comes back.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import ConnAck, Publish, PubAck, SubAck, Subscribe, SubscriptionRequest
from adapters.mqtt.properties import Properties
from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import PahoClient
from tests.e2e.test_ws import PahoWSClient
from tests.wire_client import WireClient

ACL = "user alice\ntopic readwrite #\n\nuser bob\ntopic readwrite public/#\n"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("walls")
    users = PasswordFile()
    users.set("alice", "alice-pw", iterations=1000)
    users.set("bob", "bob-pw", iterations=1000)
    users.save(folder / "passwd")
    (folder / "acl").write_text(ACL)
    running = RunningGateway(make_config(
        auth={"password_file": str(folder / "passwd"), "acl_file": str(folder / "acl"), "allow_anonymous": True},
        ws={"enabled": True, "listen": f"{LOOPBACK}:0"}))
    try:
        yield running
    finally:
        running.stop()


def login(gateway: RunningGateway, client_id: str, user: str | None, level: int = 5, clean: bool = False,
          expiry: int = 3600) -> tuple[WireClient, ConnAck]:
    client = WireClient(gateway.mqtt_port, level)
    fields: dict[str, object] = {"clean_start": clean}
    if user is not None:
        fields.update(username=user, password=f"{user}-pw".encode())
    if level == 5:
        fields["properties"] = Properties(session_expiry_interval=expiry)
    connack = client.connect(client_id, **fields)
    assert isinstance(connack, ConnAck)
    return client, connack


def test_bob_cannot_resume_alices_offline_session_and_alice_still_finds_her_message(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture,
) -> None:
    alice, connack = login(gateway, "alice-phone", "alice")
    assert connack.reason_code == ReasonCode.SUCCESS
    alice.send(Subscribe(1, (SubscriptionRequest("secret/#", 1),)))
    assert isinstance(alice.recv(), SubAck)
    alice.close()  # offline, session kept for an hour
    publisher, _ = login(gateway, "alice-laptop", "alice", clean=True, expiry=0)
    publisher.send(Publish("secret/plans", b"for alice only", qos=1, packet_id=1))
    assert isinstance(publisher.recv(), PubAck)

    caplog.set_level(logging.WARNING, logger="rosettamq.mqtt")
    for level in (5, 4):
        bob, connack = login(gateway, "alice-phone", "bob", level=level)
        # 3.1.1's return code 5 is decoded as the v5 reason it stands for (V3_CONNACK_REASONS)
        assert connack.reason_code == ReasonCode.NOT_AUTHORIZED and not connack.session_present
        assert bob.closed_by_server()
    anonymous, connack = login(gateway, "alice-phone", None)
    assert connack.reason_code == ReasonCode.NOT_AUTHORIZED
    assert "'alice-phone' is the session of user 'alice'; user 'bob' may not take it" in caplog.text

    alice, connack = login(gateway, "alice-phone", "alice")
    assert connack.session_present
    message = alice.recv()
    assert isinstance(message, Publish) and message.payload == b"for alice only"
    for client in (alice, publisher):
        client.close()


def test_bob_cannot_take_over_alice_online_over_tcp_or_websocket(gateway: RunningGateway) -> None:
    alice = PahoClient(gateway.mqtt_port, "alice-sensor", "5")
    alice.client.username_pw_set("alice", "alice-pw")
    alice.connect()
    alice.subscribe("public/news", qos=1)
    for make in (lambda: PahoClient(gateway.mqtt_port, "alice-sensor", "5"),
                 lambda: PahoWSClient(gateway.gateway.ports["ws"], "alice-sensor", "5")):
        bob = make()
        bob.client.username_pw_set("bob", "bob-pw")
        with pytest.raises(AssertionError, match="(?i)not authorized|refused|135"):
            bob.connect()
        bob.close()
    publisher = PahoClient(gateway.mqtt_port, "bob-pub", "5")
    publisher.client.username_pw_set("bob", "bob-pw")
    publisher.connect()
    publisher.publish("public/news", b"still here", qos=1)
    assert alice.inbox.until_topic("public/news")[-1].payload == b"still here"  # alice was never disconnected
    assert alice.client.is_connected()
    for client in (alice, publisher):
        client.close()


def test_the_owner_may_always_take_over_her_own_session(gateway: RunningGateway) -> None:
    first, connack = login(gateway, "alice-tablet", "alice")
    second, connack = login(gateway, "alice-tablet", "alice")
    assert connack.reason_code == ReasonCode.SUCCESS and connack.session_present
    assert first.closed_by_server()
    second.close()


def test_without_any_login_check_a_client_id_stays_anyones_as_in_mosquitto() -> None:
    running = RunningGateway(make_config())
    try:
        one, _ = login(running, "shared-id", None)
        other = WireClient(running.mqtt_port, 5)
        connack = other.connect("shared-id", clean_start=False, username="someone-else",
                                properties=Properties(session_expiry_interval=60))
        assert isinstance(connack, ConnAck) and connack.reason_code == ReasonCode.SUCCESS and connack.session_present
        other.close()
        one.close()
    finally:
        running.stop()
