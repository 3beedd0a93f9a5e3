"""Limits that protect a real gateway: connections per listener, connection rate, and brute-force backoff.

Refused connections are closed by the gateway before any MQTT byte; the
counters the later metrics issue reads (`Gateway.security.gates`) say why.
Waits are socket reads with timeouts, or `wait_until` on the gateway's own
state (polling a condition, never sleeping a fixed time).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import ConnAck
from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.wire_client import WireClient

TIMEOUT = 10.0


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)  # polling the gateway's state, not a timing assumption


def closed_without_a_word(port: int) -> bool:
    """Connect and send a CONNECT: True if the server closes without answering."""
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01x")
            return sock.recv(16) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


@pytest.fixture
def start() -> Iterator[Callable[..., RunningGateway]]:
    running: list[RunningGateway] = []

    def start(**sections: dict[str, Any]) -> RunningGateway:
        running.append(RunningGateway(make_config(**sections)))
        return running[-1]

    yield start
    for gateway in running:
        gateway.stop()


def test_past_max_connections_a_new_connection_is_closed_at_once_and_counted(
    start: Callable[..., RunningGateway],
) -> None:
    running = start(mqtt={"max_connections": 2})
    port = running.mqtt_port
    gate = running.gateway.security.gates["mqtt"]
    first, second = WireClient(port), WireClient(port)
    try:
        assert first.connect("one").reason_code == 0 and second.connect("two").reason_code == 0
        assert closed_without_a_word(port)
        assert running.call(lambda: gate.refused_max_connections) == 1
        first.close()
        wait_until(lambda: running.call(lambda: gate.open) == 1)
        with WireClient(port) as third:
            assert third.connect("three").reason_code == 0
    finally:
        first.close()
        second.close()


def test_max_connections_holds_per_listener_for_websocket_too(start: Callable[..., RunningGateway]) -> None:
    running = start(mqtt={"max_connections": 1}, ws={"enabled": True, "listen": f"{LOOPBACK}:0"})
    ws_port = running.gateway.ports["ws"]
    with socket.create_connection((LOOPBACK, ws_port), timeout=TIMEOUT) as held:
        held.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n")  # an upgrade in progress holds the slot
        wait_until(lambda: running.call(lambda: running.gateway.security.gates["ws"].open) == 1)
        with socket.create_connection((LOOPBACK, ws_port), timeout=TIMEOUT) as refused:
            refused.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                assert refused.recv(16) == b""
            except ConnectionResetError:
                pass
        with WireClient(running.mqtt_port) as tcp:  # the TCP listener has its own count
            assert tcp.connect("tcp").reason_code == 0
    assert running.call(lambda: running.gateway.security.gates["ws"].refused_max_connections) == 1


def test_a_source_address_past_its_connection_rate_is_refused_and_counted(
    start: Callable[..., RunningGateway],
) -> None:
    running = start(mqtt={"max_connection_rate": 0.5})  # one token, refilled every 2 s
    with WireClient(running.mqtt_port) as first:
        assert first.connect("first").reason_code == 0
        assert closed_without_a_word(running.mqtt_port)
    assert running.call(lambda: running.gateway.security.gates["mqtt"].refused_rate) == 1


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    users = PasswordFile()
    users.set("alice", "wonderland", iterations=1000)
    users.save(tmp_path / "passwd")
    return tmp_path / "passwd"


def test_a_brute_force_loop_is_slowed_down_per_address_and_a_right_password_still_gets_in(
    start: Callable[..., RunningGateway], password_file: Path
) -> None:
    running = start(auth={"password_file": str(password_file), "login_backoff_after": 2})
    backoff = running.gateway.security.login_backoff
    assert backoff is not None
    held: list[float] = []  # what each failure made the state machine wait before refusing
    failed = backoff.failed

    def recording(peer: str, now: float, username: str | None = None) -> float:
        held.append(round(failed(peer, now, username), 3))
        return held[-1]

    def setup() -> None:
        backoff.base_delay = 0.05  # short real waits; the growth is what is measured
        backoff.failed = recording  # type: ignore[method-assign]

    running.call(setup)
    for attempt in range(6):
        with WireClient(running.mqtt_port) as client:
            answer = client.connect(f"guess-{attempt}", username="alice", password=f"guess-{attempt}".encode())
            assert isinstance(answer, ConnAck) and answer.reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD
    assert held == [0.0, 0.0, 0.05, 0.1, 0.2, 0.4]
    assert running.call(lambda: backoff.delayed) == 4
    with WireClient(running.mqtt_port) as client:  # held until the address's deadline, then checked
        assert client.connect("owner", username="alice", password=b"wonderland").reason_code == 0
