"""A bearer token on the WebSocket upgrade is a login: header or ?access_token=, 401 when unknown."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.conftest import RunningGateway, make_config

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def token(tmp_path: Path) -> str:
    """A token for user alice, made the way a user makes one: `rosettamq token FILE USER`."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "token", str(tmp_path / "tokens"), "alice"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def gateway(tmp_path: Path, token: str) -> Iterator[RunningGateway]:
    (tmp_path / "passwd").write_text("")  # a password file with no users: anonymous logins are off
    running = RunningGateway(make_config(
        ws={"enabled": True, "listen": f"{HOST}:0", "tokens_file": str(tmp_path / "tokens")},
        auth={"password_file": str(tmp_path / "passwd")},
    ))
    try:
        yield running
    finally:
        running.stop()


def connect_paho(port: int, client_id: str, *, headers: dict[str, str] | None = None, path: str = "/mqtt"):  # type: ignore[no-untyped-def]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, transport="websockets")
    client.ws_set_options(path=path, headers=headers)
    answered = threading.Event()
    result: list[int] = []

    def on_connect(c, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        result.append(reason_code.value)
        answered.set()

    client.on_connect = on_connect
    client.connect(HOST, port)
    client.loop_start()
    assert answered.wait(10), "no CONNACK"
    return client, result[0]


def test_a_bearer_token_header_logs_in_as_its_user_without_connect_credentials(
    gateway: RunningGateway, token: str
) -> None:
    client, reason = connect_paho(gateway.gateway.ports["ws"], "tok-header", headers={"Authorization": f"Bearer {token}"})
    try:
        assert reason == 0
        session = gateway.call(lambda: gateway.broker.mqtt_sessions.get("tok-header"))
        assert session.username == "alice"
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_token_in_the_query_works_for_browsers_that_cannot_set_headers(gateway: RunningGateway, token: str) -> None:
    client, reason = connect_paho(gateway.gateway.ports["ws"], "tok-query", path=f"/mqtt?access_token={token}")
    try:
        assert reason == 0
        assert gateway.call(lambda: gateway.broker.mqtt_sessions.get("tok-query")).username == "alice"
    finally:
        client.disconnect()
        client.loop_stop()


def test_an_unknown_token_is_refused_at_the_upgrade_with_401(gateway: RunningGateway) -> None:
    port = gateway.gateway.ports["ws"]
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(f"ws://{HOST}:{port}/mqtt", subprotocols=["mqtt"],
                   additional_headers={"Authorization": "Bearer not-a-token"}, open_timeout=10)
    assert refused.value.response.status_code == 401
    assert "Bearer" in refused.value.response.headers.get("WWW-Authenticate", "")


def test_without_a_token_the_connect_credentials_decide_as_before(gateway: RunningGateway) -> None:
    client, reason = connect_paho(gateway.gateway.ports["ws"], "no-token")
    try:
        assert reason == 0x87  # anonymous logins are off: not authorized
    finally:
        client.loop_stop()
