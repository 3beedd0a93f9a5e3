"""MQTT 3.1/3.1.1/5.0 wire codec: bytes in -> packets out, packets -> bytes.

No I/O: `MQTTDecoder` is fed bytes and hands back complete packets, or None
when it needs more data; `encode` turns a packet into bytes for a protocol
level (3 = MQTT 3.1, 4 = 3.1.1, 5 = 5.0). Limits are arguments.

Errors: bad input raises a `RemoteProtocolError` subclass whose `reason_code`
is what a v5 peer should be told; after one, the stream is out of sync and the
connection must be closed. Choices where the spec leaves room: a packet
identifier of 0 is a ProtocolViolation (0x82), as in the v5 definition of a
Protocol Error and in mosquitto; an invalid reason code in an acknowledgement
is a ProtocolViolation. MQTT 3.1 (level 3) predates the reserved fixed-header
flag rule [MQTT-2.2.2-2], so it is not enforced at that level (as mosquitto).
Encoding what MQTT cannot carry raises `LocalProtocolError`.
"""

from __future__ import annotations

from .decoder import SUPPORTED_PROTOCOLS, MQTTDecoder
from .encoder import encode, encode_publish_parts
from .properties import decode_varint, encode_varint

__all__ = ["MQTTDecoder", "encode", "encode_publish_parts", "encode_remaining_length",
           "decode_varint", "encode_varint", "SUPPORTED_PROTOCOLS"]

encode_remaining_length = encode_varint  # Variable Byte Integer [1.5.5]
