"""LwM2M resource data types and the Python values that stand for them.

Every decoded value is one of: ``str`` (String, Corelnk), ``int`` (Integer,
Unsigned Integer, Time as Unix seconds), ``float`` (Float), ``bool``
(Boolean), ``bytes`` (Opaque) or `ObjLink` (Objlnk). The object definitions
say which type a resource has; the helpers here convert between those values
and the text/plain form (LwM2M TS 1.1 section 7.3) and the JSON form of the
MQTT answers (EMQX's style: Opaque as base64, Objlnk as ``"3:0"``).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Union

from .errors import CommandError, ContentError, LocalError

__all__ = [
    "ResourceType", "ObjLink", "Value", "parse_type", "check_value",
    "value_to_text", "value_from_text", "value_to_json", "value_from_json",
    "infer_type", "ValueKind", "value_kind", "coerce_value",
]


class ResourceType(StrEnum):
    """The resource types of the OMA DDF ``<Type>`` element (LwM2M 1.0 to 1.2)."""

    STRING = "String"
    INTEGER = "Integer"
    UNSIGNED_INTEGER = "Unsigned Integer"
    FLOAT = "Float"
    BOOLEAN = "Boolean"
    OPAQUE = "Opaque"
    TIME = "Time"
    OBJLNK = "Objlnk"
    CORELNK = "Corelnk"
    NONE = "none"  # executable resources have no value type


@dataclass(frozen=True, slots=True, order=True)
class ObjLink:
    """An Objlnk value: ``object_id:instance_id`` (``65535:65535`` is the null link)."""

    object_id: int
    instance_id: int

    def __post_init__(self) -> None:
        for part in (self.object_id, self.instance_id):
            if not 0 <= part <= 0xFFFF:
                raise ValueError(f"Objlnk part {part} outside 0..65535")

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"

    @classmethod
    def parse(cls, text: str) -> ObjLink:
        """Parse ``"3:0"``; ValueError on anything else."""
        left, sep, right = text.strip().partition(":")
        if not sep or not left.isdigit() or not right.isdigit():
            raise ValueError(f"{text!r} is not an Objlnk (expected 'object:instance')")
        return cls(int(left), int(right))


Value = Union[str, int, float, bool, bytes, ObjLink]

_TYPE_NAMES = {t.value.lower().replace(" ", ""): t for t in ResourceType}
_TYPE_NAMES.update({"": ResourceType.NONE, "unsignedint": ResourceType.UNSIGNED_INTEGER,
                    "objectlink": ResourceType.OBJLNK, "corelink": ResourceType.CORELNK,
                    "int": ResourceType.INTEGER, "bool": ResourceType.BOOLEAN,
                    "double": ResourceType.FLOAT, "text": ResourceType.STRING})
_INT_TYPES = (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER, ResourceType.TIME)
_STR_TYPES = (ResourceType.STRING, ResourceType.CORELNK)


def parse_type(text: str) -> ResourceType:
    """Read a DDF or command type name, tolerating case and spaces ("unsigned integer")."""
    key = text.strip().lower().replace(" ", "").replace("_", "")
    try:
        return _TYPE_NAMES[key]
    except KeyError:
        raise ValueError(f"unknown LwM2M resource type {text!r}") from None


def infer_type(value: Value) -> ResourceType:
    """The natural type of a Python value, for resources with no definition."""
    if isinstance(value, bool):
        return ResourceType.BOOLEAN
    if isinstance(value, int):
        return ResourceType.INTEGER
    if isinstance(value, float):
        return ResourceType.FLOAT
    if isinstance(value, bytes):
        return ResourceType.OPAQUE
    if isinstance(value, ObjLink):
        return ResourceType.OBJLNK
    if isinstance(value, str):
        return ResourceType.STRING
    raise LocalError(f"{type(value).__name__} is not an LwM2M value")


def check_value(value: Any, rtype: ResourceType) -> Value:
    """Return `value` as the Python form of `rtype`, or raise LocalError."""
    if rtype in _INT_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise LocalError(f"{rtype} value must be an int, not {value!r}")
        if rtype is ResourceType.UNSIGNED_INTEGER and value < 0:
            raise LocalError(f"Unsigned Integer value {value} is negative")
        return value
    if rtype is ResourceType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LocalError(f"Float value must be a number, not {value!r}")
        return float(value)
    expected = {ResourceType.BOOLEAN: bool, ResourceType.OPAQUE: bytes,
                ResourceType.OBJLNK: ObjLink, ResourceType.STRING: str,
                ResourceType.CORELNK: str}.get(rtype)
    if expected is None:
        raise LocalError(f"resources of type {rtype} carry no value")
    if not isinstance(value, expected):
        raise LocalError(f"{rtype} value must be {expected.__name__}, not {value!r}")
    return value


def _format_float(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return f"{value:.1f}"
    return repr(value)


def value_to_text(value: Value, rtype: ResourceType) -> str:
    """The text/plain form of a single value (Opaque has none: use opaque 42)."""
    value = check_value(value, rtype)
    if rtype is ResourceType.BOOLEAN:
        return "1" if value else "0"
    if rtype is ResourceType.FLOAT:
        return _format_float(value)  # type: ignore[arg-type]
    if rtype is ResourceType.OPAQUE:
        raise LocalError("Opaque values have no text/plain form; use application/octet-stream")
    return str(value)


def value_from_text(text: str, rtype: ResourceType) -> Value:
    """Decode a text/plain payload; ContentError when it is not of `rtype`."""
    stripped = text.strip()
    try:
        if rtype in _INT_TYPES:
            number = float(stripped) if "." in stripped or "e" in stripped.lower() else None
            if number is not None and number.is_integer():
                return check_value(int(number), rtype)
            return check_value(int(stripped), rtype)
        if rtype is ResourceType.FLOAT:
            return float(stripped)
        if rtype is ResourceType.BOOLEAN:
            lowered = stripped.lower()
            if lowered in ("1", "true"):
                return True
            if lowered in ("0", "false"):
                return False
            raise ValueError(f"{text!r} is not 0 or 1")
        if rtype is ResourceType.OBJLNK:
            return ObjLink.parse(stripped)
        if rtype is ResourceType.OPAQUE:
            return text.encode("utf-8")
    except (ValueError, LocalError) as exc:
        raise ContentError(f"text {text!r} is not a valid {rtype}: {exc}") from None
    return text


def value_to_json(value: Value) -> Any:
    """The JSON form used in MQTT answers: base64 for Opaque, "3:0" for Objlnk."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, ObjLink):
        return str(value)
    return value


def value_from_json(obj: Any, rtype: ResourceType | None) -> Value:
    """Read a command's JSON value as `rtype` (inferred from the JSON when None).

    Tolerant like EMQX: numbers may come as strings ("12345"), booleans as
    "true"/"false"/0/1, Opaque as base64 text, Objlnk as "3:0".
    """
    if rtype is None:
        if isinstance(obj, (bool, int, float, str)):
            return obj
        raise CommandError(f"value {obj!r} needs a type")
    try:
        if isinstance(obj, str) and rtype not in _STR_TYPES and rtype is not ResourceType.OPAQUE:
            return value_from_text(obj, rtype)
        if rtype is ResourceType.BOOLEAN and isinstance(obj, int) and obj in (0, 1):
            return bool(obj)
        if rtype is ResourceType.OPAQUE:
            if not isinstance(obj, str):
                raise ValueError("Opaque values are base64 text")
            return base64.b64decode(obj, validate=True)
        if rtype in _STR_TYPES and not isinstance(obj, str):
            raise ValueError("expected a string")
        return check_value(obj, rtype)
    except (ValueError, LocalError, ContentError, binascii.Error) as exc:
        raise CommandError(f"value {obj!r} is not a valid {rtype}: {exc}") from None


class ValueKind(StrEnum):
    """How self-describing formats (LwM2M JSON, SenML) tag a value."""

    NUMBER = "number"      # LwM2M JSON "v", SenML "v"
    STRING = "string"      # LwM2M JSON "sv", SenML "vs"
    BOOLEAN = "boolean"    # LwM2M JSON "bv", SenML "vb"
    OBJLNK = "objlnk"      # LwM2M JSON "ov", SenML "vlo"
    OPAQUE = "opaque"      # SenML "vd" (LwM2M JSON carries Opaque as base64 "sv")


def value_kind(rtype: ResourceType) -> ValueKind:
    """The tag a value of `rtype` is written with."""
    if rtype in _INT_TYPES or rtype is ResourceType.FLOAT:
        return ValueKind.NUMBER
    if rtype is ResourceType.BOOLEAN:
        return ValueKind.BOOLEAN
    if rtype is ResourceType.OBJLNK:
        return ValueKind.OBJLNK
    if rtype is ResourceType.OPAQUE:
        return ValueKind.OPAQUE
    return ValueKind.STRING


def coerce_value(raw: Any, kind: ValueKind, rtype: ResourceType | None) -> Value:
    """Type a value read from a self-describing format with the resource's definition.

    Without a definition the tag decides (numbers stay int or float). With
    one, compatible forms convert (an integral number for an Integer, a "0"
    string for a Boolean...); ContentError otherwise.
    """
    try:
        if kind is ValueKind.NUMBER:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ValueError("not a number")
            if rtype is None:
                return raw
            if rtype is ResourceType.BOOLEAN and raw in (0, 1):
                return bool(raw)
            if rtype in _STR_TYPES:
                return _format_float(raw) if isinstance(raw, float) else str(raw)
            return check_value(raw, rtype)
        if kind is ValueKind.BOOLEAN:
            if not isinstance(raw, bool):
                raise ValueError("not a boolean")
            return raw if rtype in (None, ResourceType.BOOLEAN) else check_value(raw, rtype)
        if kind is ValueKind.OBJLNK:
            return ObjLink.parse(raw)
        if kind is ValueKind.OPAQUE:
            if not isinstance(raw, bytes):
                raise ValueError("not a byte string")
            return raw if rtype in (None, ResourceType.OPAQUE) else value_from_text(
                raw.decode("utf-8"), rtype)
        if not isinstance(raw, str):
            raise ValueError("not a string")
        if rtype is None or rtype in _STR_TYPES:
            return raw
        if rtype is ResourceType.OPAQUE:
            return base64.b64decode(raw, validate=True)
        return value_from_text(raw, rtype)
    except (ValueError, LocalError, binascii.Error, UnicodeDecodeError, AttributeError) as exc:
        raise ContentError(f"{kind} value {raw!r} does not fit {rtype or 'any type'}: {exc}") from None
