"""Structured logs: logfmt text and JSON lines with typed values; one event text, the protocol a field."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

import pika
import pytest

from gateway.config import config_from_dict
from gateway.logs import JSONFormatter, KeyValueFormatter, configure_logging
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.admin_support import eventually
from tests.e2e.clients import PahoClient


def record(name: str, msg: str, *args: Any, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def as_json(rec: logging.LogRecord) -> dict[str, Any]:
    return json.loads(JSONFormatter().format(rec))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    configure_logging(config_from_dict({}))  # closes a log file a test opened, resets per-logger levels
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_values_keep_the_type_of_the_call_arguments() -> None:
    event = as_json(record("rosettamq.mqtt", "client connected client_id=%s username=%s mqtt_version=%s "
                           "clean_start=%s session_present=%s port=%d held=%.1f",
                           "007", None, "3.1.1", True, False, 1883, 2.345))
    assert event["msg"] == "client connected" and event["protocol"] == "mqtt" and event["level"] == "info"
    assert event["client_id"] == "007"  # a string argument stays a string, even when it looks like a number
    assert event["username"] is None and event["clean_start"] is True and event["session_present"] is False
    assert event["port"] == 1883 and event["held"] == 2.3 and event["mqtt_version"] == "3.1.1"


def test_a_field_never_replaces_the_log_level_or_the_message() -> None:
    event = as_json(record("rosettamq.x", "odd event level=%d msg=%s logger=%s", 4, "m", "l", level=logging.WARNING))
    assert (event["level"], event["msg"], event["logger"]) == ("warning", "odd event", "rosettamq.x")
    assert (event["field_level"], event["field_msg"], event["field_logger"]) == (4, "m", "l")


def test_text_lines_are_logfmt_with_the_event_in_msg() -> None:
    line = KeyValueFormatter().format(record("rosettamq.amqp", "connection closed peer=%s client_id=%s reason=%s",
                                             "127.0.0.1:1", "app", "closed by client"))
    assert line.startswith("ts=")
    assert (' level=INFO logger=rosettamq.amqp protocol=amqp msg="connection closed" peer=127.0.0.1:1 '
            'client_id=app reason="closed by client"') in line


def test_per_logger_levels_apply_and_are_reset_by_the_next_configuration(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(config_from_dict({"log": {"levels": {"rosettamq.mqtt": "debug"}}}), None, "json")
    logging.getLogger("rosettamq.mqtt").debug("shown peer=%s", "p")
    logging.getLogger("rosettamq.amqp").debug("not shown: the global level is info")
    lines = capsys.readouterr().err.strip().splitlines()
    assert [json.loads(line)["msg"] for line in lines] == ["shown"]
    configure_logging(config_from_dict({}), None, "json")
    logging.getLogger("rosettamq.mqtt").debug("no longer shown")
    assert capsys.readouterr().err == ""


def test_connect_and_close_of_every_protocol_log_one_event_text_with_typed_fields(
    restore_logging: None, tmp_path: Path
) -> None:
    log_file = tmp_path / "gateway.log"
    configure_logging(config_from_dict({"log": {"format": "json", "file": str(log_file)}}))
    gateway = RunningGateway(make_config(amqp={"enabled": True, "listen": f"{LOOPBACK}:0"}))

    def events() -> list[dict[str, Any]]:
        return [json.loads(line) for line in log_file.read_text().splitlines()]

    def seen(msg: str, protocol: str) -> list[dict[str, Any]]:
        return [e for e in events() if e["msg"] == msg and e.get("protocol") == protocol]

    try:
        PahoClient(gateway.mqtt_port, "log-dev", "311").connect().close()
        amqp = pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, gateway.gateway.ports["amqp"]))
        amqp.close()
        mqtt_in = eventually(lambda: seen("client connected", "mqtt"))[0]
        amqp_in = eventually(lambda: seen("client connected", "amqp"))[0]
        eventually(lambda: seen("connection closed", "mqtt") and seen("connection closed", "amqp"))
    finally:
        gateway.stop()
    assert mqtt_in["level"] == "info" and mqtt_in["mqtt_version"] == "3.1.1" and "field_level" not in mqtt_in
    assert mqtt_in["client_id"] == "log-dev" and mqtt_in["clean_start"] is True and mqtt_in["username"] is None
    assert amqp_in["level"] == "info" and amqp_in["username"] == "guest" and amqp_in["heartbeat"] == 60
    for event in events():  # the protocol is a field, never repeated at the start of the event text
        assert event["msg"].split(" ")[0] not in ("mqtt", "amqp", "ws", "coap", "lwm2m"), event
