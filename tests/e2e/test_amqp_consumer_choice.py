"""Which consumer of a queue gets a message (issue 18), as RabbitMQ: x-single-active-consumer (one
consumer gets every message, the one registered first; when it goes, the next takes over with
what it left unacknowledged) and consumer priorities (x-priority). Clients: pika."""

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


# -- consumer priorities (x-priority on basic.consume), as RabbitMQ ---------------------------------


def test_the_higher_priority_consumer_gets_everything_while_it_has_room(amqp_gateway: RunningGateway) -> None:
    connection = connect(amqp_gateway)
    channel = connection.channel()
    queue = unique("prio")
    channel.queue_declare(queue, auto_delete=True)
    low, high = [], []  # type: ignore[var-annotated]
    channel.basic_consume(queue, lambda ch, m, p, body: low.append(body), auto_ack=True)
    channel.basic_consume(queue, lambda ch, m, p, body: high.append(body), auto_ack=True,
                          arguments={"x-priority": 10})
    for n in range(20):
        channel.basic_publish("", queue, str(n).encode())
    wait_until(lambda: len(high) == 20, connection)
    assert low == []  # round-robin would have split them
    connection.close()


def test_a_lower_priority_consumer_gets_messages_only_while_the_higher_one_is_full(
        amqp_gateway: RunningGateway) -> None:
    connection = connect(amqp_gateway)
    busy = connection.channel()
    busy.basic_qos(prefetch_count=5)
    queue = unique("prio")
    busy.queue_declare(queue, auto_delete=True)
    idle = connection.channel()
    high, low = [], []  # type: ignore[var-annotated]
    busy.basic_consume(queue, lambda ch, m, p, body: high.append(body), auto_ack=False,
                       arguments={"x-priority": 5})  # never acknowledges: full after 5
    idle.basic_consume(queue, lambda ch, m, p, body: low.append(body), auto_ack=True)
    for n in range(20):
        idle.basic_publish("", queue, str(n).encode())
    wait_until(lambda: len(high) + len(low) == 20, connection)
    assert (len(high), len(low)) == (5, 15)
    connection.close()


def test_a_priority_that_is_not_an_integer_is_refused_406(amqp_gateway: RunningGateway) -> None:
    import pika.exceptions
    import pytest
    connection = connect(amqp_gateway)
    channel = connection.channel()
    queue = unique("prio")
    channel.queue_declare(queue, auto_delete=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.basic_consume(queue, lambda *a: None, arguments={"x-priority": "high"})
        connection.process_data_events(time_limit=1)
    assert closed.value.reply_code == 406
    connection.close()
