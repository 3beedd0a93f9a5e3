"""Logins against a real gateway with a password file: paho, mosquitto_pub, raw bytes and SCRAM.

Users are made with the password file API (or with `rosettamq passwd` run as
a process) at a low iteration count, so hashing stays fast. Every wait is on
an event, a queue or a socket read with a timeout, never a fixed sleep.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import Auth, ConnAck, Connect, PubAck, Publish
from adapters.mqtt.properties import Properties
from core.passwords import PasswordFile
from gateway.app import Gateway
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.scram_client import ScramClient
from tests.wire_client import WireClient

ROOT = Path(__file__).resolve().parents[2]
FAST = 1000  # PBKDF2 iterations for test users
TIMEOUT = 10.0
SCRAM = "SCRAM-SHA-256"
V311_NOT_AUTHORIZED = bytes([0x20, 0x02, 0x00, 0x05])  # no credentials: not authorized, as mosquitto
V311_BAD_USERNAME_OR_PASSWORD = b"\x20\x02\x00\x04"  # CONNACK, no session, return code 4


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    users = PasswordFile()
    users.set("alice", "wonderland", iterations=FAST)
    users.set("bob", "builder", iterations=FAST)
    path = tmp_path / "passwd"
    users.save(path)
    return path


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., RunningGateway]]:
    started: list[RunningGateway] = []

    def start(**auth: Any) -> RunningGateway:
        running = RunningGateway(make_config(auth=auth))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def secured(start_gateway: Callable[..., RunningGateway], password_file: Path) -> RunningGateway:
    """A password file and no allow_anonymous key: anonymous access is off by default."""
    return start_gateway(password_file=str(password_file))


class PahoLogin:
    """A paho-mqtt 2.x client that records its CONNACK and what it receives."""

    def __init__(self, port: int, version: str, username: str | None, password: str | None, client_id: str) -> None:
        protocol = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.reason_code: Any = None
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connack = threading.Event()
        self._subacks: queue.Queue[int] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda client, userdata, message: self.messages.put(message)
        self.client.on_subscribe = lambda client, userdata, mid, codes, props: self._subacks.put(mid)
        self.client.connect(LOOPBACK, port, 60)
        self.client.loop_start()
        if not self._connack.wait(TIMEOUT):
            raise AssertionError("no CONNACK from the gateway")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            client.disconnect()  # no reconnect attempts: they would only delay loop_stop
        if not self._connack.is_set():
            self.reason_code = reason_code
            self._connack.set()

    def subscribe(self, topic_filter: str) -> None:
        _, mid = self.client.subscribe(topic_filter, 1)
        assert self._subacks.get(timeout=TIMEOUT) == mid

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def paho() -> Iterator[Callable[..., PahoLogin]]:
    made: list[PahoLogin] = []

    def connect(port: int, version: str, username: str | None, password: str | None, client_id: str) -> PahoLogin:
        made.append(PahoLogin(port, version, username, password, client_id))
        return made[-1]

    yield connect
    for client in made:
        client.close()


def mosquitto_pub(port: int, version: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["mosquitto_pub", "-h", LOOPBACK, "-p", str(port), "-V", version, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def rosettamq(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def read_until_closed(sock: socket.socket) -> bytes:
    """Every byte the server sends before it closes the connection."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def raw_connack_v311(port: int, username: str | None, password: bytes | None) -> bytes:
    """The exact bytes a v3.1.1 CONNECT gets back before the server closes."""
    with WireClient(port, level=4) as client:
        client.send(Connect("raw311", protocol_level=4, username=username, password=password))
        return read_until_closed(client.sock)


def connack_v5(port: int, username: str | None, password: bytes | None, client_id: str = "wire5") -> ConnAck:
    with WireClient(port, level=5) as client:
        answer = client.connect(client_id, username=username, password=password)
        assert isinstance(answer, ConnAck)
        if answer.reason_code != 0:
            assert client.closed_by_server()
        return answer


# -- username and password -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["paho-311", "paho-5", "mosquitto_pub-311", "mosquitto_pub-5"])
def test_a_client_with_the_right_password_connects_and_publishes(
    secured: RunningGateway, paho: Callable[..., PahoLogin], kind: str
) -> None:
    subscriber = paho(secured.mqtt_port, "5", "bob", "builder", "subscriber")
    assert subscriber.reason_code == 0
    subscriber.subscribe("auth/#")
    client, version = kind.split("-")
    topic = f"auth/{kind}"
    if client == "paho":
        publisher = paho(secured.mqtt_port, "5" if version == "5" else "311", "alice", "wonderland", kind)
        assert publisher.reason_code == 0
        publisher.publish(topic, b"hello")
    else:
        done = mosquitto_pub(secured.mqtt_port, version, "-u", "alice", "-P", "wonderland", "-q", "1", "-t", topic, "-m", "hello")
        assert done.returncode == 0, done.stderr
    message = subscriber.messages.get(timeout=TIMEOUT)
    assert (message.topic, message.payload) == (topic, b"hello")


def test_the_session_carries_the_username_that_logged_in(secured: RunningGateway) -> None:
    with WireClient(secured.mqtt_port, level=5) as client:
        assert client.connect("who", username="alice", password=b"wonderland").reason_code == 0
        assert secured.call(lambda: secured.broker.mqtt_sessions.get("who").username) == "alice"


def test_a_wrong_password_gets_connack_0x86_on_mqtt5(secured: RunningGateway) -> None:
    assert connack_v5(secured.mqtt_port, "alice", b"looking-glass").reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD


def test_an_unknown_user_gets_connack_0x86_on_mqtt5(secured: RunningGateway) -> None:
    assert connack_v5(secured.mqtt_port, "mallory", b"wonderland").reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD


def test_a_wrong_password_gets_return_code_4_on_mqtt_3_1_1(secured: RunningGateway) -> None:
    assert raw_connack_v311(secured.mqtt_port, "alice", b"looking-glass") == V311_BAD_USERNAME_OR_PASSWORD


@pytest.mark.parametrize("version", ["311", "5"])
def test_paho_reports_bad_user_name_or_password_for_a_wrong_password(
    secured: RunningGateway, paho: Callable[..., PahoLogin], version: str
) -> None:
    client = paho(secured.mqtt_port, version, "alice", "looking-glass", f"wrong-{version}")
    assert client.reason_code.is_failure
    assert client.reason_code == "Bad user name or password"


def test_mosquitto_pub_with_a_wrong_password_is_refused(secured: RunningGateway) -> None:
    done = mosquitto_pub(secured.mqtt_port, "311", "-u", "alice", "-P", "nope", "-t", "auth/x", "-m", "x")
    assert done.returncode != 0
    assert "bad user name or password" in done.stderr.lower()


def test_a_client_without_a_username_is_refused_when_anonymous_access_is_off(
    start_gateway: Callable[..., RunningGateway], password_file: Path
) -> None:
    running = start_gateway(password_file=str(password_file), allow_anonymous=False)
    assert connack_v5(running.mqtt_port, None, None).reason_code == ReasonCode.NOT_AUTHORIZED
    assert raw_connack_v311(running.mqtt_port, None, None) == V311_NOT_AUTHORIZED


def test_a_password_file_without_allow_anonymous_refuses_anonymous_clients(secured: RunningGateway) -> None:
    assert connack_v5(secured.mqtt_port, None, None).reason_code == ReasonCode.NOT_AUTHORIZED


def test_anonymous_clients_get_in_when_allowed_but_a_username_must_still_match(
    start_gateway: Callable[..., RunningGateway], password_file: Path, paho: Callable[..., PahoLogin]
) -> None:
    running = start_gateway(password_file=str(password_file), allow_anonymous=True)
    assert paho(running.mqtt_port, "311", None, None, "anon-311").reason_code == 0
    assert connack_v5(running.mqtt_port, None, None).reason_code == 0
    assert connack_v5(running.mqtt_port, "alice", b"wonderland").reason_code == 0
    assert connack_v5(running.mqtt_port, "alice", b"nope").reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD


def test_without_a_password_file_and_anonymous_access_off_everyone_is_refused(
    start_gateway: Callable[..., RunningGateway],
) -> None:
    running = start_gateway(allow_anonymous=False)
    assert connack_v5(running.mqtt_port, None, None).reason_code == ReasonCode.NOT_AUTHORIZED
    assert connack_v5(running.mqtt_port, "alice", b"wonderland").reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD


def test_without_a_password_file_the_gateway_warns_that_anyone_may_connect(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        gateway = Gateway(make_config())
    assert gateway.authenticator is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("anonymous access allowed" in r.getMessage() for r in warnings)


def test_a_user_added_to_the_file_can_log_in_after_a_reload(secured: RunningGateway, password_file: Path) -> None:
    users = PasswordFile.load(password_file)
    users.set("carol", "c4r0l", iterations=FAST)
    users.save()
    assert connack_v5(secured.mqtt_port, "carol", b"c4r0l").reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD
    assert secured.call(lambda: secured.gateway.authenticator.reload()) is True  # type: ignore[union-attr]
    assert connack_v5(secured.mqtt_port, "carol", b"c4r0l").reason_code == 0


def test_the_gateway_refuses_to_start_with_a_malformed_password_file(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("# users\nalice:wonderland\n", encoding="utf-8")
    config = tmp_path / "rosettamq.toml"
    config.write_text(f'[auth]\npassword_file = "{passwd}"\n[store]\npath = "memory"\n', encoding="utf-8")
    done = rosettamq("run", "--config", str(config), "--mqtt", f"{LOOPBACK}:0")
    assert done.returncode == 2
    assert f"{passwd}:2:" in done.stderr


# -- SCRAM-SHA-256 ---------------------------------------------------------------------------


@pytest.fixture
def cli_user_gateway(tmp_path: Path, start_gateway: Callable[..., RunningGateway]) -> RunningGateway:
    """A user created by `rosettamq passwd --password-stdin`, run as a process."""
    path = tmp_path / "cli-passwd"
    done = rosettamq("passwd", str(path), "sensor-7", "--password-stdin", "--iterations", str(FAST), stdin="s3cret pass\n")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    return start_gateway(password_file=str(path))


def scram_connect(port: int, scram: ScramClient, client_id: str) -> tuple[WireClient, Auth, Any]:
    """CONNECT with client-first, answer the challenge with client-final; the challenge and the answer."""
    client = WireClient(port, level=5)
    props = Properties(authentication_method=SCRAM, authentication_data=scram.first())
    client.send(Connect(client_id, protocol_level=5, properties=props))
    challenge = client.recv()
    assert isinstance(challenge, Auth) and challenge.reason_code == ReasonCode.CONTINUE_AUTHENTICATION, challenge
    assert challenge.properties.authentication_method == SCRAM
    final = scram.final(challenge.properties.authentication_data or b"")
    client.send(Auth(ReasonCode.CONTINUE_AUTHENTICATION, Properties(authentication_method=SCRAM, authentication_data=final)))
    return client, challenge, client.recv()


def test_a_full_scram_exchange_logs_in_a_user_made_with_rosettamq_passwd(cli_user_gateway: RunningGateway) -> None:
    scram = ScramClient("sensor-7", "s3cret pass")
    client, challenge, connack = scram_connect(cli_user_gateway.mqtt_port, scram, "scram-ok")
    with client:
        assert f",i={FAST}".encode() in (challenge.properties.authentication_data or b"")
        assert isinstance(connack, ConnAck) and connack.reason_code == 0
        assert connack.properties.authentication_method == SCRAM
        assert connack.properties.authentication_data == scram.expected_server_final.encode()
        name = cli_user_gateway.call(lambda: cli_user_gateway.broker.mqtt_sessions.get("scram-ok").username)
        assert name == "sensor-7"
        client.send(Publish("scram/t", b"hi", qos=1, packet_id=3))
        assert client.recv() == PubAck(3, ReasonCode.NO_MATCHING_SUBSCRIBERS)  # accepted; nobody listens


def test_the_same_file_serves_a_plain_password_login(cli_user_gateway: RunningGateway) -> None:
    assert connack_v5(cli_user_gateway.mqtt_port, "sensor-7", b"s3cret pass").reason_code == 0


def test_a_wrong_scram_password_gets_connack_0x87(cli_user_gateway: RunningGateway) -> None:
    client, _, connack = scram_connect(cli_user_gateway.mqtt_port, ScramClient("sensor-7", "guess"), "scram-bad")
    with client:
        assert isinstance(connack, ConnAck) and connack.reason_code == ReasonCode.NOT_AUTHORIZED
        assert client.closed_by_server()


def test_an_unknown_scram_user_sees_the_same_iteration_count_and_gets_0x87(cli_user_gateway: RunningGateway) -> None:
    client, challenge, connack = scram_connect(cli_user_gateway.mqtt_port, ScramClient("nobody", "x"), "scram-who")
    with client:
        assert f",i={FAST}".encode() in (challenge.properties.authentication_data or b"")
        assert isinstance(connack, ConnAck) and connack.reason_code == ReasonCode.NOT_AUTHORIZED


def test_scram_is_not_offered_without_a_password_file(start_gateway: Callable[..., RunningGateway]) -> None:
    running = start_gateway()
    with WireClient(running.mqtt_port, level=5) as client:
        props = Properties(authentication_method=SCRAM, authentication_data=ScramClient("a", "b").first())
        client.send(Connect("no-scram", protocol_level=5, properties=props))
        answer = client.recv()
        assert isinstance(answer, ConnAck) and answer.reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD


def test_a_hand_written_v311_connect_with_a_username_and_no_password_gets_return_code_4(
    secured: RunningGateway,
) -> None:
    with socket.create_connection((LOOPBACK, secured.mqtt_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"\x10\x14\x00\x04MQTT\x04\x82\x00\x3c\x00\x01x\x00\x05alice")  # user flag only
        assert read_until_closed(sock) == V311_BAD_USERNAME_OR_PASSWORD
