"""Content-Format numbers and the two entry points every caller uses.

`decode_content(format, payload, base, registry)` and
`encode_content(format, content, base, registry)` dispatch to text/plain (0),
opaque (42), TLV (11542), LwM2M JSON (11543), SenML JSON (110) and SenML CBOR
(112). A response without Content-Format is read as text/plain, as LwM2M 1.0
clients such as lwm2m-node-lib send it; the pre-registration numbers 1541,
1542 and 1543 of old clients are read as text, TLV and JSON.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Mapping

from .content import Content, resource_type, value_type
from .errors import ContentError, LocalError, UnsupportedContentFormat
from .lwm2m_json import decode_lwm2m_json, encode_lwm2m_json
from .objects import ObjectRegistry
from .paths import Path, format_path
from .senml import (content_to_senml, dump_senml_cbor, dump_senml_json, parse_senml_cbor,
                    parse_senml_json, senml_to_content)
from .tlv import content_to_tlv, tlv_to_content
from .values import ResourceType, Value, value_from_text, value_to_text

__all__ = ["ContentFormat", "parse_format", "decode_content", "encode_content",
           "format_name"]


class ContentFormat(IntEnum):
    """CoAP Content-Format numbers (IANA) LwM2M uses."""

    TEXT = 0
    LINK_FORMAT = 40
    OPAQUE = 42
    SENML_JSON = 110
    SENML_CBOR = 112
    TLV = 11542
    LWM2M_JSON = 11543


_LEGACY = {1541: ContentFormat.TEXT, 1542: ContentFormat.TLV, 1543: ContentFormat.LWM2M_JSON}
_NAMES = {
    "text": ContentFormat.TEXT, "text/plain": ContentFormat.TEXT, "plain": ContentFormat.TEXT,
    "opaque": ContentFormat.OPAQUE, "application/octet-stream": ContentFormat.OPAQUE,
    "tlv": ContentFormat.TLV, "application/vnd.oma.lwm2m+tlv": ContentFormat.TLV,
    "json": ContentFormat.LWM2M_JSON, "lwm2m+json": ContentFormat.LWM2M_JSON,
    "application/vnd.oma.lwm2m+json": ContentFormat.LWM2M_JSON,
    "senml+json": ContentFormat.SENML_JSON, "senml-json": ContentFormat.SENML_JSON,
    "application/senml+json": ContentFormat.SENML_JSON,
    "senml+cbor": ContentFormat.SENML_CBOR, "senml-cbor": ContentFormat.SENML_CBOR,
    "application/senml+cbor": ContentFormat.SENML_CBOR,
    "link": ContentFormat.LINK_FORMAT, "application/link-format": ContentFormat.LINK_FORMAT,
}
_MEDIA_TYPES = {
    ContentFormat.TEXT: "text/plain", ContentFormat.LINK_FORMAT: "application/link-format",
    ContentFormat.OPAQUE: "application/octet-stream",
    ContentFormat.SENML_JSON: "application/senml+json",
    ContentFormat.SENML_CBOR: "application/senml+cbor",
    ContentFormat.TLV: "application/vnd.oma.lwm2m+tlv",
    ContentFormat.LWM2M_JSON: "application/vnd.oma.lwm2m+json",
}


def parse_format(value: int | str) -> ContentFormat:
    """A Content-Format from its number or a name ("tlv", "senml+cbor", a media type)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a content format")
    if isinstance(value, str):
        key = value.strip().lower()
        if key.isdigit():
            value = int(key)
        elif key in _NAMES:
            return _NAMES[key]
        else:
            raise ValueError(f"unknown content format {value!r}")
    if value in _LEGACY:
        return _LEGACY[value]
    try:
        return ContentFormat(value)
    except ValueError:
        raise ValueError(f"unknown content format {value!r}") from None


def format_name(value: int) -> str:
    """The media type of a Content-Format number (the number itself if unknown)."""
    try:
        return _MEDIA_TYPES[parse_format(value)]
    except ValueError:
        return str(value)


def _single_path(base: Path, name: str) -> Path:
    if len(base) < 3:
        raise ContentError(f"{name} carries one resource value, not {format_path(base)}")
    return base


def decode_content(content_format: int | None, payload: bytes, base: Path,
                   registry: ObjectRegistry) -> Content:
    """Decode a device's payload answering a request on `base`."""
    try:
        fmt = ContentFormat.TEXT if content_format is None else parse_format(content_format)
    except ValueError:
        raise UnsupportedContentFormat(f"content format {content_format} is not supported") from None
    if fmt is ContentFormat.TEXT:
        path = _single_path(base, "text/plain")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ContentError("text/plain payload is not UTF-8") from None
        rtype = resource_type(registry, path)
        return {format_path(path): value_from_text(text, rtype or ResourceType.STRING)}
    if fmt is ContentFormat.OPAQUE:
        return {format_path(_single_path(base, "opaque")): bytes(payload)}
    if fmt is ContentFormat.TLV:
        return tlv_to_content(payload, base, registry)
    if fmt is ContentFormat.LWM2M_JSON:
        return decode_lwm2m_json(payload, base, registry)
    if fmt is ContentFormat.SENML_JSON:
        return senml_to_content(parse_senml_json(payload), base, registry)
    if fmt is ContentFormat.SENML_CBOR:
        return senml_to_content(parse_senml_cbor(payload), base, registry)
    raise UnsupportedContentFormat(f"{format_name(fmt)} does not carry resource values")


def encode_content(content_format: int, content: Mapping[str, Value], base: Path,
                   registry: ObjectRegistry) -> bytes:
    """Encode `content` for a write or create on `base` in `content_format`."""
    fmt = parse_format(content_format)
    if fmt in (ContentFormat.TEXT, ContentFormat.OPAQUE):
        if len(content) != 1 or len(base) < 3:
            raise LocalError(f"{format_name(fmt)} carries exactly one resource value")
        ((key, value),) = content.items()
        if isinstance(value, bytes):
            if fmt is ContentFormat.TEXT:
                raise LocalError("Opaque values go as application/octet-stream, not text")
            return value
        if fmt is ContentFormat.OPAQUE:
            raise LocalError(f"{key}: only Opaque values go as application/octet-stream")
        return value_to_text(value, value_type(registry, base, value)).encode("utf-8")
    if fmt is ContentFormat.TLV:
        return content_to_tlv(content, base, registry)
    if fmt is ContentFormat.LWM2M_JSON:
        return encode_lwm2m_json(content, base, registry)
    if fmt is ContentFormat.SENML_JSON:
        return dump_senml_json(*content_to_senml(content, base, registry))
    if fmt is ContentFormat.SENML_CBOR:
        return dump_senml_cbor(*content_to_senml(content, base, registry))
    raise LocalError(f"{format_name(fmt)} does not carry resource values")
