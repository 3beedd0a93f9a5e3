"""SenML (RFC 8428) in JSON (110) and CBOR (112), as LwM2M 1.1 uses them.

Two layers. Records: `parse_senml_json` / `parse_senml_cbor` resolve base
fields (name = bn + n, time = bt + t, unit = u or bu, numeric value = bv + v,
sum = bs + s) into `SenMLRecord` values; `dump_senml_json` /
`dump_senml_cbor` write records back with one base name. CBOR uses the
integer labels of RFC 8428 section 6 (bver -1, bn -2, bt -3, bu -4, bv -5,
bs -6, n 0, u 1, v 2, vs 3, vb 4, s 5, t 6, ut 7, vd 8) and the text label
``vlo`` for LwM2M object links; JSON carries ``vd`` as base64url.

LwM2M layer: `senml_to_content` / `content_to_senml` map records whose names
are LwM2M paths to `Content`, typed by the object definitions.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import cbor2

from .content import Content, content_items, resource_type, value_type
from .errors import ContentError
from .objects import ObjectRegistry
from .paths import Path, format_path, parse_path
from .values import ObjLink, Value, ValueKind, coerce_value, value_kind

__all__ = [
    "SenMLRecord", "parse_senml_json", "parse_senml_cbor", "dump_senml_json",
    "dump_senml_cbor", "senml_to_content", "content_to_senml", "CBOR_LABELS",
]

CBOR_LABELS = {-1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs",
               0: "n", 1: "u", 2: "v", 3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd"}
_LABEL_NUMBERS = {name: number for number, name in CBOR_LABELS.items()}
_VALUE_FIELDS = {"v": ValueKind.NUMBER, "vs": ValueKind.STRING, "vb": ValueKind.BOOLEAN,
                 "vd": ValueKind.OPAQUE, "vlo": ValueKind.OBJLNK}
_KIND_FIELDS = {kind: field for field, kind in _VALUE_FIELDS.items()}


@dataclass(frozen=True, slots=True)
class SenMLRecord:
    """A resolved record: base fields already applied."""

    name: str
    value: Any = None
    kind: ValueKind | None = None
    unit: str | None = None
    time: float | None = None
    sum: float | None = None


def _number(record: Mapping[str, Any], field: str) -> float | int | None:
    value = record.get(field)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ContentError(f'SenML "{field}" must be a number, not {value!r}')
    return value


def _text(record: Mapping[str, Any], field: str) -> str | None:
    value = record.get(field)
    if value is not None and not isinstance(value, str):
        raise ContentError(f'SenML "{field}" must be a string, not {value!r}')
    return value


def _resolve(raw_records: Any) -> list[SenMLRecord]:
    if not isinstance(raw_records, list):
        raise ContentError("a SenML pack is an array of records")
    base_name, base_time, base_unit = "", 0.0, None
    base_value: float | int = 0
    base_sum: float | int = 0
    records = []
    for raw in raw_records:
        if not isinstance(raw, dict):
            raise ContentError(f"SenML record {raw!r} is not a map")
        if "bn" in raw:
            base_name = _text(raw, "bn") or ""
        if "bt" in raw:
            base_time = _number(raw, "bt") or 0
        if "bu" in raw:
            base_unit = _text(raw, "bu")
        if "bv" in raw:
            base_value = _number(raw, "bv") or 0
        if "bs" in raw:
            base_sum = _number(raw, "bs") or 0
        fields = [f for f in _VALUE_FIELDS if f in raw]
        if len(fields) > 1:
            raise ContentError(f"SenML record has several values: {fields}")
        value: Any = None
        kind = None
        if fields:
            kind = _VALUE_FIELDS[fields[0]]
            value = raw[fields[0]]
            if fields[0] == "v":
                value = _number(raw, "v") + base_value  # type: ignore[operator]
        elif "bv" in raw:  # a base value alone is the record's value
            kind, value = ValueKind.NUMBER, base_value
        name = base_name + (_text(raw, "n") or "")
        time = _number(raw, "t")
        total = _number(raw, "s")
        records.append(SenMLRecord(
            name=name, value=value, kind=kind, unit=_text(raw, "u") or base_unit,
            time=None if time is None and not base_time else (time or 0) + base_time,
            sum=None if total is None else total + base_sum))
    return records


def parse_senml_json(payload: bytes) -> list[SenMLRecord]:
    """Resolve a SenML JSON pack; ContentError on anything malformed."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContentError(f"SenML JSON does not parse: {exc}") from None
    if isinstance(document, list):
        for raw in document:
            if isinstance(raw, dict) and "vd" in raw:
                raw["vd"] = _b64url_decode(raw["vd"])
    return _resolve(document)


def parse_senml_cbor(payload: bytes) -> list[SenMLRecord]:
    """Resolve a SenML CBOR pack (integer labels; text labels tolerated)."""
    try:
        document = cbor2.loads(payload)
    except Exception as exc:  # cbor2 raises several types for truncated or bad input
        raise ContentError(f"SenML CBOR does not parse: {exc}") from None
    if not isinstance(document, list):
        raise ContentError("a SenML pack is an array of records")
    renamed = []
    for raw in document:
        if not isinstance(raw, dict):
            raise ContentError(f"SenML record {raw!r} is not a map")
        renamed.append({CBOR_LABELS.get(k, k) if isinstance(k, int) else k: v
                        for k, v in raw.items()})
    return _resolve(renamed)


def _b64url_decode(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ContentError(f'SenML "vd" must be base64url text, not {text!r}')
    try:
        padded = text.replace("+", "-").replace("/", "_").rstrip("=")
        return base64.b64decode(padded + "=" * (-len(padded) % 4), altchars=b"-_",
                                validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContentError(f'SenML "vd" {text!r} is not base64url: {exc}') from None


def _raw_records(records: Iterable[SenMLRecord], base_name: str) -> list[dict[str, Any]]:
    out = []
    for index, record in enumerate(records):
        raw: dict[str, Any] = {}
        if index == 0 and base_name:
            raw["bn"] = base_name
        if not record.name.startswith(base_name):
            raise ContentError(f"record {record.name!r} is outside base name {base_name!r}")
        relative = record.name[len(base_name):]
        if relative or not base_name:
            raw["n"] = relative
        if record.unit is not None:
            raw["u"] = record.unit
        if record.kind is not None:
            raw[_KIND_FIELDS[record.kind]] = record.value
        if record.sum is not None:
            raw["s"] = record.sum
        if record.time is not None:
            raw["t"] = record.time
        out.append(raw)
    return out


def dump_senml_json(records: Iterable[SenMLRecord], base_name: str = "") -> bytes:
    """Write records as SenML JSON, names relative to `base_name` (set on the first)."""
    raws = _raw_records(records, base_name)
    for raw in raws:
        if isinstance(raw.get("vd"), bytes):
            raw["vd"] = base64.urlsafe_b64encode(raw["vd"]).rstrip(b"=").decode("ascii")
    return json.dumps(raws, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dump_senml_cbor(records: Iterable[SenMLRecord], base_name: str = "") -> bytes:
    """Write records as SenML CBOR with integer labels and the shortest floats."""
    raws = [{_LABEL_NUMBERS.get(k, k): v for k, v in raw.items()}
            for raw in _raw_records(records, base_name)]
    return cbor2.dumps(raws, canonical=True)


# --- LwM2M mapping ----------------------------------------------------------------

def record_path(record: SenMLRecord) -> Path:
    """The LwM2M path a resolved record names (relative or absolute); ContentError if it names none."""
    try:
        return parse_path(record.name)
    except ValueError as exc:
        raise ContentError(f"SenML name {record.name!r}: {exc}") from None


def senml_to_content(records: Iterable[SenMLRecord], base: Path,
                     registry: ObjectRegistry) -> Content:
    """Map resolved records (names are LwM2M paths) to `Content`.

    Records without a value are skipped; a relative name sits under `base`.
    """
    content: Content = {}
    for record in records:
        if record.kind is None:
            continue
        path = record_path(record)
        if not record.name.startswith("/"):
            path = base + path
        if len(path) < 3:
            raise ContentError(f"{format_path(path)} does not name a resource")
        content[format_path(path)] = coerce_value(
            record.value, record.kind, resource_type(registry, path))
    return content


def _senml_value(value: Value) -> Any:
    return str(value) if isinstance(value, ObjLink) else value


def content_to_senml(content: Mapping[str, Value], base: Path,
                     registry: ObjectRegistry) -> tuple[list[SenMLRecord], str]:
    """Records for `content` and the base name to write them with (``/3/0/``)."""
    records = []
    for path, value in content_items(content, base):
        kind = value_kind(value_type(registry, path, value))
        records.append(SenMLRecord(name=format_path(path), value=_senml_value(value), kind=kind))
    return records, format_path(base[:2]) + "/"
