"""One handler per control packet a connected client may send, validating in the spec's order.

Each takes the `MQTTConnection` and the decoded packet, acts on the core
through the connection's session, and queues answers with `send_packet`.
Remote errors are raised as `RemoteProtocolError`; the connection turns them
into the wire answer in one place.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Final

from core.session_parts import NEVER_EXPIRES
from core.sessions import Session
from core.subscriptions import Delivery, SubscriptionOptions
from core.topics import InvalidTopic, parse_shared_filter

from core.door import REFUSED, PublishStatus

from adapters.mqtt.errors import ProtocolViolation, ReasonCode, ReceiveMaximumExceeded, puback_reason
from adapters.mqtt.encoder import encode_puback_success
from adapters.mqtt.packets import (
    Auth,
    Disconnect,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
)
from adapters.mqtt.properties import NO_PROPERTIES

if TYPE_CHECKING:
    from adapters.mqtt.connection import MQTTConnection

log = logging.getLogger("rosettamq.mqtt")
_REFUSED: Final = REFUSED  # (`result.accepted`, without the property call per publish)
_SUCCESS: Final = ReasonCode.SUCCESS  # (an Enum member read through its class is a metaclass lookup)
_tuple_new: Final = tuple.__new__  # a SUBACK without the NamedTuple's Python-level __new__


def _session(conn: "MQTTConnection") -> Session:
    session = conn.session
    assert session is not None  # every handler but CONNECT's runs once CONNECTED, with a session
    return session


def on_publish(conn: "MQTTConnection", packet: Publish) -> None:
    conn.messages_in += 1
    message = conn.to_message(packet)
    qos = packet.qos
    packet_id = packet.packet_id
    session = _session(conn)
    if qos == 2:
        assert packet_id is not None
        if packet_id in session.incoming_qos2:  # a resent QoS 2 PUBLISH: acknowledge, never deliver twice
            conn.broker.store.sync(lambda: conn.send_packet(PubRec(packet_id)))  # [MQTT-4.3.3-10]
            return
        # Only v5 clients were told our Receive Maximum [MQTT-3.3.4-9]; for 3.1.1 the
        # 16-bit packet id space is the bound (as paho's max_inflight_messages_set assumes).
        if conn.level == 5 and len(session.incoming_qos2) >= conn.settings.receive_maximum:
            raise ReceiveMaximumExceeded("too many QoS 2 messages awaiting PUBREL")
    broker = conn.broker
    result = broker.publish(conn.principal, message)  # the door: validation, ACL, routing
    if result.hold or result.hold_on:  # over the memory budget, or draining subscribers are behind
        conn.input_gate.close_for([*result.hold_on, broker.budget], conn.clock(), own=conn.session)
    if result.status >= _REFUSED:
        _publish_refused(conn, packet, message.topic, result.status, result.reason)
        return
    if qos == 0:
        return
    assert packet_id is not None
    reason = _SUCCESS if conn.level != 5 else puback_reason(result.status)
    if qos == 1:
        if reason == _SUCCESS:  # the usual PUBACK, without building a packet object
            data = encode_puback_success(packet_id)
            broker.store.sync(lambda: conn.send_encoded(data))
            return
        ack: PubAck | PubRec = PubAck(packet_id, reason)
    else:
        session.add_incoming_qos2(packet_id)
        ack = PubRec(packet_id, reason)
    # Acknowledge only once what was accepted is durable.
    broker.store.sync(lambda: conn.send_packet(ack))


def _publish_refused(conn: "MQTTConnection", packet: Publish, topic: str, status: int, why: str) -> None:
    """Refused at the door (ACL, or a message the core cannot hold): never routed nor retained.
    QoS 0 is dropped; QoS 1/2 get the reason code (v5), a plain ack (3.1.1 cannot say no)."""
    if status == PublishStatus.DENIED:
        conn.publishes_denied += 1
        log.debug("publish denied client_id=%s username=%s topic=%s", conn.client_id, conn.username, topic)
        conn.note_error(f"publish to {topic!r} refused: not authorized")
    else:
        conn.publishes_invalid += 1
        log.info("publish refused client_id=%s topic=%s reason=%s", conn.client_id, topic, why)
        conn.note_error(f"publish to {topic!r} refused: {why}")
    packet_id = packet.packet_id
    if packet.qos == 0 or packet_id is None:
        return
    reason = puback_reason(status)
    if packet.qos == 1:
        ack: PubAck | PubRec = PubAck(packet_id, reason if conn.level == 5 else ReasonCode.SUCCESS)
    elif conn.level == 5:
        ack = PubRec(packet_id, reason)  # an error PUBREC ends the QoS 2 flow
    else:
        _session(conn).add_incoming_qos2(packet_id)  # 3.1.1 cannot say no: the flow completes, nothing delivered
        ack = PubRec(packet_id)
    conn.broker.store.sync(lambda: conn.send_packet(ack))


def on_puback(conn: "MQTTConnection", packet: PubAck) -> None:
    _session(conn).acknowledge(packet.packet_id)


def on_pubrec(conn: "MQTTConnection", packet: PubRec) -> None:
    session = _session(conn)
    if packet.reason_code >= 0x80:
        session.drop_inflight(packet.packet_id)  # the client refused it: the flow ends here
    elif session.release(packet.packet_id):
        conn.send_packet(PubRel(packet.packet_id))
    else:
        conn.send_packet(PubRel(packet.packet_id, ReasonCode.PACKET_IDENTIFIER_NOT_FOUND))


def on_pubrel(conn: "MQTTConnection", packet: PubRel) -> None:
    known = _session(conn).complete_incoming_qos2(packet.packet_id)
    reason = ReasonCode.SUCCESS if known else ReasonCode.PACKET_IDENTIFIER_NOT_FOUND
    conn.broker.store.sync(lambda: conn.send_packet(PubComp(packet.packet_id, reason)))


def on_pubcomp(conn: "MQTTConnection", packet: PubComp) -> None:
    _session(conn).acknowledge(packet.packet_id)


def on_subscribe(conn: "MQTTConnection", packet: Subscribe) -> None:
    session = _session(conn)
    settings = conn.settings
    ids = packet.properties.subscription_identifiers
    sub_id = ids[0] if ids else None
    codes: list[int] = []
    retained: list[Delivery] = []
    for request in packet.subscriptions:
        try:
            group, _ = parse_shared_filter(request.topic_filter)
        except InvalidTopic:
            codes.append(ReasonCode.TOPIC_FILTER_INVALID)
            continue
        if group is not None and request.no_local:
            raise ProtocolViolation("no-local on a shared subscription")  # [MQTT-3.8.3-4]
        refusal = _subscription_refusal(conn, request.topic_filter)
        if refusal is not None:
            codes.append(refusal)  # 3.1.1 SUBACK: 0x80
            continue
        qos = min(request.qos, settings.max_qos)
        options = _options(qos, request.no_local, request.retain_as_published, request.retain_handling, sub_id)
        existed = session.subscribe(request.topic_filter, options)
        codes.append(qos)
        if request.retain_handling == 0 or (request.retain_handling == 1 and not existed):
            sub_ids = () if sub_id is None else (sub_id,)
            for message in conn.broker.router.retained_for(request.topic_filter):
                retained.append(Delivery(message, min(qos, message.qos), True, sub_ids))
    suback = _tuple_new(SubAck, (packet.packet_id, tuple(codes), NO_PROPERTIES))
    if session.persistent:  # a persistent session's subscriptions are stored (and replicated) first
        _acknowledge_when_stored(conn, session, suback, retained)
    else:
        _acknowledge_subscribe(conn, session, suback, retained)


def _acknowledge_subscribe(conn: "MQTTConnection", session: Session, suback: SubAck,
                           retained: list[Delivery]) -> None:
    conn.send_packet(suback)
    for delivery in retained:  # after the SUBACK [MQTT-3.8.4-4]
        session.deliver(delivery)


def _acknowledge_when_stored(conn: "MQTTConnection", session: Session, suback: SubAck,
                             retained: list[Delivery]) -> None:
    """(A function of its own: compiled, a function making a closure makes its frame on every call.)"""
    conn.broker.store.sync(lambda: _acknowledge_subscribe(conn, session, suback, retained))


# Without a subscription identifier, one shared instance per value (at most 3 x 2 x 2 x 3: the decoder
# lets no other QoS or retain handling in): a frozen dataclass's __init__ is an interpreted frame per
# SUBSCRIBE, and the router keeps one instance per distinct value anyway.
_SHARED_OPTIONS: Final[dict[tuple[int, bool, bool, int], SubscriptionOptions]] = {}


def _options(qos: int, no_local: bool, retain_as_published: bool, retain_handling: int,
             subscription_id: int | None) -> SubscriptionOptions:
    if subscription_id is not None:
        return SubscriptionOptions(qos, no_local, retain_as_published, retain_handling, subscription_id)
    key = (qos, no_local, retain_as_published, retain_handling)
    found = _SHARED_OPTIONS.get(key)
    if found is None:
        found = _SHARED_OPTIONS[key] = SubscriptionOptions(qos, no_local, retain_as_published, retain_handling)
    return found


def _subscription_refusal(conn: "MQTTConnection", topic_filter: str) -> ReasonCode | None:
    """0x87 when the ACL does not let the client read what the filter covers, 0x97 past its quota."""
    access = conn.access
    if access is not None and not access.can_subscribe(topic_filter):
        conn.subscriptions_denied += 1
        log.info("subscribe denied client_id=%s username=%s filter=%s", conn.client_id, conn.username, topic_filter)
        conn.note_error(f"subscribe to {topic_filter!r} refused: not authorized")
        return ReasonCode.NOT_AUTHORIZED
    limit = conn.settings.max_subscriptions
    subscriptions = _session(conn).subscriptions
    if limit and topic_filter not in subscriptions and len(subscriptions) >= limit:
        conn.subscriptions_over_quota += 1
        log.info("subscription quota exceeded client_id=%s limit=%d", conn.client_id, limit)
        conn.note_error(f"subscribe to {topic_filter!r} refused: over the quota of {limit} subscriptions")
        return ReasonCode.QUOTA_EXCEEDED
    return None


def on_unsubscribe(conn: "MQTTConnection", packet: Unsubscribe) -> None:
    session = _session(conn)
    codes: list[int] = []
    for topic_filter in packet.topic_filters:
        try:
            parse_shared_filter(topic_filter)
        except InvalidTopic:
            codes.append(ReasonCode.TOPIC_FILTER_INVALID)
            continue
        existed = session.unsubscribe(topic_filter)
        codes.append(ReasonCode.SUCCESS if existed else ReasonCode.NO_SUBSCRIPTION_EXISTED)
    conn.send_packet(UnsubAck(packet.packet_id, tuple(codes)))


def on_pingreq(conn: "MQTTConnection", packet: PingReq) -> None:
    conn.send_packet(PingResp())


def on_disconnect(conn: "MQTTConnection", packet: Disconnect) -> None:
    session = _session(conn)
    expiry = packet.properties.session_expiry_interval if conn.level == 5 else None
    if expiry is not None:
        if session.expiry_interval == 0 and expiry != 0:
            raise ProtocolViolation("session expiry set on DISCONNECT after 0 on CONNECT")  # [MQTT-3.14.2-2]
        session.expiry_interval = min(expiry, conn.settings.session_expiry_max)
        if session.expiry_interval == NEVER_EXPIRES or session.expiry_interval > 0:
            conn.broker.store.put_session(session.stored())
    publish_will = packet.reason_code == ReasonCode.DISCONNECT_WITH_WILL
    conn.close(publish_will=publish_will)


def on_auth(conn: "MQTTConnection", packet: Auth) -> None:
    if packet.reason_code == ReasonCode.RE_AUTHENTICATE:
        conn.start_reauthentication(packet)
    elif packet.reason_code == ReasonCode.CONTINUE_AUTHENTICATION:
        conn.continue_authentication(packet)
    else:
        raise ProtocolViolation("AUTH with a success code from a client")


CONNECTED_HANDLERS: Final[dict[type, Callable[[Any, Any], None]]] = {
    Publish: on_publish,
    PubAck: on_puback,
    PubRec: on_pubrec,
    PubRel: on_pubrel,
    PubComp: on_pubcomp,
    Subscribe: on_subscribe,
    Unsubscribe: on_unsubscribe,
    PingReq: on_pingreq,
    Disconnect: on_disconnect,
    Auth: on_auth,
}
