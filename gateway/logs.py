"""Structured logs: one line per event, key=value text (default) or one JSON object a line.

Text: ``ts=... level=INFO logger=rosettamq.mqtt protocol=mqtt mqtt connected peer=... client_id=...``.

Log calls keep their usual form, an event then ``key=value`` fields
(``"mqtt connected peer=%s client_id=%s"``); the formatters split the
rendered message into ``msg`` and those fields. Loggers named
``rosettamq.<protocol>`` add ``protocol=<protocol>``. `[log] levels` sets the
level of single loggers, e.g. ``{"rosettamq.mqtt" = "debug"}``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.config import Config

FIELD = re.compile(r"^([A-Za-z_][\w.]*)=(.*)$")
PROTOCOL_LOGGERS = {"mqtt", "amqp", "coap", "lwm2m", "ws", "http"}


def split_message(message: str) -> tuple[str, dict[str, str]]:
    """("mqtt connected", {"peer": ..., "client_id": ...}) from "mqtt connected peer=... client_id=..."."""
    words = message.split(" ")
    head: list[str] = []
    fields: dict[str, str] = {}
    last: str | None = None
    for word in words:
        match = FIELD.match(word)
        if match:
            last = match.group(1)
            fields[last] = match.group(2)
        elif last is None:
            head.append(word)
        else:
            fields[last] += " " + word  # a value with spaces (a detail, a reason string)
    return " ".join(head), fields


def _event(record: logging.LogRecord) -> dict[str, Any]:
    msg, fields = split_message(record.getMessage())
    event: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(), "logger": record.name, "msg": msg,
    }
    parts = record.name.split(".")
    if len(parts) >= 2 and parts[0] == "rosettamq" and parts[1] in PROTOCOL_LOGGERS and "protocol" not in fields:
        event["protocol"] = parts[1]
    event.update(fields)
    if record.exc_info:
        event["exc"] = logging.Formatter().formatException(record.exc_info)
    return event


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_event(record), ensure_ascii=False, default=str)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=... logger=... [protocol=...]`` then the message as written (event, key=value fields)."""

    def format(self, record: logging.LogRecord) -> str:
        event = _event(record)
        prefix = {key: event[key] for key in ("ts", "level", "logger", "protocol") if key in event}
        prefix["level"] = record.levelname  # upper case, as grep-minded operators (and Mosquitto) write it
        line = " ".join(f"{key}={_quote(str(value))}" for key, value in prefix.items()) + " " + record.getMessage()
        return line if "exc" not in event else f"{line}\n{event['exc']}"


def _quote(value: str) -> str:
    if value == "" or any(c in value for c in ' "='):
        return json.dumps(value, ensure_ascii=False)
    return value


def configure_logging(config: "Config", level_override: str | None = None, format_override: str | None = None) -> None:
    """Root handler on stderr in the chosen format, the global level, and the per-logger levels."""
    level = (level_override or config.log.level).upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if (format_override or config.log.format) == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
    for name, name_level in config.log.levels:
        logging.getLogger(name).setLevel(name_level.upper())
