"""The gateway's HTTP listener: health check, the dashboard's files and bad requests, over real loopback HTTP."""

from __future__ import annotations

import json
import logging
import socket
import struct
import urllib.error
import urllib.request
from typing import Iterator

import pytest
from gateway.http import ServerLog
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.admin_support import eventually

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


def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, then read the answer until the server closes."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


# Requests found by the fuzzer (python -m fuzz): aiohttp refuses each with 400 and logged it as an
# ERROR with a traceback; a peer's bad input is one INFO line, as on the other listeners.
REFUSED_BY_THE_PARSER = [
    b"POST /api/v1/publish HTTP/1.1\r\nH1\r\nConnection: close\r\n\r\n",
    b"GET /api/v1/amqp/queu\xfes HTTP/1.1\r\nHost: 127.0.0.1\r\nConnect",
    b"GET /metrics HTTP/1.1\r\n\xa0\xd3Content-Length:  5 \r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    b"GET /api/v1/subscriptions?protocolamqp HTTP/1.1\r\nContent-Length: 0x10\r\nHost: 127.0.0.1\r\n"
    b"Connection: close\r\n\r\n",
]


@pytest.mark.parametrize("data", REFUSED_BY_THE_PARSER, ids=["bad-header", "bad-url", "bad-header-name", "hex-length"])
def test_a_request_the_http_parser_refuses_gets_400_and_one_info_line(
    gateway: RunningGateway, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert exchange(gateway.gateway.ports["http"], data).split(b" ")[1] == b"400"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    assert [r.levelname for r in caplog.records if r.getMessage().startswith("http bad request refused")] == ["INFO"]


def test_a_publish_body_nested_too_deep_to_decode_is_a_json_400(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"[" * 5000  # what the fuzzer sent: a RecursionError in the JSON decoder was a logged 500
    request = (b"POST /api/v1/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n" + body)
    answer = exchange(gateway.gateway.ports["http"], request)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["status"] == 400
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_client_gone_mid_body_is_one_info_line_not_an_internal_error(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with socket.create_connection((LOOPBACK, gateway.gateway.ports["http"]), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 178\r\n\r\n" + b'{"topic": "fz/http", "payload": "hello"}')
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
    eventually(lambda: "http client gone mid-request" in caplog.text)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


def test_the_server_log_keeps_errors_of_our_own_as_errors_with_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server_log = ServerLog(logging.getLogger("rosettamq.http"), {})
    server_log.exception("Error handling request", exc_info=RuntimeError("a bug"))
    [record] = caplog.records
    assert record.levelname == "ERROR" and record.exc_info is not None
