"""Shared pieces of the AMQP end-to-end tests: a gateway with AMQP and MQTT on loopback, pika helpers."""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Iterator

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from tests.conftest import LOOPBACK, RunningGateway, make_config

TIMEOUT = 10.0
_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A queue or exchange name no other test uses (tests share one gateway per module)."""
    return f"{prefix}-{next(_names)}"


def amqp_config(**sections: dict[str, Any]) -> Any:
    """make_config with the AMQP listener on (loopback, OS-chosen port); `sections` add keys."""
    amqp = {"enabled": True, "listen": f"{LOOPBACK}:0", **sections.pop("amqp", {})}
    return make_config(amqp=amqp, **sections)


@pytest.fixture(scope="module")
def amqp_gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(amqp_config())
    try:
        yield running
    finally:
        running.stop()


def amqp_port(gateway: RunningGateway) -> int:
    return gateway.gateway.ports["amqp"]


def connect(gateway: RunningGateway, **params: Any) -> pika.BlockingConnection:
    """A pika BlockingConnection, as a RabbitMQ application would open one."""
    params.setdefault("blocked_connection_timeout", TIMEOUT)
    return pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, amqp_port(gateway), **params))


def next_message(channel: BlockingChannel, queue: str, *, auto_ack: bool = False,
                 timeout: float = TIMEOUT) -> tuple[Any, Any, bytes]:
    """Consume one message (waiting for it), then cancel the consumer; returns (method, properties, body)."""
    for method, properties, body in channel.consume(queue, auto_ack=auto_ack, inactivity_timeout=timeout):
        if method is None:
            raise AssertionError(f"no message on {queue!r} within {timeout} s")
        channel.cancel()
        return method, properties, body
    raise AssertionError("consumer ended")


def wait_until(condition: Callable[[], bool], connection: pika.BlockingConnection,
               timeout: float = TIMEOUT) -> None:
    """Process the connection's events until `condition` holds (pika needs its I/O loop to run)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        connection.process_data_events(time_limit=0.05)


def ready_count(channel: BlockingChannel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count
