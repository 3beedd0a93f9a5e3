"""The identity provider's keys ([auth.jwt], issue 27): fetched at start and cached, one rate-limited
refetch for an unknown kid (rotation without a restart), a provider that is down or hangs never
blocks the event loop nor refuses tokens whose key is cached, garbage gets a clear log line.

Each test has its own provider (a real HTTP server on a loopback port) and gateway.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import jwt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.jwt_provider import AUDIENCE, Provider, SigningKey

TIMEOUT = 10.0


@pytest.fixture
def provider() -> Iterator[Provider]:
    idp = Provider()
    try:
        yield idp
    finally:
        idp.close()


def start_gateway(**jwt_keys: Any) -> RunningGateway:
    return RunningGateway(make_config(auth={"jwt": {"audience": AUDIENCE, **jwt_keys}, "login_backoff_after": 0}))


@pytest.fixture
def gateway(provider: Provider) -> Iterator[RunningGateway]:
    running = start_gateway(jwks_url=f"{provider.issuer}/jwks", issuer=provider.issuer, timeout=3.0)
    try:
        yield running
    finally:
        running.stop()


class Login:
    """A paho MQTT 5 client logging in with a token; `answered` is set at its CONNACK."""

    def __init__(self, port: int, token: str, client_id: str) -> None:
        self.answered, self.codes = threading.Event(), []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("", token)
        self.client.on_connect = self._on_connect
        self.client.connect(LOOPBACK, port)
        self.client.loop_start()

    def _on_connect(self, c, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self.codes.append(reason_code.value)
        self.answered.set()

    def code(self, timeout: float = TIMEOUT) -> int:
        assert self.answered.wait(timeout), "no CONNACK"
        return self.codes[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def login(gateway: RunningGateway, token: str, client_id: str = "dev") -> int:
    attempt = Login(gateway.mqtt_port, token, client_id)
    try:
        return attempt.code()
    finally:
        attempt.close()


def test_keys_are_fetched_at_start_and_cached(gateway: RunningGateway, provider: Provider) -> None:
    assert provider.requests["jwks"] == 1
    for n in range(3):
        assert login(gateway, provider.issue(key=provider.keys[n % 3]), f"cached-{n}") == 0
    assert provider.requests["jwks"] == 1  # no fetch per login


def test_a_key_rotated_in_at_the_provider_works_without_a_restart(gateway: RunningGateway,
                                                                  provider: Provider) -> None:
    old = provider.signing
    new = provider.rotate()
    assert login(gateway, provider.issue(key=new), "rotated") == 0
    assert provider.requests["jwks"] == 2  # one refetch, for the unknown kid
    assert login(gateway, provider.issue(key=old), "old-key") == 0  # still published: still good
    assert provider.requests["jwks"] == 2


def test_unknown_kids_cause_one_refetch_per_interval_not_one_per_login(gateway: RunningGateway,
                                                                       provider: Provider) -> None:
    for n in range(5):
        assert login(gateway, provider.issue(key=SigningKey(f"never-{n}", "RS256")), f"unknown-{n}") == 0x86
    assert provider.requests["jwks"] == 2  # the start, then one refetch: refetch_interval is 10 s


def test_a_provider_that_is_down_keeps_cached_keys_working(gateway: RunningGateway, provider: Provider,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    provider.stop()
    assert login(gateway, provider.issue(), "while-down") == 0
    with caplog.at_level("INFO", logger="rosettamq.auth"):
        assert login(gateway, provider.issue(key=SigningKey("new-1", "RS256")), "unknown-while-down") == 0x86
    assert "jwks: fetch failed, keeping 3 cached keys" in caplog.text and "unreachable" in caplog.text
    assert login(gateway, provider.issue(key=provider.keys[1]), "still-cached") == 0


def test_a_hanging_provider_never_blocks_the_event_loop(gateway: RunningGateway, provider: Provider) -> None:
    provider.hang = True
    waiting = Login(gateway.mqtt_port, provider.issue(key=SigningKey("new-2", "RS256")), "waits-for-keys")
    try:
        deadline = time.monotonic() + TIMEOUT
        while provider.requests["jwks"] < 2:  # the refetch has reached the hanging provider
            assert time.monotonic() < deadline, "no refetch"
            time.sleep(0.01)
        started = time.monotonic()
        assert login(gateway, provider.issue(), "meanwhile") == 0  # served while the fetch hangs
        assert time.monotonic() - started < 2.0
        assert not waiting.answered.is_set()  # the first one still waits for the keys (timeout = 3 s)
        assert waiting.code(timeout=3.0 + TIMEOUT) == 0x86  # then it is refused: its key never came
    finally:
        waiting.close()


def test_garbage_from_the_provider_gets_a_clear_log_line_and_logins_recover(
        provider: Provider, caplog: pytest.LogCaptureFixture) -> None:
    provider.garbage = b"<html><body>502 Bad Gateway</body></html>"
    with caplog.at_level("INFO", logger="rosettamq.auth"):
        running = start_gateway(issuer=provider.issuer, refetch_interval=0)  # keys through discovery
        try:
            assert login(running, provider.issue(), "no-keys-yet") == 0x86
            assert "jwks: fetch failed, keeping 0 cached keys" in caplog.text
            assert "is not JSON" in caplog.text and "502 Bad Gateway" in caplog.text
            provider.garbage = b'{"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}'
            assert login(running, provider.issue(), "bad-keys") == 0x86
            assert "no usable public signing key among 1 keys" in caplog.text
            provider.garbage = None
            assert login(running, provider.issue(), "recovered") == 0
        finally:
            running.stop()
    assert provider.requests["discovery"] >= 1


def test_hs256_tokens_need_the_configured_secret(tmp_path: Path) -> None:
    secret = b"a-shared-secret-of-at-least-32-bytes!"
    (tmp_path / "secret").write_bytes(secret + b"\n")
    running = start_gateway(algorithms=["HS256"], secret_file=str(tmp_path / "secret"), issuer="https://idp.test")
    try:
        claims = {"iss": "https://idp.test", "aud": AUDIENCE, "sub": "hs-dev", "exp": int(time.time()) + 60}
        assert login(running, jwt.encode(claims, secret, algorithm="HS256"), "hs-ok") == 0
        assert login(running, jwt.encode(claims, b"x" * 40, algorithm="HS256"), "hs-wrong") == 0x86
    finally:
        running.stop()
