"""The management UI's AMQP actions (issue 20) with pika: queue counters, purge, delete, publish to an exchange."""

from __future__ import annotations

from typing import Iterator

import pika
import pytest

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import TIMEOUT, eventually, gateway, http
from tests.e2e.clients import PahoClient

__all__ = ["gateway"]  # the module's gateway with the admin API (a fixture)


@pytest.fixture
def channel(gateway: RunningGateway) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        LOOPBACK, gateway.gateway.ports["amqp"], blocked_connection_timeout=TIMEOUT))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def queue_row(gateway: RunningGateway, name: str) -> dict:
    rows = http(gateway, "GET", "/api/v1/amqp/queues").json()["queues"]
    return next(row for row in rows if row["name"] == name)


def test_queue_rows_count_ready_unacked_published_and_delivered(gateway: RunningGateway, channel) -> None:
    channel.queue_declare("ui-counted")
    for n in range(3):
        channel.basic_publish("", "ui-counted", f"m{n}".encode())
    row = eventually(lambda: (r := queue_row(gateway, "ui-counted"))["messages_ready"] == 3 and r)
    assert (row["messages_unacked"], row["publish_total"], row["deliver_total"], row["vhost"]) == (0, 3, 0, "/")
    channel.basic_qos(prefetch_count=2)
    taken = []
    channel.basic_consume("ui-counted", lambda ch, method, props, body: taken.append(method.delivery_tag))
    channel.connection.process_data_events(time_limit=0)
    eventually(lambda: channel.connection.process_data_events(time_limit=0.05) or len(taken) == 2)
    row = queue_row(gateway, "ui-counted")
    assert (row["messages_ready"], row["messages_unacked"], row["publish_total"], row["deliver_total"]) == (1, 2, 3, 2)


def test_purge_empties_a_queue(gateway: RunningGateway, channel) -> None:
    channel.queue_declare("ui-purged")
    for n in range(4):
        channel.basic_publish("", "ui-purged", b"x")
    eventually(lambda: queue_row(gateway, "ui-purged")["messages_ready"] == 4)
    answer = http(gateway, "DELETE", "/api/v1/amqp/queues/%2F/ui-purged/contents")
    assert answer.status == 200 and answer.json() == {"purged": 4}
    assert channel.queue_declare("ui-purged", passive=True).method.message_count == 0
    assert channel.basic_get("ui-purged", auto_ack=True) == (None, None, None)
    assert http(gateway, "DELETE", "/api/v1/amqp/queues/%2F/no-such-queue/contents").status == 404
    assert http(gateway, "DELETE", "/api/v1/amqp/queues/nowhere/ui-purged/contents").status == 404


def test_delete_honours_if_empty_and_if_unused(gateway: RunningGateway, channel) -> None:
    channel.queue_declare("ui-deleted")
    channel.basic_publish("", "ui-deleted", b"still here")
    eventually(lambda: queue_row(gateway, "ui-deleted")["messages_ready"] == 1)
    refused = http(gateway, "DELETE", "/api/v1/amqp/queues/%2F/ui-deleted?if_empty=true")
    assert refused.status == 409 and "not empty" in refused.json()["error"]["message"]
    channel.basic_consume("ui-deleted", lambda *args: None)
    assert http(gateway, "DELETE", "/api/v1/amqp/queues/%2F/ui-deleted?if_unused=true").status == 409
    answer = http(gateway, "DELETE", "/api/v1/amqp/queues/%2F/ui-deleted")
    assert answer.status == 200 and answer.json() == {"deleted": "ui-deleted"}
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare("ui-deleted", passive=True)
    assert closed.value.reply_code == 404
    assert http(gateway, "DELETE", "/api/v1/amqp/queues/%2F/ui-deleted").status == 404


def test_publish_to_an_exchange_reaches_a_pika_consumer_with_its_properties(gateway: RunningGateway, channel) -> None:
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "amq.direct", "ui.key")
    body = {"routing_key": "ui.key", "payload": "aGVsbG8=", "payload_encoding": "base64",
            "properties": {"content_type": "text/plain", "headers": {"source": "ui"}, "delivery_mode": 2,
                           "type": "greeting"}}
    answer = http(gateway, "POST", "/api/v1/amqp/exchanges/%2F/amq.direct/publish", body)
    assert answer.status == 200 and answer.json() == {"routed": True}
    method, properties, payload = next(channel.consume(queue, auto_ack=True, inactivity_timeout=TIMEOUT))
    assert method is not None and payload == b"hello"
    assert (properties.content_type, properties.headers, properties.delivery_mode, properties.type) == (
        "text/plain", {"source": "ui"}, 2, "greeting")
    channel.cancel()
    unrouted = http(gateway, "POST", "/api/v1/amqp/exchanges/%2F/amq.direct/publish",
                    {"routing_key": "nobody", "payload": "x", "payload_encoding": "string"})
    assert unrouted.json() == {"routed": False}
    assert http(gateway, "POST", "/api/v1/amqp/exchanges/%2F/no-such/publish", {"payload": "x"}).status == 404
    assert http(gateway, "POST", "/api/v1/amqp/exchanges/%2F/amq.direct/publish",
                {"payload": "x", "properties": {"delivery_mode": "2"}}).status == 400


def test_publish_to_amq_topic_reaches_mqtt_subscribers(gateway: RunningGateway) -> None:
    subscriber = PahoClient(gateway.mqtt_port, "ui-amqp-topic", "5").connect()
    try:
        subscriber.subscribe("ui/from/amqp", qos=1)
        answer = http(gateway, "POST", "/api/v1/amqp/exchanges/%2F/amq.topic/publish",
                      {"routing_key": "ui.from.amqp", "payload": "over the bridge", "payload_encoding": "string"})
        assert answer.json() == {"routed": True}
        received = subscriber.inbox.get()
        assert (received.topic, received.payload) == ("ui/from/amqp", b"over the bridge")
    finally:
        subscriber.close()
