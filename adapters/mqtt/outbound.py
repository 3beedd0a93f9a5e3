"""Turning a core `Delivery` into PUBLISH bytes for one MQTT connection.

The router gives every subscriber of one publish the same encode cache, so a
PUBLISH is encoded once per (protocol level, QoS, retain, DUP, subscription
ids) and shared: QoS 1/2 copies differ only by the packet id spliced between
the cached head and tail. Connections that use outbound topic aliases encode
their own copy.

What MQTT 5 cannot carry is adapted here, by one rule (messages from AMQP or the
admin API may hold any text): a user property whose name or value is not a valid
MQTT string (U+0000, or longer than 65,535 bytes) is left out; so is a content
type or response topic that is not one (a response topic with wildcards too), and
correlation data longer than 65,535 bytes. The payload is never touched. Each
adaptation is counted in `ADAPTED` (metrics), once per encoded form.
"""

from __future__ import annotations

from typing import Final

from core.message import Message
from core.subscriptions import Delivery, EncodeCache

from adapters.mqtt.codec import encode_publish_parts
from adapters.mqtt.packets import PacketType
from adapters.mqtt.properties import Properties, encode_properties

PublishParts = tuple[bytes, bytes]
MAX_FIELD: Final = 65535


class Adapted:
    """Properties left out of MQTT 5 PUBLISHes because MQTT cannot carry them, by kind."""

    KINDS = ("user_properties", "content_type", "response_topic", "correlation_data")
    __slots__ = KINDS  # (a compiled class has no __slots__ attribute: read KINDS)

    def __init__(self) -> None:
        self.user_properties = self.content_type = self.response_topic = self.correlation_data = 0


ADAPTED = Adapted()


def mqtt_string_ok(text: str) -> bool:
    """A valid MQTT UTF-8 string: no U+0000, encodable, at most 65,535 bytes."""
    if "\x00" in text:
        return False
    if len(text) <= MAX_FIELD // 4 and text.isascii():
        return True
    try:
        return len(text.encode("utf-8")) <= MAX_FIELD
    except UnicodeEncodeError:
        return False


def message_properties(message: Message, subscription_ids: tuple[int, ...] = (), topic_alias: int | None = None) -> Properties:
    """The MQTT 5 properties a message carries to a subscriber (expiry as time left), with what
    MQTT cannot carry left out (see the module docstring)."""
    content_type, response_topic = message.content_type, message.response_topic
    correlation_data, user_properties = message.correlation_data, message.user_properties
    if content_type is not None and not mqtt_string_ok(content_type):
        ADAPTED.content_type += 1
        content_type = None
    if response_topic is not None and (not mqtt_string_ok(response_topic) or "+" in response_topic
                                       or "#" in response_topic or not response_topic):
        ADAPTED.response_topic += 1
        response_topic = None
    if correlation_data is not None and len(correlation_data) > MAX_FIELD:
        ADAPTED.correlation_data += 1
        correlation_data = None
    if user_properties and not all(mqtt_string_ok(k) and mqtt_string_ok(v) for k, v in user_properties):
        kept = tuple((k, v) for k, v in user_properties if mqtt_string_ok(k) and mqtt_string_ok(v))
        ADAPTED.user_properties += len(user_properties) - len(kept)
        user_properties = kept
    return Properties(
        payload_format_indicator=1 if message.payload_format_utf8 else None,
        message_expiry_interval=message.remaining_expiry(),
        content_type=content_type,
        response_topic=response_topic,
        correlation_data=correlation_data,
        user_properties=user_properties,
        subscription_identifiers=subscription_ids,
        topic_alias=topic_alias,
    )


# Encode-cache keys of the usual PUBLISH (no RETAIN, DUP or subscription ids) by QoS, for v3.1 and
# v3.1.1, whose bytes are the same: strings hash once (their hash is cached), where the general key,
# a tuple, is built and hashed per delivery.
_PLAIN_KEYS: Final = ("mqtt-v4-q0", "mqtt-v4-q1", "mqtt-v4-q2")


def publish_parts(delivery: Delivery, level: int, dup: bool, cache: EncodeCache | None) -> PublishParts:
    """(head, tail) of the PUBLISH for `delivery`; the packet id (QoS > 0) goes between them."""
    qos, retain, subscription_ids = delivery.qos, delivery.retain, delivery.subscription_ids
    key: object
    if level != 5 and not retain and not dup:  # (v3/v4 carry no subscription ids)
        key = _PLAIN_KEYS[qos]
    else:
        key = ("mqtt", level, qos, retain, dup, subscription_ids)
    if cache is not None:
        parts = cache.get(key)
        if parts is not None:
            return parts
    message = delivery.message
    props = b""
    if level == 5:
        props = _properties_block(message, subscription_ids)
    parts = encode_publish_parts(message.topic, message.payload, qos, retain, dup, props, level)
    if cache is not None:
        cache[key] = parts
    return parts


def _has_properties(message: Message) -> bool:
    return bool(
        message.payload_format_utf8
        or message.expiry is not None
        or message.content_type is not None
        or message.response_topic is not None
        or message.correlation_data is not None
        or message.user_properties
    )


def _properties_block(message: Message, subscription_ids: tuple[int, ...]) -> bytes:
    """The encoded MQTT 5 properties of a PUBLISH; the common empty case costs nothing."""
    if not subscription_ids and not _has_properties(message):
        return b"\x00"
    return encode_properties(message_properties(message, subscription_ids), PacketType.PUBLISH)


class TopicAliases:
    """Outbound topic aliases of one MQTT 5 connection (assigned until the client's maximum)."""

    __slots__ = ("maximum", "_by_topic")

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self._by_topic: dict[str, int] = {}

    def parts(self, delivery: Delivery, dup: bool) -> PublishParts | None:
        """Aliased (head, tail), or None when this topic gets no alias (use the shared encoding)."""
        message = delivery.message
        alias = self._by_topic.get(message.topic)
        topic = ""
        if alias is None:
            if len(self._by_topic) >= self.maximum:
                return None
            alias = len(self._by_topic) + 1
            self._by_topic[message.topic] = alias
            topic = message.topic  # first use: send the name and set the alias
        props = encode_properties(message_properties(message, delivery.subscription_ids, alias), PacketType.PUBLISH)
        return encode_publish_parts(topic, message.payload, delivery.qos, delivery.retain, dup, props, 5)

    def forget(self, topic: str) -> None:
        """Undo an alias whose first PUBLISH was never sent (too large for the client)."""
        if self._by_topic.get(topic) == len(self._by_topic):
            del self._by_topic[topic]
