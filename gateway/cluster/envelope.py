"""Messages on their way between nodes: who sent them, their numbers there, the messages. Pure.

Layout: ``u8 version | u8 node name length | node name (UTF-8) | u64 first sequence |
u32 count | count x (u32 length | message)``, each message in the stores' compact binary
form (core/stores/codec.py: every field of the internal `Message`, properties and origin
included). A node sends the messages of one event-loop iteration that go to the same
subject as one NATS message (a flood to one topic costs NATS one message per batch, not per
message); the batch's messages are numbered `first sequence` onwards. The (node, first
sequence) pair lets a node drop the second copy NATS hands it when two of its subscriptions
match one subject (``a/+`` and ``a/#``, or ``a/#`` written as both ``a.>`` and ``a``).
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple, Sequence

from core.message import Message
from core.stores.codec import decode_message, encode_message

VERSION: Final = 2
_HEAD: Final = struct.Struct("<QI")
_HEAD_SIZE: Final[int] = _HEAD.size
_LEN: Final = struct.Struct("<I")


class Envelope(NamedTuple):
    node: str
    seq: int  # the first message's number
    messages: list[Message]


def node_header(node: str) -> bytes:
    """The envelope's first bytes for `node`, computed once per node."""
    name = node.encode("utf-8")
    if len(name) > 255:
        raise ValueError("a node name is at most 255 bytes of UTF-8")
    return bytes([VERSION, len(name)]) + name


def encode_envelope(header: bytes, seq: int, message: Message) -> bytes:
    """One message alone (retained messages travel this way)."""
    return encode_batch(header, seq, [encode_message(message)])


def encode_batch(header: bytes, first_seq: int, encoded: Sequence[bytes]) -> bytes:
    """Messages already in the codec's form (`encode_message`), numbered from `first_seq`."""
    parts = [header, _HEAD.pack(first_seq, len(encoded))]
    for data in encoded:
        parts.append(_LEN.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def decode_envelope(data: bytes) -> Envelope:
    """ValueError (CodecError) for bytes that are not an envelope this version reads."""
    if len(data) < 2 or data[0] != VERSION:
        raise ValueError("not a RosettaMQ cluster envelope of a known version")
    offset = 2 + data[1]
    total = len(data)
    if offset + _HEAD_SIZE > total:
        raise ValueError("envelope truncated")
    node = data[2:offset].decode("utf-8")
    head: tuple[int, int] = _HEAD.unpack_from(data, offset)  # (typed: native integers below)
    first_seq, count = head
    offset += _HEAD_SIZE
    messages = []
    for _ in range(count):
        if offset + 4 > total:
            raise ValueError("envelope truncated")
        # The u32 length read byte by byte: compiled, four native reads, no tuple made.
        size = data[offset] | data[offset + 1] << 8 | data[offset + 2] << 16 | data[offset + 3] << 24
        offset += 4
        if offset + size > total:
            raise ValueError("envelope truncated")
        messages.append(decode_message(data, offset, offset + size))
        offset += size
    return Envelope(node, first_seq, messages)
