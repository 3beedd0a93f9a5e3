"""AMQP crash safety: the gateway process killed with SIGKILL mid-stream, restarted on the same store file.

Pika publishers in confirm mode publish persistent messages to a durable
exchange as fast as a window of unconfirmed ones allows and count their
confirms; several of them, so that the gateway is busy (messages routed, their
commit not yet done) at the moment of the kill, whatever each one is doing. After the kill and a restart, a consumer must get every confirmed
message; the durable exchange, queue and binding are still there, a
non-durable queue is gone, and a message that was delivered but not
acknowledged before the kill is delivered again with redelivered=True.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from tests.e2e.test_persistence_kill9 import GatewayProcess
from tests.e2e.test_mqtt_sessions import wait_until

PUBLISHERS = 4
CONFIRMED_BEFORE_KILL = 2000  # by all publishers together
WINDOW = 100
TIMEOUT = 10.0
EXCHANGE, KEPT, TRANSIENT, UNACKED = "orders", "orders.kept", "orders.scratch", "handed-out"
PERSISTENT = pika.BasicProperties(delivery_mode=2)


class AMQPGatewayProcess(GatewayProcess):
    """The gateway subprocess with its AMQP listener on an OS-chosen loopback port."""

    def __init__(self, tmp_path: Path, store: Path) -> None:
        super().__init__(tmp_path, store)
        self.config.write_text("".join(f"[{name}]\nenabled = false\n" for name in ("ws", "coap", "http")))

    def command(self) -> list[str]:
        return [*super().command(), "--amqp", "127.0.0.1:0"]

    def start(self) -> int:
        super().start()
        return json.loads(self.ports_file.read_text())["amqp"]


@pytest.fixture
def gateway(tmp_path: Path):  # type: ignore[no-untyped-def]
    process = AMQPGatewayProcess(tmp_path, tmp_path / "rosettamq.db")
    try:
        yield process
    finally:
        process.stop()


def connect(port: int) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, connection_attempts=1,
                                                             blocked_connection_timeout=TIMEOUT))


class ConfirmingPublisher(threading.Thread):
    """Publishes numbered persistent messages with at most `WINDOW` unconfirmed, on pika's SelectConnection.

    Message n of publisher p has the body "p:n"; `confirmed` holds the numbers the gateway confirmed
    (delivery tag n is message n). The thread ends when the connection dies.
    """

    def __init__(self, port: int, number: int) -> None:
        super().__init__(name=f"confirming-publisher-{number}", daemon=True)
        self.port = port
        self.number = number
        self.confirmed: set[int] = set()
        self.nacked: set[int] = set()
        self.stopped = threading.Event()
        self.error: str | None = None
        self._published = 0
        self._channel: Any = None
        self._connection: Any = None

    def run(self) -> None:
        params = pika.ConnectionParameters("127.0.0.1", self.port, connection_attempts=1, heartbeat=0)
        self._connection = pika.SelectConnection(
            params, on_open_callback=self._opened, on_open_error_callback=self._failed,
            on_close_callback=self._closed)
        try:
            self._connection.ioloop.start()
        finally:
            self.stopped.set()

    def _failed(self, connection: Any, error: Any) -> None:
        self.error = f"could not connect: {error}"
        connection.ioloop.stop()

    def _closed(self, connection: Any, reason: Any) -> None:
        connection.ioloop.stop()  # the gateway was killed

    def _opened(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._channel_open)

    def _channel_open(self, channel: Any) -> None:
        self._channel = channel
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._publish())

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        outstanding = range(min(self.confirmed | self.nacked | {method.delivery_tag}), method.delivery_tag + 1)
        tags = [t for t in outstanding if t not in self.confirmed and t not in self.nacked] if method.multiple \
            else [method.delivery_tag]
        (self.confirmed if isinstance(method, pika.spec.Basic.Ack) else self.nacked).update(tags)
        self._publish()

    def _publish(self) -> None:
        while self._published - len(self.confirmed) - len(self.nacked) < WINDOW:
            self._published += 1
            body = f"{self.number}:{self._published}".encode()
            self._channel.basic_publish(EXCHANGE, "order.new", body, PERSISTENT)


def drain(channel: Any, queue: str, wanted: set[str]) -> set[str]:
    """Consume from `queue` until every body in `wanted` came (failing after TIMEOUT without news)."""
    received: set[str] = set()
    for method, _properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=TIMEOUT):
        if method is None:
            missing = sorted(wanted - received)
            pytest.fail(f"{len(missing)} confirmed messages lost, e.g. {missing[:10]}")
        received.add(body.decode())
        if wanted <= received:
            break
    channel.cancel()
    return received


def test_every_confirmed_persistent_message_and_the_durable_topology_survive_a_kill_9(
    gateway: AMQPGatewayProcess,
) -> None:
    port = gateway.start()
    setup = connect(port)
    channel = setup.channel()
    channel.exchange_declare(EXCHANGE, "topic", durable=True)
    channel.queue_declare(KEPT, durable=True)
    channel.queue_declare(TRANSIENT, durable=False)
    channel.queue_declare(UNACKED, durable=True)
    channel.queue_bind(KEPT, EXCHANGE, "order.*")
    channel.queue_bind(TRANSIENT, EXCHANGE, "order.*")
    channel.confirm_delivery()
    channel.basic_publish("", UNACKED, b"handed out, never acknowledged", PERSISTENT)
    holder = connect(port)  # takes the message and holds it, unacknowledged, until the kill
    held = holder.channel()
    method, _, body = held.basic_get(UNACKED, auto_ack=False)
    assert method is not None and body == b"handed out, never acknowledged" and not method.redelivered
    setup.close()

    publishers = [ConfirmingPublisher(port, number) for number in range(PUBLISHERS)]
    for publisher in publishers:
        publisher.start()
    assert wait_until(lambda: sum(len(p.confirmed) for p in publishers) >= CONFIRMED_BEFORE_KILL
                      or any(p.stopped.is_set() for p in publishers), timeout=60)
    assert [p.error for p in publishers if p.stopped.is_set()] == []
    gateway.kill()  # mid-stream: each publisher has up to WINDOW publishes unconfirmed
    for publisher in publishers:
        publisher.join(TIMEOUT)
        assert not publisher.is_alive()
        assert publisher.error is None and not publisher.nacked
    confirmed = {f"{p.number}:{n}" for p in publishers for n in p.confirmed}
    assert len(confirmed) >= CONFIRMED_BEFORE_KILL
    assert wait_until(lambda: not holder.is_open or _closes(holder), timeout=TIMEOUT)

    port = gateway.start()
    after = connect(port)
    channel = after.channel()
    channel.exchange_declare(EXCHANGE, passive=True)
    kept = channel.queue_declare(KEPT, passive=True)
    assert kept.method.message_count >= len(confirmed)
    assert drain(channel, KEPT, confirmed) >= confirmed

    method, _, body = channel.basic_get(UNACKED, auto_ack=True)
    assert method is not None and (body, method.redelivered) == (b"handed out, never acknowledged", True)

    channel.basic_publish(EXCHANGE, "order.after", b"the binding survived", PERSISTENT)
    method, _, body = next(iter(channel.consume(KEPT, auto_ack=True, inactivity_timeout=TIMEOUT)))
    assert method is not None and body == b"the binding survived"
    channel.cancel()

    with pytest.raises(ChannelClosedByBroker) as closed:
        channel.queue_declare(TRANSIENT, passive=True)
    assert closed.value.reply_code == 404
    after.close()


def _closes(connection: pika.BlockingConnection) -> bool:
    """Let pika notice the dead socket; True once the connection is closed."""
    try:
        connection.process_data_events(time_limit=0.1)
    except Exception:  # noqa: BLE001 - any pika error here means the connection is gone
        return True
    return not connection.is_open
