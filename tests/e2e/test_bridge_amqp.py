"""AMQP bridges against Debian's rabbitmq-server as the upstream, with paho on the gateway's side and
pika on RabbitMQ's.

Out to an exchange the bridge declares (or one that exists already) with the AMQP properties our
own listener gives, in from a queue with the properties mapped back, an outage of RabbitMQ with
nothing acknowledged lost (in order), a message coming back through the bridge's own queue
(stopped by the via marker), and bad credentials.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import pika
import pytest

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.bridge_support import RabbitMQ, _rabbitmq_installed, needs_rabbitmq  # noqa: F401
from tests.e2e.clients import TIMEOUT, PahoClient
from tests.e2e.test_bridge_mqtt import publish_v5
from tests.e2e.test_mqtt_sessions import wait_until

pytestmark = needs_rabbitmq

FAST = {"reconnect_min": 0.05, "reconnect_max": 0.4}


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    broker = RabbitMQ(tmp_path_factory.mktemp("rabbitmq")).start()
    try:
        yield broker
    finally:
        broker.close()


def channel(rabbit: RabbitMQ) -> Any:
    return pika.BlockingConnection(pika.URLParameters(rabbit.url)).channel()


def bridged(**table: Any) -> RunningGateway:
    return RunningGateway(make_config(bridge={"amqp": [{"name": "backend", **FAST, **table}]}))


def the_bridge(gateway: RunningGateway) -> Any:
    return gateway.gateway.bridges.bridges[0]


def wait_connected(gateway: RunningGateway, connected: bool = True) -> None:
    bridge = the_bridge(gateway)
    assert wait_until(lambda: bridge.connected is connected, 2 * TIMEOUT), gateway.call(bridge.describe)


def get(ch: Any, queue: str) -> tuple[Any, Any, bytes]:
    """The next message of `queue` (waits for it)."""
    found: list[tuple[Any, Any, bytes]] = []
    assert wait_until(lambda: found.append(ch.basic_get(queue, auto_ack=True)) or found[-1][0] is not None, TIMEOUT)
    return found[-1]


def test_local_messages_reach_an_exchange_the_bridge_declares_with_amqp_properties(rabbit: RabbitMQ) -> None:
    gateway = bridged(url=rabbit.url, exchange="telemetry", out=["sensors/#"])
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    ch = channel(rabbit)
    try:
        wait_connected(gateway)
        assert "telemetry\ttopic\ttrue" in rabbit.ctl("list_exchanges", "name", "type", "durable")
        ch.queue_declare("telemetry-q", durable=True)
        ch.queue_bind("telemetry-q", "telemetry", "sensors.#")
        publish_v5(near, "sensors/t1", b"21.5", ContentType="text/plain", CorrelationData=b"c-1",
                   ResponseTopic="replies/t1", UserProperty=[("unit", "C")], MessageExpiryInterval=600)
        near.publish("other/t2", b"not bridged", 1)
        near.publish("sensors/a.b", b"qos0", 0)
        method, props, body = get(ch, "telemetry-q")
        assert (method.exchange, method.routing_key, body) == ("telemetry", "sensors.t1", b"21.5")
        assert (props.content_type, props.correlation_id, props.reply_to, props.delivery_mode) == (
            "text/plain", "c-1", "replies.t1", 2)
        assert 590_000 <= int(props.expiration) <= 600_000
        assert props.headers["unit"] == "C" and props.headers["rosettamq-via"] == gateway.gateway.bridges.node
        method, props, body = get(ch, "telemetry-q")
        assert (method.routing_key, body, props.delivery_mode) == ("sensors.a%2Eb", b"qos0", 1)  # '.' escaped
        assert wait_until(lambda: the_bridge(gateway).forwarded == 2, TIMEOUT)
    finally:
        near.close()
        ch.connection.close()
        gateway.stop()


def test_an_existing_exchange_is_used_as_it_is(rabbit: RabbitMQ) -> None:
    ch = channel(rabbit)
    ch.exchange_declare("legacy", "direct", durable=False)
    ch.queue_declare("legacy-q", auto_delete=True)
    ch.queue_bind("legacy-q", "legacy", "sensors.t9")
    gateway = bridged(url=rabbit.url, exchange="legacy", out=["sensors/#"])
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    try:
        wait_connected(gateway)
        near.publish("sensors/t9", b"9", 1)
        method, _, body = get(ch, "legacy-q")
        assert (method.routing_key, body) == ("sensors.t9", b"9")
        assert "legacy\tdirect\tfalse" in rabbit.ctl("list_exchanges", "name", "type", "durable")
    finally:
        near.close()
        ch.connection.close()
        gateway.stop()


def test_a_rabbitmq_queue_comes_in_under_the_prefix_and_is_acknowledged(rabbit: RabbitMQ) -> None:
    ch = channel(rabbit)
    ch.exchange_declare("cmd", "topic", durable=True)
    ch.queue_declare("device-commands", durable=True)
    ch.queue_bind("device-commands", "cmd", "#")
    gateway = bridged(url=rabbit.url, in_queue="device-commands", in_prefix="commands/")
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    near.subscribe("commands/#", 1)
    try:
        wait_connected(gateway)
        ch.basic_publish("cmd", "door.open", b"open", pika.BasicProperties(
            content_type="text/plain", correlation_id="c-9", reply_to="replies.door", delivery_mode=2,
            expiration="60000", headers={"by": "ops", "x-retain": False}))
        ch.basic_publish("cmd", "not.#.a.topic", b"refused")  # a routing key that names no topic
        ch.basic_publish("cmd", "door.close", b"close")
        first, second = near.inbox.take(2)
        assert (first.topic, first.payload, first.qos) == ("commands/door/open", b"open", 1)
        props = first.properties
        assert (props["ContentType"], props["CorrelationData"], props["ResponseTopic"]) == (
            "text/plain", b"c-9", "replies/door")
        assert props["UserProperty"] == [("by", "ops")] and 50 <= props["MessageExpiryInterval"] <= 60
        assert (second.topic, second.payload, second.qos) == ("commands/door/close", b"close", 0)
        assert wait_until(lambda: "device-commands\t0\t0" in rabbit.ctl(
            "list_queues", "name", "messages_ready", "messages_unacknowledged"), TIMEOUT)  # acked or rejected
        state = gateway.call(the_bridge(gateway).describe)
        assert (state["received"], state["refused_in"]) == (2, 1)
    finally:
        near.close()
        ch.connection.close()
        gateway.stop()


def test_what_comes_back_through_the_bridges_own_queue_is_not_published_twice(rabbit: RabbitMQ) -> None:
    ch = channel(rabbit)
    ch.exchange_declare("loop-ex", "topic", durable=True)
    ch.queue_declare("loop-q", durable=True)
    ch.queue_bind("loop-q", "loop-ex", "sensors.#")  # everything the bridge sends comes back to it
    gateway = bridged(url=rabbit.url, exchange="loop-ex", out=["sensors/#"], in_queue="loop-q")
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    near.subscribe("sensors/#", 1)
    try:
        wait_connected(gateway)
        near.publish("sensors/a", b"1", 1)
        assert wait_until(lambda: the_bridge(gateway).loops == 1, TIMEOUT)
        ch.basic_publish("loop-ex", "sensors.end", b"")  # from elsewhere: comes in once, is not sent back
        assert [m.topic for m in near.inbox.until_topic("sensors/end")] == ["sensors/a", "sensors/end"]
        state = gateway.call(the_bridge(gateway).describe)
        assert (state["forwarded"], state["received"], state["loops_stopped"]) == (1, 1, 1)
    finally:
        near.close()
        ch.connection.close()
        gateway.stop()


def test_a_rabbitmq_outage_loses_nothing_acknowledged_and_keeps_the_order(rabbit: RabbitMQ) -> None:
    ch = channel(rabbit)
    ch.exchange_declare("outage-ex", "topic", durable=True)
    ch.queue_declare("outage-q", durable=True)
    ch.queue_bind("outage-q", "outage-ex", "#")
    ch.connection.close()
    gateway = bridged(url=rabbit.url, exchange="outage-ex", out=["sensors/#"])
    near = PahoClient(gateway.mqtt_port, "near", "5").connect()
    try:
        wait_connected(gateway)
        rabbit.stop()
        wait_connected(gateway, connected=False)
        near.publish_many([(f"sensors/{n}", str(n).encode()) for n in range(200)], qos=1)
        near.publish("sensors/qos0", b"dropped while RabbitMQ is down", 0)
        assert wait_until(lambda: the_bridge(gateway).queue.dropped["offline_qos0"] == 1, TIMEOUT)  # QoS 0: no ack
        assert gateway.call(the_bridge(gateway).describe)["queued"] == 200
        rabbit.start()
        wait_connected(gateway)
        assert wait_until(lambda: the_bridge(gateway).forwarded == 200, 2 * TIMEOUT)
        ch = channel(rabbit)
        got = [get(ch, "outage-q")[2] for _ in range(200)]
        assert got == [str(n).encode() for n in range(200)]
        assert ch.basic_get("outage-q")[0] is None
        ch.connection.close()
    finally:
        near.close()
        gateway.stop()


def test_bad_credentials_are_a_clear_log_line_and_a_backoff(rabbit: RabbitMQ, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    gateway = bridged(url=rabbit.url.replace("guest:guest", "guest:wrong"), out=["a/#"],
                      reconnect_min=0.1, reconnect_max=0.4)
    try:
        assert wait_until(lambda: the_bridge(gateway).failures >= 3, 2 * TIMEOUT)
        error = gateway.call(the_bridge(gateway).describe)["last_error"]
        assert "ACCESS_REFUSED" in error or "authenticat" in error, error
        lines = [r.getMessage() for r in caplog.records if r.name == "rosettamq.bridge" and "cannot connect" in r.getMessage()]
        assert lines and all("guest:***@" in line and "wrong" not in line and "next attempt in" in line
                             for line in lines)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # aiormq's own noise is DEBUG
        assert not the_bridge(gateway).connected
    finally:
        gateway.stop()
