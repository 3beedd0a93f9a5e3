"""Priority queues and overflow modes with pika and aio-pika (issue 18), as RabbitMQ apps use them.

x-max-priority: higher priorities are delivered first, FIFO within one, a
requeued message keeps its place. x-overflow reject-publish: a publish to a
full queue is nacked (each one, even among batched confirms), reject-publish-dlx
dead-letters it as well; without confirms it is dropped silently.
"""

from __future__ import annotations

import asyncio

import aio_pika
import pika
import pytest
from pika.exceptions import NackError

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.amqp_support import TIMEOUT, amqp_gateway, amqp_port, connect, next_message, ready_count, unique

__all__ = ["amqp_gateway"]


def test_pika_a_priority_queue_delivers_the_highest_priority_first_and_requeues_in_place(
        amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        queue = ch.queue_declare(unique("jobs"), exclusive=True, arguments={"x-max-priority": 10}).method.queue
        for body, priority in ((b"batch-1", None), (b"urgent", 9), (b"normal-1", 5), (b"batch-2", None),
                               (b"normal-2", 5), (b"above-max", 200)):
            ch.basic_publish("", queue, body, pika.BasicProperties(priority=priority))
        ch.basic_qos(prefetch_count=1)  # one at a time: each delivery picks from what is ready
        received = []
        for method, properties, body in ch.consume(queue, inactivity_timeout=TIMEOUT):
            assert method is not None, received
            received.append(body)
            if body == b"urgent" and not method.redelivered:
                ch.basic_nack(method.delivery_tag, requeue=True)  # back ahead of the lower priorities
                received.append(b"(requeued)")
                continue
            ch.basic_ack(method.delivery_tag)
            if len(received) == 8:
                break
        ch.cancel()
        assert received == [b"above-max", b"urgent", b"(requeued)", b"urgent", b"normal-1", b"normal-2",
                            b"batch-1", b"batch-2"]  # 200 is capped to 10; none is 0


def test_pika_reject_publish_nacks_the_publish_and_keeps_the_queue_as_it_was(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = ch.queue_declare(unique("bounded"), exclusive=True,
                                 arguments={"x-max-length": 2, "x-overflow": "reject-publish"}).method.queue
        ch.basic_publish("", queue, b"unconfirmed 1")
        ch.basic_publish("", queue, b"unconfirmed 2")
        ch.basic_publish("", queue, b"dropped silently without confirms")
        assert ready_count(ch, queue) == 2
        ch.confirm_delivery()
        with pytest.raises(NackError):
            ch.basic_publish("", queue, b"refused")
        assert ch.basic_get(queue, auto_ack=True)[2] == b"unconfirmed 1"  # drop-head would have lost it
        ch.basic_publish("", queue, b"room again")  # confirmed: no exception
        assert ready_count(ch, queue) == 2


def test_pika_reject_publish_dlx_dead_letters_the_refused_message(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        dlx = unique("overflow-dlx")
        ch.exchange_declare(dlx, "fanout", auto_delete=True)
        dead = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(dead, dlx)
        queue = ch.queue_declare(unique("bounded"), exclusive=True, arguments={
            "x-max-length": 1, "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": dlx}).method.queue
        ch.basic_publish("", queue, b"kept")
        with pytest.raises(NackError):
            ch.basic_publish("", queue, b"refused")
        _, properties, body = next_message(ch, dead, auto_ack=True)
        assert body == b"refused"
        assert properties.headers["x-death"][0]["reason"] == "maxlen"


def test_aio_pika_batched_confirms_nack_exactly_the_refused_publishes(amqp_gateway: RunningGateway) -> None:
    async def scenario() -> None:
        conn = await aio_pika.connect(f"amqp://guest:guest@{LOOPBACK}:{amqp_port(amqp_gateway)}/")
        try:
            channel = await conn.channel()
            full = await channel.declare_queue(unique("full"), exclusive=True,
                                               arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
            open_queue = await channel.declare_queue(unique("open"), exclusive=True)
            targets = [open_queue.name, full.name, open_queue.name, open_queue.name, full.name, open_queue.name]
            results = await asyncio.wait_for(asyncio.gather(
                *[channel.default_exchange.publish(aio_pika.Message(str(i).encode()), name)
                  for i, name in enumerate(targets)], return_exceptions=True), TIMEOUT)
            refused = [i for i, result in enumerate(results) if isinstance(result, aio_pika.exceptions.DeliveryError)]
            assert refused == [1, 4], results
            declared = await channel.declare_queue(open_queue.name, passive=True)
            assert declared.declaration_result.message_count == 4
        finally:
            await conn.close()

    asyncio.run(scenario())
