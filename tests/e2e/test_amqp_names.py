"""Queue and exchange names RabbitMQ accepts work with pika: any UTF-8 up to 255 octets (issue 24).

Before, a queue named `café` or holding a NUL was declared and stored, then its declare-ok could
not be built (pamqp's name pattern) and the connection died with 541 and a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import amqp_config, amqp_gateway, connect, next_message, ready_count

__all__ = ["amqp_gateway"]

NAMES = ["café", "with\x00nul", "ünïcødé 🚀 queue", "é" * 127, "z" * 255]


@pytest.mark.parametrize("name", NAMES, ids=["accent", "nul", "emoji", "254-octets", "255-octets"])
def test_a_queue_with_any_utf8_name_is_declared_filled_and_consumed(amqp_gateway: RunningGateway, name: str,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR), connect(amqp_gateway) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        assert ch.queue_declare(name).method.queue == name
        ch.basic_publish("", name, b"found by name")
        assert ready_count(ch, name) == 1
        method, _, body = next_message(ch, name, auto_ack=True)
        assert body == b"found by name" and method.routing_key == name
        ch.queue_delete(name)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_exchange_named_cafe_routes_and_returns_unroutable_messages(amqp_gateway: RunningGateway) -> None:
    returned: list[tuple[str, bytes]] = []
    with connect(amqp_gateway) as conn:
        ch = conn.channel()
        ch.exchange_declare("café-events", "direct")
        ch.queue_declare("café-inbox")
        ch.queue_bind("café-inbox", "café-events", "crème")
        ch.add_on_return_callback(lambda _ch, method, _props, body: returned.append((method.exchange, body)))
        ch.basic_publish("café-events", "crème", b"routed")
        ch.basic_publish("café-events", "brûlée", b"nowhere", mandatory=True)
        conn.process_data_events(time_limit=0.5)
        assert next_message(ch, "café-inbox", auto_ack=True)[2] == b"routed"
        assert returned == [("café-events", b"nowhere")]
        ch.queue_delete("café-inbox")
        ch.exchange_delete("café-events")


def test_names_rabbitmq_refuses_are_refused_with_its_code_and_nothing_is_kept(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as conn:
        with pytest.raises(ChannelClosedByBroker) as closed:
            conn.channel().queue_declare("amq.café")
        assert closed.value.reply_code == 403 and "reserved prefix" in closed.value.reply_text
        with pytest.raises(ChannelClosedByBroker) as closed:
            conn.channel().exchange_declare("amq.crème", "topic")
        assert closed.value.reply_code == 403
        with pytest.raises(ChannelClosedByBroker) as closed:
            conn.channel().queue_declare("amq.café", passive=True)
        assert closed.value.reply_code == 404


def test_a_durable_queue_with_a_non_ascii_name_survives_a_restart(tmp_path: Path) -> None:
    config = amqp_config(store={"path": str(tmp_path / "store.db")})
    running = RunningGateway(config)
    try:
        with connect(running) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            ch.queue_declare("commandes-reçues", durable=True)
            ch.basic_publish("", "commandes-reçues", b"kept", pika.BasicProperties(delivery_mode=2))
    finally:
        running.stop()
    running = RunningGateway(config)
    try:
        with connect(running) as conn:
            assert next_message(conn.channel(), "commandes-reçues", auto_ack=True)[2] == b"kept"
    finally:
        running.stop()
