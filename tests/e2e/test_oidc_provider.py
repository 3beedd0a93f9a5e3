"""Access tokens from a real OpenID provider log in (issue 27): panva's oidc-provider from npm.

tests/e2e/node/oidc_provider.js runs it on a loopback port with one client-credentials client
whose JWT access tokens are for the resource urn:rosettamq (audience "rosettamq"), or
urn:rosettamq:short (2 s). The gateway finds its keys through its discovery document, as with
any provider; tokens come from its token endpoint the way a device backend gets them. Key
rotation, a provider that is down or answers garbage, and every kind of bad token are driven
against a provider the tests control (tests/e2e/jwt_provider.py, test_jwt_*.py).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import urllib.request
from typing import Iterator

import paho.mqtt.client as mqtt
import pika
import pytest
from aiocoap.numbers.codes import Code
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import admin_gateway
from tests.e2e.process_support import Watched
from tests.e2e.test_jwt_logins import TIMEOUT, amqp_login, closed_by_broker_within, coap_publish, mqtt_login


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    provider = Watched(["node", "tests/e2e/node/oidc_provider.js"])
    try:
        provider.wait_for("listening")
        port = int(next(line for line in provider.out if line.startswith("listening")).split()[1])
        yield f"http://{LOOPBACK}:{port}"
    finally:
        provider.proc.terminate()
        provider.proc.wait(10)


@pytest.fixture(scope="module")
def gateway(issuer: str) -> Iterator[RunningGateway]:
    running = admin_gateway(auth={"jwt": {"issuer": issuer, "audience": "rosettamq"}, "login_backoff_after": 0})
    try:
        yield running
    finally:
        running.stop()


def token(issuer: str, resource: str = "urn:rosettamq") -> str:
    """An access token from the provider's token endpoint (client credentials, client_secret_basic)."""
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "resource": resource, "scope": "mqtt"})
    request = urllib.request.Request(f"{issuer}/token", data=body.encode(), method="POST", headers={
        "Authorization": "Basic " + base64.b64encode(b"devices:devices-secret").decode(),
        "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.load(answer)["access_token"])


def test_its_tokens_log_in_on_mqtt_5_and_3_1_1_amqp_and_coap(gateway: RunningGateway, issuer: str) -> None:
    access = token(issuer)
    assert mqtt_login(gateway.mqtt_port, access, level=5, client_id="oidc-5")[0] == 0
    assert mqtt_login(gateway.mqtt_port, access, level=4, username="devices", client_id="oidc-4")[0] == 0
    assert amqp_login(gateway, access)
    assert coap_publish(gateway, access) == Code.CHANGED


def test_a_token_with_its_signature_changed_is_refused_everywhere(gateway: RunningGateway, issuer: str) -> None:
    head, claims, signature = token(issuer).split(".")
    forged = ".".join((head, claims, signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")))
    assert mqtt_login(gateway.mqtt_port, forged, client_id="oidc-forged")[0] == 0x86  # bad user name or password
    assert not amqp_login(gateway, forged)
    assert coap_publish(gateway, forged) == Code.UNAUTHORIZED


def test_connections_end_soon_after_the_providers_expiry(gateway: RunningGateway, issuer: str) -> None:
    short = token(issuer, "urn:rosettamq:short")  # 2 s
    ended, reasons = threading.Event(), []

    def on_disconnect(c, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        reasons.append(reason_code.value)
        ended.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="oidc-short", protocol=mqtt.MQTTv5)
    client.username_pw_set("", short)
    client.on_disconnect = on_disconnect
    client.connect(LOOPBACK, gateway.mqtt_port)
    client.loop_start()
    amqp = pika.BlockingConnection(pika.ConnectionParameters(
        LOOPBACK, gateway.gateway.ports["amqp"], credentials=pika.PlainCredentials("devices", short)))
    started = time.monotonic()
    try:
        closed = closed_by_broker_within(amqp, 2 + TIMEOUT)
        assert closed is not None and closed.reply_code == 320
        assert ended.wait(TIMEOUT) and reasons == [0xA0]
        assert time.monotonic() - started < 2 + 3
    finally:
        client.loop_stop()
