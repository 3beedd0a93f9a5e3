"""Flow control for AMQP publishers (core/flow.py through adapters/amqp): an MQTT subscriber that
keeps reading, but slower than a pika publisher to amq.topic, gets a burst far larger than its
outbox whole and in order; the AMQP connection is held briefly meanwhile, as an MQTT one is."""

from __future__ import annotations

import threading
from typing import Iterator

import pika
import pytest

from adapters.mqtt.packets import SubAck, Subscribe, SubscriptionRequest
from tests.conftest import RunningGateway
from tests.e2e.amqp_support import amqp_config, connect
from tests.wire_client import WireClient, read_numbered_qos1


@pytest.fixture
def small_outboxes() -> Iterator[RunningGateway]:
    running = RunningGateway(amqp_config(mqtt={"max_queued_messages": 50, "max_inflight": 5}))
    try:
        yield running
    finally:
        running.stop()


def test_a_pika_burst_to_a_reading_mqtt_subscriber_arrives_whole_and_in_order(small_outboxes: RunningGateway) -> None:
    burst_size = 3000
    with WireClient(small_outboxes.mqtt_port, 4) as sub:
        sub.connect("amqp-reader")
        sub.send(Subscribe(1, (SubscriptionRequest("flow/t", 1),)))
        assert isinstance(sub.recv(), SubAck)
        failures: list[BaseException] = []

        def publish() -> None:
            try:
                connection = connect(small_outboxes)
                channel = connection.channel()
                for i in range(burst_size):  # persistent: QoS 1 for MQTT subscribers
                    channel.basic_publish("amq.topic", "flow.t", str(i).encode(),
                                          pika.BasicProperties(delivery_mode=2))
                connection.close()
            except BaseException as exc:  # reported by the test thread
                failures.append(exc)

        publisher = threading.Thread(target=publish, daemon=True)
        publisher.start()
        received = read_numbered_qos1(sub, burst_size)
        publisher.join(30)
        session = small_outboxes.call(lambda: small_outboxes.broker.mqtt_sessions.get("amqp-reader"))
        counters = small_outboxes.call(lambda: session.counters)
    assert not failures
    assert received == list(range(burst_size))  # none dropped by the 50-message outbox, none twice
    assert counters.dropped_oldest == 0 and counters.queue_full == 0
