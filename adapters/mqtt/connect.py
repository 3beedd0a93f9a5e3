"""CONNECT negotiation as pure functions: client id, session expiry, will, CONNACK properties.

Each function takes the decoded CONNECT and the server settings and returns a
decision; the connection state machine applies it. Refusals are returned as a
`ReasonCode`, never raised, so the caller answers with the right CONNACK for
the client's protocol level.
"""

from __future__ import annotations

import uuid
from typing import Final, NamedTuple

from core.message import Message, Origin
from core.session_parts import NEVER_EXPIRES
from core.topics import InvalidTopic, validate_topic_name

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import Connect, Will
from adapters.mqtt.properties import NO_PROPERTIES, Properties
from adapters.mqtt.settings import MQTTSettings

MQTT31_MAX_CLIENT_ID = 23
_tuple_new: Final = tuple.__new__  # ConnectTerms without the NamedTuple's Python-level __new__ (one per CONNECT)


class ConnectTerms(NamedTuple):
    """What the server grants a CONNECT: id, expiry, keep-alive and the CONNACK properties.

    A NamedTuple: made once per CONNECT, and a frozen dataclass's __init__ costs an
    `object.__setattr__` call per field.
    """

    client_id: str
    assigned: bool
    session_expiry: int
    keep_alive: int
    connack_properties: Properties


def client_id_for(connect: Connect, settings: MQTTSettings) -> tuple[str, bool] | ReasonCode:
    """The client id to use and whether we assigned it, or the refusal code."""
    client_id = connect.client_id
    if client_id:
        if connect.protocol_level == 3 and len(client_id) > MQTT31_MAX_CLIENT_ID:
            return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
        return client_id, False
    if connect.protocol_level == 3:
        return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID  # MQTT 3.1 requires 1 to 23 characters
    if connect.protocol_level == 4 and not connect.clean_start:
        return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID  # [MQTT-3.1.3-8]
    return settings.assigned_id_prefix + uuid.uuid4().hex, True


def session_expiry_for(connect: Connect, settings: MQTTSettings) -> int:
    """Session expiry in seconds: v5 from the property, v3 from the clean-session flag."""
    if connect.protocol_level == 5:
        requested = connect.properties.session_expiry_interval or 0
    else:
        requested = 0 if connect.clean_start else NEVER_EXPIRES
    return min(requested, settings.session_expiry_max)


def negotiate(connect: Connect, settings: MQTTSettings) -> ConnectTerms | ReasonCode:
    """Everything the server decides about a valid CONNECT before authentication."""
    props = connect.properties
    if props.authentication_data is not None and props.authentication_method is None:
        return ReasonCode.PROTOCOL_ERROR  # Authentication Data needs an Authentication Method [3.1.2.11.10]
    chosen = client_id_for(connect, settings)
    if isinstance(chosen, ReasonCode):
        return chosen
    client_id, assigned = chosen
    if connect.will is not None:
        refusal = will_refusal(connect.will, settings)
        if refusal is not None:
            return refusal
    expiry = session_expiry_for(connect, settings)
    keep_alive = connect.keep_alive
    if connect.protocol_level != 5 and keep_alive > settings.max_keepalive:
        # 3.1.1 cannot be told a Server Keep Alive; mosquitto refuses such clients the same way.
        return ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    server_keep_alive = None
    # 0 asks for no keep alive at all: longer than any maximum (as Mosquitto treats it).
    if connect.protocol_level == 5 and (keep_alive > settings.max_keepalive or keep_alive == 0):
        keep_alive = server_keep_alive = settings.max_keepalive
    if connect.protocol_level != 5:
        return _tuple_new(ConnectTerms, (client_id, assigned, expiry, keep_alive, NO_PROPERTIES))  # type: ignore[no-any-return]
    requested_expiry = connect.properties.session_expiry_interval or 0
    props = Properties(
        session_expiry_interval=expiry if expiry != requested_expiry else None,
        receive_maximum=settings.receive_maximum,
        maximum_qos=settings.max_qos if settings.max_qos < 2 else None,
        retain_available=None if settings.retain_available else 0,
        maximum_packet_size=settings.max_packet_size,
        assigned_client_identifier=client_id if assigned else None,
        topic_alias_maximum=settings.topic_alias_maximum or None,
        server_keep_alive=server_keep_alive,
    )
    return _tuple_new(ConnectTerms, (client_id, assigned, expiry, keep_alive, props))  # type: ignore[no-any-return]


def will_refusal(will: Will, settings: MQTTSettings) -> ReasonCode | None:
    """Why a will cannot be accepted, if it cannot."""
    try:
        validate_topic_name(will.topic)
    except InvalidTopic:
        return ReasonCode.TOPIC_NAME_INVALID
    if will.qos > settings.max_qos:
        return ReasonCode.QOS_NOT_SUPPORTED
    if will.retain and not settings.retain_available:
        return ReasonCode.RETAIN_NOT_SUPPORTED
    return None


def will_message(will: Will, origin: Origin) -> tuple[Message, int, int | None]:
    """The core message a will becomes, its will delay, and its expiry interval.

    The expiry interval counts from when the will is published, so it is kept
    relative here and applied by the session registry at publish time.
    """
    props = will.properties
    message = Message(
        topic=will.topic,
        payload=will.payload,
        qos=will.qos,  # type: ignore[arg-type]
        retain=will.retain,
        content_type=props.content_type,
        correlation_data=props.correlation_data,
        response_topic=props.response_topic,
        user_properties=props.user_properties,
        payload_format_utf8=props.payload_format_indicator == 1,
        origin=origin,
    )
    return message, props.will_delay_interval or 0, props.message_expiry_interval
