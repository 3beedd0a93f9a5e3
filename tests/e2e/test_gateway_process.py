"""The gateway as a user runs it: `python -m gateway run`, real ports, signals, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import ConnAck, Disconnect, Publish, SubAck, Subscribe, SubscriptionRequest
from tests.wire_client import WireClient

ROOT = Path(__file__).resolve().parents[2]
# Tests never take fixed ports: every listener the gateway starts by default asks the OS for one.
EVERY_LISTENER_ON_PORT_0 = [f"--{name}=127.0.0.1:0" for name in ("mqtt", "ws", "amqp", "coap", "http")]


class GatewayProcess:
    """`python -m gateway run ...` in a subprocess, with its ports read from --ports-file."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.ports_file = tmp_path / "ports.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", *EVERY_LISTENER_ON_PORT_0, "--store", "memory",
             "--ports-file", str(self.ports_file), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        )

    def ports(self, timeout: float = 20) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while not self.ports_file.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                raise AssertionError("gateway wrote no ports file")
            time.sleep(0.02)  # polling for a file another process writes; not a timing assumption
        return json.loads(self.ports_file.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.fixture
def process(tmp_path: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(tmp_path)
    try:
        yield gateway
    finally:
        gateway.stop()


def test_the_ports_file_names_the_real_port_and_clients_can_use_it(process: GatewayProcess) -> None:
    port = process.ports()["mqtt"]
    assert port > 0
    with WireClient(port, 5) as sub, WireClient(port, 4) as pub:
        assert sub.connect("s").reason_code == 0
        sub.send(Subscribe(1, (SubscriptionRequest("p/#", 1),)))
        assert isinstance(sub.recv(), SubAck)
        assert pub.connect("p").reason_code == 0
        pub.send(Publish("p/1", b"hello", qos=0))
        delivered = sub.recv()
        assert isinstance(delivered, Publish) and delivered.payload == b"hello"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_disconnects_v5_clients_with_server_shutting_down_and_exits_0(
    process: GatewayProcess, signum: int
) -> None:
    port = process.ports()["mqtt"]
    with WireClient(port, 5) as v5, WireClient(port, 4) as v311:
        assert isinstance(v5.connect("v5"), ConnAck)
        assert isinstance(v311.connect("v311"), ConnAck)
        process.proc.send_signal(signum)
        disconnect = v5.recv()
        assert isinstance(disconnect, Disconnect)
        assert disconnect.reason_code == ReasonCode.SERVER_SHUTTING_DOWN
        assert v5.closed_by_server()
        assert v311.closed_by_server()
    assert process.proc.wait(timeout=15) == 0
    stderr = process.proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "shutting down" in stderr and "stopped" in stderr


def test_a_config_error_exits_2_with_a_message_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[mqtt]\nlisten = "127.0.0.1:0"\nlsten = "oops"\n')
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "lsten" in result.stderr


def test_a_port_already_in_use_exits_1_with_a_clear_error(process: GatewayProcess, tmp_path: Path) -> None:
    port = process.ports()["mqtt"]
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "run", *EVERY_LISTENER_ON_PORT_0, f"--mqtt=127.0.0.1:{port}", "--store", "memory"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "address already in use" in result.stderr
