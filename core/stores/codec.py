"""A compact, versioned binary form of `Message` for disk stores.

Layout (little-endian), format 1:

    u8 format | u8 flags | f64 expiry | u16 user property count n
    u32 lengths[9 + 2n]        (0xFFFFFFFF = None)
    the fields' bytes, back to back

flags: bits 0-1 QoS, bit 2 retain, bit 3 payload format UTF-8, bit 4 has
expiry. The fields, in order: topic, payload, content type, correlation data,
response topic, origin protocol, origin client id, origin username, `extra`,
then each user property's name and value. Strings are UTF-8. `extra` holds
simple values (None, bool, int, float, str, bytes, lists/tuples, dicts with
str keys) in a small tagged encoding; lists come back as tuples.

One `struct` call packs every length, so encoding costs a few microseconds;
stores run it off the event loop (the SQLite store's writer thread).
"""

from __future__ import annotations

import struct
from types import MappingProxyType
from typing import Any, Final, Mapping

from core.message import Message, Origin

FORMAT: Final = 1
NONE: Final = 0xFFFFFFFF
_HEAD: Final = struct.Struct("<BBdH")
_FIXED_FIELDS: Final = 9
_FLOAT: Final = struct.Struct("<d")
_LEN: Final = struct.Struct("<I")


class CodecError(ValueError):
    """Bytes that are not a message this code can read."""


def encode_message(message: Message) -> bytes:
    """`message` as bytes; raises TypeError for an `extra` value that is not simple."""
    (topic_text, payload, qos, retain, content_type, correlation, response_topic, user_properties, expiry,
     payload_format_utf8, origin, extra) = message  # one unpacking, not a dozen NamedTuple attribute reads
    if (not user_properties and not extra and content_type is None and correlation is None
            and response_topic is None):
        # The common case (MQTT 3.1.1, plain CoAP): no optional field; the origin's bytes are cached,
        # and one struct call packs the head with every length.
        topic = topic_text.encode()
        _, proto_len, client_len, user_len, origin_bytes = _origin_bytes(origin)
        flags = qos | retain << 2 | payload_format_utf8 << 3 | (expiry is not None) << 4
        head = _PLAIN_HEAD.pack(FORMAT, flags, expiry or 0.0, 0, len(topic), len(payload), NONE, NONE, NONE,
                                proto_len, client_len, user_len, NONE)
        return b"".join((head, topic, payload, origin_bytes))
    fields: list[bytes | None] = [
        message.topic.encode(),
        message.payload,
        _utf8(message.content_type),
        message.correlation_data,
        _utf8(message.response_topic),
        origin.protocol.encode(),
        origin.client_id.encode(),
        _utf8(origin.username),
        encode_value(dict(message.extra)) if message.extra else None,
    ]
    for name, value in message.user_properties:
        fields.append(name.encode())
        fields.append(value.encode())
    flags = message.qos | message.retain << 2 | message.payload_format_utf8 << 3 | (expiry is not None) << 4
    head = _HEAD.pack(FORMAT, flags, expiry or 0.0, len(message.user_properties))
    lengths = _lengths(len(fields)).pack(*[NONE if f is None else len(f) for f in fields])
    return b"".join([head, lengths, *(f for f in fields if f)])


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
_tuple_new: Final = tuple.__new__
_STRUCTS: Final[dict[int, struct.Struct]] = {}
_ORIGINS: Final[dict[tuple[bytes | None, bytes | None, bytes | None], Origin]] = {}
# An origin's bytes as a message carries them -> (protocol length, username length, its Origin).
_ORIGINS_BY_BYTES: Final[dict[bytes, tuple[int, int, Origin]]] = {}


_PLAIN_LENGTHS: Final = struct.Struct(f"<{_FIXED_FIELDS}I")
_PLAIN_HEAD: Final = struct.Struct(f"<BBdH{_FIXED_FIELDS}I")  # _HEAD then _PLAIN_LENGTHS, packed together
_HEAD_SIZE: Final[int] = _HEAD.size
_PLAIN_START: Final[int] = _HEAD_SIZE + _PLAIN_LENGTHS.size  # where the fields of a message without options begin
# Keyed by the Origin's identity (a connection's messages share one Origin): one pointer, where
# hashing and comparing the Origin goes through its three fields per message. The entry keeps its
# Origin, so the id cannot be reused while it is cached.
_ORIGIN_BYTES: Final[dict[int, tuple[Origin, int, int, int, bytes]]] = {}


def _origin_bytes(origin: Origin) -> tuple[Origin, int, int, int, bytes]:
    """(origin, protocol length, client id length, username length or NONE, the three joined)."""
    found = _ORIGIN_BYTES.get(id(origin))
    if found is None or found[0] is not origin:
        if len(_ORIGIN_BYTES) >= 65536:
            _ORIGIN_BYTES.clear()
        proto, client, user = origin.protocol.encode(), origin.client_id.encode(), _utf8(origin.username)
        found = _ORIGIN_BYTES[id(origin)] = (origin, len(proto), len(client), NONE if user is None else len(user),
                                             proto + client + (user or b""))
    return found


def _lengths(count: int) -> struct.Struct:
    found = _STRUCTS.get(count)
    if found is None:
        found = _STRUCTS[count] = struct.Struct(f"<{count}I")
    return found


def _origin(proto: bytes | None, client: bytes | None, user: bytes | None) -> Origin:
    """One `Origin` per producer, shared (a cluster node decodes thousands a second from few producers)."""
    key = (proto, client, user)
    found = _ORIGINS.get(key)
    if found is None:
        if len(_ORIGINS) >= 65536:
            _ORIGINS.clear()
        found = _ORIGINS[key] = Origin(_text(proto), _text(client), _opt_text(user))
    return found


def _decode_plain(data: bytes, start: int, end: int, flags: int, expiry: float) -> Message | None:
    """The common case in one struct call and a few slices (a cluster node decodes every message
    another node forwards): no optional field, no user property, no extra; else None."""
    # Typed: compiled, the lengths are native integers, and the arithmetic, comparisons and slices
    # below native operations (untyped, each was a generic call on boxed integers).
    lengths: tuple[int, int, int, int, int, int, int, int, int] = _PLAIN_LENGTHS.unpack_from(data, start + _HEAD_SIZE)
    topic_len, payload_len, ctype, corr, resp, proto_len, client_len, user_len, extra = lengths
    if ctype != NONE or corr != NONE or resp != NONE or extra != NONE or proto_len == NONE or client_len == NONE:
        return None
    topic_end = start + _PLAIN_START + topic_len
    payload_end = topic_end + payload_len
    origin_end = payload_end + proto_len + client_len + (0 if user_len == NONE else user_len)
    if origin_end != end:
        raise CodecError("message truncated" if origin_end > end else "trailing bytes after message")
    if type(data) is not bytes:
        data = bytes(data)
    # The producer's Origin by its bytes, one slice (a node forwards few producers' messages).
    key = data[payload_end:origin_end]
    origin = _ORIGINS_BY_BYTES.get(key)
    if origin is None or origin[0] != proto_len or origin[1] != user_len:
        proto_end = payload_end + proto_len
        client_end = proto_end + client_len
        if len(_ORIGINS_BY_BYTES) >= 65536:
            _ORIGINS_BY_BYTES.clear()
        origin = _ORIGINS_BY_BYTES[key] = (proto_len, user_len, _origin(
            data[payload_end:proto_end], data[proto_end:client_end],
            None if user_len == NONE else data[client_end:origin_end]))
    return _tuple_new(Message, (  # type: ignore[no-any-return]  # (not the NamedTuple's Python-level __new__)
        data[start + _PLAIN_START:topic_end].decode(), data[topic_end:payload_end], flags & 3,
        flags & 4 != 0, None, None, None, (), expiry if flags & 16 else None, flags & 8 != 0,
        origin[2], _EMPTY))


def decode_message(data: bytes, start: int = 0, end: int = -1) -> Message:
    """The `Message` `encode_message` wrote, in `data[start:end]` (all of it by default: a cluster
    envelope's messages are read in place); raises CodecError for anything else."""
    if end < 0:
        end = len(data)
    elif end > len(data):
        raise CodecError("message truncated")
    try:
        head: tuple[int, int, float, int] = _HEAD.unpack_from(data, start)  # (typed: native below)
        fmt, flags, expiry, n_props = head
        if fmt != FORMAT:
            raise CodecError(f"message format {fmt}, this build reads {FORMAT}")
        if not n_props:
            plain = _decode_plain(data, start, end, flags, expiry)  # what encode_message's common case wrote
            if plain is not None:
                return plain
        if start or end != len(data) or type(data) is not bytes:
            data = bytes(data[start:end])  # slices of bytes are bytes: no copy per field below
        count = _FIXED_FIELDS + 2 * n_props
        offset = _HEAD_SIZE + 4 * count
        fields: list[bytes | None] = []
        append = fields.append
        size = len(data)
        for length in _lengths(count).unpack_from(data, _HEAD_SIZE):
            if length == NONE:
                append(None)
                continue
            end = offset + length
            if end > size:
                raise CodecError("message truncated")
            append(data[offset:end])
            offset = end
        if offset != size:
            raise CodecError("trailing bytes after message")
        topic, payload, ctype, corr, resp, proto, client, user, extra = fields[:_FIXED_FIELDS]
        props = fields[_FIXED_FIELDS:]
        return Message(
            _text(topic),
            payload or b"",
            flags & 3,  # type: ignore[arg-type]
            bool(flags & 4),
            None if ctype is None else ctype.decode(),
            corr,
            None if resp is None else resp.decode(),
            tuple((_text(props[i]), _text(props[i + 1])) for i in range(0, len(props), 2)) if props else (),
            expiry if flags & 16 else None,
            bool(flags & 8),
            _origin(proto, client, user),
            _EMPTY if extra is None else MappingProxyType(_as_dict(decode_value(extra))),
        )
    except CodecError:
        raise
    except (struct.error, ValueError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise CodecError(f"not a stored message: {exc}") from exc


# -- simple values (Message.extra) ----------------------------------------------------------


def encode_value(value: Any) -> bytes:
    """A simple value as tagged bytes; raises TypeError for anything else."""
    out = bytearray()
    _put_value(out, value)
    return bytes(out)


def decode_value(data: bytes) -> Any:
    value, end = _get_value(memoryview(data), 0)
    if end != len(data):
        raise CodecError("trailing bytes after value")
    return value


def _put_value(out: bytearray, value: Any) -> None:
    if value is None:
        out += b"N"
    elif value is True or value is False:
        out += b"T" if value else b"F"
    elif isinstance(value, int):
        _put_blob(out, b"i", str(value).encode())
    elif isinstance(value, float):
        out += b"d" + _FLOAT.pack(value)
    elif isinstance(value, str):
        _put_blob(out, b"s", value.encode())
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _put_blob(out, b"b", bytes(value))
    elif isinstance(value, (list, tuple)):
        out += b"l" + _LEN.pack(len(value))
        for item in value:
            _put_value(out, item)
    elif isinstance(value, Mapping):
        out += b"m" + _LEN.pack(len(value))
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"extra keys must be str, not {type(key).__name__}")
            _put_blob(out, b"s", key.encode())
            _put_value(out, item)
    else:
        raise TypeError(f"cannot store a {type(value).__name__} in Message.extra")


def _put_blob(out: bytearray, tag: bytes, data: bytes) -> None:
    out += tag + _LEN.pack(len(data)) + data


def _get_value(data: memoryview, offset: int) -> tuple[Any, int]:
    if offset >= len(data):
        raise CodecError("value truncated")
    tag = data[offset : offset + 1].tobytes()
    offset += 1
    if tag == b"N":
        return None, offset
    if tag in (b"T", b"F"):
        return tag == b"T", offset
    if tag == b"d":
        return _FLOAT.unpack_from(data, offset)[0], offset + _FLOAT.size
    if tag in (b"i", b"s", b"b"):
        (length,) = _LEN.unpack_from(data, offset)
        start = offset + _LEN.size
        raw = data[start : start + length].tobytes()
        if len(raw) != length:
            raise CodecError("value truncated")
        value: Any = int(raw) if tag == b"i" else raw.decode() if tag == b"s" else raw
        return value, start + length
    if tag in (b"l", b"m"):
        (count,) = _LEN.unpack_from(data, offset)
        offset += _LEN.size
        items = []
        for _ in range(count * (2 if tag == b"m" else 1)):
            item, offset = _get_value(data, offset)
            items.append(item)
        if tag == b"l":
            return tuple(items), offset
        return dict(zip(items[::2], items[1::2])), offset
    raise CodecError(f"unknown value tag {tag!r}")


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CodecError("extra is not a mapping")
    return value


def _utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _text(data: bytes | None) -> str:
    if data is None:
        raise CodecError("a required text field is missing")
    return data.decode()


def _opt_text(data: bytes | None) -> str | None:
    return None if data is None else data.decode()
