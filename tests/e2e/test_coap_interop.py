"""CoAP interoperability with libcoap's coap-client-notls, across to mosquitto_sub/mosquitto_pub and paho.

coap-client-notls prints error responses on stdout and still exits 0, so codes
are asserted from its ``-v 6`` trace (``c:2.04`` ...). Observers run as
long-lived processes whose output lines are waited for with timeouts. The
last test runs examples/coap_sensor.py as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RunningGateway
from tests.e2e.clients import TIMEOUT, MosquittoSub, PahoClient, mosquitto_pub
from tests.e2e.coap_clients import CoAPClientProcess, coap_client, coap_port, gateway

__all__ = ["gateway"]  # fixtures from tests.e2e.coap_clients

ROOT = Path(__file__).resolve().parents[2]


def url(gateway: RunningGateway, path: str) -> str:
    return f"coap://127.0.0.1:{coap_port(gateway)}{path}"


def response_code(trace: str) -> str:
    """The code of the last response in a -v 6 trace: ``v:1 t:ACK c:2.04 ...`` gives ``2.04``."""
    codes = [part[2:] for line in trace.splitlines() if " t:" in line for part in line.split() if part.startswith("c:")]
    responses = [code for code in codes if code[:1].isdigit()]
    assert responses, trace
    return responses[-1]


def test_a_coap_client_post_is_seen_by_mosquitto_sub(gateway: RunningGateway) -> None:
    """The issue's done-when: coap-client -m post .../ps/sensors/t1 -e 21.5 reaches mosquitto_sub -t 'sensors/#'."""
    sub = MosquittoSub(gateway.mqtt_port, ["sensors/#"], qos=1)
    try:
        sub.wait_subscribed()
        trace = coap_client("-v", "6", "-m", "post", url(gateway, "/ps/sensors/t1"), "-e", "21.5")
        assert response_code(trace) == "2.04"
        received = sub.inbox.get()
        assert (received.topic, received.payload, received.qos) == ("sensors/t1", b"21.5", 1)
    finally:
        sub.close()


@pytest.mark.parametrize("publisher", ["mosquitto_pub", "paho"])
def test_an_mqtt_publish_reaches_a_coap_client_observer(gateway: RunningGateway, publisher: str) -> None:
    """The issue's done-when, other way: an MQTT publish reaches coap-client -s (Observe)."""
    observer = CoAPClientProcess("-v", "6", "-s", "60", url(gateway, "/ps/alerts/%23"))
    try:
        observer.wait_for("c:2.05")  # the registration's answer
        if publisher == "mosquitto_pub":
            mosquitto_pub(gateway.mqtt_port, "alerts/door", b"opened", qos=1)
        else:
            client = PahoClient(gateway.mqtt_port).connect()
            try:
                client.publish("alerts/door", b"opened", qos=1)
            finally:
                client.close()
        observer.wait_for("'opened'")
        line = next(line for line in observer.lines if "'opened'" in line)
        assert "t:CON" in line and "Observe:" in line
        assert "Location-Path:alerts" in line and "Location-Path:door" in line
    finally:
        observer.close()


def test_con_and_non_posts_arrive_at_qos_1_and_0_with_the_content_type_of_the_format(
    gateway: RunningGateway,
) -> None:
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        mqtt.subscribe("kinds/#", qos=1)
        coap_client("-m", "post", "-t", "50", url(gateway, "/ps/kinds/con"), "-e", '{"v":1}')
        coap_client("-N", "-m", "post", "-t", "0", url(gateway, "/ps/kinds/non"), "-e", "plain")
        got = {m.topic: (m.qos, m.properties.get("ContentType")) for m in mqtt.inbox.take(2)}
        assert got == {"kinds/con": (1, "application/json"), "kinds/non": (0, "text/plain;charset=utf-8")}
    finally:
        mqtt.close()


def test_retain_and_expiry_query_parameters_from_coap_client(gateway: RunningGateway) -> None:
    coap_client("-m", "put", url(gateway, "/ps/cfg/rate?retain=true&expiry=300"), "-e", "10")
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        mqtt.subscribe("cfg/rate")
        message = mqtt.inbox.get()
        assert (message.payload, message.retain) == (b"10", True)
        assert 290 <= message.properties["MessageExpiryInterval"] <= 300
    finally:
        mqtt.close()


def test_get_and_delete_of_a_retained_message_with_coap_client(gateway: RunningGateway) -> None:
    mosquitto_pub(gateway.mqtt_port, "state/pump", b"on", qos=1, retain=True)
    assert coap_client(url(gateway, "/ps/state/pump")).strip() == "on"
    assert response_code(coap_client("-v", "6", "-m", "delete", url(gateway, "/ps/state/pump"))) == "2.02"
    assert response_code(coap_client("-v", "6", url(gateway, "/ps/state/pump"))) == "4.04"


def test_block_wise_transfers_both_ways_with_64_byte_blocks(gateway: RunningGateway, tmp_path: Path) -> None:
    body = bytes(range(32, 127)) * 11  # 1045 bytes: 17 blocks of 64
    source, target = tmp_path / "up.bin", tmp_path / "down.bin"
    source.write_bytes(body)
    sub = MosquittoSub(gateway.mqtt_port, ["blobs/#"])
    try:
        sub.wait_subscribed()
        trace = coap_client("-v", "6", "-m", "put", "-b", "64", "-f", str(source), url(gateway, "/ps/blobs/a?r=1"))
        assert "Block1:16/_/64" in trace and response_code(trace) == "2.04"
        assert sub.inbox.get().payload == body
    finally:
        sub.close()
    coap_client("-b", "64", "-o", str(target), url(gateway, "/ps/blobs/a"))
    assert target.read_bytes() == body


def test_well_known_core_from_coap_client_lists_ps_and_retained_topics(gateway: RunningGateway) -> None:
    mosquitto_pub(gateway.mqtt_port, "plant/level", b"3", retain=True)
    links = coap_client(url(gateway, "/.well-known/core"))
    assert '</ps>;rt="core.ps";obs' in links and "</ps/plant/level>;obs" in links


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("-m", "post", "/ps/bad/+", "-e", "x"), "4.00"),
        (("-m", "post", "/ps/a?qos=7", "-e", "x"), "4.00"),
        (("/ps/missing",), "4.04"),
        (("-m", "fetch", "/ps/a"), "4.05"),
    ],
)
def test_coap_client_sees_the_mapped_error_codes(gateway: RunningGateway, args: tuple[str, ...], code: str) -> None:
    argv = [url(gateway, arg) if arg.startswith("/") else arg for arg in args]
    assert response_code(coap_client("-v", "6", *argv)) == code


def test_the_coap_sensor_example_feeds_an_mqtt_subscriber(gateway: RunningGateway) -> None:
    mqtt = PahoClient(gateway.mqtt_port).connect()
    try:
        mqtt.subscribe("sensors/#", qos=1)
        done = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "coap_sensor.py"), "--port", str(coap_port(gateway)),
             "--topic", "sensors/kitchen", "--count", "3", "--interval", "0", "--seed", "1", "--retain"],
            capture_output=True, text=True, timeout=TIMEOUT * 3,
        )
        assert done.returncode == 0, done.stderr
        readings = mqtt.inbox.take(3)
    finally:
        mqtt.close()
    assert {m.topic for m in readings} == {"sensors/kitchen"}
    assert all(m.qos == 1 and m.properties["ContentType"] == "application/json" for m in readings)
    values = [json.loads(m.payload) for m in readings]
    assert all(value["unit"] == "Cel" and 15 < value["t"] < 30 for value in values)
    assert coap_client(url(gateway, "/ps/sensors/kitchen")).strip() == readings[-1].payload.decode()
