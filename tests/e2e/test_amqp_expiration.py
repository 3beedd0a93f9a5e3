"""The per-message `expiration` property with pika, checked against RabbitMQ's rules (issue 18).

A string of milliseconds; anything else ("soon", "-5", "1.5", " 10") closes the
channel with 406. A message expires only at the head of its queue (RabbitMQ's
classic queues), is then dead-lettered with reason "expired"; "0" still
reaches a consumer ready for it at once.
"""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import amqp_gateway, connect, next_message, ready_count, unique, wait_until

__all__ = ["amqp_gateway"]


def test_an_expiration_that_is_not_a_whole_number_of_milliseconds_is_406(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        for expiration in ("soon", "-5", "1.5", " 10", ""):
            ch = conn.channel()
            ch.confirm_delivery()
            with pytest.raises(ChannelClosedByBroker) as closed:
                ch.basic_publish("amq.direct", "nowhere", b"x", pika.BasicProperties(expiration=expiration))
            assert closed.value.reply_code == 406, expiration
            assert "expiration" in closed.value.reply_text


def test_an_expired_message_waits_for_the_head_then_is_dead_lettered_as_expired(
        amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        dead, witness_dead = unique("dead"), unique("witness-dead")
        ch.queue_declare(dead, exclusive=True)
        ch.queue_declare(witness_dead, exclusive=True)
        queue = ch.queue_declare(unique("fifo"), exclusive=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead}).method.queue
        witness = ch.queue_declare(unique("witness"), exclusive=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": witness_dead}).method.queue
        ch.basic_publish("", queue, b"no expiration")
        ch.basic_publish("", queue, b"expires behind the head", pika.BasicProperties(expiration="1"))
        ch.basic_publish("", witness, b"expires later", pika.BasicProperties(expiration="20"))
        next_message(ch, witness_dead, auto_ack=True)  # its deadline came, so the one in `queue` is past too
        assert ready_count(ch, queue) == 2  # not at the head: still there, as in RabbitMQ
        assert ch.basic_get(queue, auto_ack=True)[2] == b"no expiration"
        _, properties, body = next_message(ch, dead, auto_ack=True)
        assert body == b"expires behind the head"
        death = properties.headers["x-death"][0]
        assert (death["reason"], death["original-expiration"]) == ("expired", "1")
        assert ready_count(ch, queue) == 0


def test_expiration_zero_reaches_a_consumer_ready_for_it(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = ch.queue_declare("", exclusive=True).method.queue
        received: list[bytes] = []
        ch.basic_consume(queue, lambda c, m, p, body: received.append(body), auto_ack=True)
        ch.basic_publish("", queue, b"now or never", pika.BasicProperties(expiration="0"))
        wait_until(lambda: bool(received), conn)
        assert received == [b"now or never"]
