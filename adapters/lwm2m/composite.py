"""Composite operations of LwM2M 1.1 (core 6.3.8, 6.3.9, 6.4.3): several paths in one request.

| msgType                   | data                                   | CoAP request                           |
|---------------------------|----------------------------------------|----------------------------------------|
| read-composite            | paths [..], contentFormat?             | FETCH /, SenML names, Accept SenML     |
| observe-composite         | paths [..], contentFormat?             | FETCH /, Observe 0                     |
| cancel-observe-composite  | paths [..] (as observed)               | FETCH /, Observe 1, the same token     |
| write-composite           | content [{path, value, type?}], contentFormat? | iPATCH /, SenML records with values |

Paths are absolute (``"/3/0/0"``, ``"/3303/0"``). The request goes to the device's
root (its alternate path) in SenML: the first of SenML JSON and SenML CBOR the device
announced in ``ct``, else SenML CBOR (the 1.1 default); ``contentFormat`` picks one.
Answers and notifications carry the values under every path asked for, decoded from
the absolute SenML names, with ``reqPath`` "/" and the ``paths`` of the command.
"""

from __future__ import annotations

from typing import Any, Mapping

from .coap import CoapRequest
from .content import Content, content_from_json
from .errors import CommandError, LwM2MError
from .formats import ContentFormat, parse_format
from .negotiation import preferred_formats
from .objects import ObjectRegistry
from .paths import Path, format_path, parse_path
from .registrations import Registration
from .senml import SenMLRecord, content_to_senml, dump_senml_cbor, dump_senml_json

__all__ = ["COMPOSITE_TYPES", "composite_request"]

COMPOSITE_TYPES = ("read-composite", "observe-composite", "cancel-observe-composite", "write-composite")
_SENML = (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR)
_OBSERVE = {"observe-composite": 0, "cancel-observe-composite": 1}


def _format(data: Mapping[str, Any], registration: Registration | None) -> ContentFormat:
    if data.get("contentFormat") is not None:
        try:
            fmt = parse_format(data["contentFormat"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if fmt not in _SENML:
            raise CommandError("composite operations take SenML JSON (110) or SenML CBOR (112)")
        return fmt
    for fmt in preferred_formats(registration) if registration is not None else ():
        if fmt in _SENML:
            return fmt
    return ContentFormat.SENML_CBOR


def _paths(data: Mapping[str, Any]) -> tuple[Path, ...]:
    texts = data.get("paths")
    if not isinstance(texts, list) or not texts:
        raise CommandError('data.paths must be a non-empty list of paths such as ["/3/0/0", "/3303/0"]')
    paths = []
    for text in texts:
        try:
            path = parse_path(text)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not path:
            raise CommandError("composite paths name at least an object")
        paths.append(path)
    return tuple(paths)


def _dump(fmt: ContentFormat, records: list[SenMLRecord]) -> bytes:
    return dump_senml_json(records) if fmt is ContentFormat.SENML_JSON else dump_senml_cbor(records)


def _write_payload(fmt: ContentFormat, content: Content, registry: ObjectRegistry) -> bytes:
    records, _ = content_to_senml(content, (), registry)  # absolute names
    return _dump(fmt, records)


def composite_request(msg_type: str, data: Mapping[str, Any], registration: Registration | None,
                      registry: ObjectRegistry) -> tuple[tuple[Path, ...], CoapRequest]:
    """(the paths read, observed or written; the FETCH or iPATCH to send) for a composite command."""
    fmt = _format(data, registration)
    prefix = registration.path_prefix() if registration else ()
    if msg_type == "write-composite":
        entries = data.get("content")
        if not isinstance(entries, list) or not entries:
            raise CommandError('data.content must be a non-empty list of {"path", "value"} entries')
        content = content_from_json((), entries, registry)
        try:
            payload = _write_payload(fmt, content, registry)
        except LwM2MError as exc:
            raise CommandError(f"cannot write these values as {fmt.name}: {exc}") from None
        paths = tuple(parse_path(key) for key in content)
        return paths, CoapRequest("iPATCH", prefix, content_format=int(fmt), payload=payload)
    paths = _paths(data)
    payload = _dump(fmt, [SenMLRecord(name=format_path(path)) for path in paths])
    return paths, CoapRequest("FETCH", prefix, content_format=int(fmt), accept=int(fmt), payload=payload,
                              observe=_OBSERVE.get(msg_type))
