"""Methods the gateway does not implement, and channel.flow, with pika and aio-pika (issue 22).

A method a client may send that we do not implement is 540 NOT_IMPLEMENTED
(not 503 "unexpected method"). channel.flow(active=false) is implemented, not
refused as RabbitMQ does since 3.x: deliveries to that channel's consumers
stop until flow(active=true); basic.get still answers.
"""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq
import pytest
from pika.exceptions import ConnectionClosedByBroker

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.amqp_support import TIMEOUT, amqp_gateway, amqp_port, connect, ready_count, unique, wait_until

__all__ = ["amqp_gateway"]


def test_pika_update_secret_of_a_password_login_is_refused_with_403(amqp_gateway: RunningGateway) -> None:
    """update-secret renews access tokens (tests/e2e/test_jwt_logins.py): not a valid token, 403."""
    conn = connect(amqp_gateway)
    with pytest.raises(ConnectionClosedByBroker) as closed:
        conn.update_secret("new-token", "refresh")
    assert closed.value.reply_code == 403
    assert "update-secret" in closed.value.reply_text


def test_aio_pika_an_option_we_do_not_implement_is_refused_with_540(amqp_gateway: RunningGateway) -> None:
    """exchange.bind was the 540 here until issue 18 (tests/e2e/test_amqp_exchange_bindings.py);
    basic.qos with a prefetch_size (RabbitMQ refuses it too) still is."""
    async def scenario() -> None:
        conn = await aio_pika.connect(f"amqp://guest:guest@{LOOPBACK}:{amqp_port(amqp_gateway)}/")
        try:
            channel = await conn.channel()
            with pytest.raises(aiormq.exceptions.ConnectionNotImplemented):
                await asyncio.wait_for(channel.set_qos(prefetch_size=4096), TIMEOUT)
        finally:
            await conn.close()

    asyncio.run(scenario())


def test_pika_channel_flow_false_stops_deliveries_until_flow_true(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn, connect(amqp_gateway) as publisher:
        ch = conn.channel()
        queue = ch.queue_declare(unique("flow"), exclusive=True).method.queue
        received: list[bytes] = []
        assert ch.flow(False) is False
        ch.basic_consume(queue, lambda c, m, p, body: received.append(body), auto_ack=True)
        pub = publisher.channel()
        pub.confirm_delivery()
        for i in range(5):
            pub.basic_publish("", queue, str(i).encode())  # confirmed: queued before the next line
        assert ready_count(ch, queue) == 5  # held for the paused consumer, on the consumer's own connection
        assert received == []
        got = ch.basic_get(queue, auto_ack=True)  # a get still answers while deliveries are paused
        assert got[2] == b"0"
        assert ch.flow(True) is True
        wait_until(lambda: len(received) == 4, conn)
        assert received == [b"1", b"2", b"3", b"4"]
        pub.basic_publish("", queue, b"flowing")
        wait_until(lambda: len(received) == 5, conn)
