"""Wills over the wire: when they are published, with what, and when they are not."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

import pytest

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import Disconnect, Publish, Will
from adapters.mqtt.properties import Properties
from tests.e2e.test_mqtt_sessions import (
    connect,
    disconnect,
    is_offline,
    next_is_pingresp,
    persistent,
    publish,
    subscribe,
    wait_until,
)
from tests.wire_client import WireClient


def watcher(port: int, topic_filter: str, qos: int = 2, name: str = "watcher") -> WireClient:
    client, _ = connect(port, name, 5)
    subscribe(client, topic_filter, qos)
    return client


def wills_published(gateway: Any) -> int:
    return gateway.call(lambda: gateway.broker.mqtt_sessions.wills_published)


@pytest.mark.parametrize("level", [4, 5])
def test_an_abnormal_close_publishes_the_will_with_its_qos_and_retain(gateway: Any, level: int) -> None:
    port = gateway.mqtt_port
    watch = watcher(port, "status/#")
    client, _ = connect(port, f"dev-{level}", level, will=Will(f"status/dev-{level}", b"offline", qos=1, retain=True))
    client.close()  # no DISCONNECT: the network connection just ends
    packet = watch.recv()
    assert isinstance(packet, Publish)
    assert (packet.topic, packet.payload, packet.qos) == (f"status/dev-{level}", b"offline", 1)
    assert packet.retain is False  # a live subscription without retain-as-published
    later, _ = connect(port, "later", 4)
    subscribe(later, f"status/dev-{level}", 2)
    retained = later.recv()
    assert isinstance(retained, Publish)
    assert (retained.payload, retained.qos, retained.retain) == (b"offline", 1, True)
    watch.close()
    later.close()


def test_a_retained_will_reaches_a_later_mosquitto_sub(gateway: Any) -> None:
    port = gateway.mqtt_port
    client, _ = connect(port, "dev-mosq", 4, will=Will("status/dev-mosq", b"gone away", qos=1, retain=True))
    client.close()
    assert wait_until(lambda: wills_published(gateway) == 1)
    result = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", "status/dev-mosq", "-C", "1", "-v", "-W", "5"],
        capture_output=True, timeout=10, text=True,
    )
    assert result.stdout.strip() == "status/dev-mosq gone away", result


@pytest.mark.parametrize("level", [4, 5])
def test_a_normal_disconnect_does_not_publish_the_will(gateway: Any, level: int) -> None:
    port = gateway.mqtt_port
    watch = watcher(port, "status/#")
    client, _ = connect(port, "polite", level, will=Will("status/polite", b"offline", qos=1, retain=True))
    disconnect(client)  # returns once the gateway has handled the DISCONNECT and closed
    publish(port, "status/marker", b"marker", qos=1)
    assert watch.recv().payload == b"marker"
    assert wills_published(gateway) == 0
    assert gateway.call(lambda: gateway.broker.router.retained.get("status/polite")) is None
    watch.close()


def test_a_v5_disconnect_with_reason_0x04_publishes_the_will(gateway: Any) -> None:
    port = gateway.mqtt_port
    watch = watcher(port, "status/#")
    client, _ = connect(port, "leaver", 5, will=Will("status/leaver", b"left with will", qos=2))
    client.send(Disconnect(ReasonCode.DISCONNECT_WITH_WILL))
    packet = watch.recv()
    assert isinstance(packet, Publish) and (packet.payload, packet.qos) == (b"left with will", 2)
    assert client.closed_by_server()
    watch.close()
    client.close()


def test_a_v5_will_delay_holds_the_will_until_the_delay_has_passed(gateway: Any) -> None:
    port = gateway.mqtt_port
    watch = watcher(port, "status/#")
    will = Will("status/late", b"late will", qos=1, properties=Properties(will_delay_interval=1))
    client, _ = connect(port, "late", 5, will=will, **persistent(5, expiry=60))
    client.close()
    assert wait_until(lambda: is_offline(gateway, "late"))
    closed_at = time.monotonic()
    publish(port, "status/marker", b"marker", qos=1)
    assert watch.recv().payload == b"marker"  # not the will: it is delayed
    packet = watch.recv()
    assert isinstance(packet, Publish) and packet.payload == b"late will"
    assert time.monotonic() - closed_at >= 0.9
    watch.close()


def test_a_v5_will_delay_is_cut_short_by_a_shorter_session_expiry(gateway: Any) -> None:
    port = gateway.mqtt_port
    watch = watcher(port, "status/#")
    will = Will("status/short", b"session ended", qos=1, properties=Properties(will_delay_interval=3600))
    client, _ = connect(port, "short-lived", 5, will=will, **persistent(5, expiry=1))
    client.close()
    watch.sock.settimeout(5)
    packet = watch.recv()
    assert isinstance(packet, Publish) and packet.payload == b"session ended"
    assert wait_until(lambda: gateway.call(lambda: gateway.broker.mqtt_sessions.get("short-lived")) is None)
    watch.close()


def test_reconnecting_within_the_will_delay_cancels_the_will(gateway: Any) -> None:
    port = gateway.mqtt_port
    watch = watcher(port, "status/#")
    will = Will("status/back", b"should not appear", qos=1, properties=Properties(will_delay_interval=1))
    client, _ = connect(port, "back", 5, will=will, **persistent(5, expiry=60))
    client.close()
    assert wait_until(lambda: is_offline(gateway, "back"))
    client, connack = connect(port, "back", 5, **persistent(5, expiry=60))
    assert connack.session_present is True
    watch.sock.settimeout(2.0)  # twice the will delay: the will must not come
    with pytest.raises(socket.timeout):
        watch.recv()
    assert wills_published(gateway) == 0
    watch.sock.settimeout(5)
    assert next_is_pingresp(watch)
    client.close()
    watch.close()


def test_the_wills_properties_reach_a_v5_subscriber(gateway: Any) -> None:
    port = gateway.mqtt_port
    watch = watcher(port, "status/#")
    props = Properties(
        content_type="application/json",
        user_properties=(("site", "north"), ("rack", "7"), ("site", "south")),
        message_expiry_interval=100,
        response_topic="status/reply",
        correlation_data=b"\x01\x02",
        payload_format_indicator=1,
    )
    client, _ = connect(port, "rich", 5, will=Will("status/rich", b'{"up": false}', qos=1, properties=props))
    client.close()
    packet = watch.recv()
    assert isinstance(packet, Publish) and packet.payload == b'{"up": false}'
    got = packet.properties
    assert got.content_type == "application/json"
    assert got.user_properties == (("site", "north"), ("rack", "7"), ("site", "south"))
    assert 99 <= got.message_expiry_interval <= 100
    assert got.response_topic == "status/reply"
    assert got.correlation_data == b"\x01\x02"
    assert got.payload_format_indicator == 1
    watch.close()


def test_a_retained_will_with_message_expiry_is_gone_once_it_expires(gateway: Any) -> None:
    port = gateway.mqtt_port
    props = Properties(message_expiry_interval=1)
    client, _ = connect(port, "fleeting", 5, will=Will("status/fleeting", b"brief", qos=1, retain=True, properties=props))
    client.close()
    assert wait_until(lambda: wills_published(gateway) == 1)
    published_at = time.monotonic()
    assert wait_until(
        lambda: gateway.call(lambda: gateway.broker.router.retained.get("status/fleeting")) is None, timeout=5
    )
    assert time.monotonic() - published_at >= 0.5
    later, _ = connect(port, "later-fleeting", 5)
    subscribe(later, "status/fleeting", 1)
    assert next_is_pingresp(later)
    later.close()
