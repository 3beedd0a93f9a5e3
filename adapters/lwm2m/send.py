"""The LwM2M 1.1 Send operation: a device POSTs values to ``/dp`` unasked (pure: no I/O).

The payload is SenML JSON (110) or SenML CBOR (112) with absolute names, possibly
several timestamped values of one resource (LwM2M 1.1 core, 6.4.1)::

    [{"bn": "/3303/0/", "n": "5700", "v": 22.5, "bt": 1700000000},
     {"n": "5700", "v": 22.75, "t": 10}]

`decode_send` turns it into the ``content`` list of the message published on
``{prefix}/{ep}/up/send``, each record kept, in order, with its ``time`` when it
has one::

    {"msgType": "send", "data": {"reqPath": "/dp", "code": "2.04", "codeMsg": "changed",
     "content": [{"path": "/3303/0/5700", "value": 22.5, "time": 1700000000}, ...]}}

A device that is not registered from the sending address is answered 4.04 (not
published); a payload in another format 4.15; one that does not decode 4.00.
"""

from __future__ import annotations

from typing import Any

from .coap import code_name
from .content import resource_type
from .errors import ContentError, UnsupportedContentFormat
from .formats import ContentFormat, parse_format
from .objects import ObjectRegistry
from .paths import format_path
from .senml import parse_senml_cbor, parse_senml_json, record_path
from .values import coerce_value, value_to_json

__all__ = ["SEND_PATH", "decode_send", "send_message"]

SEND_PATH = ("dp",)


def decode_send(content_format: int | None, payload: bytes, registry: ObjectRegistry) -> list[dict[str, Any]]:
    """The ``content`` list of a Send payload; ContentError (4.00) or UnsupportedContentFormat (4.15)."""
    try:
        fmt = parse_format(content_format) if content_format is not None else None
    except ValueError:
        fmt = None
    if fmt is ContentFormat.SENML_JSON:
        records = parse_senml_json(payload)
    elif fmt is ContentFormat.SENML_CBOR:
        records = parse_senml_cbor(payload)
    else:
        raise UnsupportedContentFormat(f"Send takes SenML JSON (110) or CBOR (112), not {content_format}")
    content = []
    for record in records:
        if record.kind is None:
            continue
        path = record_path(record)
        if len(path) < 3 or not record.name.startswith("/"):
            raise ContentError(f"Send names absolute resource paths, not {record.name!r}")
        item: dict[str, Any] = {"path": format_path(path), "value": value_to_json(
            coerce_value(record.value, record.kind, resource_type(registry, path)))}
        if record.time is not None:
            item["time"] = record.time
        content.append(item)
    if not content:
        raise ContentError("a Send carries at least one value")
    return content


def send_message(content: list[dict[str, Any]]) -> dict[str, Any]:
    """The message published on ``up/send`` for decoded values."""
    return {"msgType": "send", "data": {"reqPath": "/dp", "code": "2.04", "codeMsg": code_name("2.04"),
                                        "content": content}}
