"""AMQP over TLS ([amqps]): pika with a verified certificate reaches MQTT subscribers through amq.topic."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pika
import pytest

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import PahoClient


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def test_pika_over_amqps_publishes_to_an_mqtt_subscriber(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    running = RunningGateway(make_config(amqps={"listen": f"{LOOPBACK}:0", "certfile": str(cert),
                                                "keyfile": str(key)}))
    try:
        assert "amqps" in running.gateway.ports and "amqp" not in running.gateway.ports
        subscriber = PahoClient(running.mqtt_port, "tls-watcher", "5").connect()
        subscriber.subscribe("secure/#", qos=1)
        trust = ssl.create_default_context(cafile=str(cert))  # verifies the chain and the 127.0.0.1 name
        params = pika.ConnectionParameters(LOOPBACK, running.gateway.ports["amqps"],
                                           ssl_options=pika.SSLOptions(trust, LOOPBACK))
        with pika.BlockingConnection(params) as conn:
            channel = conn.channel()
            channel.confirm_delivery()
            channel.basic_publish("amq.topic", "secure.door", b"locked")
        message = subscriber.inbox.get()
        assert (message.topic, message.payload) == ("secure/door", b"locked")
        subscriber.close()
    finally:
        running.stop()
