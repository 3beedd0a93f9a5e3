"""MQTT reason codes and error types: the one place where errors meet wire codes.

Two families, as in h11: `RemoteProtocolError` means the peer sent something
invalid (close that connection, with a CONNACK or DISCONNECT carrying
`reason_code` on MQTT 5); `LocalProtocolError` means our own code asked the
codec to encode something MQTT cannot express (a bug on our side).
MQTT 3.1/3.1.1 have no reason codes on most packets; the helpers at the end
translate v5 codes to the v3 return codes of CONNACK and SUBACK.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ReasonCode", "MQTTError", "RemoteProtocolError", "LocalProtocolError",
    "MalformedPacket", "ProtocolViolation", "PacketTooLarge",
    "UnsupportedProtocolVersion", "TopicAliasInvalid", "ReceiveMaximumExceeded",
    "TopicNameInvalid", "TopicFilterInvalid", "PayloadFormatInvalid",
    "KeepAliveTimeout",
    "CONNACK_REASONS", "PUBACK_REASONS", "PUBREL_REASONS", "SUBACK_REASONS",
    "UNSUBACK_REASONS", "DISCONNECT_REASONS", "AUTH_REASONS",
    "V3_CONNACK_CODES", "V3_CONNACK_REASONS", "V3_SUBACK_CODES",
    "connack_return_code_v3", "suback_code_v3", "puback_reason",
]


class ReasonCode(IntEnum):
    """Every MQTT 5.0 reason code (section 2.4); 0x00 and 0x04 have aliases."""

    SUCCESS = 0x00
    NORMAL_DISCONNECTION = 0x00
    GRANTED_QOS_0 = 0x00
    GRANTED_QOS_1 = 0x01
    GRANTED_QOS_2 = 0x02
    DISCONNECT_WITH_WILL = 0x04
    NO_MATCHING_SUBSCRIBERS = 0x10
    NO_SUBSCRIPTION_EXISTED = 0x11
    CONTINUE_AUTHENTICATION = 0x18
    RE_AUTHENTICATE = 0x19
    UNSPECIFIED_ERROR = 0x80
    MALFORMED_PACKET = 0x81
    PROTOCOL_ERROR = 0x82
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83
    UNSUPPORTED_PROTOCOL_VERSION = 0x84
    CLIENT_IDENTIFIER_NOT_VALID = 0x85
    BAD_USER_NAME_OR_PASSWORD = 0x86
    NOT_AUTHORIZED = 0x87
    SERVER_UNAVAILABLE = 0x88
    SERVER_BUSY = 0x89
    BANNED = 0x8A
    SERVER_SHUTTING_DOWN = 0x8B
    BAD_AUTHENTICATION_METHOD = 0x8C
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_NAME_INVALID = 0x90
    PACKET_IDENTIFIER_IN_USE = 0x91
    PACKET_IDENTIFIER_NOT_FOUND = 0x92
    RECEIVE_MAXIMUM_EXCEEDED = 0x93
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    MESSAGE_RATE_TOO_HIGH = 0x96
    QUOTA_EXCEEDED = 0x97
    ADMINISTRATIVE_ACTION = 0x98
    PAYLOAD_FORMAT_INVALID = 0x99
    RETAIN_NOT_SUPPORTED = 0x9A
    QOS_NOT_SUPPORTED = 0x9B
    USE_ANOTHER_SERVER = 0x9C
    SERVER_MOVED = 0x9D
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
    CONNECTION_RATE_EXCEEDED = 0x9F
    MAXIMUM_CONNECT_TIME = 0xA0
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2


class MQTTError(Exception):
    """Base of all MQTT errors: a human `message` and the v5 `reason_code`."""

    default_reason: ReasonCode = ReasonCode.UNSPECIFIED_ERROR

    def __init__(self, message: str, reason_code: ReasonCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason_code: ReasonCode = (
            self.default_reason if reason_code is None else ReasonCode(reason_code))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, {self.reason_code.name})"


class RemoteProtocolError(MQTTError):
    """The peer sent something invalid; close its connection with `reason_code`."""

    default_reason = ReasonCode.PROTOCOL_ERROR


class LocalProtocolError(MQTTError):
    """Our code tried to encode something that MQTT cannot carry (our bug)."""

    default_reason = ReasonCode.UNSPECIFIED_ERROR


class MalformedPacket(RemoteProtocolError):
    """The packet cannot be parsed according to the specification (0x81)."""

    default_reason = ReasonCode.MALFORMED_PACKET


class ProtocolViolation(RemoteProtocolError):
    """The packet parses but breaks a protocol rule (0x82)."""

    default_reason = ReasonCode.PROTOCOL_ERROR


class PacketTooLarge(RemoteProtocolError):
    """The packet is larger than our maximum packet size (0x95)."""

    default_reason = ReasonCode.PACKET_TOO_LARGE


class UnsupportedProtocolVersion(RemoteProtocolError):
    """CONNECT named a protocol name/level pair we do not speak (0x84).

    Carries what the client sent so the server can answer with a CONNACK the
    client understands (v5 format for level 5, v3 return code 1 otherwise).
    """

    default_reason = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION

    def __init__(self, message: str, protocol_name: str, protocol_level: int) -> None:
        super().__init__(message)
        self.protocol_name = protocol_name
        self.protocol_level = protocol_level


class TopicAliasInvalid(RemoteProtocolError):
    """Topic alias 0, above the maximum, or unknown (0x94)."""

    default_reason = ReasonCode.TOPIC_ALIAS_INVALID


class ReceiveMaximumExceeded(RemoteProtocolError):
    """More unacknowledged QoS>0 PUBLISH packets than our Receive Maximum (0x93)."""

    default_reason = ReasonCode.RECEIVE_MAXIMUM_EXCEEDED


class TopicNameInvalid(RemoteProtocolError):
    """A topic name that is not allowed, e.g. one with wildcards (0x90)."""

    default_reason = ReasonCode.TOPIC_NAME_INVALID


class TopicFilterInvalid(RemoteProtocolError):
    """A topic filter that is not allowed, e.g. `a/#/b` (0x8F)."""

    default_reason = ReasonCode.TOPIC_FILTER_INVALID


class PayloadFormatInvalid(RemoteProtocolError):
    """Payload Format Indicator 1 with a payload that is not UTF-8 (0x99)."""

    default_reason = ReasonCode.PAYLOAD_FORMAT_INVALID


class KeepAliveTimeout(RemoteProtocolError):
    """Nothing received within 1.5 times the keep alive (0x8D)."""

    default_reason = ReasonCode.KEEP_ALIVE_TIMEOUT


# Reason codes each v5 packet may carry (MQTT 5.0 sections 3.2.2.2 to 3.15.2.1).
_R = ReasonCode
CONNACK_REASONS: frozenset[int] = frozenset({
    _R.SUCCESS, _R.UNSPECIFIED_ERROR, _R.MALFORMED_PACKET, _R.PROTOCOL_ERROR,
    _R.IMPLEMENTATION_SPECIFIC_ERROR, _R.UNSUPPORTED_PROTOCOL_VERSION,
    _R.CLIENT_IDENTIFIER_NOT_VALID, _R.BAD_USER_NAME_OR_PASSWORD, _R.NOT_AUTHORIZED,
    _R.SERVER_UNAVAILABLE, _R.SERVER_BUSY, _R.BANNED, _R.BAD_AUTHENTICATION_METHOD,
    _R.TOPIC_NAME_INVALID, _R.PACKET_TOO_LARGE, _R.QUOTA_EXCEEDED,
    _R.PAYLOAD_FORMAT_INVALID, _R.RETAIN_NOT_SUPPORTED, _R.QOS_NOT_SUPPORTED,
    _R.USE_ANOTHER_SERVER, _R.SERVER_MOVED, _R.CONNECTION_RATE_EXCEEDED})
#: PUBACK and PUBREC.
PUBACK_REASONS: frozenset[int] = frozenset({
    _R.SUCCESS, _R.NO_MATCHING_SUBSCRIBERS, _R.UNSPECIFIED_ERROR,
    _R.IMPLEMENTATION_SPECIFIC_ERROR, _R.NOT_AUTHORIZED, _R.TOPIC_NAME_INVALID,
    _R.PACKET_IDENTIFIER_IN_USE, _R.QUOTA_EXCEEDED, _R.PAYLOAD_FORMAT_INVALID})
#: PUBREL and PUBCOMP.
PUBREL_REASONS: frozenset[int] = frozenset({_R.SUCCESS, _R.PACKET_IDENTIFIER_NOT_FOUND})
SUBACK_REASONS: frozenset[int] = frozenset({
    _R.GRANTED_QOS_0, _R.GRANTED_QOS_1, _R.GRANTED_QOS_2, _R.UNSPECIFIED_ERROR,
    _R.IMPLEMENTATION_SPECIFIC_ERROR, _R.NOT_AUTHORIZED, _R.TOPIC_FILTER_INVALID,
    _R.PACKET_IDENTIFIER_IN_USE, _R.QUOTA_EXCEEDED,
    _R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, _R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
    _R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED})
UNSUBACK_REASONS: frozenset[int] = frozenset({
    _R.SUCCESS, _R.NO_SUBSCRIPTION_EXISTED, _R.UNSPECIFIED_ERROR,
    _R.IMPLEMENTATION_SPECIFIC_ERROR, _R.NOT_AUTHORIZED, _R.TOPIC_FILTER_INVALID,
    _R.PACKET_IDENTIFIER_IN_USE})
DISCONNECT_REASONS: frozenset[int] = frozenset({
    _R.NORMAL_DISCONNECTION, _R.DISCONNECT_WITH_WILL, _R.UNSPECIFIED_ERROR,
    _R.MALFORMED_PACKET, _R.PROTOCOL_ERROR, _R.IMPLEMENTATION_SPECIFIC_ERROR,
    _R.NOT_AUTHORIZED, _R.SERVER_BUSY, _R.SERVER_SHUTTING_DOWN,
    _R.KEEP_ALIVE_TIMEOUT, _R.SESSION_TAKEN_OVER, _R.TOPIC_FILTER_INVALID,
    _R.TOPIC_NAME_INVALID, _R.RECEIVE_MAXIMUM_EXCEEDED, _R.TOPIC_ALIAS_INVALID,
    _R.PACKET_TOO_LARGE, _R.MESSAGE_RATE_TOO_HIGH, _R.QUOTA_EXCEEDED,
    _R.ADMINISTRATIVE_ACTION, _R.PAYLOAD_FORMAT_INVALID, _R.RETAIN_NOT_SUPPORTED,
    _R.QOS_NOT_SUPPORTED, _R.USE_ANOTHER_SERVER, _R.SERVER_MOVED,
    _R.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, _R.CONNECTION_RATE_EXCEEDED,
    _R.MAXIMUM_CONNECT_TIME, _R.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
    _R.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED})
AUTH_REASONS: frozenset[int] = frozenset({
    _R.SUCCESS, _R.CONTINUE_AUTHENTICATION, _R.RE_AUTHENTICATE})

#: v5 CONNACK reason -> MQTT 3.1/3.1.1 CONNACK return code (3.1.1 table 3.1).
#: Failures not listed here become 3 (server unavailable).
V3_CONNACK_CODES: dict[int, int] = {
    _R.SUCCESS: 0,
    _R.UNSUPPORTED_PROTOCOL_VERSION: 1,
    _R.CLIENT_IDENTIFIER_NOT_VALID: 2,
    _R.SERVER_UNAVAILABLE: 3, _R.SERVER_BUSY: 3, _R.SERVER_SHUTTING_DOWN: 3,
    _R.BANNED: 3, _R.USE_ANOTHER_SERVER: 3, _R.SERVER_MOVED: 3,
    _R.CONNECTION_RATE_EXCEEDED: 3, _R.QUOTA_EXCEEDED: 3,
    _R.BAD_USER_NAME_OR_PASSWORD: 4, _R.BAD_AUTHENTICATION_METHOD: 4,
    _R.NOT_AUTHORIZED: 5,
}
#: MQTT 3.1/3.1.1 CONNACK return code -> the v5 reason code a decoder reports.
V3_CONNACK_REASONS: dict[int, ReasonCode] = {
    0: _R.SUCCESS, 1: _R.UNSUPPORTED_PROTOCOL_VERSION,
    2: _R.CLIENT_IDENTIFIER_NOT_VALID, 3: _R.SERVER_UNAVAILABLE,
    4: _R.BAD_USER_NAME_OR_PASSWORD, 5: _R.NOT_AUTHORIZED,
}
#: Return codes a v3.1.1 SUBACK may carry [MQTT-3.9.3-2].
V3_SUBACK_CODES: frozenset[int] = frozenset({0x00, 0x01, 0x02, 0x80})


def connack_return_code_v3(reason: int) -> int:
    """Map a v5 CONNACK reason code to the MQTT 3.1/3.1.1 return code (0..5)."""
    return V3_CONNACK_CODES.get(reason, 3)


def suback_code_v3(reason: int) -> int:
    """Granted QoS 0/1/2 stay as they are; any failure becomes 0x80."""
    return reason if reason <= 2 else 0x80


def puback_reason(status: int) -> ReasonCode:
    """The PUBACK/PUBREC reason for what the core's door made of a publish (core.door.PublishStatus:
    0 routed, 1 no subscribers, 2 denied by the ACL, 3 invalid for the core)."""
    return _PUBLISH_STATUS_REASONS[status]


_PUBLISH_STATUS_REASONS = (_R.SUCCESS, _R.NO_MATCHING_SUBSCRIBERS, _R.NOT_AUTHORIZED,
                           _R.IMPLEMENTATION_SPECIFIC_ERROR)
