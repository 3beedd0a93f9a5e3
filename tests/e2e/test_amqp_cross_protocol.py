"""AMQP and MQTT through the one core: amq.topic is the shared topic space, every property maps both ways.

Includes the issue's "done when": a pika consumer written for RabbitMQ receives
MQTT sensor data from amq.topic unchanged, and an aio-pika RPC caller with
reply_to and correlation_id gets its answer from an MQTT 5 responder (paho v5).
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import paho.mqtt.client as mqtt
import pika
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from adapters.mqtt.packets import PubAck, Publish
from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.amqp_support import (
    TIMEOUT, amqp_config, amqp_gateway, amqp_port, connect, next_message, unique, wait_until,
)
from tests.e2e.clients import PahoClient, mosquitto_pub
from tests.wire_client import WireClient

__all__ = ["amqp_gateway"]


def publish_v5(client: PahoClient, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
               **props: object) -> None:
    properties = Properties(PacketTypes.PUBLISH)
    for name, value in props.items():
        setattr(properties, name, value)
    info = client.client.publish(topic, payload, qos, retain, properties=properties)
    info.wait_for_publish(TIMEOUT)
    assert info.is_published()


def test_an_mqtt5_publish_reaches_an_amqp_queue_with_every_property_mapped(amqp_gateway: RunningGateway) -> None:
    mqtt_client = PahoClient(amqp_gateway.mqtt_port, unique("pub"), "5").connect()
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, "amq.topic", "plant.*.temp")
        publish_v5(mqtt_client, "plant/line1/temp", b"21.5", qos=1, ContentType="application/json",
                   CorrelationData=b"corr-1", ResponseTopic="plant/line1/ack", MessageExpiryInterval=60,
                   UserProperty=[("unit", "C"), ("unit", "K"), ("site", "north")])
        method, properties, body = next_message(ch, queue)
        assert body == b"21.5"
        assert (method.exchange, method.routing_key) == ("amq.topic", "plant.line1.temp")
        assert properties.content_type == "application/json"
        assert properties.correlation_id == "corr-1"
        assert properties.reply_to == "plant.line1.ack"
        assert properties.headers == {"unit": ["C", "K"], "site": "north"}
        assert 59_000 <= int(properties.expiration) <= 60_000
        assert properties.delivery_mode == 2  # QoS 1
        publish_v5(mqtt_client, "plant/line1/temp", b"qos0", qos=0)
        _, properties, body = next_message(ch, queue, auto_ack=True)
        assert body == b"qos0" and properties.delivery_mode == 1 and properties.headers is None
    mqtt_client.close()


def test_an_amqp_publish_reaches_mqtt5_subscribers_with_every_property_mapped(amqp_gateway: RunningGateway) -> None:
    exact, plus, hash_ = (PahoClient(amqp_gateway.mqtt_port, unique("sub"), "5").connect() for _ in range(3))
    exact.subscribe("farm/b/c", qos=1)
    plus.subscribe("farm/+/c", qos=1)
    hash_.subscribe("#", qos=1)
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("amq.topic", "farm.b.c", b"payload", pika.BasicProperties(
            content_type="text/plain", correlation_id="c-9", reply_to="farm.replies", delivery_mode=2,
            expiration="30000", headers={"a": "1", "n": 7}))
    for client in (exact, plus, hash_):
        received = client.inbox.until_topic("farm/b/c")[-1]
        assert received.payload == b"payload" and received.qos == 1
        props = received.properties
        assert props["ContentType"] == "text/plain"
        assert props["CorrelationData"] == b"c-9"
        assert props["ResponseTopic"] == "farm/replies"
        assert props["UserProperty"] == [("a", "1"), ("n", "7")]
        assert 29 <= props["MessageExpiryInterval"] <= 30
    for client in (exact, plus, hash_):
        client.close()


def test_a_transient_amqp_publish_is_qos_0_for_mqtt(amqp_gateway: RunningGateway) -> None:
    sub = PahoClient(amqp_gateway.mqtt_port, unique("sub"), "5").connect()
    sub.subscribe("transient/t", qos=1)
    with connect(amqp_gateway) as conn:
        conn.channel().basic_publish("amq.topic", "transient.t", b"x", pika.BasicProperties(delivery_mode=1))
    assert sub.inbox.get().qos == 0
    sub.close()


def test_mqtt_topics_reach_each_bound_queue_once_whatever_bindings_match(amqp_gateway: RunningGateway) -> None:
    pub = PahoClient(amqp_gateway.mqtt_port, unique("pub"), "311").connect()
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        one, wide, mid = (ch.queue_declare("", exclusive=True).method.queue for _ in range(3))
        for key in ("x.y.z", "x.*.z", "x.#"):
            ch.queue_bind(one, "amq.topic", key)
        ch.queue_bind(wide, "amq.topic", "#")
        ch.queue_bind(mid, "amq.topic", "x.#.z")  # '#' before the end: no MQTT filter says it exactly
        pub.publish("x/y/z", b"once", qos=1)
        pub.publish("x/y/other", b"not for mid", qos=1)
        wait_until(lambda: ch.queue_declare(wide, passive=True).method.message_count == 2, conn)
        assert [ch.basic_get(one, auto_ack=True)[2] for _ in range(2)] == [b"once", b"not for mid"]
        assert ch.basic_get(mid, auto_ack=True)[2] == b"once"
        assert ch.basic_get(mid, auto_ack=True)[2] is None
    pub.close()


def test_dots_and_percent_signs_in_levels_survive_both_directions(amqp_gateway: RunningGateway) -> None:
    sub = PahoClient(amqp_gateway.mqtt_port, unique("sub"), "5").connect()
    sub.subscribe("fw/v1.2/100%", qos=1)
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, "amq.topic", "fw.v1%2E2.*")
        ch.basic_publish("amq.topic", "fw.v1%2E2.100%25", b"from amqp")
        assert sub.inbox.get().topic == "fw/v1.2/100%"
        method, _, body = next_message(ch, queue, auto_ack=True)
        assert (method.routing_key, body) == ("fw.v1%2E2.100%25", b"from amqp")
    sub.close()


def test_retained_messages_cross_over_in_both_directions(amqp_gateway: RunningGateway) -> None:
    topic = unique("retained")
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("amq.topic", f"{topic}.from-amqp", b"last value",
                         pika.BasicProperties(headers={"x-retain": True}))
        late = PahoClient(amqp_gateway.mqtt_port, unique("late"), "5").connect()
        late.subscribe(f"{topic}/from-amqp", qos=1)
        received = late.inbox.get()
        assert (received.payload, received.retain) == (b"last value", True)
        mosquitto_pub(amqp_gateway.mqtt_port, f"{topic}/from-mqtt", b"kept", qos=1, retain=True)
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, "amq.topic", f"{topic}.from-mqtt")  # like a subscribe: the last value arrives
        _, properties, body = next_message(ch, queue, auto_ack=True)
        assert body == b"kept" and properties.headers == {"x-retain": True}
        late.close()


def test_a_rabbitmq_pika_consumer_receives_mqtt_sensor_data_unchanged(amqp_gateway: RunningGateway) -> None:
    """Done when, part 1: an unchanged RabbitMQ consumer, bound to amq.topic, reads MQTT devices."""
    readings = [b'{"id":"t-%d","temp":%d.5}' % (n, 20 + n) for n in range(5)] + [bytes(range(256))]
    received: list[tuple[str, bytes]] = []
    # --- the consumer exactly as written for RabbitMQ ---
    connection = pika.BlockingConnection(pika.ConnectionParameters(host=LOOPBACK, port=amqp_port(amqp_gateway)))
    channel = connection.channel()
    result = channel.queue_declare(queue="", exclusive=True)
    queue_name = result.method.queue
    channel.queue_bind(exchange="amq.topic", queue=queue_name, routing_key="sensors.#")

    def callback(ch, method, properties, body):  # type: ignore[no-untyped-def]
        received.append((method.routing_key, body))
        ch.basic_ack(delivery_tag=method.delivery_tag)

    channel.basic_qos(prefetch_count=10)
    channel.basic_consume(queue=queue_name, on_message_callback=callback)
    # --- the devices: an MQTT 3.1.1 client and mosquitto_pub ---
    device = PahoClient(amqp_gateway.mqtt_port, "sensor-7", "311").connect()
    for body in readings[:3]:
        device.publish("sensors/hall/temp", body, qos=1)
    for body in readings[3:]:
        mosquitto_pub(amqp_gateway.mqtt_port, "sensors/yard/temp", body, qos=1)
    wait_until(lambda: len(received) == len(readings), connection)
    assert received == [("sensors.hall.temp", b) for b in readings[:3]] + [("sensors.yard.temp", b) for b in readings[3:]]
    device.close()
    connection.close()


async def test_an_aio_pika_rpc_caller_gets_its_answer_from_an_mqtt5_responder(amqp_gateway: RunningGateway) -> None:
    """Done when, part 2: request over AMQP with reply_to and correlation_id, answered over MQTT 5."""
    responder = PahoClient(amqp_gateway.mqtt_port, "adder", "5")

    def answer(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        a, b = (int(x) for x in message.payload.split(b","))
        props = Properties(PacketTypes.PUBLISH)
        props.CorrelationData = message.properties.CorrelationData
        props.ContentType = "text/plain"
        client.publish(message.properties.ResponseTopic, str(a + b).encode(), 1, properties=props)

    responder.connect()
    responder.client.on_message = answer
    responder.subscribe("rpc/add", qos=1)

    connection = await aio_pika.connect(f"amqp://guest:guest@{LOOPBACK}:{amqp_port(amqp_gateway)}/")
    async with connection:
        channel = await connection.channel()
        callback_queue = await channel.declare_queue(exclusive=True)
        await callback_queue.bind("amq.topic", routing_key=callback_queue.name)
        futures: dict[str, asyncio.Future[aio_pika.abc.AbstractIncomingMessage]] = {}

        async def on_response(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                futures.pop(message.correlation_id).set_result(message)

        await callback_queue.consume(on_response)
        exchange = await channel.get_exchange("amq.topic")
        for a, b in ((2, 3), (40, 2)):
            correlation_id = str(uuid.uuid4())
            futures[correlation_id] = asyncio.get_running_loop().create_future()
            waiter = futures[correlation_id]
            await exchange.publish(aio_pika.Message(f"{a},{b}".encode(), correlation_id=correlation_id,
                                                    reply_to=callback_queue.name), routing_key="rpc.add")
            reply = await asyncio.wait_for(waiter, TIMEOUT)
            assert reply.body == str(a + b).encode()
            assert reply.correlation_id == correlation_id
            assert reply.content_type == "text/plain"
    responder.close()


def test_origin_header_names_the_mqtt_producer_and_other_vhosts_keep_their_own_amq_topic() -> None:
    running = RunningGateway(amqp_config(amqp={"origin_header": True, "vhosts": ["/", "lab"]}))
    try:
        params = dict(host=LOOPBACK, port=amqp_port(running))
        with pika.BlockingConnection(pika.ConnectionParameters(**params)) as shared, \
                pika.BlockingConnection(pika.ConnectionParameters(virtual_host="lab", **params)) as lab:
            ch, lab_ch = shared.channel(), lab.channel()
            queue = ch.queue_declare("", exclusive=True).method.queue
            lab_queue = lab_ch.queue_declare("", exclusive=True).method.queue
            ch.queue_bind(queue, "amq.topic", "meter.#")
            lab_ch.queue_bind(lab_queue, "amq.topic", "meter.#")
            device = PahoClient(running.mqtt_port, "meter-9", "5").connect()
            device.publish("meter/kwh", b"12", qos=1)
            _, properties, body = next_message(ch, queue, auto_ack=True)
            assert body == b"12" and properties.headers == {"x-origin-client-id": "meter-9"}
            lab_ch.basic_publish("amq.topic", "meter.kwh", b"lab only")
            assert lab_ch.basic_get(lab_queue, auto_ack=True)[2] == b"lab only"
            assert ch.basic_get(queue, auto_ack=True)[2] is None  # "lab" is not the shared topic space
            device.close()
    finally:
        running.stop()


def test_an_mqtt_topic_too_long_for_a_routing_key_skips_amqp_queues_and_breaks_no_consumer(
    amqp_gateway: RunningGateway,
) -> None:
    """Found by the fuzzer: a PUBLISH to a 300-byte topic reached a queue bound to #, and its AMQP
    consumer's connection was closed with 541 (the routing key did not fit a short string)."""
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        queue = ch.queue_declare("", exclusive=True).method.queue
        prefix = unique("long")
        ch.queue_bind(queue, "amq.topic", f"{prefix}.#")
        with WireClient(amqp_gateway.mqtt_port, 4) as publisher:
            publisher.connect(prefix)
            publisher.send(Publish(f"{prefix}/" + "x" * 300, b"too long", qos=0))
            publisher.send(Publish(f"{prefix}/after", b"fits", qos=1, packet_id=1))
            assert isinstance(publisher.recv(), PubAck)
        method, _, body = next_message(ch, queue, auto_ack=True)
        assert (method.routing_key, body) == (f"{prefix}.after", b"fits")
