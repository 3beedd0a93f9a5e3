"""`rosettamq status` / `rosettamq clients` against a running gateway (log formats: tests/gateway/test_logs.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import admin
from gateway.config import Config
from tests.e2e.admin_support import admin_gateway, eventually, http
from tests.e2e.clients import PahoClient

ROOT = Path(__file__).resolve().parents[2]


def rosettamq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def test_status_and_clients_print_tables_from_the_admin_api() -> None:
    gateway = admin_gateway(http={"api_token": "tok"})
    try:
        url = f"http://127.0.0.1:{gateway.gateway.ports['http']}"
        device = PahoClient(gateway.mqtt_port, "cli-device", "5").connect()
        device.subscribe("cli/#")
        device.publish("cli/x", b"1", qos=1)
        device.inbox.get()
        status = rosettamq("status", "--url", url, "--token", "tok")
        assert status.returncode == 0, status.stderr
        assert "ready" in status.stdout
        assert any(line.split()[:3] == ["mqtt", str(gateway.mqtt_port), "listening"] for line in status.stdout.splitlines())
        assert any(line.split()[:1] == ["mqtt->mqtt"] for line in status.stdout.splitlines())
        clients = rosettamq("clients", "--url", url, "--token", "tok")
        assert clients.returncode == 0, clients.stderr
        header, *rows = clients.stdout.splitlines()
        assert header.split()[:3] == ["protocol", "client", "id"]
        assert any(row.split()[:2] == ["mqtt", "cli-device"] for row in rows)
        assert rosettamq("clients", "--url", url, "--token", "tok", "--protocol", "amqp").stdout.strip() == (
            "protocol  client id  address  username  listener  subs  queued\n0 client(s)")
        kicked = rosettamq("clients", "--url", url, "--token", "tok", "--kick", "cli-device")
        assert kicked.returncode == 0 and "kicked cli-device (mqtt)" in kicked.stdout
        eventually(lambda: http(gateway, "GET", "/api/v1/clients?protocol=mqtt", token="tok").json()["count"] == 0)
        refused = rosettamq("status", "--url", url)
        assert refused.returncode != 0 and "401" in refused.stderr
        device.close()
    finally:
        gateway.stop()


def rosettamq_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTAMQ_")}
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL, env={**clean, **env})


def test_status_and_clients_find_the_api_and_its_token_in_the_gateways_config_or_the_environment(
    tmp_path: Path,
) -> None:
    gateway = admin_gateway(http={"api_token": "s3cret"})
    try:
        port = gateway.gateway.ports["http"]
        config = tmp_path / "rosettamq.toml"
        config.write_text(f'[http]\nlisten = "127.0.0.1:{port}"\napi_token = "s3cret"\n')
        by_config = rosettamq_env({}, "status", "--config", str(config))
        assert by_config.returncode == 0, by_config.stderr
        assert any(line.split()[:2] == ["http", str(port)] for line in by_config.stdout.splitlines())
        assert rosettamq_env({}, "clients", "-c", str(config)).stdout.strip().endswith("0 client(s)")
        env = {"ROSETTAMQ_URL": f"http://127.0.0.1:{port}", "ROSETTAMQ_TOKEN": "s3cret"}
        assert rosettamq_env(env, "status").returncode == 0
        assert rosettamq_env(env, "clients").returncode == 0
        wrong = rosettamq_env(env, "status", "--token", "nope")  # a flag wins over the environment
        assert wrong.returncode != 0 and "401" in wrong.stderr
    finally:
        gateway.stop()
    off = tmp_path / "off.toml"
    off.write_text("[http]\nenabled = false\n")
    refused = rosettamq_env({}, "status", "--config", str(off))
    assert refused.returncode != 0 and "[http] is off" in refused.stderr


def test_without_flags_config_or_environment_the_api_is_the_default_http_listen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ROSETTAMQ_URL", raising=False)
    monkeypatch.delenv("ROSETTAMQ_TOKEN", raising=False)
    args = argparse.Namespace(url=None, token=None, user=None, config=None)
    admin.resolve(args)
    default = Config().http.listen
    assert (args.url, args.token) == (f"http://{default.host}:{default.port}", None)
