"""AMQP 0-9-1 end to end with pika's BlockingConnection, as a RabbitMQ application uses the broker."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, UnroutableError

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import amqp_gateway, connect, next_message, ready_count, unique, wait_until

__all__ = ["amqp_gateway"]

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def test_declare_bind_publish_consume_and_ack_through_a_direct_exchange(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        exchange, queue = unique("orders-x"), unique("orders")
        ch.exchange_declare(exchange, "direct", durable=True)
        ch.queue_declare(queue, durable=True)
        ch.queue_bind(queue, exchange, routing_key="new")
        ch.confirm_delivery()
        ch.basic_publish(exchange, "new", b"order 1", pika.BasicProperties(content_type="text/plain",
                                                                            delivery_mode=2, message_id="m1"))
        method, properties, body = next_message(ch, queue)
        assert body == b"order 1"
        assert (method.exchange, method.routing_key, method.redelivered) == (exchange, "new", False)
        assert (properties.content_type, properties.message_id, properties.delivery_mode) == ("text/plain", "m1", 2)
        ch.basic_ack(method.delivery_tag)
        assert ready_count(ch, queue) == 0


def test_a_nack_with_requeue_delivers_the_message_again_marked_redelivered(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = unique("retry")
        ch.queue_declare(queue)
        ch.basic_publish("", queue, b"job")
        first, _, _ = next_message(ch, queue)
        ch.basic_nack(first.delivery_tag, requeue=True)
        again, _, body = next_message(ch, queue)
        assert body == b"job" and again.redelivered is True
        ch.basic_reject(again.delivery_tag, requeue=False)
        assert ready_count(ch, queue) == 0


def test_basic_get_returns_messages_then_get_empty(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = unique("get")
        ch.queue_declare(queue)
        for n in range(2):
            ch.basic_publish("", queue, b"m%d" % n)
        method, _, body = ch.basic_get(queue)
        assert body == b"m0" and method.message_count == 1
        ch.basic_ack(method.delivery_tag)
        method, _, body = ch.basic_get(queue, auto_ack=True)
        assert body == b"m1" and method.message_count == 0
        assert ch.basic_get(queue) == (None, None, None)


def test_prefetch_limits_unacknowledged_deliveries_and_acks_release_more(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch, probe = conn.channel(), conn.channel()
        queue = unique("prefetch")
        ch.queue_declare(queue)
        for n in range(5):
            ch.basic_publish("", queue, b"%d" % n)
        ch.basic_qos(prefetch_count=2)
        got: list = []
        ch.basic_consume(queue, lambda c, m, p, b: got.append((m, b)))
        wait_until(lambda: len(got) == 2, conn)
        assert ready_count(probe, queue) == 3  # the server holds the rest back
        ch.basic_ack(got[1][0].delivery_tag, multiple=True)
        wait_until(lambda: len(got) == 4, conn)
        assert ready_count(probe, queue) == 1
        assert [b for _, b in got] == [b"0", b"1", b"2", b"3"]


def test_publisher_confirms_and_a_mandatory_publish_without_a_route_is_returned(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        returned: list = []
        ch.add_on_return_callback(lambda c, m, p, b: returned.append((m, b)))
        ch.confirm_delivery()
        queue = unique("confirmed")
        ch.queue_declare(queue)
        ch.basic_publish("", queue, b"ok", mandatory=True)  # confirmed: no exception
        with pytest.raises(UnroutableError):
            ch.basic_publish("amq.direct", "nobody-listens", b"lost", mandatory=True)
        wait_until(lambda: bool(returned), conn)
        method, body = returned[0]
        assert (method.reply_code, method.reply_text, method.routing_key, body) == (
            312, "NO_ROUTE", "nobody-listens", b"lost")
        ch.basic_publish("amq.direct", "nobody-listens", b"dropped")  # not mandatory: silently dropped


def test_queue_ttl_dead_letters_expired_messages(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        delayed, target = unique("delay"), unique("after-delay")
        ch.queue_declare(target)
        ch.queue_declare(delayed, arguments={"x-message-ttl": 100, "x-dead-letter-exchange": "",
                                             "x-dead-letter-routing-key": target})
        ch.basic_publish("", delayed, b"later", PERSISTENT)
        method, properties, body = next_message(ch, target)
        assert body == b"later"
        death = properties.headers["x-death"][0]
        assert (death["reason"], death["queue"], death["count"]) == ("expired", delayed, 1)
        assert ready_count(ch, delayed) == 0


def test_a_per_message_expiration_drops_the_message(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue, dead = unique("expiring"), unique("expired")
        ch.queue_declare(dead)
        ch.queue_declare(queue, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead})
        ch.basic_publish("", queue, b"short", pika.BasicProperties(expiration="50"))
        _, properties, body = next_message(ch, dead)
        assert body == b"short" and properties.expiration is None
        assert properties.headers["x-death"][0]["original-expiration"] == "50"


def test_max_length_drops_the_oldest_message_to_the_dead_letter_exchange(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue, dead = unique("bounded"), unique("overflow")
        ch.queue_declare(dead)
        ch.queue_declare(queue, arguments={"x-max-length": 2, "x-dead-letter-exchange": "",
                                           "x-dead-letter-routing-key": dead})
        for n in range(3):
            ch.basic_publish("", queue, b"%d" % n)
        assert [ch.basic_get(queue, auto_ack=True)[2] for _ in range(2)] == [b"1", b"2"]
        _, properties, body = ch.basic_get(dead, auto_ack=True)
        assert body == b"0" and properties.headers["x-death"][0]["reason"] == "maxlen"


def test_a_rejected_message_is_dead_lettered(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        dlx, queue, dead = unique("dlx"), unique("work"), unique("rejected")
        ch.exchange_declare(dlx, "fanout")
        ch.queue_declare(dead)
        ch.queue_bind(dead, dlx)
        ch.queue_declare(queue, arguments={"x-dead-letter-exchange": dlx})
        ch.basic_publish("", queue, b"bad")
        method, _, _ = ch.basic_get(queue)
        ch.basic_nack(method.delivery_tag, requeue=False)
        method, properties, body = next_message(ch, dead, auto_ack=True)
        assert body == b"bad" and method.exchange == dlx
        assert properties.headers["x-first-death-reason"] == "rejected"


def test_an_exclusive_queue_is_locked_to_its_connection_and_goes_with_it(amqp_gateway: RunningGateway) -> None:
    owner = connect(amqp_gateway)
    queue = owner.channel().queue_declare("", exclusive=True).method.queue
    assert queue.startswith("amq.gen-")
    with connect(amqp_gateway) as other:
        with pytest.raises(ChannelClosedByBroker) as refused:
            other.channel().queue_declare(queue, passive=True)
        assert refused.value.reply_code == 405
        owner.close()
        with pytest.raises(ChannelClosedByBroker) as gone:
            other.channel().queue_declare(queue, passive=True)
        assert gone.value.reply_code == 404


def test_an_auto_delete_queue_goes_with_its_last_consumer(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = unique("auto")
        ch.queue_declare(queue, auto_delete=True)
        tag = ch.basic_consume(queue, lambda *args: None)
        ch.basic_cancel(tag)
        with pytest.raises(ChannelClosedByBroker) as gone:
            ch.queue_declare(queue, passive=True)
        assert gone.value.reply_code == 404


def test_queue_delete_if_unused_and_if_empty_refuse_with_406(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        queue = unique("guarded")
        ch = conn.channel()
        ch.queue_declare(queue)
        ch.basic_publish("", queue, b"x")
        with pytest.raises(ChannelClosedByBroker) as not_empty:
            ch.queue_delete(queue, if_empty=True)
        assert not_empty.value.reply_code == 406
        ch = conn.channel()
        ch.basic_consume(queue, lambda *args: None)
        with pytest.raises(ChannelClosedByBroker) as in_use:
            conn.channel().queue_delete(queue, if_unused=True)
        assert in_use.value.reply_code == 406
        assert conn.channel().queue_delete(queue).method.message_count == 0  # the consumer took it


def test_deleting_a_queue_cancels_its_consumers_server_side(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = unique("doomed")
        ch.queue_declare(queue)
        cancelled: list = []
        ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
        tag = ch.basic_consume(queue, lambda *args: None)
        conn.channel().queue_delete(queue)
        wait_until(lambda: bool(cancelled), conn)
        assert cancelled == [tag]


def test_tx_rollback_discards_publishes_and_commit_applies_them(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = unique("tx")
        ch.queue_declare(queue)
        ch.tx_select()
        ch.basic_publish("", queue, b"rolled back")
        assert ready_count(conn.channel(), queue) == 0
        ch.tx_rollback()
        ch.basic_publish("", queue, b"committed")
        ch.tx_commit()
        method, _, body = ch.basic_get(queue)
        assert body == b"committed"
        ch.basic_ack(method.delivery_tag)
        ch.tx_rollback()  # the ack is taken back: the message is unacknowledged again
        ch.basic_recover(requeue=True)
        assert ch.basic_get(queue, auto_ack=True)[2] == b"committed"


def test_fanout_topic_and_headers_exchanges_route_as_in_rabbitmq(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        fan, top, hdr = unique("fan"), unique("top"), unique("hdr")
        ch.exchange_declare(fan, "fanout")
        ch.exchange_declare(top, "topic")
        ch.exchange_declare(hdr, "headers")
        q1, q2, q3 = unique("q"), unique("q"), unique("q")
        for q in (q1, q2, q3):
            ch.queue_declare(q)
        ch.queue_bind(q1, fan)
        ch.queue_bind(q2, fan)
        ch.queue_bind(q1, top, "stock.#.nyse")
        ch.queue_bind(q3, hdr, arguments={"x-match": "any", "format": "pdf", "type": "report"})
        ch.basic_publish(fan, "ignored", b"to all")
        ch.basic_publish(top, "stock.usd.ibm.nyse", b"ibm")
        ch.basic_publish(top, "stock.nasdaq", b"not for q1")
        ch.basic_publish(hdr, "", b"pdf", pika.BasicProperties(headers={"format": "pdf"}))
        ch.basic_publish(hdr, "", b"zip", pika.BasicProperties(headers={"format": "zip"}))
        drain = lambda q: [b for b in iter(lambda: ch.basic_get(q, auto_ack=True)[2], None)]  # noqa: E731
        assert drain(q1) == [b"to all", b"ibm"]
        assert drain(q2) == [b"to all"]
        assert drain(q3) == [b"pdf"]


def test_declaration_errors_close_the_channel_with_rabbitmq_codes(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        cases = [
            (lambda ch: ch.exchange_declare(unique("missing"), passive=True), 404),
            (lambda ch: ch.exchange_declare("amq.custom", "direct"), 403),
            (lambda ch: ch.exchange_declare("amq.topic", "direct", durable=True), 406),
            (lambda ch: ch.exchange_declare(unique("odd"), "x-no-such-type"), 406),  # issue 18: not 503
            (lambda ch: ch.exchange_delete("amq.direct"), 403),
            (lambda ch: ch.queue_bind(unique("missing"), "amq.direct"), 404),
            (lambda ch: ch.basic_publish(unique("no-exchange"), "k", b"x") or ch.basic_get("x"), 404),
        ]
        for action, code in cases:
            with pytest.raises(ChannelClosedByBroker) as closed:
                action(conn.channel())
            assert closed.value.reply_code == code
        queue = unique("declared")
        conn.channel().queue_declare(queue, durable=True)
        with pytest.raises(ChannelClosedByBroker) as inequivalent:
            conn.channel().queue_declare(queue, durable=False)
        assert inequivalent.value.reply_code == 406
        assert conn.is_open  # channel errors never cost the connection


def test_purge_unbind_and_an_exclusive_consumer(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = unique("purged")
        ch.queue_declare(queue)
        ch.queue_bind(queue, "amq.direct", "k")
        for _ in range(3):
            ch.basic_publish("amq.direct", "k", b"x")
        assert ch.queue_purge(queue).method.message_count == 3
        ch.queue_unbind(queue, "amq.direct", "k")
        ch.basic_publish("amq.direct", "k", b"unrouted")
        assert ready_count(ch, queue) == 0
        ch.basic_consume(queue, lambda *args: None, exclusive=True)
        with pytest.raises(ChannelClosedByBroker) as refused:
            conn.channel().basic_consume(queue, lambda *args: None)
        assert refused.value.reply_code == 403


def test_a_global_prefetch_limits_the_whole_channel(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch, probe = conn.channel(), conn.channel()
        first, second = unique("g1"), unique("g2")
        for queue in (first, second):
            ch.queue_declare(queue)
            for n in range(2):
                ch.basic_publish("", queue, b"%d" % n)
        ch.basic_qos(prefetch_count=3, global_qos=True)
        got: list = []
        ch.basic_consume(first, lambda c, m, p, b: got.append(m))
        ch.basic_consume(second, lambda c, m, p, b: got.append(m))
        wait_until(lambda: len(got) == 3, conn)
        assert ready_count(probe, first) + ready_count(probe, second) == 1
