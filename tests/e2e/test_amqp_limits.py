"""The gateway's connection gates and login backoff on the AMQP listener (gateway/security.py)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable, Iterator

import pika
import pytest
from pika.exceptions import ProbableAuthenticationError

from adapters.amqp.frames import PROTOCOL_HEADER
from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.amqp_support import amqp_config, amqp_port
from tests.e2e.test_limits import wait_until

TIMEOUT = 10.0


@pytest.fixture
def start() -> Iterator[Callable[..., RunningGateway]]:
    running: list[RunningGateway] = []

    def start(**sections: dict[str, Any]) -> RunningGateway:
        running.append(RunningGateway(amqp_config(**sections)))
        return running[-1]

    yield start
    for gateway in running:
        gateway.stop()


def connect(port: int, user: str = "guest", password: str = "guest") -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        LOOPBACK, port, credentials=pika.PlainCredentials(user, password), connection_attempts=1,
        socket_timeout=TIMEOUT))


def closed_without_a_word(port: int) -> bool:
    """Connect and send the AMQP protocol header: True if the server closes without answering."""
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(PROTOCOL_HEADER)
            return sock.recv(16) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


def test_past_max_connections_a_new_amqp_connection_is_closed_at_once_and_a_freed_slot_is_reused(
    start: Callable[..., RunningGateway],
) -> None:
    running = start(mqtt={"max_connections": 1})
    port = amqp_port(running)
    gate = running.gateway.security.gates["amqp"]
    first = connect(port)
    assert closed_without_a_word(port)
    assert running.call(lambda: (gate.open, gate.refused_max_connections)) == (1, 1)
    first.close()
    wait_until(lambda: running.call(lambda: gate.open) == 0)
    second = connect(port)
    assert second.is_open
    second.close()


def test_amqp_login_failures_feed_the_shared_backoff_and_a_right_password_still_gets_in(
    start: Callable[..., RunningGateway], tmp_path: Path,
) -> None:
    users = PasswordFile()
    users.set("alice", "wonderland", iterations=1000)
    users.save(tmp_path / "passwd")
    running = start(auth={"password_file": str(tmp_path / "passwd"), "login_backoff_after": 1})
    backoff = running.gateway.security.login_backoff
    assert backoff is not None
    running.call(lambda: setattr(backoff, "base_delay", 0.05))  # short real waits
    port = amqp_port(running)
    for attempt in range(3):
        with pytest.raises(ProbableAuthenticationError):
            connect(port, "alice", f"guess-{attempt}")
    assert running.call(lambda: (backoff.failures, backoff.delayed)) == (3, 2)
    owner = connect(port, "alice", "wonderland")  # held until the address's deadline, then checked
    assert owner.is_open
    owner.close()


def test_a_queue_fed_from_mqtt_without_its_own_bound_keeps_the_configured_newest_messages() -> None:
    """[amqp] core_queue_max_length bounds queues fed from other protocols (drop-head, as x-max-length);
    a queue's own x-max-length still wins."""
    from tests.e2e.clients import PahoClient

    running = RunningGateway(amqp_config(amqp={"core_queue_max_length": 5}))
    try:
        conn = pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, amqp_port(running)))
        ch = conn.channel()
        ch.queue_declare("fed-default")
        ch.queue_bind("fed-default", "amq.topic", "fed.#")
        ch.queue_declare("fed-own", arguments={"x-max-length": 8})
        ch.queue_bind("fed-own", "amq.topic", "fed.#")
        mqtt = PahoClient(running.mqtt_port, "feeder", "5").connect()
        mqtt.publish_many([("fed/t", str(i).encode()) for i in range(20)], qos=1)
        mqtt.close()

        def bodies(queue: str) -> list[bytes]:
            out = []
            while True:
                method, _, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    return out
                out.append(body)

        assert bodies("fed-default") == [str(i).encode() for i in range(15, 20)]
        assert bodies("fed-own") == [str(i).encode() for i in range(12, 20)]
        conn.close()
    finally:
        running.stop()
