"""SIGHUP to a gateway process re-reads the password and ACL files; connected clients stay connected.

The gateway runs as `python -m gateway run`; the test waits for its log
lines (read from stderr by a thread) rather than for time to pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import PingReq, PingResp, PubAck, Publish
from core.passwords import PasswordFile
from tests.e2e.process_support import ROOT, TIMEOUT, LoggingGateway
from tests.wire_client import WireClient


@pytest.fixture
def files(tmp_path: Path) -> Path:
    users = PasswordFile()
    users.set("alice", "wonderland", iterations=1000)
    users.save(tmp_path / "passwd")
    (tmp_path / "acl").write_text("user alice\ntopic readwrite a/#\n", encoding="utf-8")
    (tmp_path / "rosettamq.toml").write_text(
        '[mqtt]\nlisten = "127.0.0.1:0"\n'
        + "".join(f"[{name}]\nenabled = false\n" for name in ("ws", "amqp", "coap", "http"))
        + '[store]\npath = "memory"\n[auth]\npassword_file = "passwd"\nacl_file = "acl"\n',
        encoding="utf-8",
    )
    return tmp_path


@pytest.fixture
def gateway(files: Path) -> Iterator[LoggingGateway]:
    process = LoggingGateway(files / "rosettamq.toml", files / "ports.json")
    try:
        yield process
    finally:
        process.stop()


def publish_reason(client: WireClient, topic: str, packet_id: int) -> int:
    client.send(Publish(topic, b"x", qos=1, packet_id=packet_id))
    ack = client.recv()
    assert isinstance(ack, PubAck) and ack.packet_id == packet_id
    return ack.reason_code


def still_connected(client: WireClient) -> bool:
    client.send(PingReq())
    return isinstance(client.recv(), PingResp)


def test_sighup_applies_new_acl_rules_and_users_to_a_running_gateway_without_dropping_anyone(
    gateway: LoggingGateway, files: Path
) -> None:
    port = gateway.mqtt_port()
    with WireClient(port, timeout=TIMEOUT) as alice:
        assert alice.connect("alice-1", username="alice", password=b"wonderland").reason_code == 0
        assert publish_reason(alice, "b/x", 1) == ReasonCode.NOT_AUTHORIZED
        with WireClient(port, timeout=TIMEOUT) as carol:
            assert carol.connect("carol-1", username="carol", password=b"c4r0l").reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD

        (files / "acl").write_text("user alice\ntopic readwrite a/#\ntopic readwrite b/#\n", encoding="utf-8")
        users = PasswordFile.load(files / "passwd")
        users.set("carol", "c4r0l", iterations=1000)
        users.save()
        gateway.sighup()
        gateway.wait_for_log("security reload done")

        assert still_connected(alice)
        assert publish_reason(alice, "b/x", 2) == ReasonCode.NO_MATCHING_SUBSCRIBERS  # allowed now
        with WireClient(port, timeout=TIMEOUT) as carol:
            assert carol.connect("carol-2", username="carol", password=b"c4r0l").reason_code == 0


def test_a_broken_acl_file_on_sighup_keeps_the_old_rules_and_logs_the_error(
    gateway: LoggingGateway, files: Path
) -> None:
    port = gateway.mqtt_port()
    with WireClient(port, timeout=TIMEOUT) as alice:
        assert alice.connect("alice-1", username="alice", password=b"wonderland").reason_code == 0
        (files / "acl").write_text("user alice\ntopic sometimes a/#\n", encoding="utf-8")
        gateway.sighup()
        gateway.wait_for_log("acl file reload failed")
        assert any(f"{files / 'acl'}:2" in line for line in gateway.lines)
        assert still_connected(alice)
        assert publish_reason(alice, "a/x", 1) == ReasonCode.NO_MATCHING_SUBSCRIBERS
        assert publish_reason(alice, "b/x", 2) == ReasonCode.NOT_AUTHORIZED


def test_the_gateway_refuses_to_start_with_a_malformed_acl_file(files: Path) -> None:
    (files / "acl").write_text("user alice\ntopic readwrite a/#/b\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(files / "rosettamq.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"{files / 'acl'}:2" in done.stderr
