"""LwM2M endpoints belong to the identity that registered them (issue 24), with real CoAP clients.

Anonymous access off, a password file with alice and bob, and a PSK file for DTLS: a
registration needs a login (4.01 without one); an identity registers only its own endpoint
name by default; nobody takes a registered endpoint (4.03); Update and De-register that
present another identity are refused; credentials never reach the lifecycle messages.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Iterator

import pytest
from aiocoap import Context, Message
from aiocoap.numbers.codes import Code

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import PahoClient

LINKS = b"</1/0>,</3/0>"


def gateway_with(tmp_path: Path, **lwm2m: object) -> RunningGateway:
    users = PasswordFile()
    for name in ("alice", "bob", "app"):
        users.set(name, f"{name}-pw", iterations=1000)
    users.save(tmp_path / "passwd")
    (tmp_path / "coaps.psk").write_text("dev-psk:s3cret\n")
    return RunningGateway(make_config(
        auth={"password_file": str(tmp_path / "passwd"), "allow_anonymous": False},
        coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
        coaps={"listen": f"{LOOPBACK}:0", "psk_file": str(tmp_path / "coaps.psk")},
        lwm2m=dict(lwm2m)))


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    running = gateway_with(tmp_path)
    try:
        yield running
    finally:
        running.stop()


async def ask(port: int, code: Code, path: str, payload: bytes = b"", scheme: str = "coap",
              psk: tuple[str, bytes] | None = None) -> Message:
    transports = ["tinydtls"] if psk else ["udp6"]
    client = await Context.create_client_context(transports=transports)
    if psk:
        client.client_credentials.load_from_dict({f"coaps://{LOOPBACK}:{port}/*": {
            "dtls": {"psk": {"hex": psk[1].hex()}, "client-identity": {"ascii": psk[0]}}}})
    try:
        request = Message(code=code, uri=f"{scheme}://{LOOPBACK}:{port}{path}", payload=payload)
        return await asyncio.wait_for(client.request(request).response, 10)
    finally:
        await client.shutdown()


def rd(gw: RunningGateway, code: Code, path: str, payload: bytes = b"") -> Message:
    return asyncio.run(ask(gw.gateway.ports["coap"], code, path, payload))


def test_a_registration_needs_a_login_and_an_identity_registers_its_own_endpoint(gateway: RunningGateway) -> None:
    assert rd(gateway, Code.POST, "/rd?ep=alice&lt=60", LINKS).code == Code.UNAUTHORIZED
    assert rd(gateway, Code.POST, "/rd?ep=alice&lt=60&u=alice&p=wrong", LINKS).code == Code.UNAUTHORIZED
    refused = rd(gateway, Code.POST, "/rd?ep=alice&lt=60&u=bob&p=bob-pw", LINKS)
    assert refused.code == Code.FORBIDDEN and b"may not register endpoint 'alice'" in refused.payload
    created = rd(gateway, Code.POST, "/rd?ep=alice&lt=60&u=alice&p=alice-pw", LINKS)
    assert created.code == Code.CREATED
    assert len(created.opt.location_path[-1]) == 16  # 96 random bits: not guessable


def test_nobody_takes_a_registered_endpoint_nor_changes_anothers_registration(tmp_path: Path) -> None:
    running = gateway_with(tmp_path, endpoint_pattern="*")  # any name, so ownership is what protects it
    try:
        created = rd(running, Code.POST, "/rd?ep=shared-ep&lt=60&u=alice&p=alice-pw", LINKS)
        assert created.code == Code.CREATED
        location = "/" + "/".join(created.opt.location_path)
        taken = rd(running, Code.POST, "/rd?ep=shared-ep&lt=60&u=bob&p=bob-pw", LINKS)
        assert taken.code == Code.FORBIDDEN and b"registered by another identity" in taken.payload
        assert rd(running, Code.POST, f"{location}?lt=90&u=bob&p=bob-pw").code == Code.FORBIDDEN
        assert rd(running, Code.DELETE, f"{location}?u=bob&p=bob-pw").code == Code.FORBIDDEN
        assert rd(running, Code.POST, f"{location}?lt=90").code == Code.CHANGED  # the device's own update
        assert rd(running, Code.DELETE, f"{location}?u=alice&p=alice-pw").code == Code.DELETED
        registration = running.call(lambda: running.gateway.lwm2m.table.by_endpoint("shared-ep"))
        assert registration is None
    finally:
        running.stop()


def test_credentials_never_reach_the_lifecycle_messages(tmp_path: Path) -> None:
    running = gateway_with(tmp_path)
    try:
        app = PahoClient(running.mqtt_port, "lwm2m-app", "5")
        app.client.username_pw_set("app", "app-pw")
        app.connect()
        app.subscribe("lwm2m/bob/up/#", qos=1)
        assert rd(running, Code.POST, "/rd?ep=bob&lt=60&u=bob&p=bob-pw", LINKS).code == Code.CREATED
        raw = app.inbox.until_topic("lwm2m/bob/up/register")[-1].payload
        assert b"bob-pw" not in raw and b"alice" not in raw and json.loads(raw)["data"]["ep"] == "bob"
        app.close()
    finally:
        running.stop()


def test_a_dtls_psk_identity_registers_the_endpoint_named_after_it(gateway: RunningGateway) -> None:
    port = gateway.gateway.ports["coaps"]
    psk = ("dev-psk", b"s3cret")
    refused = asyncio.run(ask(port, Code.POST, "/rd?ep=other&lt=60", LINKS, "coaps", psk))
    assert refused.code == Code.FORBIDDEN
    created = asyncio.run(ask(port, Code.POST, "/rd?ep=dev-psk&lt=60", LINKS, "coaps", psk))
    assert created.code == Code.CREATED
    owner = gateway.call(lambda: gateway.gateway.lwm2m.table.by_endpoint("dev-psk").owner)
    assert owner == "dev-psk"

