"""Structured logs: one line per event, logfmt text (default) or one JSON object a line.

Text: ``ts=... level=INFO logger=rosettamq.mqtt protocol=mqtt msg="client connected" peer=... client_id=...``.
JSON: the same keys, with the values of the call's arguments kept typed (numbers, booleans, null).

Log calls keep their usual form, an event then ``key=value`` fields
(``"client connected peer=%s client_id=%s"``); the formatters split the
message into ``msg`` and those fields. The event text names no protocol:
loggers named ``rosettamq.<protocol>`` add ``protocol=<protocol>``. A field
never replaces ``ts``, ``level``, ``logger`` or ``msg``: it is renamed
``field_<key>``. `[log] levels` sets the level of single loggers, e.g.
``{"rosettamq.mqtt" = "debug"}``; `[log] file` writes to a file that
logrotate may move (it is reopened when moved, and on SIGHUP).
"""

from __future__ import annotations

import json
import math
import logging
import logging.handlers
import re
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.config import Config

FIELD = re.compile(r"^([A-Za-z_][\w.]*)=(.*)$")
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?([diouxXeEfFgGcrsa%])")
PROTOCOL_LOGGERS = {"mqtt", "amqp", "coap", "lwm2m", "ws", "http"}
RESERVED = ("ts", "level", "logger", "msg", "exc")

_configured_levels: set[str] = set()  # loggers given a level by the config, reset on reload
_handler: list[logging.Handler] = []  # the root handler configure_logging made (closed when replaced)


def split_message(message: str) -> tuple[str, dict[str, str]]:
    """("client connected", {"peer": ..., "client_id": ...}) from "client connected peer=... client_id=..."."""
    head: list[str] = []
    fields: dict[str, str] = {}
    last: str | None = None
    for word in message.split(" "):
        match = FIELD.match(word)
        if match:
            last = match.group(1)
            fields[last] = match.group(2)
        elif last is None:
            head.append(word)
        else:
            fields[last] += " " + word  # a value with spaces (a detail, a reason string)
    return " ".join(head), fields


def typed_arguments(record: logging.LogRecord) -> dict[str, Any]:
    """The fields written ``key=%s`` (one placeholder, nothing else) whose argument is a number,
    a boolean or None, by key, with that value: what JSON keeps typed."""
    if not isinstance(record.msg, str) or not isinstance(record.args, tuple) or not record.args:
        return {}
    typed: dict[str, Any] = {}
    index = 0
    for word in record.msg.split(" "):
        placeholders = [m for m in PLACEHOLDER.finditer(word) if m.group(1) != "%"]
        match = FIELD.match(word)
        if match and len(placeholders) == 1 and placeholders[0].group(0) == match.group(2):
            if index < len(record.args):
                value = _typed(record.args[index], placeholders[0].group(0), placeholders[0].group(1))
                if value is not _UNTYPED:
                    typed[match.group(1)] = value
        index += len(placeholders) + sum(m.group(0).count("*") for m in placeholders)
    return typed


_UNTYPED = object()


def _typed(value: Any, spec: str, conversion: str) -> Any:
    """`value` as JSON should keep it, or _UNTYPED for the rendered text."""
    if conversion not in "sdiueEfFgG":
        return _UNTYPED
    if value is None or type(value) is bool:
        return value if conversion == "s" else _UNTYPED
    if type(value) not in (int, float) or not math.isfinite(value):
        return _UNTYPED
    if conversion in "diu":
        return int(value)
    return float(spec % value) if conversion in "eEfFgG" else value


def _event(record: logging.LogRecord, typed: bool) -> dict[str, Any]:
    msg, fields = split_message(record.getMessage())
    event: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(), "logger": record.name,
    }
    parts = record.name.split(".")
    if len(parts) >= 2 and parts[0] == "rosettamq" and parts[1] in PROTOCOL_LOGGERS and "protocol" not in fields:
        event["protocol"] = parts[1]
    event["msg"] = msg
    values: dict[str, Any] = dict(fields)
    if typed:
        values.update((key, value) for key, value in typed_arguments(record).items() if key in fields)
    for key, value in values.items():
        event[f"field_{key}" if key in RESERVED else key] = value
    if record.exc_info:
        event["exc"] = logging.Formatter().formatException(record.exc_info)
    return event


class JSONFormatter(logging.Formatter):
    """One JSON object a line; field values typed as the call's arguments were."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_event(record, typed=True), ensure_ascii=False, default=str)


class KeyValueFormatter(logging.Formatter):
    """logfmt: ``ts=... level=INFO logger=... [protocol=...] msg="..." key=value...``."""

    def format(self, record: logging.LogRecord) -> str:
        event = _event(record, typed=False)
        event["level"] = record.levelname  # upper case, as grep-minded operators (and Mosquitto) write it
        exc = event.pop("exc", None)
        line = " ".join(f"{key}={_quote(str(value))}" for key, value in event.items())
        return line if exc is None else f"{line}\n{exc}"


def _quote(value: str) -> str:
    if value == "" or any(c in value for c in ' "=\n'):
        return json.dumps(value, ensure_ascii=False)
    return value


def make_handler(path: str | None) -> logging.Handler:
    """stderr, or a file reopened when logrotate moves it away (and on every reconfiguration)."""
    if path is None:
        return logging.StreamHandler(sys.stderr)
    return logging.handlers.WatchedFileHandler(path, encoding="utf-8")


def configure_logging(config: "Config", level_override: str | None = None, format_override: str | None = None) -> None:
    """Root handler (stderr or `[log] file`) in the chosen format, the global level and the per-logger levels.

    Called again on SIGHUP: the file is reopened, levels set by the previous config are reset.
    Raises OSError when the log file cannot be opened (the previous handler then stays).
    """
    level = (level_override or config.log.level).upper()
    handler = make_handler(config.log.file)
    handler.setFormatter(JSONFormatter() if (format_override or config.log.format) == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for old in _handler:
        old.close()
    _handler[:] = [handler]
    root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
    for name in _configured_levels - {name for name, _ in config.log.levels}:
        logging.getLogger(name).setLevel(logging.NOTSET)
    _configured_levels.clear()
    for name, name_level in config.log.levels:
        logging.getLogger(name).setLevel(name_level.upper())
        _configured_levels.add(name)


def logs_to_stderr() -> bool:
    """Whether the root handler writes to stderr (else fatal errors are also printed there)."""
    return any(type(h) is logging.StreamHandler and h.stream is sys.stderr  # type: ignore[attr-defined]
               for h in logging.getLogger().handlers)
