"""Exchange-to-exchange bindings (issue 18) with pika, aio-pika and paho, as RabbitMQ apps use them.

exchange.bind was 540; now a message the source routes to the destination is
routed again there, cycles end, a queue gets one copy, amq.topic (MQTT's
topic space) is a source or a destination, durable bindings survive a
restart, and the admin API lists them with destination_type "exchange".
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aio_pika
import aiormq
import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import gateway, http
from tests.e2e.amqp_support import TIMEOUT, amqp_config, amqp_port, connect, next_message, ready_count, unique
from tests.e2e.clients import PahoClient

__all__ = ["gateway"]  # the module's gateway with the admin API (a fixture)


def test_pika_a_message_is_routed_again_by_the_destination_and_listed_by_the_admin_api(
        gateway: RunningGateway) -> None:
    source, destination = unique("orders"), unique("eu-orders")
    with connect(gateway) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        assert conn._impl.server_capabilities["exchange_exchange_bindings"] is True
        ch.exchange_declare(source, "topic")
        ch.exchange_declare(destination, "direct")
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.exchange_bind(destination, source, "order.eu.*")
        ch.queue_bind(queue, destination, "order.eu.new")
        ch.basic_publish(source, "order.eu.new", b"routed by topic then direct")
        ch.basic_publish(source, "order.eu.paid", b"the direct exchange has no binding for it")
        ch.basic_publish(source, "order.us.new", b"the topic exchange has no binding for it")
        assert next_message(ch, queue, auto_ack=True)[2] == b"routed by topic then direct"
        assert ready_count(ch, queue) == 0
        bindings = http(gateway, "GET", "/api/v1/amqp/bindings").json()["bindings"]
        assert {"vhost": "/", "source": source, "destination": destination, "destination_type": "exchange",
                "routing_key": "order.eu.*", "arguments": {}} in bindings
        ch.exchange_unbind(destination, source, "order.eu.*")
        ch.basic_publish(source, "order.eu.new", b"unbound")
        assert ready_count(ch, queue) == 0
        ch.exchange_delete(source)
        ch.exchange_delete(destination)
        with pytest.raises(ChannelClosedByBroker) as closed:
            conn.channel().exchange_bind(unique("missing"), "amq.direct", "#")
        assert closed.value.reply_code == 404
        with pytest.raises(ChannelClosedByBroker) as closed:
            conn.channel().exchange_bind("", "amq.direct", "#")
        assert closed.value.reply_code == 403


def test_pika_a_cycle_of_bindings_ends_and_each_queue_gets_one_copy(gateway: RunningGateway) -> None:
    a, b = unique("ring-a"), unique("ring-b")
    with connect(gateway) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        for name in (a, b):
            ch.exchange_declare(name, "fanout", auto_delete=True)
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.exchange_bind(b, a)
        ch.exchange_bind(a, b)
        ch.queue_bind(queue, a)
        ch.queue_bind(queue, b)
        ch.basic_publish(a, "", b"once")
        assert next_message(ch, queue, auto_ack=True)[2] == b"once"
        assert ready_count(ch, queue) == 0


def test_paho_publishes_through_amq_topic_into_a_bound_exchange_and_back_out_to_mqtt(
        gateway: RunningGateway) -> None:
    alerts, outbound = unique("alerts"), unique("outbound")
    subscriber = PahoClient(gateway.mqtt_port, unique("sub"), "5").connect()
    publisher = PahoClient(gateway.mqtt_port, unique("pub"), "5").connect()
    try:
        with connect(gateway) as conn:
            ch = conn.channel()
            ch.exchange_declare(alerts, "headers", auto_delete=True)
            ch.exchange_declare(outbound, "fanout", auto_delete=True)
            queue = ch.queue_declare("", exclusive=True).method.queue
            ch.exchange_bind(alerts, "amq.topic", "plant.*.alarm")  # amq.topic as the source
            ch.queue_bind(queue, alerts, arguments={"x-match": "all"})
            publisher.publish("plant/boiler/alarm", b"too hot", qos=1)
            method, _, body = next_message(ch, queue, auto_ack=True)
            assert (body, method.routing_key) == (b"too hot", "plant.boiler.alarm")
            subscriber.subscribe("cmd/#", qos=1)
            ch.exchange_bind("amq.topic", outbound)  # amq.topic as the destination
            ch.basic_publish(outbound, "cmd.valve", b"close")
            received = subscriber.inbox.get()
            assert (received.topic, received.payload) == ("cmd/valve", b"close")
    finally:
        subscriber.close()
        publisher.close()


def test_aio_pika_binds_and_unbinds_and_an_auto_delete_source_goes_with_its_last_binding(
        gateway: RunningGateway) -> None:
    async def scenario() -> None:
        conn = await aio_pika.connect(f"amqp://guest:guest@{LOOPBACK}:{amqp_port(gateway)}/")
        try:
            channel = await conn.channel()
            source = await channel.declare_exchange(unique("src"), aio_pika.ExchangeType.TOPIC, auto_delete=True)
            destination = await channel.declare_exchange(unique("dst"), aio_pika.ExchangeType.FANOUT)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(destination)
            await asyncio.wait_for(destination.bind(source, "metrics.#"), TIMEOUT)
            await source.publish(aio_pika.Message(b"cpu"), "metrics.cpu")
            message = await queue.get(timeout=TIMEOUT)
            assert message.body == b"cpu"
            await message.ack()
            await asyncio.wait_for(destination.unbind(source, "metrics.#"), TIMEOUT)
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
                await (await conn.channel()).declare_exchange(source.name, passive=True)
            await destination.delete()
        finally:
            await conn.close()

    asyncio.run(scenario())


def test_a_durable_binding_between_durable_exchanges_survives_a_restart(tmp_path: Path) -> None:
    config = amqp_config(store={"path": str(tmp_path / "store.db")})
    running = RunningGateway(config)
    try:
        with connect(running) as conn:
            ch = conn.channel()
            ch.exchange_declare("ingest", "direct", durable=True)
            ch.exchange_declare("archive", "fanout", durable=True)
            ch.queue_declare("archived", durable=True)
            ch.queue_bind("archived", "archive")
            ch.exchange_bind("archive", "ingest", "log")
    finally:
        running.stop()
    running = RunningGateway(config)
    try:
        with connect(running) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_publish("ingest", "log", b"after the restart", pika.BasicProperties(delivery_mode=2))
            assert next_message(ch, "archived", auto_ack=True)[2] == b"after the restart"
    finally:
        running.stop()
