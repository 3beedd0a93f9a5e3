"""x-single-active-consumer (issue 18), as RabbitMQ 3.8+: one consumer of the queue gets every
message, the one that registered first; when it goes, the next takes over, with what it left
unacknowledged. Clients: pika."""

from __future__ import annotations

from pika.adapters.blocking_connection import BlockingChannel

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import amqp_gateway, connect, unique, wait_until

__all__ = ["amqp_gateway"]


def consume(channel: BlockingChannel, queue: str, got: list[bytes], auto_ack: bool = True) -> str:
    return channel.basic_consume(queue, lambda ch, method, props, body: got.append(body), auto_ack=auto_ack)


def test_only_the_first_consumer_gets_messages_until_it_goes_then_the_next_gets_them(
        amqp_gateway: RunningGateway) -> None:
    connection = connect(amqp_gateway)
    channel = connection.channel()
    queue = unique("sac")
    channel.queue_declare(queue, auto_delete=True, arguments={"x-single-active-consumer": True})
    first, second = [], []  # type: ignore[var-annotated]
    first_tag = consume(channel, queue, first)
    consume(channel, queue, second)
    for n in range(10):
        channel.basic_publish("", queue, f"a{n}".encode())
    wait_until(lambda: len(first) == 10, connection)
    assert second == []  # the second consumer waits its turn
    channel.basic_cancel(first_tag)
    for n in range(5):
        channel.basic_publish("", queue, f"b{n}".encode())
    wait_until(lambda: len(second) == 5, connection)
    assert second == [f"b{n}".encode() for n in range(5)] and len(first) == 10
    connection.close()


def test_what_the_active_consumer_left_unacknowledged_goes_to_the_next(amqp_gateway: RunningGateway) -> None:
    connection = connect(amqp_gateway)
    channel = connection.channel()
    queue = unique("sac")
    channel.queue_declare(queue, auto_delete=True, arguments={"x-single-active-consumer": True})
    other = connect(amqp_gateway)
    other_channel = other.channel()
    first, second = [], []  # type: ignore[var-annotated]
    consume(channel, queue, first, auto_ack=False)  # never acknowledges
    consume(other_channel, queue, second)
    for n in range(3):
        other_channel.basic_publish("", queue, f"m{n}".encode())
    wait_until(lambda: len(first) == 3, connection)
    connection.close()  # the active consumer goes with its three unacknowledged messages
    wait_until(lambda: len(second) == 3, other)
    assert sorted(second) == [b"m0", b"m1", b"m2"]
    other.close()


def test_redeclaring_without_the_argument_is_refused_406(amqp_gateway: RunningGateway) -> None:
    import pika.exceptions
    import pytest
    connection = connect(amqp_gateway)
    channel = connection.channel()
    queue = unique("sac")
    channel.queue_declare(queue, auto_delete=True, arguments={"x-single-active-consumer": True})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(queue, auto_delete=True)
    assert closed.value.reply_code == 406 and "x-single-active-consumer" in closed.value.reply_text
    connection.close()
