"""`rosettamq status` / `rosettamq clients` against a running gateway (log formats: tests/gateway/test_logs.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
