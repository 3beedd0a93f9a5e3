"""basic.properties.timestamp is a 64-bit integer carried untouched, as real clients send it (issue 22).

pika publishes timestamps past any calendar (Go's amqp091 sends random 63-bit
ones); the gateway used to decode them into a datetime and closed the
connection with 501. Now they reach AMQP consumers as the same integers, go
through dead-lettering, and meet MQTT 5 as the user property `amqp-timestamp`.
"""

from __future__ import annotations

import pika
import pytest

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import amqp_gateway, connect, next_message, unique
from tests.e2e.clients import PahoClient
from tests.e2e.test_amqp_cross_protocol import publish_v5

__all__ = ["amqp_gateway"]

STAMPS = [0, 1_700_000_000, 1_700_000_000_123, 2**62, 2**63 + 5, 2**64 - 1]


def test_pika_timestamps_beyond_the_calendar_reach_consumers_as_the_same_integers(
        amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        queue = ch.queue_declare(unique("stamps"), exclusive=True).method.queue
        for stamp in STAMPS:
            ch.basic_publish("", queue, str(stamp).encode(), pika.BasicProperties(timestamp=stamp))
        for stamp in STAMPS:
            _, properties, body = ch.basic_get(queue, auto_ack=True)
            assert (body, properties.timestamp) == (str(stamp).encode(), stamp)
        assert conn.is_open  # no 501


def test_a_dead_lettered_message_keeps_its_64_bit_timestamp(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        dead = ch.queue_declare(unique("dead"), exclusive=True).method.queue
        work = ch.queue_declare(unique("work"), exclusive=True, arguments={
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead}).method.queue
        ch.basic_publish("", work, b"late", pika.BasicProperties(timestamp=2**64 - 1, expiration="0"))
        _, properties, body = next_message(ch, dead, auto_ack=True)
        assert body == b"late" and properties.timestamp == 2**64 - 1
        assert properties.headers["x-death"][0]["reason"] == "expired"


@pytest.mark.parametrize("stamp", [1_700_000_000, 2**64 - 1])
def test_an_amqp_timestamp_meets_mqtt5_as_a_user_property_and_comes_back(
        amqp_gateway: RunningGateway, stamp: int) -> None:
    mqtt_client = PahoClient(amqp_gateway.mqtt_port, unique("stamp"), "5").connect()
    try:
        mqtt_client.subscribe("stamp/+", qos=1)
        with connect(amqp_gateway) as conn:
            ch = conn.channel()
            queue = ch.queue_declare("", exclusive=True).method.queue
            ch.queue_bind(queue, "amq.topic", "stamp.back")
            ch.basic_publish("amq.topic", "stamp.out", b"to mqtt", pika.BasicProperties(timestamp=stamp))
            received = mqtt_client.inbox.get()
            assert (received.topic, received.payload) == ("stamp/out", b"to mqtt")
            assert received.properties["UserProperty"] == [("amqp-timestamp", str(stamp))]
            # An MQTT 5 publisher sets the AMQP timestamp through the same user property.
            publish_v5(mqtt_client, "stamp/back", b"to amqp", UserProperty=[("amqp-timestamp", str(stamp)),
                                                                             ("site", "north")])
            _, properties, body = next_message(ch, queue, auto_ack=True)
            assert body == b"to amqp" and properties.timestamp == stamp
            assert properties.headers == {"site": "north"}
    finally:
        mqtt_client.close()
