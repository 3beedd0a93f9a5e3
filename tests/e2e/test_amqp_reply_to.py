"""Direct reply-to (RabbitMQ's amq.rabbitmq.reply-to) with pika, as RPC clients use it (issue 18).

amqplib's RPC is in test_amqp_amqplib.py.
"""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import amqp_gateway, connect, unique, wait_until

__all__ = ["amqp_gateway"]

REPLY_TO = "amq.rabbitmq.reply-to"


def test_pika_rpc_replies_reach_the_requester_through_direct_reply_to(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as client_conn, connect(amqp_gateway) as server_conn:
        server = server_conn.channel()
        requests = server.queue_declare(unique("rpc"), exclusive=True).method.queue
        client = client_conn.channel()
        answers: dict[str, bytes] = {}
        client.basic_consume(REPLY_TO, lambda ch, m, p, body: answers.__setitem__(p.correlation_id, body),
                             auto_ack=True)
        for n in range(3):
            client.basic_publish("", requests, str(n).encode(),
                                 pika.BasicProperties(reply_to=REPLY_TO, correlation_id=f"c{n}"))
        for _ in range(3):
            method, properties, body = next(server.consume(requests, inactivity_timeout=10))
            assert properties.reply_to.startswith(REPLY_TO + ".")
            server.basic_publish("", properties.reply_to, body * 2,
                                 pika.BasicProperties(correlation_id=properties.correlation_id))
            server.basic_ack(method.delivery_tag)
        wait_until(lambda: len(answers) == 3, client_conn)
        assert answers == {"c0": b"00", "c1": b"11", "c2": b"22"}
        assert client.queue_declare(REPLY_TO, passive=True).method.queue == REPLY_TO


def test_pika_a_request_without_a_reply_consumer_closes_the_channel_with_406(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = ch.queue_declare(unique("rpc"), exclusive=True).method.queue
        ch.basic_publish("", queue, b"?", pika.BasicProperties(reply_to=REPLY_TO))
        with pytest.raises(ChannelClosedByBroker) as closed:
            ch.queue_declare(queue, passive=True)
        assert closed.value.reply_code == 406
