"""Listeners on both IP stacks (issue 18): the default loopback binding answers real clients on ::1
as on 127.0.0.1, for every protocol, on one port each; a `[::]` listener takes IPv4 clients too.

The tests of ::1 itself require it (the `ipv6_loopback` fixture fails on a host without it); the
others assert the IPv4-only fallback on such a host (both are real behaviour).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pika
import pytest
from aiocoap import Context, Message
from aiocoap.numbers.codes import Code
from websockets.sync.client import connect as ws_connect

from gateway.config import Config, ListenAddress
from tests.conftest import HAS_IPV6, RunningGateway, make_config
from tests.e2e.admin_support import eventually
from tests.e2e.clients import PahoClient
from tests.e2e.process_support import LoggingGateway

TIMEOUT = 10.0
LISTENERS = ("mqtt", "ws", "amqp", "coap", "http")
MQTT_CONNECT = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"  # 3.1.1, clean session, empty client id
CONNACK_ACCEPTED = b"\x20\x02\x00\x00"




class HostPaho(PahoClient):
    """tests.e2e.clients.PahoClient connecting to `host` (an IPv6 literal too)."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        super().__init__(port, client_id, "311")
        self.host = host

    def connect(self, keepalive: int = 60) -> "HostPaho":
        self.client.connect(self.host, self.port, keepalive)
        self.client.loop_start()
        if not self._connected.wait(TIMEOUT):
            raise AssertionError(f"no CONNACK from the gateway on {self.host}")
        assert not self.connack[1].is_failure  # type: ignore[index]
        return self


def received(client: PahoClient) -> tuple[str, bytes]:
    message = client.inbox.get()
    return message.topic, message.payload


def default_loopback_config() -> Config:
    """Every default listener on its default host (no listen configured), on an OS-chosen port."""
    defaults = Config()
    config = make_config(**{name: {"enabled": True} for name in LISTENERS})
    return dataclasses.replace(config, **{
        name: dataclasses.replace(getattr(config, name), listen=ListenAddress(getattr(defaults, name).listen.host, 0))
        for name in LISTENERS})


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(default_loopback_config())
    try:
        yield running
    finally:
        running.stop()


def port(gateway: RunningGateway, name: str) -> int:
    return gateway.gateway.ports[name]


def coap_post(host: str, port_: int, path: str, payload: bytes) -> Code:
    """A CoAP POST by aiocoap's client to coap://host:port/path; the response code."""

    async def run() -> Code:
        context = await Context.create_client_context()
        try:
            uri = f"coap://{f'[{host}]' if ':' in host else host}:{port_}{path}"
            request = Message(code=Code.POST, uri=uri, payload=payload)
            return (await asyncio.wait_for(context.request(request).response, TIMEOUT)).code
        finally:
            await context.shutdown()

    return asyncio.run(run())


def http_get(host: str, port_: int, path: str) -> tuple[int, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, whatever the environment says
    with opener.open(f"http://{f'[{host}]' if ':' in host else host}:{port_}{path}", timeout=TIMEOUT) as answer:
        return answer.status, json.loads(answer.read())


def test_every_default_listener_binds_both_loopbacks_on_one_port(gateway: RunningGateway) -> None:
    listening = gateway.gateway.listening
    for name in LISTENERS:
        if HAS_IPV6:
            assert listening.addresses[name] == ["127.0.0.1", "::1"], name
            assert listening.bound[name] == ("localhost", port(gateway, name))
        else:  # the fallback: IPv4 alone, the listener still up
            assert listening.addresses[name] == ["127.0.0.1"], name
            assert listening.bound[name] == ("127.0.0.1", port(gateway, name))


@pytest.mark.usefixtures("ipv6_loopback")
def test_real_clients_reach_every_protocol_on_ipv6_loopback_and_messages_cross_stacks(
        gateway: RunningGateway) -> None:
    ipv4 = HostPaho("127.0.0.1", port(gateway, "mqtt"), "dual-v4-sub").connect()
    ipv6 = HostPaho("::1", port(gateway, "mqtt"), "dual-v6-pub").connect()
    try:
        assert ipv4.subscribe("dual/#", 1) == [1]
        # MQTT (paho) over IPv6 -> an IPv4 subscriber
        ipv6.publish("dual/mqtt", b"over ::1", qos=1)
        assert received(ipv4) == ("dual/mqtt", b"over ::1")
        # AMQP (pika) over IPv6: amq.topic is the MQTT topic space
        amqp = pika.BlockingConnection(pika.ConnectionParameters("::1", port(gateway, "amqp"),
                                                                 socket_timeout=TIMEOUT))
        try:
            amqp.channel().basic_publish("amq.topic", "dual.amqp", b"pika over ::1")
        finally:
            amqp.close()
        assert received(ipv4) == ("dual/amqp", b"pika over ::1")
        # CoAP (aiocoap) to [::1]: the answer leaves through the IPv6 socket
        assert coap_post("::1", port(gateway, "coap"), "/ps/dual/coap", b"coap over ::1") == Code.CHANGED
        assert received(ipv4) == ("dual/coap", b"coap over ::1")
        # MQTT over WebSocket (websockets) to ws://[::1]:P/mqtt
        with ws_connect(f"ws://[::1]:{port(gateway, 'ws')}/mqtt", subprotocols=["mqtt"],  # type: ignore[list-item]
                        open_timeout=TIMEOUT, proxy=None) as ws:
            ws.send(MQTT_CONNECT)
            assert ws.recv(TIMEOUT) == CONNACK_ACCEPTED
        # HTTP: the admin API's health, and its client list naming the IPv6 peer as [::1]:port
        assert http_get("::1", port(gateway, "http"), "/api/v1/health")[0] == 200
        local_port = ipv6.client.socket().getsockname()[1]  # type: ignore[union-attr]

        def listed() -> Any:
            clients = http_get("::1", port(gateway, "http"), "/api/v1/clients?protocol=mqtt")[1]["clients"]
            return {c["id"]: c["address"] for c in clients}

        addresses = eventually(lambda: (found := listed()).get("dual-v6-pub") and found)
        assert addresses["dual-v6-pub"] == f"[::1]:{local_port}"
        assert addresses["dual-v4-sub"].startswith("127.0.0.1:")
    finally:
        ipv6.close()
        ipv4.close()


def test_ipv4_clients_still_reach_the_default_listeners(gateway: RunningGateway) -> None:
    assert http_get("127.0.0.1", port(gateway, "http"), "/api/v1/health")[0] == 200
    assert coap_post("127.0.0.1", port(gateway, "coap"), "/ps/dual/v4", b"x") == Code.CHANGED
    with socket.create_connection(("127.0.0.1", port(gateway, "mqtt")), timeout=TIMEOUT) as raw:
        raw.sendall(MQTT_CONNECT)
        assert raw.recv(4) == CONNACK_ACCEPTED


@pytest.mark.usefixtures("ipv6_loopback")
def test_a_dual_stack_listener_takes_ipv4_clients_and_names_them_by_their_ipv4_address() -> None:
    running = RunningGateway(make_config(mqtt={"listen": "[::]:0"}, http={"enabled": True, "listen": "[::1]:0"}))
    try:
        assert running.gateway.listening.addresses["mqtt"] == ["::"]
        assert running.gateway.listening.addresses["http"] == ["::1"]
        mapped = HostPaho("127.0.0.1", running.mqtt_port, "mapped-v4").connect()
        try:
            local_port = mapped.client.socket().getsockname()[1]  # type: ignore[union-attr]

            def listed() -> Any:
                clients = http_get("::1", running.gateway.ports["http"], "/api/v1/clients")[1]["clients"]
                return {c["id"]: c["address"] for c in clients}.get("mapped-v4")

            assert eventually(listed) == f"127.0.0.1:{local_port}"  # not [::ffff:127.0.0.1]:port
        finally:
            mapped.close()
        with pytest.raises(OSError):  # [::1] is IPv6 loopback only
            socket.create_connection(("127.0.0.1", running.gateway.ports["http"]), timeout=TIMEOUT).close()
    finally:
        running.stop()


def test_every_address_localhost_resolves_to_answers(gateway: RunningGateway) -> None:
    """The issue: a client of "localhost" may pick ::1 (or 127.0.0.1); whichever it picks answers,
    paho's own connect("localhost") included."""
    infos = socket.getaddrinfo("localhost", port(gateway, "mqtt"), type=socket.SOCK_STREAM)
    for family, kind, proto, _, address in infos:
        if family == socket.AF_INET6 and not HAS_IPV6:
            continue
        with socket.socket(family, kind, proto) as raw:
            raw.settimeout(TIMEOUT)
            raw.connect(address)
            raw.sendall(MQTT_CONNECT)
            assert raw.recv(4) == CONNACK_ACCEPTED, address
    client = HostPaho("localhost", port(gateway, "mqtt"), "by-name").connect()
    client.close()


async def coaps_put(host: str, port_: int, path: str, payload: bytes) -> Code:
    """A CoAP PUT over DTLS (aiocoap's tinydtls client, PSK) to coaps://host:port/path; the response code."""
    authority = f"{f'[{host}]' if ':' in host else host}:{port_}"
    client = await Context.create_client_context(transports=["tinydtls"])
    client.client_credentials.load_from_dict({f"coaps://{authority}/*": {
        "dtls": {"psk": {"ascii": "dual-psk"}, "client-identity": {"ascii": "dual-device"}}}})
    try:
        request = Message(code=Code.PUT, uri=f"coaps://{authority}{path}", payload=payload)
        return (await asyncio.wait_for(client.request(request).response, TIMEOUT)).code
    finally:
        await client.shutdown()


def test_coaps_binds_both_loopbacks_on_one_port(tmp_path: Path) -> None:
    psk = tmp_path / "coaps.psk"
    psk.write_text("dual-device:dual-psk\n")
    host = Config().coaps.listen.host  # the default
    running = RunningGateway(make_config(coap={"enabled": True, "listen": f"{host}:0"},
                                         coaps={"listen": f"{host}:0", "psk_file": str(psk)}))
    try:
        coaps = running.gateway.ports["coaps"]
        expected = ["127.0.0.1", "::1"] if HAS_IPV6 else ["127.0.0.1"]
        assert running.gateway.listening.addresses["coaps"] == expected
        for address in expected:
            assert asyncio.run(coaps_put(address, coaps, "/ps/dual/dtls?r=1", b"21.5")) == Code.CHANGED, address
    finally:
        running.stop()


def listening_sockets(port_: int) -> set[tuple[str, int]]:
    """(local address, pid) of every TCP socket listening on `port_` (ss -ltnp)."""
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port_}"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        local = line.split()[3].rsplit(":", 1)[0]
        for chunk in line.split("pid=")[1:]:
            found.add((local, int(chunk.split(",")[0])))
    return found


def test_workers_share_the_port_on_both_loopbacks_with_so_reuseport(tmp_path: Path) -> None:
    """`run --workers 2` on the default host: each worker binds 127.0.0.1 and ::1 on the one port."""
    flags = [f"--{name}=localhost:0" for name in LISTENERS]
    workers = LoggingGateway(None, tmp_path / "ports.json", "--workers", "2", "--store", "memory", *flags)
    try:
        workers.wait_for_log("workers ready")
        mqtt_port = workers.ports()["mqtt"]
        sockets = listening_sockets(mqtt_port)
        pids = {pid for _, pid in sockets}
        assert len(pids) == 2
        stacks = ["127.0.0.1", "[::1]"] if HAS_IPV6 else ["127.0.0.1"]
        assert sockets == {(address, pid) for address in stacks for pid in pids}
        for host in ("127.0.0.1", "::1") if HAS_IPV6 else ("127.0.0.1",):
            for _ in range(4):
                with socket.create_connection((host, mqtt_port), timeout=TIMEOUT) as raw:
                    raw.sendall(MQTT_CONNECT)
                    assert raw.recv(4) == CONNACK_ACCEPTED, host
    finally:
        workers.stop()
