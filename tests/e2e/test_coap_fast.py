"""The CoAP publish fast path (adapters/coap/fast_path.py) against a running gateway, with real clients.

Raw UDP (tests.e2e.coap_clients.RawCoAP) controls message ids, types and retransmissions;
aiocoap and libcoap's coap-client-notls are ordinary clients. An MQTT subscriber (paho) sees
what arrives. The comparison test sends the same datagrams with the fast path on and off
(`CoAPListener.use_fast_path`) and expects the same answers and the same messages. Waits are
socket reads and inboxes with timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path
from typing import Any, Iterator

import aiocoap
import pytest
from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type
from aiocoap.optiontypes import OpaqueOption

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import PahoClient, Received
from tests.e2e.coap_clients import RawCoAP, TIMEOUT, coap_client, coap_gateway, coap_port, gateway, raw, request
from tests.e2e.test_coap_observe import HeldStore

__all__ = ["raw", "gateway"]  # fixtures from tests.e2e.coap_clients

FAST = 1000  # password hash iterations: cheap for tests


@pytest.fixture
def mqtt(gateway: RunningGateway) -> Iterator[PahoClient]:
    client = PahoClient(gateway.mqtt_port).connect()
    client.subscribe("#", qos=1)
    try:
        yield client
    finally:
        client.close()


def fast_publishes(gw: RunningGateway) -> int:
    coap = gw.gateway.coap
    assert coap is not None
    return gw.call(lambda: coap.metrics()["fast_publishes"])


def published(gw: RunningGateway) -> int:
    return gw.call(lambda: gw.broker.router.published)


def nothing_more(mqtt: PahoClient) -> None:
    """No further message reaches the subscriber: a marker published after it comes first."""
    mqtt.client.publish("zz/marker", b"m", qos=1)
    assert mqtt.inbox.get().topic == "zz/marker"


def test_a_con_post_gets_a_piggybacked_2_04_ack_with_its_token_and_reaches_mqtt_as_qos_1(
    gateway: RunningGateway, raw: RawCoAP, mqtt: PahoClient
) -> None:
    post = request(Code.POST, "/ps/fast/t1", payload=b'{"t": 1}', token=b"\x0a\x0b\x0c", content_format=50)
    raw.send(post)
    answer = raw.receive()
    assert (answer.mtype, answer.mid, answer.token, answer.code) == (Type.ACK, post.mid, post.token, Code.CHANGED)
    assert answer.payload == b"" and list(answer.opt.option_list()) == []
    received = mqtt.inbox.get()
    assert (received.topic, received.payload, received.qos) == ("fast/t1", b'{"t": 1}', 1)
    assert received.properties["ContentType"] == "application/json"
    assert fast_publishes(gateway) == 1
    scraped = gateway.call(gateway.gateway.metrics.render)
    assert "rosettamq_coap_fast_path_publishes_total 1" in scraped


def test_a_retransmitted_con_is_published_once_and_answered_twice_identically(
    gateway: RunningGateway, raw: RawCoAP, mqtt: PahoClient
) -> None:
    data = request(Code.PUT, "/ps/fast/again", payload=b"once", token=b"\x77").encode()
    raw.send_bytes(data)
    first = raw.sock.recvfrom(65536)[0]
    raw.send_bytes(data)
    second = raw.sock.recvfrom(65536)[0]
    assert first == second and Message.decode(first).code == Code.CHANGED
    assert mqtt.inbox.get().payload == b"once"
    nothing_more(mqtt)
    assert fast_publishes(gateway) == 1


def test_a_con_retransmitted_while_the_store_holds_it_gets_one_answer_once_it_is_durable() -> None:
    store = HeldStore()
    gateway = RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"}), store=store)
    raw = RawCoAP(coap_port(gateway))
    try:
        data = request(Code.POST, "/ps/held/t", payload=b"v", token=b"\x42").encode()
        raw.send_bytes(data)
        assert store.asked.wait(TIMEOUT)
        raw.send_bytes(data)  # the retransmission while the first waits: no answer yet, no second publish
        assert published(gateway) == 1
        assert raw.pending() == []
        gateway.call(store.release)
        answer = raw.receive()
        assert (answer.mtype, answer.token, answer.code) == (Type.ACK, b"\x42", Code.CHANGED)
        raw.send_bytes(data)
        assert Message.decode(raw.sock.recvfrom(65536)[0]).mid == answer.mid
        assert published(gateway) == 1
        assert gateway.call(lambda: gateway.gateway.coap.state.pending_publishes) == 0  # type: ignore[union-attr]
    finally:
        raw.close()
        gateway.stop()


def test_a_non_post_gets_a_non_2_04_from_aiocoaps_message_ids_and_is_qos_0(
    gateway: RunningGateway, raw: RawCoAP, mqtt: PahoClient
) -> None:
    post = request(Code.POST, "/ps/fast/non", payload=b"n", token=b"\x05", mtype=Type.NON)
    raw.send(post)
    answer = raw.receive()
    assert (answer.mtype, answer.token, answer.code) == (Type.NON, b"\x05", Code.CHANGED)
    received = mqtt.inbox.get()
    assert (received.topic, received.qos) == ("fast/non", 0)
    # the next id aiocoap allocates on that socket follows the fast path's (a NON read: aiocoap answers)
    raw.send(request(Code.GET, "/ps/nothing/here", token=b"\x06", mtype=Type.NON))
    read = raw.receive()
    assert (read.mtype, read.code, read.mid) == (Type.NON, Code.NOT_FOUND, (answer.mid + 1) & 0xFFFF)
    raw.send(post)  # a duplicate NON: dropped, not published again
    nothing_more(mqtt)
    assert fast_publishes(gateway) == 1


def test_a_retained_post_is_read_back_through_aiocoap(gateway: RunningGateway, raw: RawCoAP) -> None:
    answer = raw.ask(request(Code.POST, "/ps/fast/kept", query=("retain=true",), payload=b"21", content_format=0))
    assert answer.code == Code.CHANGED
    read = raw.ask(request(Code.GET, "/ps/fast/kept", token=b"\x09"))
    assert (read.code, read.payload, read.opt.content_format) == (Code.CONTENT, b"21", 0)
    assert fast_publishes(gateway) == 1


async def test_aiocoap_and_libcoap_clients_publish_through_the_fast_path(gateway: RunningGateway,
                                                                         mqtt: PahoClient) -> None:
    context = await aiocoap.Context.create_client_context()
    try:
        sent = Message(code=Code.POST, uri=f"coap://127.0.0.1:{coap_port(gateway)}/ps/fast/aiocoap?qos=1",
                       payload=b"a")
        response = await asyncio.wait_for(context.request(sent).response, TIMEOUT)
        assert response.code == Code.CHANGED
    finally:
        await context.shutdown()
    out = await asyncio.to_thread(coap_client, "-m", "put", "-t", "50", "-e", '{"v": 2}',
                                  f"coap://127.0.0.1:{coap_port(gateway)}/ps/fast/libcoap")
    assert "4.0" not in out and "5.0" not in out
    got = [await asyncio.to_thread(mqtt.inbox.get) for _ in range(2)]
    assert [(m.topic, m.payload) for m in got] == [("fast/aiocoap", b"a"), ("fast/libcoap", b'{"v": 2}')]
    assert got[1].properties["ContentType"] == "application/json"
    assert fast_publishes(gateway) == 2


async def test_block_wise_observe_and_other_resources_still_go_through_aiocoap(
    gateway: RunningGateway, mqtt: PahoClient
) -> None:
    context = await aiocoap.Context.create_client_context()
    base = f"coap://127.0.0.1:{coap_port(gateway)}"
    try:
        big = bytes(range(256)) * 12  # 3 kB: block-wise (Block1)
        response = await asyncio.wait_for(context.request(Message(code=Code.POST, uri=f"{base}/ps/fast/big",
                                                                  payload=big)).response, TIMEOUT)
        assert response.code == Code.CHANGED
        assert (await asyncio.to_thread(mqtt.inbox.get)).payload == big
        observation = context.request(Message(code=Code.GET, uri=f"{base}/ps/fast/seen", observe=0))
        first = await asyncio.wait_for(observation.response, TIMEOUT)
        assert first.code == Code.CONTENT
        opened = await asyncio.wait_for(context.request(Message(
            code=Code.POST, uri=f"{base}/mqtt/connection?clientid=dev1")).response, TIMEOUT)
        assert opened.code == Code.CREATED
        assert fast_publishes(gateway) == 0
        # a fast publish reaches the observer (aiocoap's exchange) too
        await asyncio.to_thread(coap_client, "-m", "post", "-e", "hi", f"{base}/ps/fast/seen")
        notification = await asyncio.wait_for(observation.observation.__aiter__().__anext__(), TIMEOUT)
        assert notification.payload == b"hi"
        observation.observation.cancel()
        assert fast_publishes(gateway) == 1
    finally:
        await context.shutdown()


def test_lwm2m_registration_on_the_same_listener_goes_to_aiocoap() -> None:
    gateway = RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"}, lwm2m={"enabled": True}))
    raw = RawCoAP(coap_port(gateway))
    try:
        answer = raw.ask(request(Code.POST, "/rd", query=("ep=fast-dev", "lt=60", "lwm2m=1.1", "b=U"),
                                 payload=b"</3/0>", token=b"\x51"))
        assert answer.code == Code.CREATED
        assert fast_publishes(gateway) == 0
        lwm2m = gateway.gateway.lwm2m
        assert lwm2m is not None and gateway.call(lwm2m.metrics)["registrations"] == 1
    finally:
        raw.close()
        gateway.stop()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[RunningGateway]:
    users = PasswordFile()
    users.set("sensor", "s3cret", iterations=FAST)
    users.save(tmp_path / "passwd")
    (tmp_path / "acl").write_text("user sensor\ntopic write sensors/#\n")
    running = RunningGateway(make_config(
        coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
        auth={"password_file": str(tmp_path / "passwd"), "acl_file": str(tmp_path / "acl"),
              "allow_anonymous": False}))
    try:
        yield running
    finally:
        running.stop()


def test_query_credentials_are_checked_by_aiocoap_once_then_the_fast_path_takes_them_and_the_acl_applies(
    secured: RunningGateway,
) -> None:
    raw = RawCoAP(coap_port(secured))
    login = ("u=sensor", "p=s3cret")
    try:
        first = request(Code.POST, "/ps/sensors/t1", query=login, payload=b"1", token=b"\x01")
        assert raw.ask(first).code == Code.CHANGED
        assert fast_publishes(secured) == 0  # the password was hashed off the loop, by aiocoap's task
        raw.send(first)  # a retransmission of a message id aiocoap saw: aiocoap answers, nothing published twice
        assert raw.receive().code == Code.CHANGED
        assert published(secured) == 1 and fast_publishes(secured) == 0
        assert raw.ask(request(Code.POST, "/ps/sensors/t2", query=login, payload=b"2")).code == Code.CHANGED
        assert fast_publishes(secured) == 1
        refused = raw.ask(request(Code.POST, "/ps/alerts/x", query=login, payload=b"3", token=b"\x03"))
        assert (refused.mtype, refused.code, refused.token) == (Type.ACK, Code.FORBIDDEN, b"\x03")
        assert raw.ask(request(Code.POST, "/ps/sensors/t3", query=("u=sensor",), payload=b"4")).code \
            == Code.UNAUTHORIZED
        assert published(secured) == 2 and fast_publishes(secured) == 1
    finally:
        raw.close()


# -- the fast path answers as aiocoap does -------------------------------------------------------

def _raw(hexa: str) -> bytes:
    return bytes.fromhex(hexa)


def _with(number: int, value: bytes, *, uri_host: str | None = None, uri_port: int | None = None) -> Message:
    """A CON POST on /ps/cmp/z carrying option `number` too."""
    message = request(Code.POST, "/ps/cmp/z", payload=b"z")
    message.opt.add_option(OpaqueOption(number, value))
    if uri_host is not None:
        message.opt.uri_host = uri_host
    if uri_port is not None:
        message.opt.uri_port = uri_port
    return message


def _path(segments: tuple[str, ...]) -> Message:
    message = request(Code.POST, "/ps/x", payload=b"z")
    message.opt.uri_path = segments
    return message


CASES: list[tuple[str, Any]] = [
    ("plain", request(Code.POST, "/ps/cmp/a", payload=b"x")),
    ("put with content format", request(Code.PUT, "/ps/cmp/b", payload=b"{}", content_format=50)),
    ("unknown content format", request(Code.POST, "/ps/cmp/c", payload=b"y", content_format=4711)),
    ("text", request(Code.POST, "/ps/cmp/d", payload=b"hi", content_format=0)),
    ("empty payload", request(Code.POST, "/ps/cmp/e")),
    ("query", request(Code.POST, "/ps/cmp/f", query=("qos=0", "r=1", "expiry=60", "c=dev9"), payload=b"z")),
    ("qos 2 as NON", request(Code.POST, "/ps/cmp/g", query=("q=2",), payload=b"z", mtype=Type.NON)),
    ("empty level", request(Code.POST, "/ps/cmp//h", payload=b"z")),
    ("percent-encoded", request(Code.POST, "/ps/cmp/%2Fi", payload=b"z")),
    ("wildcard", request(Code.POST, "/ps/cmp/+", payload=b"z")),
    ("no topic", request(Code.POST, "/ps", payload=b"z")),
    ("empty topic", _path(("ps", ""))),
    ("trailing empty level", _path(("ps", "cmp", ""))),
    ("another resource", _path(("mqtt", "connection"))),
    ("bad qos", request(Code.POST, "/ps/cmp/j", query=("qos=7",), payload=b"z")),
    ("unknown parameter", request(Code.POST, "/ps/cmp/k", query=("colour=red",), payload=b"z", mtype=Type.NON)),
    ("twice", request(Code.POST, "/ps/cmp/l", query=("r=1", "retain=0"), payload=b"z")),
    ("system topic", request(Code.POST, "/ps/$SYS/m", payload=b"z")),
    ("too large", request(Code.POST, "/ps/cmp/n", payload=b"z" * 300)),
    ("too large NON", request(Code.POST, "/ps/cmp/o", payload=b"z" * 300, mtype=Type.NON)),
    ("elective option 2048", _with(2048, b"-")),
    ("ETag", _with(4, b"\x01\x02")),
    ("critical If-Match", _with(1, b"")),
    ("critical 2049", _with(2049, b"x")),
    ("Uri-Host", _with(2048, b"", uri_host="a")),
    ("Uri-Port and Accept", _with(17, b"\x32", uri_port=5683)),
    ("Uri-Host not UTF-8", _with(3, b"\xff")),
    ("No-Response", _with(258, b"\x02")),
    ("Size1", _with(60, b"\x05")),
    ("bad UTF-8 path", _raw("4202abd001") + _raw("b2707302fffe") + _raw("ff7a")),
    ("payload marker, no payload", _raw("4202abd101") + _raw("b2707303636d7001") + _raw("7aff")),
    ("token of 9", _raw("4902abd2") + bytes(9) + _raw("b27073")),
    ("overloaded", request(Code.POST, "/ps/cmp/p", payload=b"z")),  # while the store holds too many
]


def run_cases(gateway: RunningGateway, mqtt: PahoClient) -> list[Any]:
    """Each case's answer (a NON's message id zeroed), then what MQTT got from all of them."""
    state = gateway.gateway.coap.state  # type: ignore[union-attr]
    raw = RawCoAP(coap_port(gateway))
    results: list[Any] = []
    try:
        for name, case in CASES:
            if name == "overloaded":
                gateway.call(lambda: setattr(state, "pending_publishes", state.settings.max_pending_publishes))
            raw.send_bytes(case if isinstance(case, bytes) else case.encode())
            answer = bytearray(raw.sock.recvfrom(65536)[0])
            gateway.call(lambda: setattr(state, "pending_publishes", 0))
            if answer[0] >> 4 & 3 == Type.NON:
                answer[2:4] = b"\0\0"
            results.append((name, bytes(answer)))
    finally:
        raw.close()
    mqtt.client.publish("zz/marker", b"m", qos=1)
    got: list[Received] = []
    while (message := mqtt.inbox.get()).topic != "zz/marker":
        got.append(message)
    results.append(sorted([(m.topic, m.payload, m.qos, m.retain, m.properties.get("ContentType"),
                     m.properties.get("PayloadFormatIndicator"), "MessageExpiryInterval" in m.properties)
                    for m in got]))  # sorted: QoS 2 arrives after its PUBREL, later than QoS 1 sent after it
    return results


def test_the_fast_path_answers_every_case_as_aiocoap_does_and_publishes_the_same() -> None:
    gateway = coap_gateway(max_payload_size=200)
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        mqtt.subscribe("#", qos=2)
        mqtt.subscribe("$SYS/#", qos=2)  # what the door does with a publish there is compared too
        coap = gateway.gateway.coap
        assert coap is not None
        fast = run_cases(gateway, mqtt)
        taken = fast_publishes(gateway)
        gateway.call(lambda: coap.use_fast_path(False))
        slow = run_cases(gateway, mqtt)
        assert fast_publishes(gateway) == taken
        for mine, theirs in zip(fast, slow):
            assert mine == theirs
        assert len(fast) == len(CASES) + 1
        # every publish that reached MQTT came through the fast path, except those it leaves to aiocoap
        assert taken == len(fast[-1]) - 2 and taken >= 12  # all but the Size1 and No-Response ones
    finally:
        mqtt.close()
        gateway.stop()


# aiocoap leaves the request tasks of some mutated datagrams unstarted at shutdown, fast path or not
@pytest.mark.filterwarnings("ignore:coroutine 'Context._render_to_pipe' was never awaited")
def test_mutated_publishes_never_stop_the_listener_nor_fail_in_the_fast_path(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="rosettamq")
    rng = random.Random(17)
    base = request(Code.POST, "/ps/fuzz/t", query=("qos=1", "c=dev"), payload=b"{}", content_format=50,
                   token=b"\x01\x02").encode()
    raw, probe = RawCoAP(coap_port(gateway)), RawCoAP(coap_port(gateway))
    try:
        for n in range(2000):
            data = bytearray(base)
            data[2:4] = n.to_bytes(2, "big")
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            raw.send_bytes(bytes(data[:rng.randrange(4, len(data) + 1)]))
            if n % 100 == 99:  # a CON the fast path takes, from another socket, answered all the same
                alive = request(Code.POST, "/ps/fuzz/alive", payload=b"ok", token=b"\xaa")
                answer = probe.ask(alive)
                assert (answer.mid, answer.code) == (alive.mid, Code.CHANGED)
        # and aiocoap, which got the rest, answers too (after starting the work queued before)
        assert probe.ask(request(Code.GET, "/ps/fuzz/none", token=b"\xab")).code == Code.NOT_FOUND
    finally:
        raw.close()
        probe.close()
    faults = gateway.call(lambda: dict(gateway.gateway.coap.faults.counts))
    assert faults["dispatch_error"] == 0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert fast_publishes(gateway) >= 20
