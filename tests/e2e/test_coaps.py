"""CoAP over DTLS ([coaps]) with pre-shared keys: aiocoap's tinydtls client against the gateway on loopback.

The PSK file is written by the test; the gateway binds OS-chosen ports. The
client runs on its own event loop in this thread (asyncio.run).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator

import pytest
from aiocoap import Context, Message
from aiocoap.error import NetworkError
from aiocoap.numbers.codes import Code

from core.message import Message as CoreMessage
from core.passwords import PasswordFile
from core.principal import SYSTEM
from gateway.config import ConfigError
from tests.conftest import LOOPBACK, RunningGateway, make_config

PSK_FILE = "# identity:key\ndevice-1:s3cretPSK\nbinary:hex:00112233445566778899\n"
REFUSED_WITHIN = 2.0  # seconds a client with a wrong key waits for an answer that never comes


def gateway_with(tmp_path: Path, **sections: dict) -> RunningGateway:
    psk = tmp_path / "coaps.psk"
    psk.write_text(PSK_FILE)
    return RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                      coaps={"listen": f"{LOOPBACK}:0", "psk_file": str(psk)}, **sections))


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    running = gateway_with(tmp_path)
    try:
        yield running
    finally:
        running.stop()


async def coaps_request(port: int, identity: str, key: bytes, code: Code, path: str, payload: bytes = b"",
                        timeout: float = 10.0) -> Message:
    client = await Context.create_client_context(transports=["tinydtls"])
    client.client_credentials.load_from_dict({f"coaps://{LOOPBACK}:{port}/*": {
        "dtls": {"psk": {"hex": key.hex()}, "client-identity": {"ascii": identity}}}})
    try:
        request = Message(code=code, uri=f"coaps://{LOOPBACK}:{port}{path}", payload=payload)
        return await asyncio.wait_for(client.request(request).response, timeout)
    finally:
        await client.shutdown()


def test_a_client_with_a_known_psk_publishes_and_reads_over_dtls(gateway: RunningGateway) -> None:
    port = gateway.gateway.ports["coaps"]
    assert port not in (0, gateway.gateway.ports["coap"])
    answer = asyncio.run(coaps_request(port, "device-1", b"s3cretPSK", Code.PUT, "/ps/dtls/t?r=1", b"21.5"))
    assert answer.code == Code.CHANGED
    stored = gateway.call(lambda: gateway.broker.router.retained.get("dtls/t"))
    assert stored is not None and stored.payload == b"21.5" and stored.origin.protocol == "coap"
    gateway.call(lambda: gateway.broker.publish(SYSTEM, CoreMessage("dtls/u", b"from core", retain=True)))
    read = asyncio.run(coaps_request(port, "binary", bytes.fromhex("00112233445566778899"), Code.GET, "/ps/dtls/u"))
    assert (read.code, read.payload) == (Code.CONTENT, b"from core")


def test_a_client_with_a_wrong_key_or_unknown_identity_gets_no_answer_and_publishes_nothing(
        gateway: RunningGateway) -> None:
    port = gateway.gateway.ports["coaps"]
    for identity, key in (("device-1", b"wrong"), ("stranger", b"s3cretPSK")):
        with pytest.raises((TimeoutError, NetworkError)):  # no answer, or the handshake's fatal alert
            asyncio.run(coaps_request(port, identity, key, Code.PUT, "/ps/dtls/x?r=1", b"x", timeout=REFUSED_WITHIN))
    assert gateway.call(lambda: gateway.broker.router.published) == 0


def test_coaps_applies_the_coap_credentials_rules(tmp_path: Path) -> None:
    users = PasswordFile()
    users.set("sensor", "pw", iterations=1000)
    users.save(tmp_path / "passwd")
    running = gateway_with(tmp_path, auth={"password_file": str(tmp_path / "passwd"), "allow_anonymous": False})
    try:
        port = running.gateway.ports["coaps"]
        anonymous = asyncio.run(coaps_request(port, "device-1", b"s3cretPSK", Code.PUT, "/ps/a", b"x"))
        assert anonymous.code == Code.UNAUTHORIZED
        named = asyncio.run(coaps_request(port, "device-1", b"s3cretPSK", Code.PUT, "/ps/a?u=sensor&p=pw", b"x"))
        assert named.code == Code.CHANGED
    finally:
        running.stop()


def test_coaps_needs_a_psk_file_and_a_readable_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="psk_file"):
        make_config(coaps={"enabled": True})
    assert not make_config(coaps={"listen": f"{LOOPBACK}:0"}).coaps.enabled
    bad = tmp_path / "bad.psk"
    bad.write_text("no-separator\n")
    with pytest.raises(ConfigError, match="line 1"):
        RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                   coaps={"listen": f"{LOOPBACK}:0", "psk_file": str(bad)}))
