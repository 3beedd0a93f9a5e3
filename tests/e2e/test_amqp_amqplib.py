"""AMQP end to end with amqplib from node, a second client family (scripts/test.sh installs it with npm)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import TIMEOUT, amqp_gateway, amqp_port, connect, unique
from tests.e2e.clients import PahoClient

__all__ = ["amqp_gateway"]

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "amqp_client.js"


@pytest.fixture(scope="module", autouse=True)
def amqplib_installed() -> None:
    """scripts/test.sh installs amqplib; a bare `pytest` run installs it here from the lock file."""
    if not (NODE_DIR / "node_modules" / "amqplib").is_dir():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr


def run_scenario(gateway: RunningGateway, scenario: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(["node", str(SCRIPT), str(amqp_port(gateway)), scenario, *args], cwd=NODE_DIR,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_amqplib_declares_binds_publishes_consumes_nacks_gets_and_prefetches(amqp_gateway: RunningGateway) -> None:
    out = run_scenario(amqp_gateway, "basics")
    assert out["declareOk"]["messageCount"] == 0
    assert out["consumed"] == {"body": "hello", "contentType": "text/plain", "headers": {"h": "v"}, "routingKey": "k"}
    assert out["redelivered"] is True
    assert out["get"] == "got" and out["getEmpty"] is False
    assert out["prefetched"] == ["0", "1"] and out["readyWhilePrefetched"] == 2


def test_amqplib_confirm_channel_gets_acks_and_a_312_return(amqp_gateway: RunningGateway) -> None:
    out = run_scenario(amqp_gateway, "confirms")
    assert out == {"ack": True, "returned": {"code": 312, "text": "NO_ROUTE", "body": "lost"}}


def test_amqplib_sees_ttl_and_max_length_dead_letters(amqp_gateway: RunningGateway) -> None:
    out = run_scenario(amqp_gateway, "deadletters")
    assert out == {"deaths": [["expired", "expired"], ["a", "maxlen"]], "kept": "b"}


def test_amqplib_and_mqtt_exchange_messages_through_amq_topic(amqp_gateway: RunningGateway) -> None:
    mqtt_client = PahoClient(amqp_gateway.mqtt_port, "node-peer", "5").connect()
    mqtt_client.subscribe("node/from/+", qos=1)
    node = subprocess.Popen(["node", str(SCRIPT), str(amqp_port(amqp_gateway)), "mqtt"], cwd=NODE_DIR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        assert json.loads(node.stdout.readline()) == {"ready": True}
        mqtt_client.publish("node/device/in", b"from mqtt", qos=1)
        stdout, stderr = node.communicate(timeout=TIMEOUT * 3)
        assert node.returncode == 0, stderr
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    seen = json.loads(stdout.strip().splitlines()[-1])
    # A bare MQTT publish: no content type or headers (JSON drops amqplib's undefined), QoS 1 is persistent.
    assert seen == {"routingKey": "node.device.in", "body": "from mqtt", "deliveryMode": 2}
    received = mqtt_client.inbox.get()
    assert (received.topic, received.payload) == ("node/from/amqplib", b"hi mqtt")
    assert received.properties["ContentType"] == "text/plain"
    assert received.properties["CorrelationData"] == b"n-1"
    assert received.properties["UserProperty"] == [("via", "amqplib")]
    mqtt_client.close()


def test_amqplib_closing_with_publishes_still_buffered_gets_its_close_and_what_was_read_is_routed(
        amqp_gateway: RunningGateway) -> None:
    """Issue 22: amqplib writes connection.close ahead of the publishes still in its buffers. The gateway
    routes every publish it read before the close, answers close-ok, reads and drops what follows and lets
    amqplib close the socket: the close promise resolves, no EPIPE or ECONNRESET."""
    queue = unique("node-close")
    with connect(amqp_gateway) as conn:
        conn.channel().queue_declare(queue)
    out = run_scenario(amqp_gateway, "closeBuffered", queue)
    assert out == {"closed": "closed", "closeEvent": "clean", "errors": []}
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        routed = []
        while (got := ch.basic_get(queue, auto_ack=True))[0] is not None:
            routed.append(int(got[2]))
        ch.queue_delete(queue)
    # What the server read before the close, in order, and nothing of what came after it.
    assert len(routed) >= 1000 and routed == list(range(len(routed)))


def test_amqplib_rpc_through_direct_reply_to(amqp_gateway: RunningGateway) -> None:
    """Issue 18: replies to amq.rabbitmq.reply-to reach the requester's no-ack consumer, no queue declared."""
    out = run_scenario(amqp_gateway, "directReplyTo")
    assert out == {"outcome": "answered", "answers": {"a": "A", "b": "B", "c": "C"}}
