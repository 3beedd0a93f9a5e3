"""A message one protocol cannot carry breaks nobody: AMQP headers MQTT 5 cannot hold.

An AMQP publish to amq.topic whose headers hold a string with U+0000, or one longer than
65,535 bytes (both valid AMQP), while MQTT 5 subscribers listen over TCP and WebSocket and a
CoAP client observes: every subscriber gets the message with what MQTT can carry (the odd
user properties left out, the payload untouched), nobody is disconnected, and the AMQP
publisher's connection stays open. Published retained, new MQTT 5 subscribers get it too.
"""

from __future__ import annotations

from typing import Iterator

import pika
import pytest
from aiocoap.numbers.codes import Code

from adapters.mqtt.outbound import ADAPTED
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.amqp_support import amqp_port
from tests.e2e.clients import PahoClient
from tests.e2e.coap_clients import RawCoAP, request
from tests.e2e.test_ws import PahoWSClient

ODD_HEADERS = {"nul": "a\x00b", "long": "x" * 70_000, "fine": "ok"}


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(make_config(
        amqp={"enabled": True, "listen": f"{LOOPBACK}:0"}, ws={"enabled": True, "listen": f"{LOOPBACK}:0"},
        coap={"enabled": True, "listen": f"{LOOPBACK}:0"}, mqtt={"max_packet_size": 1_048_576}))
    try:
        yield running
    finally:
        running.stop()


def amqp_publish(gateway: RunningGateway, routing_key: str, body: bytes, retain: bool = False) -> pika.BlockingConnection:
    conn = pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, amqp_port(gateway)))
    ch = conn.channel()
    ch.confirm_delivery()
    headers = dict(ODD_HEADERS, **({"x-retain": True} if retain else {}))
    ch.basic_publish("amq.topic", routing_key, body, pika.BasicProperties(headers=headers, delivery_mode=2))
    return conn


def test_mqtt5_tcp_and_websocket_subscribers_and_a_coap_observer_all_get_it(gateway: RunningGateway) -> None:
    tcp = PahoClient(gateway.mqtt_port, "odd-tcp", "5").connect()
    ws = PahoWSClient(gateway.gateway.ports["ws"], "odd-ws", "5").connect()
    tcp.subscribe("odd/#", qos=1)
    ws.subscribe("odd/#", qos=1)
    observer = RawCoAP(gateway.gateway.ports["coap"])
    first = observer.ask(request(Code.GET, "/ps/odd/t", token=b"\x51", observe=0))
    assert first.code.is_successful()
    before = ADAPTED.user_properties
    conn = amqp_publish(gateway, "odd.t", b"payload kept")
    try:
        for client in (tcp, ws):
            received = client.inbox.until_topic("odd/t")[-1]
            assert received.payload == b"payload kept"
            assert received.properties["UserProperty"] == [("fine", "ok")]
        notification = observer.receive()
        while notification.payload != b"payload kept":
            notification = observer.receive()
        assert conn.is_open  # the publisher was not told anything went wrong: nothing did
        ch = conn.channel()
        ch.basic_publish("amq.topic", "odd.t", b"second")  # and it goes on publishing
        assert tcp.inbox.until_topic("odd/t")[-1].payload == b"second"
        assert tcp.client.is_connected() and ws.client.is_connected()
    finally:
        conn.close()
        observer.close()
        tcp.close()
        ws.close()
    assert ADAPTED.user_properties >= before + 2


def test_published_retained_it_greets_new_mqtt5_subscribers_without_disconnecting_them(gateway: RunningGateway) -> None:
    amqp_publish(gateway, "odd.retained", b"kept", retain=True).close()
    for attempt in range(2):  # before the fix, each reconnect was disconnected again by the same message
        client = PahoClient(gateway.mqtt_port, f"odd-late-{attempt}", "5").connect()
        client.subscribe("odd/retained", qos=1)
        received = client.inbox.until_topic("odd/retained")[-1]
        assert received.payload == b"kept" and received.retain
        assert received.properties["UserProperty"] == [("fine", "ok")]
        assert client.client.is_connected()
        client.close()
