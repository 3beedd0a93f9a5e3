"""The HTTP listener against hostile clients (issue 24), over real sockets: secrets kept out of the log
(access log included), password guessing held back, a slowloris closed, bad JSON and big bodies refused."""

from __future__ import annotations

import base64
import logging
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest
from aiocoap.numbers.codes import Code
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import admin_gateway, coap_requests, http
from tests.wire_client import WireClient

TOKEN = "Zq9-the-api-token-XY"
PASSWORD = "wonderland-Q7"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    passwords = PasswordFile(tmp_path / "passwords")
    passwords.set("alice", PASSWORD, iterations=1000)
    passwords.save()
    tokens = tmp_path / "ws-tokens"
    tokens.write_text("")
    running = admin_gateway(
        auth={"password_file": str(tmp_path / "passwords"), "login_backoff_after": 3},
        http={"api_token": TOKEN, "admins": ["alice"], "header_timeout": 1.0, "max_body_size": 4096},
        ws={"enabled": True, "listen": f"{LOOPBACK}:0", "tokens_file": str(tokens)},
    )
    try:
        yield running
    finally:
        running.stop()


def test_tokens_and_passwords_never_reach_the_log(gateway: RunningGateway, caplog: pytest.LogCaptureFixture) -> None:
    ports = gateway.gateway.ports
    secrets = [TOKEN, "wrong-token-AB12", PASSWORD, "guess-9Zk", "ws-token-CD34", "ws-header-GH78", "coap-pw-EF56",
               "raw-token-IJ90"]
    with caplog.at_level(logging.DEBUG):
        assert http(gateway, "GET", f"/api/v1/stats?access_token={TOKEN}").status == 200
        assert http(gateway, "GET", "/api/v1/stats?x=1&access%5Ftoken=wrong-token-AB12").status == 401
        assert http(gateway, "GET", "/api/v1/clients", basic=("alice", PASSWORD)).status == 200
        assert http(gateway, "GET", "/api/v1/clients", basic=("alice", "guess-9Zk")).status == 401
        assert http(gateway, "GET", f"/api/v1/nothing?token={TOKEN}&password={PASSWORD}", token=TOKEN).status == 404
        with pytest.raises(InvalidStatus):  # an unknown WebSocket bearer token: 401, logged
            ws_connect(f"ws://{LOOPBACK}:{ports['ws']}/mqtt?access_token=ws-token-CD34", open_timeout=10).close()
        with pytest.raises(InvalidStatus):
            ws_connect(f"ws://{LOOPBACK}:{ports['ws']}/mqtt", open_timeout=10,
                       additional_headers={"Authorization": "Bearer ws-header-GH78"}).close()
        answer, = coap_requests(ports["coap"], (Code.POST, "/ps/a/b?u=alice&p=coap-pw-EF56", b"x"))
        assert answer.code == Code.UNAUTHORIZED
        for head in (b"GET /api/v1/stats?access_token=raw-token-IJ90 HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                     b"GET /api/v1/stats?access_token=raw-token-IJ90 HTTP/1.1\r\nHost: x\r\nX: \x01\r\n\r\n",
                     b"GET /api/v1/stats?access_token=raw-token-IJ90\x7f HTTP/1.1\r\nHost: x\r\n\r\n"):
            with socket.create_connection((LOOPBACK, ports["http"]), timeout=10) as raw:  # refused by the parser
                raw.sendall(head)
                assert raw.recv(4096).split(b" ")[1] == b"400"
        time.sleep(0.2)  # the access log line is written after the answer
    gateway_side = [r for r in caplog.records if r.name != "websockets.client" and r.name.partition(".")[0] != "coap"]
    assert {"rosettamq.http.access", "websockets.server", "rosettamq.coap.aiocoap"} <= {r.name for r in gateway_side}
    text = "\n".join(record.getMessage() for record in gateway_side)  # the test's own clients left out
    for secret in secrets + [base64.b64encode(f"alice:{PASSWORD}".encode()).decode()]:
        assert secret not in text, secret
    access = [r.getMessage() for r in caplog.records if r.name == "rosettamq.http.access"]
    assert any("path=/api/v1/stats?access_token=*** status=200" in line for line in access), access
    assert any("access%5Ftoken=*** status=401" in line for line in access), access
    assert any("token=***&password=*** status=404" in line for line in access), access
    assert sum("http bad request refused" in r.getMessage() for r in gateway_side) == 3
    assert any("upgrade refused" in r.getMessage() and "access_token=***" in r.getMessage() for r in caplog.records)


def test_password_guessing_is_held_back_across_protocols(gateway: RunningGateway) -> None:
    backoff = gateway.gateway.security.login_backoff
    assert backoff is not None
    gateway.call(lambda: setattr(backoff, "base_delay", 0.5))
    with WireClient(gateway.mqtt_port) as client:  # MQTT failures count for HTTP too
        assert client.connect("guesser", username="alice", password=b"mqtt-guess").reason_code != 0
    answers = [http(gateway, "GET", "/api/v1/stats", basic=("alice", f"guess-{n}")) for n in range(3)]
    assert [a.status for a in answers] == [401, 401, 429]  # past login_backoff_after = 3, held back
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert "too many failed logins" in answers[2].json()["error"]["message"]
    # While held, nothing from the address is checked, not even the right password or the token.
    assert http(gateway, "GET", "/api/v1/stats", basic=("alice", PASSWORD)).status == 429
    assert http(gateway, "GET", "/api/v1/stats", token=TOKEN).status == 429
    assert http(gateway, "GET", "/api/v1/health").status == 200  # open routes stay open
    checked_before = gateway.call(lambda: backoff.failures)
    started, statuses = time.monotonic(), []
    while time.monotonic() - started < 2.0:  # a guessing loop: (39 to 82 a second were checked before)
        statuses.append(http(gateway, "GET", "/api/v1/stats", basic=("alice", "loop-guess")).status)
    checked = gateway.call(lambda: backoff.failures) - checked_before
    assert set(statuses) == {429} and len(statuses) > 20
    assert checked <= 3  # one guess as each hold (0.5, 1, 2 s...) runs out
    held = http(gateway, "GET", "/api/v1/stats", basic=("alice", PASSWORD))
    assert held.status == 429
    time.sleep(float(held.headers["Retry-After"]) + 0.2)
    assert http(gateway, "GET", "/api/v1/stats", basic=("alice", PASSWORD)).status == 200


def test_a_client_that_never_finishes_its_request_head_is_closed(gateway: RunningGateway) -> None:
    port = gateway.gateway.ports["http"]
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 8:  # slowloris: one more header line every 0.2 s
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                sock.settimeout(0.2)
                closed = sock.recv(1024) == b""
            except socket.timeout:
                continue
            except OSError:
                closed = True
            if closed:
                break
        assert closed and time.monotonic() - started < 4.0
    # An ordinary client keeps working, and so does a kept-alive connection's second request.
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("body, reason", [
    (b"[" * 4_000, "nested too deeply"),
    (b'{"topic": "a", "payload": ' + b'[{"a":' * 600, "nested too deeply"),
    (b'{"topic": "a",', "Expecting property name"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"", "Expecting value"),
    (b"[1, 2]", "body must be a JSON object"),
    (b'"just a string"', "body must be a JSON object"),
    (b'{"topic": 7}', "topic (string) is required"),
])
def test_bad_json_of_any_shape_is_a_400_with_a_message(gateway: RunningGateway, body: bytes, reason: str) -> None:
    answer = http(gateway, "POST", "/api/v1/publish", body, token=TOKEN)
    assert answer.status == 400, answer.text
    assert reason in answer.json()["error"]["message"]


def test_100000_nested_brackets_are_a_400_and_the_listener_goes_on() -> None:
    running = admin_gateway(http={"max_body_size": 1_048_576})
    try:
        answer = http(running, "POST", "/api/v1/publish", b"[" * 100_000)
        assert answer.status == 400 and "nested too deeply" in answer.json()["error"]["message"]
        assert http(running, "POST", "/api/v1/publish", {"topic": "still/up"}).status == 200
    finally:
        running.stop()


def test_a_body_over_the_limit_is_a_413(gateway: RunningGateway) -> None:
    payload = "x" * 5000
    answer = http(gateway, "POST", "/api/v1/publish", {"topic": "big", "payload": payload}, token=TOKEN)
    assert answer.status == 413 and answer.json()["error"]["status"] == 413
    assert http(gateway, "POST", "/api/v1/publish", {"topic": "small", "payload": "x"}, token=TOKEN).status == 200
