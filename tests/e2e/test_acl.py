"""Logins and topic ACLs against a real gateway, over MQTT/TCP and MQTT over WebSocket, with paho.

One password file and one ACL file for every test; users made at a low
PBKDF2 iteration count. Every wait is on a client call or a queue with a
timeout; "nothing arrived" is checked after a later message that was
published after it has arrived (the gateway keeps order per publisher).
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import PahoClient

ACL = """\
user alice
topic readwrite sensors/#
topic read #
topic deny secret/#

user bob
topic readwrite secret/#
topic write sensors/bob/#

pattern readwrite users/%u/#
pattern write devices/%c/up
pattern read devices/%c/down
"""
USERS = {"alice": "wonderland", "bob": "builder", "carol": "c4r0l"}
NOT_AUTHORIZED = 0x87
NO_SUBSCRIBERS = 0x10


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("acl")
    users = PasswordFile()
    for name, password in USERS.items():
        users.set(name, password, iterations=1000)
    users.save(folder / "passwd")
    (folder / "acl").write_text(ACL, encoding="utf-8")
    running = RunningGateway(make_config(
        auth={"password_file": str(folder / "passwd"), "acl_file": str(folder / "acl")},
        ws={"enabled": True, "listen": f"{LOOPBACK}:0"},
        mqtt={"max_subscriptions": 3},
    ))
    yield running
    running.stop()


class Login(PahoClient):
    """A paho client with a username, over TCP or WebSocket."""

    def __init__(self, gateway: RunningGateway, transport: str, username: str, password: str | None = None,
                 client_id: str | None = None, version: str = "5") -> None:
        client_id = client_id or f"{username}-{uuid.uuid4().hex[:6]}"
        super().__init__(gateway.gateway.ports[transport], client_id, version)
        if transport == "ws":  # the same callbacks on a WebSocket client
            tcp = self.client
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=self.protocol,
                                      transport="websockets")
            for name in ("on_connect", "on_message", "on_subscribe", "on_unsubscribe", "on_log"):
                setattr(self.client, name, getattr(tcp, name))
            self.client.ws_set_options(path="/mqtt")
        self.client.username_pw_set(username, USERS.get(username, "") if password is None else password)
        self._puback: dict[int, int] = {}
        self.client.on_publish = self._on_publish

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        with self._cond:
            self._puback[mid] = int(reason_code.value)
            self._cond.notify_all()

    def publish_reason(self, topic: str, payload: bytes) -> int:
        """A QoS 1 PUBLISH; the PUBACK's reason code (0x10: accepted, nobody subscribed)."""
        info = self.client.publish(topic, payload, 1)
        with self._cond:
            assert self._cond.wait_for(lambda: info.mid in self._puback, 10), "no PUBACK"
            return self._puback.pop(info.mid)


@pytest.fixture
def login(secured: RunningGateway) -> Iterator[Callable[..., Login]]:
    made: list[Login] = []

    def make(transport: str, username: str, password: str | None = None, **kwargs: Any) -> Login:
        made.append(Login(secured, transport, username, password, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()


TRANSPORTS = ["mqtt", "ws"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_right_password_gets_in_and_a_wrong_one_is_refused_with_0x86(
    login: Callable[..., Login], transport: str
) -> None:
    login(transport, "alice").connect()
    refused = login(transport, "alice", "looking-glass")
    with pytest.raises(AssertionError, match="Bad user name or password"):
        refused.connect()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_publish_is_allowed_or_refused_with_0x87_by_the_acl(login: Callable[..., Login], transport: str) -> None:
    bob = login(transport, "bob").connect()
    assert bob.subscribe("secret/#", 1) == [1]
    alice = login(transport, "alice").connect()
    assert alice.publish_reason("secret/plans", b"stolen") == NOT_AUTHORIZED
    assert alice.publish_reason("sensors/alice/t", b"21") == NO_SUBSCRIBERS
    bob.publish("secret/plans", b"real", qos=1)
    assert [m.payload for m in bob.inbox.until_topic("secret/plans")] == [b"real"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_subscribe_is_allowed_or_refused_with_0x87_by_the_acl(login: Callable[..., Login], transport: str) -> None:
    alice = login(transport, "alice").connect()
    assert alice.subscribe("sensors/+/t", 1) == [1]
    assert alice.subscribe("secret/#", 1) == [NOT_AUTHORIZED]
    bob = login(transport, "bob", version="311").connect()
    assert bob.subscribe("sensors/#", 1) == [0x80]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_hash_subscriber_without_read_on_secret_does_not_receive_what_another_user_publishes_there(
    login: Callable[..., Login], transport: str
) -> None:
    alice = login(transport, "alice").connect()
    assert alice.subscribe("#", 1) == [1]
    bob = login("mqtt", "bob").connect()
    bob.publish("secret/x", b"classified", qos=1)
    bob.publish("sensors/bob/t", b"public", qos=1)
    received = alice.inbox.until_topic("sensors/bob/t")
    assert [m.topic for m in received] == ["sensors/bob/t"]


def test_a_username_pattern_gives_each_user_a_private_tree(login: Callable[..., Login]) -> None:
    carol = login("mqtt", "carol").connect()
    assert carol.subscribe("users/carol/#", 1) == [1]
    assert carol.subscribe("users/alice/#", 1) == [NOT_AUTHORIZED]
    carol.publish("users/carol/notes", b"mine", qos=1)
    assert carol.inbox.get().payload == b"mine"


def test_a_client_id_pattern_lets_a_device_write_up_and_read_down(
    login: Callable[..., Login], secured: RunningGateway
) -> None:
    device = login("ws", "carol", client_id="dev42").connect()
    assert device.subscribe("devices/dev42/down", 1) == [1]
    assert device.subscribe("devices/dev43/down", 1) == [NOT_AUTHORIZED]
    assert device.publish_reason("devices/dev42/up", b"reading") == NO_SUBSCRIBERS
    assert device.publish_reason("devices/dev43/up", b"forged") == NOT_AUTHORIZED
    assert secured.call(lambda: secured.broker.authorizer.publish_denied) >= 1


def test_past_the_subscription_quota_a_new_filter_gets_0x97(login: Callable[..., Login]) -> None:
    alice = login("mqtt", "alice").connect()
    for n in range(3):
        assert alice.subscribe(f"sensors/{n}", 1) == [1]
    assert alice.subscribe("sensors/3", 1) == [0x97]
    assert alice.subscribe("sensors/0", 0) == [0]  # replacing an existing subscription is not a new one


def test_a_v311_publish_the_acl_denies_is_acknowledged_to_mosquitto_pub_and_dropped(
    login: Callable[..., Login], secured: RunningGateway
) -> None:
    bob = login("mqtt", "bob").connect()
    assert bob.subscribe("secret/#", 1) == [1]
    port = secured.gateway.ports["mqtt"]
    for user, payload in (("alice", "denied"), ("bob", "allowed")):
        done = subprocess.run(
            ["mosquitto_pub", "-h", LOOPBACK, "-p", str(port), "-V", "311", "-u", user, "-P", USERS[user],
             "-q", "1", "-t", "secret/x", "-m", payload],
            capture_output=True, text=True, timeout=30,
        )
        assert done.returncode == 0, done.stderr
    assert [m.payload for m in bob.inbox.until_topic("secret/x")] == [b"allowed"]
