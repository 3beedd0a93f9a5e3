"""AMQP end to end with aio-pika (asyncio, publisher confirms on by default), a second Python client."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import aio_pika
import pytest
from aio_pika.exceptions import DeliveryError, QueueEmpty

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.amqp_support import TIMEOUT, amqp_gateway, amqp_port, unique

__all__ = ["amqp_gateway"]


@pytest.fixture
async def channel(amqp_gateway: RunningGateway) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(f"amqp://guest:guest@{LOOPBACK}:{amqp_port(amqp_gateway)}/")
    async with connection:
        yield await connection.channel()


async def test_publish_consume_and_ack_with_confirms(channel: aio_pika.abc.AbstractChannel) -> None:
    exchange = await channel.declare_exchange(unique("events"), aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(unique("audit"), durable=True)
    await queue.bind(exchange, "user.*")
    confirmation = await exchange.publish(
        aio_pika.Message(b"signed up", headers={"uid": "42"}, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key="user.created")
    assert type(confirmation).__name__ == "Ack"  # basic.ack from publisher confirms
    async with queue.iterator() as messages:
        async for message in messages:
            async with message.process():
                assert message.body == b"signed up" and message.headers == {"uid": "42"}
                assert message.routing_key == "user.created"
            break
    assert (await channel.declare_queue(queue.name, passive=True)).declaration_result.message_count == 0


async def test_nack_with_requeue_redelivers_and_get_empty_is_reported(channel: aio_pika.abc.AbstractChannel) -> None:
    queue = await channel.declare_queue(unique("flaky"), auto_delete=False)
    await channel.default_exchange.publish(aio_pika.Message(b"try again"), routing_key=queue.name)
    first = await queue.get(timeout=TIMEOUT)
    await first.nack(requeue=True)
    second = await queue.get(timeout=TIMEOUT)
    assert second.body == b"try again" and second.redelivered
    await second.ack()
    with pytest.raises(QueueEmpty):
        await queue.get(timeout=TIMEOUT)


async def test_prefetch_holds_back_deliveries_until_acked(channel: aio_pika.abc.AbstractChannel) -> None:
    await channel.set_qos(prefetch_count=1)
    queue = await channel.declare_queue(unique("one-at-a-time"))
    for n in range(3):
        await channel.default_exchange.publish(aio_pika.Message(b"%d" % n), routing_key=queue.name)
    got: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
    await queue.consume(got.put)
    first = await asyncio.wait_for(got.get(), TIMEOUT)
    declared = await channel.declare_queue(queue.name, passive=True)
    assert declared.declaration_result.message_count == 2 and got.empty()
    await first.ack()
    second = await asyncio.wait_for(got.get(), TIMEOUT)
    assert (first.body, second.body) == (b"0", b"1")
    await second.ack()


async def test_a_mandatory_publish_without_a_route_fails_its_confirmation(amqp_gateway: RunningGateway) -> None:
    connection = await aio_pika.connect(f"amqp://guest:guest@{LOOPBACK}:{amqp_port(amqp_gateway)}/")
    async with connection:
        channel = await connection.channel(on_return_raises=True)
        with pytest.raises(DeliveryError) as failed:
            await channel.default_exchange.publish(aio_pika.Message(b"nobody"), routing_key=unique("no-queue"),
                                                   mandatory=True)
        assert failed.value.message.body == b"nobody"


async def test_ttl_and_max_length_feed_a_dead_letter_queue(channel: aio_pika.abc.AbstractChannel) -> None:
    dead = await channel.declare_queue(unique("graveyard"))
    queue = await channel.declare_queue(unique("short-lived"), arguments={
        "x-message-ttl": 100, "x-max-length": 1, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dead.name, "x-queue-type": "classic"})
    for body in (b"pushed out", b"expires"):
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue.name)
    reasons = []
    async with dead.iterator() as messages:
        async for message in messages:
            async with message.process():
                reasons.append((message.body, message.headers["x-death"][0]["reason"]))
            if len(reasons) == 2:
                break
    assert reasons == [(b"pushed out", "maxlen"), (b"expires", "expired")]
