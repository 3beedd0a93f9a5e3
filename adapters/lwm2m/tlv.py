"""OMA TLV, application/vnd.oma.lwm2m+tlv (11542): LwM2M TS 1.0 section 6.4.3.

Wire layer: `decode_tlv` / `encode_tlv` turn bytes into `Tlv` entries and
back. The type byte is: bits 7-6 kind (object instance, resource instance,
multiple resource, resource with value), bit 5 identifier size (8 or 16 bit),
bits 4-3 length size (in bits 2-0, or 8, 16, 24 bit), bits 2-0 short length.
Encoding always picks the shortest identifier and length fields.

Value layer: `encode_value` / `decode_value` per resource type (integers in
the shortest of 1/2/4/8 bytes, floats in 4 bytes when that is lossless).
Content layer: `tlv_to_content` / `content_to_tlv` map to the shared
`Content` representation, typed by the object registry.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Iterable, Mapping

from .content import Content, content_items, resource_tree, resource_type, value_type
from .errors import ContentError, LocalError
from .objects import ObjectRegistry
from .paths import Path, format_path
from .values import ObjLink, ResourceType, Value, check_value

__all__ = [
    "TlvKind", "Tlv", "decode_tlv", "encode_tlv", "encode_value", "decode_value",
    "tlv_to_content", "content_to_tlv",
]


class TlvKind(IntEnum):
    """Bits 7-6 of the type byte."""

    OBJECT_INSTANCE = 0
    RESOURCE_INSTANCE = 1
    MULTIPLE_RESOURCE = 2
    RESOURCE = 3


_CONTAINER_CHILDREN = {
    TlvKind.OBJECT_INSTANCE: (TlvKind.RESOURCE, TlvKind.MULTIPLE_RESOURCE),
    TlvKind.MULTIPLE_RESOURCE: (TlvKind.RESOURCE_INSTANCE,),
}


@dataclass(frozen=True, slots=True)
class Tlv:
    """One TLV entry: containers carry `children`, the others a raw `value`."""

    kind: TlvKind
    id: int
    value: bytes = b""
    children: tuple[Tlv, ...] = ()

    @property
    def is_container(self) -> bool:
        return self.kind in _CONTAINER_CHILDREN


# --- wire layer -------------------------------------------------------------------

def _decode_entries(data: bytes, start: int, end: int, parent: TlvKind | None) -> list[Tlv]:
    entries = []
    pos = start
    while pos < end:
        type_byte = data[pos]
        kind = TlvKind(type_byte >> 6)
        id_size = 2 if type_byte & 0x20 else 1
        length_size = (type_byte >> 3) & 0x03
        header_end = pos + 1 + id_size + length_size
        if header_end > end:
            raise ContentError(f"TLV header at byte {pos} is truncated")
        ident = int.from_bytes(data[pos + 1:pos + 1 + id_size], "big")
        if length_size:
            length = int.from_bytes(data[pos + 1 + id_size:header_end], "big")
        else:
            length = type_byte & 0x07
        value_end = header_end + length
        if value_end > end:
            raise ContentError(f"TLV entry {kind.name} {ident} at byte {pos} claims "
                               f"{length} bytes, {end - header_end} remain")
        if parent is not None and kind not in _CONTAINER_CHILDREN[parent]:
            raise ContentError(f"TLV {kind.name} {ident} cannot sit inside a {parent.name}")
        if kind in _CONTAINER_CHILDREN:
            children = tuple(_decode_entries(data, header_end, value_end, kind))
            entries.append(Tlv(kind, ident, children=children))
        else:
            entries.append(Tlv(kind, ident, value=bytes(data[header_end:value_end])))
        pos = value_end
    return entries


def decode_tlv(data: bytes) -> list[Tlv]:
    """Parse a whole TLV payload; ContentError on truncation or bad nesting."""
    return _decode_entries(data, 0, len(data), None)


def _encode_entry(entry: Tlv, out: bytearray) -> None:
    body = encode_tlv(entry.children) if entry.is_container else entry.value
    if not 0 <= entry.id <= 0xFFFF:
        raise LocalError(f"TLV identifier {entry.id} outside 0..65535")
    length = len(body)
    type_byte = entry.kind << 6
    ident = entry.id.to_bytes(1 if entry.id <= 0xFF else 2, "big")
    if entry.id > 0xFF:
        type_byte |= 0x20
    if length < 8:
        type_byte |= length
        length_bytes = b""
    elif length <= 0xFF:
        type_byte |= 0x08
        length_bytes = length.to_bytes(1, "big")
    elif length <= 0xFFFF:
        type_byte |= 0x10
        length_bytes = length.to_bytes(2, "big")
    elif length <= 0xFFFFFF:
        type_byte |= 0x18
        length_bytes = length.to_bytes(3, "big")
    else:
        raise LocalError(f"TLV value of {length} bytes exceeds the 24-bit length field")
    out.append(type_byte)
    out += ident
    out += length_bytes
    out += body


def encode_tlv(entries: Iterable[Tlv]) -> bytes:
    """Serialize entries with the shortest identifier and length fields."""
    out = bytearray()
    for entry in entries:
        _encode_entry(entry, out)
    return bytes(out)


# --- value layer ------------------------------------------------------------------

def _int_bytes(value: int, signed: bool) -> bytes:
    for size in (1, 2, 4, 8):
        try:
            return value.to_bytes(size, "big", signed=signed)
        except OverflowError:
            continue
    raise LocalError(f"integer {value} does not fit in 64 bits")


def encode_value(value: Value, rtype: ResourceType) -> bytes:
    """The TLV value bytes of one resource value of type `rtype`."""
    value = check_value(value, rtype)
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return value.encode("utf-8")  # type: ignore[union-attr]
    if rtype in (ResourceType.INTEGER, ResourceType.TIME):
        return _int_bytes(value, signed=True)  # type: ignore[arg-type]
    if rtype is ResourceType.UNSIGNED_INTEGER:
        return _int_bytes(value, signed=False)  # type: ignore[arg-type]
    if rtype is ResourceType.FLOAT:
        number = float(value)  # type: ignore[arg-type]
        try:
            single = struct.pack(">f", number)
        except OverflowError:
            return struct.pack(">d", number)
        if math.isnan(number) or struct.unpack(">f", single)[0] == number:
            return single
        return struct.pack(">d", number)
    if rtype is ResourceType.BOOLEAN:
        return b"\x01" if value else b"\x00"
    if rtype is ResourceType.OBJLNK:
        return struct.pack(">HH", value.object_id, value.instance_id)  # type: ignore[union-attr]
    return value  # type: ignore[return-value]  # Opaque


def decode_value(raw: bytes, rtype: ResourceType | None) -> Value:
    """Decode TLV value bytes as `rtype`; undefined resources stay Opaque bytes."""
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ContentError(f"{rtype} value is not UTF-8: {raw!r}") from None
    if rtype in (ResourceType.INTEGER, ResourceType.TIME, ResourceType.UNSIGNED_INTEGER):
        if not 1 <= len(raw) <= 8:
            raise ContentError(f"{rtype} value of {len(raw)} bytes (expected 1, 2, 4 or 8)")
        return int.from_bytes(raw, "big", signed=rtype is not ResourceType.UNSIGNED_INTEGER)
    if rtype is ResourceType.FLOAT:
        if len(raw) == 4:
            return struct.unpack(">f", raw)[0]
        if len(raw) == 8:
            return struct.unpack(">d", raw)[0]
        raise ContentError(f"Float value of {len(raw)} bytes (expected 4 or 8)")
    if rtype is ResourceType.BOOLEAN:
        if raw not in (b"\x00", b"\x01"):
            raise ContentError(f"Boolean value {raw!r} is not one byte 0 or 1")
        return raw == b"\x01"
    if rtype is ResourceType.OBJLNK:
        if len(raw) != 4:
            raise ContentError(f"Objlnk value of {len(raw)} bytes (expected 4)")
        return ObjLink(*struct.unpack(">HH", raw))
    return bytes(raw)


# --- content layer ----------------------------------------------------------------

_LEVEL = {TlvKind.OBJECT_INSTANCE: 1, TlvKind.RESOURCE: 2,
          TlvKind.MULTIPLE_RESOURCE: 2, TlvKind.RESOURCE_INSTANCE: 3}


def _collect(entries: Iterable[Tlv], context: Path, registry: ObjectRegistry,
             out: Content) -> None:
    for entry in entries:
        level = _LEVEL[entry.kind]
        prefix = context[:level]
        if len(prefix) == 1 and level == 2:
            prefix += (0,)  # resources straight under an object: its single instance
        if len(prefix) < level:
            raise ContentError(f"TLV {entry.kind.name} {entry.id} cannot answer "
                               f"{format_path(context)}")
        path = prefix + (entry.id,)
        if entry.is_container:
            _collect(entry.children, path, registry, out)
        else:
            out[format_path(path)] = decode_value(entry.value, resource_type(registry, path))


def tlv_to_content(payload: bytes, base: Path, registry: ObjectRegistry) -> Content:
    """Decode a TLV answer to a request on `base` (an object, instance, resource...)."""
    if not base:
        raise ContentError("a TLV payload needs at least an object id as base path")
    content: Content = {}
    _collect(decode_tlv(payload), base, registry, content)
    return content


def _resource_entry(path: Path, node: Value | Mapping[int, Value],
                    registry: ObjectRegistry) -> Tlv:
    if isinstance(node, Mapping):
        children = tuple(
            Tlv(TlvKind.RESOURCE_INSTANCE, rid,
                encode_value(v, value_type(registry, path + (rid,), v)))
            for rid, v in node.items())
        return Tlv(TlvKind.MULTIPLE_RESOURCE, path[2], children=children)
    return Tlv(TlvKind.RESOURCE, path[2], encode_value(node, value_type(registry, path, node)))


def content_to_tlv(content: Mapping[str, Value], base: Path, registry: ObjectRegistry) -> bytes:
    """Encode `content` for a request on `base`.

    On an object: object instances; on an instance: its resources; on a
    resource: that resource (multiple when its values sit at depth 4); on a
    resource instance: that instance.
    """
    if not base:
        raise LocalError("TLV needs at least an object id as base path")
    items = content_items(content, base)
    if any(path[0] != base[0] for path, _ in items):
        raise LocalError("one TLV payload carries one object")
    tree = resource_tree(items)
    if len(base) == 4:
        entries = [Tlv(TlvKind.RESOURCE_INSTANCE, path[3],
                       encode_value(value, value_type(registry, path, value)))
                   for path, value in items if len(path) == 4]
    elif len(base) == 1:
        entries = [Tlv(TlvKind.OBJECT_INSTANCE, inst, children=tuple(
            _resource_entry((base[0], inst, rid), node, registry) for rid, node in resources.items()))
            for inst, resources in tree.items()]
    else:
        entries = [_resource_entry((base[0], inst, rid), node, registry)
                   for inst, resources in tree.items() for rid, node in resources.items()]
    return encode_tlv(entries)
