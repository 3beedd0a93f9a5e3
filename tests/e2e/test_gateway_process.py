"""The gateway as a user runs it: `python -m gateway run`, real ports, signals, exit codes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

import pytest

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import ConnAck, Disconnect, Publish, SubAck, Subscribe, SubscriptionRequest
from tests.e2e.process_support import EVERY_LISTENER_ON_PORT_0, ROOT, TIMEOUT, LoggingGateway
from tests.wire_client import WireClient


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


def start_failing(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "run", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def bound_socket(kind: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen()
    return sock


@pytest.mark.parametrize("listener,kind", [("mqtt", socket.SOCK_STREAM), ("http", socket.SOCK_STREAM),
                                           ("coap", socket.SOCK_DGRAM)])
def test_a_port_in_use_is_one_error_line_naming_the_listener_and_its_flag_and_nothing_listens(
    listener: str, kind: int
) -> None:
    with bound_socket(kind) as taken:
        port = taken.getsockname()[1]
        result = start_failing(*EVERY_LISTENER_ON_PORT_0, f"--{listener}=127.0.0.1:{port}", "--store", "memory")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "level=ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert f"{listener} listener cannot bind 127.0.0.1:{port}: address already in use" in errors[0]
    assert f"[{listener}] listen" in errors[0] and f"--{listener} HOST:PORT" in errors[0]
    assert "msg=listening" not in result.stderr and "msg=ready" not in result.stderr  # bound all, or announced none
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_tls_listener_in_use_names_its_config_key(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    assert subprocess.run([sys.executable, "-m", "gateway", "cert", str(certs)], cwd=ROOT, capture_output=True,
                          timeout=30).returncode == 0
    with bound_socket(socket.SOCK_STREAM) as taken:
        port = taken.getsockname()[1]
        config = tmp_path / "tls.toml"
        config.write_text(f'[mqtt_tls]\nlisten = "127.0.0.1:{port}"\ncertfile = "certs/server.pem"\n'
                          'keyfile = "certs/server.key"\n')
        result = start_failing(*EVERY_LISTENER_ON_PORT_0, "--store", "memory", "--config", str(config))
    assert result.returncode == 1
    assert f"mqtt_tls listener cannot bind 127.0.0.1:{port}: address already in use; change [mqtt_tls] listen" \
        in result.stderr and "--mqtt_tls" not in result.stderr and "msg=listening" not in result.stderr


def test_the_ready_banner_is_text_naming_the_urls_the_store_and_the_config(tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text('[ws]\npath = "/mqtt-ws"\n[store]\npath = "state/gw.db"\n')
    (tmp_path / "state").mkdir()
    gateway = LoggingGateway(config, tmp_path / "ports.json", *EVERY_LISTENER_ON_PORT_0)
    try:
        ports = gateway.ports()
        gateway.wait_for_log("local only", stdout=True)
        banner = "".join(gateway.stdout)
    finally:
        assert gateway.stop() == 0
    assert banner.startswith(f"RosettaMQ {version('rosettamq')} ready (pid {gateway.proc.pid})\n")
    assert "{" not in banner and "ports=" not in banner  # text lines, not a Python dict
    rows = {line.split()[0]: line.split()[1] for line in banner.splitlines()[1:] if len(line.split()) >= 2}
    http = f"http://127.0.0.1:{ports['http']}"
    assert rows["config"] == str(config) and rows["store"] == str(tmp_path / "state" / "gw.db")
    assert rows["mqtt"] == f"mqtt://127.0.0.1:{ports['mqtt']}" and rows["amqp"] == f"amqp://127.0.0.1:{ports['amqp']}"
    assert rows["ws"] == f"ws://127.0.0.1:{ports['ws']}/mqtt-ws" and rows["coap"] == f"coap://127.0.0.1:{ports['coap']}"
    assert rows["console"] == f"{http}/" and rows["dashboard"] == f"{http}/dashboard/"
    assert "--mqtt 0.0.0.0:1883" in banner  # how to open the local-only gateway


def test_the_banner_urls_answer(process: GatewayProcess) -> None:
    http = f"http://127.0.0.1:{process.ports()['http']}"
    for path in ("/", "/dashboard/", "/metrics"):
        with urllib.request.urlopen(http + path, timeout=10) as answer:
            assert answer.status == 200


def test_version_prints_the_installed_version() -> None:
    result = subprocess.run([sys.executable, "-m", "gateway", "--version"], cwd=ROOT, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == f"rosettamq {version('rosettamq')}"


def test_systemd_hears_ready_once_every_listener_is_bound_and_stopping_at_the_end(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        notify.settimeout(TIMEOUT)
        gateway = LoggingGateway(None, tmp_path / "ports.json", *EVERY_LISTENER_ON_PORT_0, "--store", "memory",
                                 env={"NOTIFY_SOCKET": str(tmp_path / "notify")})
        try:
            assert notify.recv(100) == b"READY=1"
            assert gateway.ports_file.exists()  # written before READY=1, as every listener is bound
            # Logged before READY=1 too, but our reader of its stderr may be a moment behind the notify socket.
            gateway.wait_for_log("msg=ready")
            gateway.proc.terminate()
            assert notify.recv(100) == b"STOPPING=1"
            # Wait for the exit itself: a second SIGTERM (as stop() sends to a live process) could land after
            # the event loop has closed and given SIGTERM back its default action, and kill it with -15.
            assert gateway.proc.wait(TIMEOUT) == 0
        finally:
            gateway.stop()


def test_metrics_include_the_standard_process_metrics_read_from_proc(process: GatewayProcess) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{process.ports()['http']}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return {sample.name: sample.value for family in text_string_to_metric_families(text)
                for sample in family.samples if sample.name.startswith("process_")}

    before = scrape()
    assert set(before) >= {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                           "process_start_time_seconds", "process_max_fds", "process_virtual_memory_bytes"}
    started = Path(f"/proc/{process.proc.pid}").stat().st_mtime  # the /proc entry appears when the process does
    assert abs(before["process_start_time_seconds"] - started) < 5
    rss_kib = next(int(line.split()[1]) for line in Path(f"/proc/{process.proc.pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
    assert 0.5 < before["process_resident_memory_bytes"] / (rss_kib * 1024) < 2
    assert before["process_cpu_seconds_total"] > 0
    clients = [WireClient(process.ports()["mqtt"], 4) for _ in range(5)]
    try:
        for n, client in enumerate(clients):
            assert client.connect(f"fd-{n}").reason_code == 0
        assert scrape()["process_open_fds"] >= before["process_open_fds"] + 5  # one socket per client
    finally:
        for client in clients:
            client.close()
