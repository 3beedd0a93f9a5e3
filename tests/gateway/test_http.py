"""The gateway's HTTP listener: health check and the dashboard's files, over real loopback HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Iterator

import pytest

from tests.conftest import LOOPBACK, RunningGateway, make_config

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def get(port: int, path: str, *, follow: bool = True) -> tuple[int, dict[str, str], bytes]:
    opener = NO_PROXY if follow else urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    try:
        with opener.open(f"http://{LOOPBACK}:{port}{path}", timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(make_config(
        ws={"enabled": True, "listen": f"{LOOPBACK}:0", "path": "/mqtt-ws"},
        http={"enabled": True, "listen": f"{LOOPBACK}:0"},
    ))
    try:
        yield running
    finally:
        running.stop()


def test_health_reports_ok_and_the_real_port_of_every_listener(gateway: RunningGateway) -> None:
    ports = gateway.gateway.ports
    status, headers, body = get(ports["http"], "/api/v1/health")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["status"] == "ok" and answer["alive"] is True and answer["ready"] is True
    assert answer["listeners"] == {"mqtt": ports["mqtt"], "ws": ports["ws"], "http": ports["http"]}
    assert answer["listener_states"] == {"mqtt": "listening", "ws": "listening", "http": "listening"}
    assert all(port > 0 for port in ports.values())


def test_dashboard_redirects_to_its_folder_and_serves_the_page(gateway: RunningGateway) -> None:
    port = gateway.gateway.ports["http"]
    status, headers, _ = get(port, "/dashboard", follow=False)
    assert status == 308 and headers["Location"] == "/dashboard/"
    status, headers, body = get(port, "/dashboard/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<script src="vendor/mqtt.min.js"></script>' in body and b'<script src="dashboard.js"></script>' in body


def test_dashboard_config_tells_the_page_the_real_websocket_port_and_path(gateway: RunningGateway) -> None:
    status, headers, body = get(gateway.gateway.ports["http"], "/dashboard/config.json")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {"ws": {"port": gateway.gateway.ports["ws"], "path": "/mqtt-ws"}}


@pytest.mark.parametrize(("path", "kind"), [
    ("/dashboard/dashboard.js", "javascript"),
    ("/dashboard/dashboard.css", "text/css"),
    ("/dashboard/vendor/mqtt.min.js", "javascript"),
])
def test_dashboard_static_files_are_served(gateway: RunningGateway, path: str, kind: str) -> None:
    status, headers, body = get(gateway.gateway.ports["http"], path)
    assert status == 200 and kind in headers["Content-Type"] and len(body) > 1000


@pytest.mark.parametrize("path", ["/nothing", "/dashboard/missing.js", "/dashboard/../gateway/app.py",
                                  "/dashboard/%2e%2e/gateway/app.py"])
def test_unknown_paths_and_escapes_from_the_dashboard_folder_are_not_found(gateway: RunningGateway, path: str) -> None:
    status, _, body = get(gateway.gateway.ports["http"], path)
    assert status in (403, 404) and b"import" not in body


def test_the_http_listener_is_off_when_disabled() -> None:
    running = RunningGateway(make_config())
    try:
        assert "http" not in running.gateway.ports
    finally:
        running.stop()
