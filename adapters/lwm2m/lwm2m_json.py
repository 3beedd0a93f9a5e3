"""LwM2M JSON, application/vnd.oma.lwm2m+json (11543): LwM2M TS 1.0 section 6.4.4.

``{"bn": "/3/0/", "e": [{"n": "0", "sv": "Open Mobile Alliance"},
{"n": "6/0", "v": 1}, ...]}``: a base name and entries whose names complete
it. Values are tagged ``v`` (numbers, Time), ``sv`` (String, Corelnk, and
Opaque as base64), ``bv`` (Boolean) and ``ov`` (Objlnk, ``"3:0"``).
Timestamps (``bt``/``t``) are read and ignored: the latest entry for a path
wins.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Mapping

from .content import Content, content_items, resource_type, value_type
from .errors import ContentError
from .objects import ObjectRegistry
from .paths import Path, format_path, parse_path
from .values import ObjLink, Value, ValueKind, coerce_value, value_kind

__all__ = ["decode_lwm2m_json", "encode_lwm2m_json", "join_name"]

_TAGS = {"v": ValueKind.NUMBER, "sv": ValueKind.STRING, "bv": ValueKind.BOOLEAN,
         "ov": ValueKind.OBJLNK}
_KIND_TAGS = {ValueKind.NUMBER: "v", ValueKind.STRING: "sv", ValueKind.BOOLEAN: "bv",
              ValueKind.OBJLNK: "ov", ValueKind.OPAQUE: "sv"}


def join_name(base_name: str, name: str, request: Path) -> Path:
    """Resolve ``bn`` + ``n`` to a path; a relative result is under `request`."""
    if not name:
        text = base_name
    elif not base_name:
        text = name
    else:
        text = base_name.rstrip("/") + "/" + name.lstrip("/")
    try:
        path = parse_path(text)
    except ValueError as exc:
        raise ContentError(f"name {text!r}: {exc}") from None
    return path if text.startswith("/") else request + path


def decode_lwm2m_json(payload: bytes, base: Path, registry: ObjectRegistry) -> Content:
    """Decode an LwM2M JSON answer to a request on `base`."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContentError(f"LwM2M JSON does not parse: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("e"), list):
        raise ContentError('LwM2M JSON must be an object with an "e" array')
    base_name = document.get("bn", "")
    if not isinstance(base_name, str):
        raise ContentError('"bn" must be a string')
    content: Content = {}
    for entry in document["e"]:
        if not isinstance(entry, dict):
            raise ContentError(f"entry {entry!r} is not an object")
        name = entry.get("n", "")
        if not isinstance(name, str):
            raise ContentError(f"entry name {name!r} is not a string")
        path = join_name(base_name, name, base)
        if len(path) < 3:
            raise ContentError(f"{format_path(path)} does not name a resource")
        tags = [tag for tag in _TAGS if tag in entry]
        if len(tags) != 1:
            raise ContentError(f"entry for {format_path(path)} needs exactly one of v, sv, bv, ov")
        content[format_path(path)] = coerce_value(
            entry[tags[0]], _TAGS[tags[0]], resource_type(registry, path))
    return content


def _json_value(value: Value) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, ObjLink):
        return str(value)
    return value


def _base_name(base: Path) -> str:
    return format_path(base[:2]) + "/"


def encode_lwm2m_json(content: Mapping[str, Value], base: Path,
                      registry: ObjectRegistry) -> bytes:
    """Encode `content` for a request on `base` (base name: its object instance)."""
    base_name = _base_name(base)
    depth = len(base[:2])
    entries = []
    for path, value in content_items(content, base):
        kind = value_kind(value_type(registry, path, value))
        entries.append({"n": "/".join(str(i) for i in path[depth:]),
                        _KIND_TAGS[kind]: _json_value(value)})
    return json.dumps({"bn": base_name, "e": entries}, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")
