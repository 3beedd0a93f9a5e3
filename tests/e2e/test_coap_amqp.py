"""CoAP and AMQP through the one core: coap-client-notls posts reach a pika queue on amq.topic, and an
AMQP publish reaches a coap-client observer with its content type as Content-Format."""

from __future__ import annotations

from typing import Iterator

import pika
import pytest

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.amqp_support import connect, next_message
from tests.e2e.coap_clients import CoAPClientProcess, coap_client, coap_port


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(make_config(amqp={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                         coap={"enabled": True, "listen": f"{LOOPBACK}:0"}))
    try:
        yield running
    finally:
        running.stop()


def url(gateway: RunningGateway, path: str) -> str:
    return f"coap://127.0.0.1:{coap_port(gateway)}{path}"


def test_a_coap_post_reaches_an_amqp_queue_bound_to_amq_topic(gateway: RunningGateway) -> None:
    with connect(gateway) as conn:
        channel = conn.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, "amq.topic", "sensors.#")
        coap_client("-m", "post", "-t", "50", url(gateway, "/ps/sensors/t1?expiry=60"), "-e", '{"t":21.5}')
        method, properties, body = next_message(channel, queue)
    assert (method.routing_key, body) == ("sensors.t1", b'{"t":21.5}')
    assert (properties.content_type, properties.delivery_mode) == ("application/json", 2)  # CON = QoS 1
    assert 59_000 <= int(properties.expiration) <= 60_000


def test_an_amqp_publish_reaches_a_coap_client_observer(gateway: RunningGateway) -> None:
    observer = CoAPClientProcess("-v", "6", "-s", "60", url(gateway, "/ps/farm/+"))
    try:
        observer.wait_for("c:2.05")
        with connect(gateway) as conn:
            channel = conn.channel()
            channel.confirm_delivery()
            channel.basic_publish("amq.topic", "farm.barn", b"hay",
                                  pika.BasicProperties(content_type="application/cbor", delivery_mode=2))
        observer.wait_for("<<686179>>")  # coap-client shows a CBOR payload in hex: b"hay"
        line = next(line for line in observer.lines if "Location-Path:barn" in line)
        assert "t:CON" in line and "Content-Format:application/cbor" in line and "Location-Path:farm" in line
    finally:
        observer.close()
