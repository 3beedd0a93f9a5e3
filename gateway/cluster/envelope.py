"""A message on its way between nodes: who sent it, its number there, and the message. Pure.

Layout: ``u8 version | u8 node name length | node name (UTF-8) | u64 sequence | message``,
the message in the stores' compact binary form (core/stores/codec.py: every field of the
internal `Message`, its properties and origin included). The (node, sequence) pair lets a
node drop the second copy NATS hands it when two of its subscriptions match one message
(``a/+`` and ``a/#``, or ``a/#`` written as both ``a.>`` and ``a``).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from core.message import Message
from core.stores.codec import decode_message, encode_message

VERSION = 1
_SEQ = struct.Struct("<Q")


class Envelope(NamedTuple):
    node: str
    seq: int
    message: Message


def node_header(node: str) -> bytes:
    """The envelope's first bytes for `node`, computed once per node."""
    name = node.encode("utf-8")
    if len(name) > 255:
        raise ValueError("a node name is at most 255 bytes of UTF-8")
    return bytes([VERSION, len(name)]) + name


def encode_envelope(header: bytes, seq: int, message: Message) -> bytes:
    return header + _SEQ.pack(seq) + encode_message(message)


def decode_envelope(data: bytes) -> Envelope:
    """ValueError (CodecError) for bytes that are not an envelope this version reads."""
    if len(data) < 2 or data[0] != VERSION:
        raise ValueError("not a RosettaMQ cluster envelope of a known version")
    end = 2 + data[1]
    node = data[2:end].decode("utf-8")
    (seq,) = _SEQ.unpack_from(data, end)
    return Envelope(node, seq, decode_message(data[end + _SEQ.size:]))
