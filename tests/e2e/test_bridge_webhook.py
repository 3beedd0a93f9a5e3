"""HTTP webhook bridges against a local aiohttp server, with paho on the gateway's side.

One POST per message with its JSON, configured headers, batches, an outage of the server with
nothing acknowledged lost (in order), retries with backoff on 5xx, and 4xx answers dropped and
counted.
"""

from __future__ import annotations

import base64
from pathlib import Path
import time
from typing import Any, Iterator

import pytest

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.admin_support import http
from tests.e2e.test_admin_cli import rosettamq
from tests.e2e.bridge_support import Webhook
from tests.e2e.clients import TIMEOUT, PahoClient
from tests.e2e.test_bridge_mqtt import publish_v5
from tests.e2e.test_mqtt_sessions import wait_until

FAST = {"reconnect_min": 0.05, "reconnect_max": 0.4}


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    server = Webhook().start()
    try:
        yield server
    finally:
        server.close()


def bridged(**table: Any) -> RunningGateway:
    return RunningGateway(make_config(http={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                      bridge={"http": [{"name": "hook", **FAST, **table}]}))


def the_bridge(gateway: RunningGateway) -> Any:
    return gateway.gateway.bridges.bridges[0]


def wait_connected(gateway: RunningGateway, connected: bool = True) -> None:
    bridge = the_bridge(gateway)
    assert wait_until(lambda: bridge.connected is connected, TIMEOUT), gateway.call(bridge.describe)


def test_each_message_is_posted_as_json_with_the_configured_headers(webhook: Webhook) -> None:
    gateway = bridged(url=webhook.url, out=["alerts/#"], headers={"Authorization": "Bearer t0ken"})
    near = PahoClient(gateway.mqtt_port, "sensor-7", "5").connect()
    try:
        wait_connected(gateway)
        publish_v5(near, "alerts/fire", b'{"level": 3}', ContentType="application/json",
                   UserProperty=[("site", "b2")], CorrelationData=b"\x00\x01")
        near.publish("alerts/raw", b"\xff\xfe\x00", 0)
        near.publish("other/x", b"not bridged", 1)
        first, second = webhook.wait_for(2)
        assert first["topic"] == "alerts/fire" and first["payload"] == '{"level": 3}'
        assert (first["payload_encoding"], first["qos"], first["retain"]) == ("text", 1, False)
        assert first["properties"]["content_type"] == "application/json"
        assert first["properties"]["correlation_data"] == "AAE="
        assert first["properties"]["user_properties"][0] == ["site", "b2"]
        assert first["origin"] == {"protocol": "mqtt", "client_id": "sensor-7", "username": None}
        assert abs(first["timestamp"] - time.time()) < 60
        assert second["topic"] == "alerts/raw" and second["payload_encoding"] == "base64"
        assert base64.b64decode(second["payload"]) == b"\xff\xfe\x00" and second["qos"] == 0
        assert webhook.headers[0]["Authorization"] == "Bearer t0ken"
        assert webhook.headers[0]["Content-Type"].startswith("application/json")
        assert wait_until(lambda: the_bridge(gateway).forwarded == 2, TIMEOUT)
        (state,) = http(gateway, "GET", "/api/v1/bridges").json()["bridges"]
        assert (state["kind"], state["connected"], state["forwarded"]) == ("http", True, 2)
    finally:
        near.close()
        gateway.stop()


def test_an_outage_of_the_webhook_loses_nothing_acknowledged_and_batches_what_waited(webhook: Webhook) -> None:
    gateway = bridged(url=webhook.url, out=["alerts/#"], batch=50)
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    try:
        wait_connected(gateway)
        webhook.stop()
        near.publish("alerts/first", b"noticed the outage", 1)  # the POST fails: the bridge is down
        wait_connected(gateway, connected=False)
        near.publish_many([(f"alerts/{n}", str(n).encode()) for n in range(120)], qos=1)
        near.publish("alerts/qos0", b"dropped while the webhook is down", 0)
        assert wait_until(lambda: the_bridge(gateway).queue.dropped["offline_qos0"] == 1, TIMEOUT)  # QoS 0: no ack
        assert gateway.call(the_bridge(gateway).describe)["queued"] == 121
        webhook.start()  # the same port
        got = webhook.wait_for(121)
        assert [m["payload"] for m in got] == ["noticed the outage", *(str(n) for n in range(120))]
        assert [len(body) for body in webhook.bodies] == [50, 50, 21]  # arrays of what was waiting
        assert wait_until(lambda: len(the_bridge(gateway).queue) == 0, TIMEOUT)
    finally:
        near.close()
        gateway.stop()


def test_server_errors_are_retried_with_backoff_and_client_errors_are_dropped(webhook: Webhook) -> None:
    answers = iter([503, 503, 429, 200, 400])
    webhook.answer = lambda body: next(answers, 200)
    gateway = bridged(url=webhook.url, out=["alerts/#"])
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    try:
        wait_connected(gateway)
        near.publish("alerts/1", b"retried", 1)
        near.publish("alerts/2", b"refused", 1)
        near.publish("alerts/3", b"after", 1)
        got = webhook.wait_for(2)
        assert [m["payload"] for m in got] == ["retried", "after"]
        assert wait_until(lambda: the_bridge(gateway).forwarded == 2, TIMEOUT)
        state = gateway.call(the_bridge(gateway).describe)
        assert state["dropped"]["refused"] == 1
        assert "HTTP 400" in state["last_error"] and state["failures"] == 3  # 503, 503, 429
        assert webhook.heads >= 4  # a HEAD before each (re)connection
        shown = rosettamq("bridges", "--url", f"http://{LOOPBACK}:{gateway.gateway.ports['http']}")
        assert shown.returncode == 0, shown.stderr
        header, row, *rest = shown.stdout.splitlines()
        assert header.split() == ["bridge", "kind", "upstream", "connected", "queued", "forwarded", "received",
                                  "dropped", "failures"]
        assert row.split() == ["hook", "http", webhook.url, "yes", "0", "2", "0", "1", "3"]
        assert rest == ["hook: last error: HTTP 400 Bad Request: no", "1 bridge(s)"]
    finally:
        near.close()
        gateway.stop()


def test_the_console_shows_each_bridge_and_whether_its_upstream_is_up(webhook: Webhook, tmp_path: Path) -> None:
    from tests.e2e.browser import Chromium

    gateway = bridged(url=webhook.url, out=["alerts/#"])
    browser = Chromium(tmp_path / "chromium-profile")
    try:
        wait_connected(gateway)
        page = browser.page()
        page.navigate(f"http://{LOOPBACK}:{gateway.gateway.ports['http']}/")
        page.wait_for("!document.getElementById('bridges-card').hidden", timeout=15)
        page.wait_for("document.querySelector('#bridges tr[data-bridge=\"hook\"]')?.dataset.connected === 'true'",
                      timeout=15)
        webhook.stop()
        near = PahoClient(gateway.mqtt_port, "near", "5").connect()
        near.publish("alerts/1", b"waits", 1)
        near.close()
        page.wait_for("document.querySelector('#bridges tr[data-bridge=\"hook\"]')?.dataset.connected === 'false'",
                      timeout=15)
        cells = page.evaluate("[...document.querySelectorAll('#bridges tr[data-bridge=\"hook\"] td')]"
                              ".map((td) => td.textContent)")
        assert cells[:4] == ["hook (http)", webhook.url, "down", "1"] and "Cannot connect" in cells[7]
        page.screenshot(Path(__file__).resolve().parents[2] / "test-artifacts" / "console-bridges.png")
        page.close()
    finally:
        browser.close()
        gateway.stop()
