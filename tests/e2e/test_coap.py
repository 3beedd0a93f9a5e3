"""CoAP end to end with aiocoap as the client: publish, read, clear, observe, block-wise, discovery, errors.

Each test runs a real gateway (MQTT and CoAP on loopback, OS-chosen ports) and
talks to it with aiocoap's client context; MQTT peers are paho in-process.
Every wait is on a response, a notification or an inbox with a timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import aiocoap
import pytest
from aiocoap import Message
from aiocoap.numbers.codes import Code

from core.message import Message as CoreMessage
from core.principal import SYSTEM
from tests.conftest import RunningGateway
from tests.e2e.clients import PahoClient
from tests.e2e.coap_clients import coap_gateway, coap_port, gateway

__all__ = ["gateway"]  # fixtures from tests.e2e.coap_clients

TIMEOUT = 10.0


@pytest.fixture
async def client() -> AsyncIterator[aiocoap.Context]:
    context = await aiocoap.Context.create_client_context()
    try:
        yield context
    finally:
        await context.shutdown()


def uri(gw: RunningGateway, path: str) -> str:
    return f"coap://127.0.0.1:{coap_port(gw)}{path}"


async def ask(client: aiocoap.Context, code: Code, gw: RunningGateway, path: str, **kwargs: Any) -> Message:
    return await asyncio.wait_for(client.request(Message(code=code, uri=uri(gw, path), **kwargs)).response, TIMEOUT)


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


# -- publish ---------------------------------------------------------------------------------


async def test_a_con_post_reaches_an_mqtt_subscriber_as_qos_1_with_its_content_type(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        mqtt.subscribe("sensors/#", qos=1)
        response = await ask(client, Code.POST, gateway, "/ps/sensors/t1", payload=b'{"t": 21.5}', content_format=50)
        assert response.code == Code.CHANGED
        received = await in_thread(mqtt.inbox.get)
        assert (received.topic, received.payload, received.qos) == ("sensors/t1", b'{"t": 21.5}', 1)
        assert received.properties["ContentType"] == "application/json"
    finally:
        mqtt.close()


async def test_a_non_post_is_qos_0_and_the_qos_parameter_overrides_the_type(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        mqtt.subscribe("q/#", qos=2)
        await ask(client, Code.POST, gateway, "/ps/q/non", payload=b"a", transport_tuning=aiocoap.Unreliable)
        await ask(client, Code.POST, gateway, "/ps/q/forced?qos=2", payload=b"b", transport_tuning=aiocoap.Unreliable)
        await ask(client, Code.PUT, gateway, "/ps/q/con?q=0", payload=b"c")
        got = {m.topic: m.qos for m in await in_thread(mqtt.inbox.take, 3)}
        assert got == {"q/non": 0, "q/forced": 2, "q/con": 0}
    finally:
        mqtt.close()


async def test_a_retained_post_is_read_back_with_its_content_format_and_deleted(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    assert (await ask(client, Code.GET, gateway, "/ps/home/lamp")).code == Code.NOT_FOUND
    await ask(client, Code.POST, gateway, "/ps/home/lamp?retain=true", payload=b"<on/>", content_format=41)
    read = await ask(client, Code.GET, gateway, "/ps/home/lamp")
    assert (read.code, read.payload, read.opt.content_format) == (Code.CONTENT, b"<on/>", 41)
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        mqtt.subscribe("home/lamp")
        retained = await in_thread(mqtt.inbox.get)
        assert (retained.payload, retained.retain, retained.properties["ContentType"]) == (
            b"<on/>", True, "application/xml")
    finally:
        mqtt.close()
    assert (await ask(client, Code.DELETE, gateway, "/ps/home/lamp")).code == Code.DELETED
    assert (await ask(client, Code.GET, gateway, "/ps/home/lamp")).code == Code.NOT_FOUND
    assert gateway.call(lambda: gateway.broker.store.load().retained) == {}


async def test_an_expiry_parameter_becomes_the_message_expiry_and_max_age(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        mqtt.subscribe("exp/#", qos=1)
        await ask(client, Code.POST, gateway, "/ps/exp/a?expiry=120&r=1", payload=b"v")
        assert 118 <= (await in_thread(mqtt.inbox.get)).properties["MessageExpiryInterval"] <= 120
    finally:
        mqtt.close()
    read = await ask(client, Code.GET, gateway, "/ps/exp/a")
    assert 118 <= read.opt.max_age <= 120


async def test_an_mqtt_retained_message_is_read_over_coap_with_the_mapped_content_format(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    gateway.call(lambda: gateway.broker.publish(SYSTEM, 
        CoreMessage("dev/1/state", b"\xa1\x01\x02", qos=1, retain=True, content_type="application/cbor")))
    read = await ask(client, Code.GET, gateway, "/ps/dev/1/state")
    assert (read.payload, read.opt.content_format) == (b"\xa1\x01\x02", 60)


# -- block-wise --------------------------------------------------------------------------------


async def test_a_publish_larger_than_a_block_arrives_whole_and_reads_back_block_wise(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    body = bytes(range(256)) * 20  # 5120 bytes: five 1024-byte blocks each way
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        mqtt.subscribe("big/#")
        response = await ask(client, Code.POST, gateway, "/ps/big/blob?retain=true", payload=body)
        assert response.code == Code.CHANGED
        assert (await in_thread(mqtt.inbox.get)).payload == body
    finally:
        mqtt.close()
    read = await ask(client, Code.GET, gateway, "/ps/big/blob")
    assert read.payload == body
    assert read.opt.block2 is not None  # the last block of a block-wise answer


async def test_a_publish_over_the_size_limit_is_refused_with_4_13_and_size1() -> None:
    small = coap_gateway(max_payload_size=2000)
    context = await aiocoap.Context.create_client_context()
    try:
        response = await ask(context, Code.POST, small, "/ps/big/x", payload=b"x" * 3000)
        assert response.code == Code.REQUEST_ENTITY_TOO_LARGE
        assert response.opt.size1 == 2000
        assert small.call(lambda: small.broker.router.published) == 0
    finally:
        await context.shutdown()
        small.stop()


# -- observe -------------------------------------------------------------------------------------


async def test_an_observer_gets_mqtt_publishes_in_order_with_increasing_sequence_numbers(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    request = client.request(Message(code=Code.GET, uri=uri(gateway, "/ps/room/temp"), observe=0))
    first = await asyncio.wait_for(request.response, TIMEOUT)
    assert first.code == Code.CONTENT and first.payload == b""
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        for value in (b"20.0", b"20.5", b"21.0"):
            mqtt.publish("room/temp", value, qos=1)
    finally:
        mqtt.close()
    seen = []
    numbers = [first.opt.observe]
    async with asyncio.timeout(TIMEOUT):
        async for notification in request.observation:
            seen.append(notification.payload)
            numbers.append(notification.opt.observe)
            assert notification.opt.location_path == ("ps", "room", "temp")
            if len(seen) == 3:
                break
    request.observation.cancel()
    assert seen == [b"20.0", b"20.5", b"21.0"]
    assert numbers == sorted(numbers) and len(set(numbers)) == 4


async def test_a_wildcard_observer_learns_each_topic_from_location_path(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    gateway.call(lambda: gateway.broker.publish(SYSTEM, CoreMessage("site/a/temp", b"1", retain=True)))
    request = client.request(Message(code=Code.GET, uri=uri(gateway, "/ps/site/+/%23"), observe=0))
    first = await asyncio.wait_for(request.response, TIMEOUT)
    assert first.code == Code.CONTENT and first.payload == b""  # a wildcard registration queues retained ones
    gateway.call(lambda: gateway.broker.publish(SYSTEM, 
        CoreMessage("site/b/hum/raw", b"2", qos=1, content_type="text/plain;charset=utf-8")))
    got = []
    async with asyncio.timeout(TIMEOUT):
        async for notification in request.observation:
            got.append((notification.opt.location_path, notification.payload, notification.opt.content_format))
            if len(got) == 2:
                break
    request.observation.cancel()
    assert got == [(("ps", "site", "a", "temp"), b"1", None), (("ps", "site", "b", "hum", "raw"), b"2", 0)]


async def test_an_exact_observer_first_gets_the_retained_value(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    await ask(client, Code.POST, gateway, "/ps/door?retain=true", payload=b"open", content_format=0)
    request = client.request(Message(code=Code.GET, uri=uri(gateway, "/ps/door"), observe=0))
    first = await asyncio.wait_for(request.response, TIMEOUT)
    assert (first.payload, first.opt.content_format, first.opt.observe is not None) == (b"open", 0, True)
    request.observation.cancel()


async def test_a_notification_larger_than_a_block_arrives_whole(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    body = b"0123456789abcdef" * 200  # 3200 bytes
    request = client.request(Message(code=Code.GET, uri=uri(gateway, "/ps/fw/image"), observe=0))
    await asyncio.wait_for(request.response, TIMEOUT)
    gateway.call(lambda: gateway.broker.publish(SYSTEM, CoreMessage("fw/image", body, qos=1)))
    async with asyncio.timeout(TIMEOUT):
        async for notification in request.observation:
            assert notification.payload == body
            break
    request.observation.cancel()


# -- discovery and errors --------------------------------------------------------------------------


async def test_well_known_core_lists_ps_the_connection_resource_and_retained_topics(
    gateway: RunningGateway, client: aiocoap.Context
) -> None:
    await ask(client, Code.POST, gateway, "/ps/disc/one?retain=true", payload=b"1", content_format=50)
    links = (await ask(client, Code.GET, gateway, "/.well-known/core")).payload.decode()
    assert '</ps>;rt="core.ps";obs' in links
    assert "</mqtt/connection>" in links
    assert "</ps/disc/one>;obs;ct=\"50\"" in links


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        (Code.POST, "/ps/a/%23", Code.BAD_REQUEST),  # wildcard in a topic name
        (Code.POST, "/ps/a/+", Code.BAD_REQUEST),
        (Code.GET, "/ps/a/%23", Code.BAD_REQUEST),  # a read without Observe names one topic
        (Code.POST, "/ps/a?qos=3", Code.BAD_REQUEST),
        (Code.POST, "/ps/a?retain=maybe", Code.BAD_REQUEST),
        (Code.POST, "/ps/a?expiry=-1", Code.BAD_REQUEST),
        (Code.POST, "/ps/a?colour=red", Code.BAD_REQUEST),
        (Code.GET, "/ps/nothing/here", Code.NOT_FOUND),
        (Code.DELETE, "/ps/nothing/here", Code.NOT_FOUND),
        (Code.GET, "/nowhere", Code.NOT_FOUND),
        (Code.FETCH, "/ps/a", Code.METHOD_NOT_ALLOWED),
        (Code.PATCH, "/ps/a", Code.METHOD_NOT_ALLOWED),
    ],
)
async def test_bad_requests_get_the_mapped_error_code(
    gateway: RunningGateway, client: aiocoap.Context, method: Code, path: str, code: Code
) -> None:
    response = await ask(client, method, gateway, path, payload=b"x" if method != Code.GET else b"")
    assert response.code == code, response.payload
    assert gateway.call(lambda: gateway.broker.router.published) == 0


async def test_a_mounted_resource_tree_is_served_on_the_same_listener(client: aiocoap.Context) -> None:
    """How the LwM2M server adds /rd: a mount function (Gateway.coap_mounts), no edit of the CoAP adapter."""
    from aiocoap.resource import Resource

    from adapters.coap.server import start_coap_server
    from adapters.coap.settings import CoAPSettings
    from core.broker import Broker

    class Hello(Resource):
        async def render_post(self, request: Message) -> Message:
            return Message(code=Code.CREATED, payload=b"hello " + request.payload)

    seen: list[Any] = []

    def mount(listener: Any) -> list[tuple[tuple[str, ...], Resource]]:
        seen.append(listener.context)
        return [(("rd",), Hello())]

    listener = await start_coap_server(Broker(), CoAPSettings(), "127.0.0.1", 0, mounts=[mount])
    base = f"coap://127.0.0.1:{listener.port}"

    async def call(code: Code, path: str, payload: bytes = b"") -> Message:
        return await asyncio.wait_for(client.request(Message(code=code, uri=base + path, payload=payload)).response,
                                      TIMEOUT)

    try:
        answer = await call(Code.POST, "/rd?ep=dev", b"device")
        assert (answer.code, answer.payload) == (Code.CREATED, b"hello device")
        assert seen == [listener.context]  # the mount got the listener's aiocoap context, usable as a client
        assert (await call(Code.GET, "/ps/x")).code == Code.NOT_FOUND  # /ps is still served
        assert "</rd>" in (await call(Code.GET, "/.well-known/core")).payload.decode()
    finally:
        await listener.stop()


async def test_a_retained_con_publish_acknowledged_with_2_04_survives_a_restart(
    client: aiocoap.Context, tmp_path: Any
) -> None:
    """The 2.04 goes out after the store's commit (SQLite here), so a restart keeps what was acknowledged."""
    from tests.conftest import make_config

    config = make_config(coap={"enabled": True, "listen": "127.0.0.1:0"}, store={"path": str(tmp_path / "r.db")})
    first = RunningGateway(config)
    try:
        answer = await ask(client, Code.POST, first, "/ps/durable/t?retain=true", payload=b"kept", content_format=0)
        assert answer.code == Code.CHANGED
    finally:
        first.stop()
    second = RunningGateway(config)
    try:
        read = await ask(client, Code.GET, second, "/ps/durable/t")
        assert (read.code, read.payload, read.opt.content_format) == (Code.CONTENT, b"kept", 0)
    finally:
        second.stop()
