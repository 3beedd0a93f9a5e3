"""MQTT control packets as NamedTuples (no I/O, no encoding): immutable, equal only to a packet of
the same kind with the same fields (see `Publish` for why not dataclasses).

One class per control packet of MQTT 3.1 (level 3), 3.1.1 (level 4) and 5.0
(level 5). Fields that only exist in v5 (properties, most reason codes) are
simply ignored when a packet is encoded for level 3 or 4. Reason codes are the
v5 values (`errors.ReasonCode`) at every level; the codec translates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple, Union

from .properties import NO_PROPERTIES, Properties

__all__ = [
    "PacketType", "Will", "Connect", "ConnAck", "Publish", "PubAck", "PubRec",
    "PubRel", "PubComp", "SubscriptionRequest", "Subscribe", "SubAck",
    "Unsubscribe", "UnsubAck", "PingReq", "PingResp", "Disconnect", "Auth", "Packet",
]


class PacketType(IntEnum):
    """The 4-bit control packet type in the fixed header (bits 7-4 of byte 1)."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


@dataclass(frozen=True, slots=True)
class Will:
    """The will message carried by CONNECT."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties = NO_PROPERTIES


class Connect(NamedTuple):
    """CONNECT. Levels: 3 = MQTT 3.1 ("MQIsdp"), 4 = 3.1.1, 5 = 5.0 ("MQTT")."""

    client_id: str
    protocol_name: str = "MQTT"
    protocol_level: int = 4
    clean_start: bool = True
    keep_alive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = NO_PROPERTIES


class ConnAck(NamedTuple):
    """CONNACK; `reason_code` is the v5 code, mapped to a v3 return code on encode."""

    session_present: bool = False
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


def _same_packet(self: tuple[object, ...], other: object) -> bool:
    """Packets built as NamedTuples are equal only to the same kind of packet (a PUBACK never
    equals the PUBREC with the same fields, as tuples would)."""
    return type(self) is type(other) and tuple.__eq__(self, other)


def _other_packet(self: tuple[object, ...], other: object) -> bool:
    return not _same_packet(self, other)


class Publish(NamedTuple):
    """PUBLISH; on v5 `topic` may be "" when a Topic Alias property is present.

    A NamedTuple, as is every packet here. Compiled code reads their fields by index and builds
    them without a Python frame (`tuple.__new__`), where a frozen dataclass costs a generic
    attribute lookup per read and an interpreted `__init__` (one `object.__setattr__` per field)
    per packet: per message for PUBLISH and its acks, per connection for the others."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = NO_PROPERTIES


class PubAck(NamedTuple):
    """PUBACK (QoS 1 acknowledgement)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


class PubRec(NamedTuple):
    """PUBREC (QoS 2, step 1)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


class PubRel(NamedTuple):
    """PUBREL (QoS 2, step 2)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


class PubComp(NamedTuple):
    """PUBCOMP (QoS 2, step 3)."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


class SubscriptionRequest(NamedTuple):
    """One topic filter with its subscription options (only `qos` exists before v5)."""

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


class Subscribe(NamedTuple):
    """SUBSCRIBE with one or more subscription requests."""

    packet_id: int
    subscriptions: tuple[SubscriptionRequest, ...]
    properties: Properties = NO_PROPERTIES


class SubAck(NamedTuple):
    """SUBACK; v5 reason codes, failures become 0x80 on v3/v4."""

    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = NO_PROPERTIES


class Unsubscribe(NamedTuple):
    """UNSUBSCRIBE with one or more topic filters."""

    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = NO_PROPERTIES


class UnsubAck(NamedTuple):
    """UNSUBACK; the reason codes exist on v5 only (v3/v4 have no payload)."""

    packet_id: int
    reason_codes: tuple[int, ...] = ()
    properties: Properties = NO_PROPERTIES


class PingReq(NamedTuple):
    """PINGREQ."""


class PingResp(NamedTuple):
    """PINGRESP."""


class Disconnect(NamedTuple):
    """DISCONNECT; the reason code and properties exist on v5 only."""

    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


class Auth(NamedTuple):
    """AUTH (v5 only): enhanced authentication exchange."""

    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


Packet = Union[Connect, ConnAck, Publish, PubAck, PubRec, PubRel, PubComp, Subscribe,
               SubAck, Unsubscribe, UnsubAck, PingReq, PingResp, Disconnect, Auth]


# What a NamedTuple's class body cannot declare: a `packet_type` class attribute, and an equality by
# kind, for the packets and for SubscriptionRequest (no mixin either: a NamedTuple has no other base).
# The hash stays the tuple's.
_KINDS: dict[type, PacketType] = {
    Connect: PacketType.CONNECT, ConnAck: PacketType.CONNACK, Publish: PacketType.PUBLISH,
    PubAck: PacketType.PUBACK, PubRec: PacketType.PUBREC, PubRel: PacketType.PUBREL, PubComp: PacketType.PUBCOMP,
    Subscribe: PacketType.SUBSCRIBE, SubAck: PacketType.SUBACK, Unsubscribe: PacketType.UNSUBSCRIBE,
    UnsubAck: PacketType.UNSUBACK, PingReq: PacketType.PINGREQ, PingResp: PacketType.PINGRESP,
    Disconnect: PacketType.DISCONNECT, Auth: PacketType.AUTH,
}
for _packet, _kind in _KINDS.items():
    setattr(_packet, "packet_type", _kind)
for _tuple_class in (*_KINDS, SubscriptionRequest):
    setattr(_tuple_class, "__eq__", _same_packet)
    setattr(_tuple_class, "__ne__", _other_packet)
