"""AMQP <-> core translation, pure functions (DESIGN.md's mapping table).

Addresses: a routing key's words are topic levels (`a.b.c` <-> `a/b/c`); a
literal `.` inside a level travels as `%2E` and a literal `%` as `%25`, so
topic -> routing key -> topic is exact. In binding keys `*` <-> `+` and
`#` <-> `#`. A binding key MQTT cannot express (a `#` before the last word,
a word holding `+` or `#`) becomes the widest filter that covers it, and the
queue checks the AMQP rule itself (`BindingFilter.exact` is then False).

Properties, both ways:
  content_type <-> content_type; correlation_id <-> correlation_data (UTF-8);
  reply_to (routing-key form) <-> response_topic; headers <-> user_properties;
  expiration (ms string) <-> expiry (absolute); delivery_mode 2/1 <-> QoS 1/0;
  header x-retain: true <-> retain; header x-origin-client-id (outbound, optional);
  timestamp (the 64-bit integer, untouched) <-> user property `amqp-timestamp` (its decimal
  text; from MQTT only a decimal 0..2**64-1, anything else stays a header).
Header values become strings one way: bytes as UTF-8, booleans as true/false,
numbers and timestamps (integers) as their text, void as "", tables as JSON; an array
becomes one user property per element, and repeated user properties become
an array of strings on the way back.
What AMQP cannot carry is adapted by one rule: a content type, correlation id,
reply-to or header name longer than a short string (255 bytes) is left out, and a
topic whose routing key would be longer is not delivered to AMQP queues
(`routing_key_fits`); each is counted in `ADAPTED` (metrics).
"""

from __future__ import annotations

import datetime
import json
import math
from decimal import Decimal
from typing import Any, NamedTuple

from pamqp.commands import Basic

from core.message import Message, Origin, QoS

from adapters.amqp.properties import Timestamp

MAX_SHORTSTR = 255  # bytes of an AMQP short string: routing keys, property strings, table keys


class Adapted:
    """What AMQP could not carry from other protocols, by kind: properties left out, and
    messages not delivered because their topic is too long for a routing key."""

    __slots__ = ("content_type", "correlation_id", "reply_to", "header_names", "long_topics")

    def __init__(self) -> None:
        self.content_type = self.correlation_id = self.reply_to = self.header_names = self.long_topics = 0


ADAPTED = Adapted()


def shortstr_fits(text: str) -> bool:
    """Whether `text` fits an AMQP short string (255 bytes of UTF-8)."""
    return len(text) <= MAX_SHORTSTR // 4 or len(text.encode("utf-8", "surrogatepass")) <= MAX_SHORTSTR


def routing_key_fits(topic: str) -> bool:
    """Whether a topic's routing key fits a short string; counted in ADAPTED when it does not."""
    if topic.isascii() and len(topic) + 2 * (topic.count(".") + topic.count("%")) <= MAX_SHORTSTR:
        return True  # the usual case, without building the key: escaping adds 2 bytes per "." or "%"
    if shortstr_fits(topic_to_routing_key(topic)):
        return True
    ADAPTED.long_topics += 1
    return False


def _fitting(text: str | None, kind: str) -> str | None:
    if text is None or shortstr_fits(text):
        return text
    setattr(ADAPTED, kind, getattr(ADAPTED, kind) + 1)
    return None


RETAIN_HEADER = "x-retain"
ORIGIN_HEADER = "x-origin-client-id"
TIMESTAMP_PROPERTY = "amqp-timestamp"  # basic.properties.timestamp as an MQTT 5 user property
_RESERVED = (RETAIN_HEADER, ORIGIN_HEADER)


# -- addresses --------------------------------------------------------------------


def _escape(level: str) -> str:
    return level.replace("%", "%25").replace(".", "%2E") if ("%" in level or "." in level) else level


def _unescape(word: str) -> str:
    if "%" not in word:
        return word
    out, i = [], 0
    while i < len(word):
        chunk = word[i : i + 3].upper()
        if chunk == "%2E":
            out.append(".")
            i += 3
        elif chunk == "%25":
            out.append("%")
            i += 3
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


def topic_to_routing_key(topic: str) -> str:
    """`a/b.c/d` -> `a.b%2Ec.d`."""
    return ".".join(_escape(level) for level in topic.split("/"))


def routing_key_to_topic(routing_key: str) -> str | None:
    """`a.b%2Ec.d` -> `a/b.c/d`; None when it is no valid MQTT topic name (empty, `+`, `#`)."""
    if not routing_key or "+" in routing_key or "#" in routing_key or "\x00" in routing_key:
        return None
    return "/".join(_unescape(word) for word in routing_key.split("."))


class BindingFilter(NamedTuple):
    """The MQTT filter a binding key subscribes with, and whether it matches exactly the same topics."""

    topic_filter: str
    exact: bool


def binding_key_to_filter(binding_key: str) -> BindingFilter | None:
    """`a.*.c` -> `a/+/c`, `a.#` -> `a/#`; None for a key no topic can match (the empty key)."""
    if not binding_key:
        return None
    levels: list[str] = []
    exact = True
    words = binding_key.split(".")
    for index, word in enumerate(words):
        if word == "#":
            levels.append("#")
            exact = exact and index == len(words) - 1
            break
        if word == "*":
            levels.append("+")
        elif "+" in word or "#" in word or "\x00" in word:
            levels.append("+")
            exact = False
        else:
            levels.append(_unescape(word))
    return BindingFilter("/".join(levels), exact)


def filter_to_binding_key(topic_filter: str) -> str:
    """`a/+/c` -> `a.*.c` (the inverse of `binding_key_to_filter` for exact filters)."""
    return ".".join("*" if level == "+" else level if level == "#" else _escape(level)
                    for level in topic_filter.split("/"))


def topic_key_matches(binding_key: str, routing_key: str) -> bool:
    """AMQP topic-exchange matching: `*` is one word, `#` zero or more words."""
    return _match(binding_key.split("."), 0, routing_key.split("."), 0)


def _match(pattern: list[str], p: int, words: list[str], w: int) -> bool:
    while p < len(pattern):
        token = pattern[p]
        if token == "#":
            if p == len(pattern) - 1:
                return True
            return any(_match(pattern, p + 1, words, i) for i in range(w, len(words) + 1))
        if w >= len(words) or (token != "*" and token != words[w]):
            return False
        p, w = p + 1, w + 1
    return w == len(words)


# -- properties ---------------------------------------------------------------------


def header_text(value: Any) -> str:
    """One header value as the string a user property carries."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, float, Decimal)):
        return str(int(value)) if isinstance(value, Timestamp) else str(value)
    if isinstance(value, datetime.datetime):  # set by code; from the wire a timestamp is an int
        return value.isoformat()
    return json.dumps(value, default=header_text, separators=(",", ":"))


def _truthy(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def parse_expiration(expiration: str | None) -> float | None:
    """The `expiration` property in seconds; ValueError unless a non-negative integer of ms with
    nothing around it (RabbitMQ refuses leftover characters, spaces included)."""
    if expiration is None:
        return None
    if not (expiration.isascii() and expiration.isdigit()):
        raise ValueError(f"invalid expiration {expiration!r}")
    return int(expiration) / 1000.0


def message_from_amqp(
    routing_key: str, properties: Basic.Properties, body: bytes, *, origin: Origin, now: float,
    extra: dict[str, Any] | None = None,
) -> Message | None:
    """A basic.publish to amq.topic as a core message; None if the routing key is no topic name."""
    topic = routing_key_to_topic(routing_key)
    if topic is None:
        return None
    headers = properties.headers or {}
    retain = False
    user_properties: list[tuple[str, str]] = []
    for key, value in headers.items():
        if key == RETAIN_HEADER:
            retain = _truthy(value)
        elif key == ORIGIN_HEADER:
            continue  # set by the gateway on the way out, never trusted on the way in
        elif isinstance(value, list):
            user_properties.extend((key, header_text(item)) for item in value)
        else:
            user_properties.append((key, header_text(value)))
    if properties.timestamp is not None:
        user_properties.append((TIMESTAMP_PROPERTY, str(int(properties.timestamp))))
    expiration = parse_expiration(properties.expiration)
    reply_to = properties.reply_to
    correlation_id = properties.correlation_id
    qos: QoS = 1 if properties.delivery_mode == 2 else 0
    return Message(
        topic=topic,
        payload=body,
        qos=qos,
        retain=retain,
        content_type=properties.content_type,
        correlation_data=None if correlation_id is None else correlation_id.encode("utf-8"),
        response_topic=None if not reply_to else routing_key_to_topic(reply_to),
        user_properties=tuple(user_properties),
        expiry=None if expiration is None else now + expiration,
        origin=origin,
        **({"extra": extra} if extra else {}),
    )


def amqp_from_message(
    message: Message, qos: int, retain: bool, *, now: float, origin_header: bool = False
) -> tuple[str, Basic.Properties]:
    """A core message as (routing key, properties) for a queue bound to amq.topic."""
    headers: dict[str, Any] = {}
    timestamp = None
    for key, value in message.user_properties:
        if key == TIMESTAMP_PROPERTY and timestamp is None and (stamp := _timestamp(value)) is not None:
            timestamp = stamp
            continue
        if not shortstr_fits(key):
            ADAPTED.header_names += 1
            continue
        seen = headers.get(key)
        if seen is None:
            headers[key] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            headers[key] = [seen, value]
    if retain:
        headers[RETAIN_HEADER] = True
    if origin_header and message.origin.client_id:
        headers[ORIGIN_HEADER] = message.origin.client_id
    expiration = None
    if message.expiry is not None:
        expiration = str(max(0, math.ceil((message.expiry - now) * 1000)))
    correlation = message.correlation_data
    properties = Basic.Properties(
        content_type=_fitting(message.content_type, "content_type"),
        headers=headers or None,
        delivery_mode=2 if qos >= 1 else 1,
        correlation_id=None if correlation is None else _fitting(correlation.decode("utf-8", "replace"),
                                                                 "correlation_id"),
        reply_to=None if message.response_topic is None else _fitting(topic_to_routing_key(message.response_topic),
                                                                      "reply_to"),
        expiration=expiration,
        timestamp=timestamp,
    )
    return topic_to_routing_key(message.topic), properties


def _timestamp(text: str) -> Timestamp | None:
    """A user property's value as an AMQP timestamp: decimal digits of a 64-bit unsigned integer."""
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        return None
    value = int(text)
    return Timestamp(value) if value < 2**64 else None
