"""SIGHUP re-reads the config file: log levels and limits change while connections stay; the log file
follows logrotate. (Password and ACL files: tests/e2e/test_sighup.py.)"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Iterator

import pytest

from adapters.mqtt.packets import PingReq, PingResp
from gateway.config import config_from_dict
from gateway.reload import Reloader, changed_keys
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.admin_support import eventually
from tests.e2e.process_support import TIMEOUT, LoggingGateway
from tests.wire_client import WireClient

BASE = '[mqtt]\nlisten = "127.0.0.1:0"\n{mqtt}' + "".join(
    f"[{name}]\nenabled = false\n" for name in ("ws", "amqp", "coap", "http")) + '[store]\npath = "memory"\n[log]\n{log}'


def write_config(path: Path, mqtt: str = "", log: str = "") -> Path:
    path.write_text(BASE.format(mqtt=mqtt, log=log), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "rosettamq.toml", "max_connections = 1\n", 'levels = {"rosettamq.mqtt" = "warning"}\n')


@pytest.fixture
def gateway(config: Path) -> Iterator[LoggingGateway]:
    process = LoggingGateway(config, config.parent / "ports.json")
    try:
        yield process
    finally:
        process.stop()


def refused_at_once(port: int) -> bool:
    """A connection the gate turns away is closed before any byte (as mosquitto's max_connections)."""
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as sock:
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True


def test_sighup_applies_new_limits_and_log_levels_and_names_what_needs_a_restart(
    gateway: LoggingGateway, config: Path
) -> None:
    port = gateway.mqtt_port()
    with WireClient(port, timeout=TIMEOUT) as first:
        assert first.connect("first").reason_code == 0
        assert refused_at_once(port)  # max_connections = 1
        write_config(config, "max_connections = 2\nmax_packet_size = 2048\n", 'level = "info"\n')
        gateway.sighup()
        gateway.wait_for_log("reload applied")
        with WireClient(port, timeout=TIMEOUT) as second:
            assert second.connect("second").reason_code == 0
            gateway.wait_for_log("client_id=second")  # rosettamq.mqtt logs at info again
        assert not any("client_id=first" in line for line in gateway.lines if "client connected" in line)
        gateway.wait_for_log("restart to apply")
        restart = next(line for line in gateway.lines if "restart to apply" in line)
        assert "mqtt.max_packet_size" in restart and "max_connections" not in restart
        first.send(PingReq())
        assert isinstance(first.recv(), PingResp)  # still connected


def test_a_config_that_no_longer_parses_changes_nothing(gateway: LoggingGateway, config: Path) -> None:
    port = gateway.mqtt_port()
    with WireClient(port, timeout=TIMEOUT) as first:
        assert first.connect("first").reason_code == 0
        config.write_text("[mqtt\nmax_connections = 5\n", encoding="utf-8")
        gateway.sighup()
        gateway.wait_for_log("reload refused, nothing changed")
        assert refused_at_once(port)


def test_the_log_file_follows_logrotate_moving_it_and_sighup_reopens_it(tmp_path: Path) -> None:
    log_file = tmp_path / "gw.log"
    config = write_config(tmp_path / "rosettamq.toml", log=f'file = "{log_file.name}"\n')
    gateway = LoggingGateway(config, tmp_path / "ports.json")
    try:
        eventually(lambda: "msg=ready" in log_file.read_text() if log_file.exists() else False, TIMEOUT)
        port = int(json.loads((tmp_path / "ports.json").read_text())["mqtt"])
        assert gateway.lines == []  # nothing on stderr: the log is the file
        log_file.rename(tmp_path / "gw.log.1")  # logrotate's default (create) mode
        with WireClient(port, timeout=TIMEOUT) as client:
            assert client.connect("after-rotation").reason_code == 0
        eventually(lambda: log_file.exists() and "client_id=after-rotation" in log_file.read_text(), TIMEOUT)
        log_file.rename(tmp_path / "gw.log.2")
        gateway.sighup()
        eventually(lambda: log_file.exists() and "reload applied" in log_file.read_text(), TIMEOUT)
    finally:
        assert gateway.stop() == 0
    assert "msg=ready" in (tmp_path / "gw.log.1").read_text()
    assert "after-rotation" not in (tmp_path / "gw.log.1").read_text()
    assert "msg=stopped" in log_file.read_text()


def test_reloaded_limits_reach_the_core_and_new_connections() -> None:
    running = RunningGateway(make_config(mqtt={"max_qos": 2}))
    try:
        new = make_config(mqtt={"max_qos": 1, "max_queued_messages": 7, "max_subscriptions": 3},
                          limits={"max_memory": 12345, "max_message_size": 999},
                          auth={"login_backoff_after": 9, "login_backoff_max": 2.5})
        assert running.call(lambda: Reloader(running.gateway, lambda: new).reload())
        gateway = running.gateway
        assert running.call(lambda: changed_keys(gateway.config, new)) == []  # all of it is in force
        assert gateway.broker.budget.limit == 12345 and gateway.broker.door.max_message_bytes == 999
        assert gateway.broker.mqtt_sessions.limits.max_queued == 7
        assert gateway.security.login_backoff is not None and gateway.security.login_backoff.free_failures == 9
        assert gateway.live_mqtt_settings.max_subscriptions == 3
        with WireClient(running.mqtt_port, timeout=TIMEOUT) as client:
            assert client.connect("new").properties.maximum_qos == 1  # type: ignore[attr-defined]
    finally:
        running.stop()


def test_changed_keys_name_the_settings_as_the_file_writes_them() -> None:
    old = config_from_dict({})
    new = config_from_dict({"mqtt": {"max_inflight": 5, "listen": "127.0.0.1:1"}, "log": {"level": "debug"}})
    assert sorted(changed_keys(old, new)) == ["log.level", "mqtt.listen", "mqtt.max_inflight"]
