"""What bridges add to or read from a message: the loop marker, echo suppression, the webhook's JSON.

No loops, in three layers:

1. A message that came in through a bridge has that bridge as its origin and is never sent back
   out through it (the bridge subscribes with no-local).
2. MQTT 5 upstreams are asked for no-local on the ``in`` subscriptions: what the bridge sent up
   does not come back down. MQTT 3.1.1 has no no-local: `EchoFilter` remembers what went up
   (topic and payload, for `ECHO_TTL` seconds) and drops the first copy that comes back.
3. Every message a bridge sends carries the user property (AMQP header) ``rosettamq-via``
   naming this gateway; a bridge never sends a message that already passed through this
   gateway, so two gateways bridged to each other do not ping-pong: a message goes round once
   at most and stops where it started.
No I/O.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import deque
from typing import Any

from core.message import Message

VIA = "rosettamq-via"
ECHO_TTL = 30.0  # seconds an MQTT 3.1.1 echo is waited for
ECHO_MAX = 10_000  # fingerprints kept at most


def passed_through(message: Message, node: str) -> bool:
    """Whether `message` already left this gateway (`node`) through a bridge."""
    return any(name == VIA and value == node for name, value in message.user_properties)


def marked(message: Message, node: str) -> Message:
    """`message` with this gateway named in its via marker."""
    return message._replace(user_properties=(*message.user_properties, (VIA, node)))


class EchoFilter:
    """Fingerprints of what an MQTT 3.1.1 bridge sent up, to drop the copy the upstream sends back."""

    def __init__(self, ttl: float = ECHO_TTL, limit: int = ECHO_MAX) -> None:
        self.ttl = ttl
        self.limit = limit
        self.echoes = 0  # copies dropped
        self._counts: dict[bytes, int] = {}
        self._order: deque[tuple[float, bytes]] = deque()

    def sent(self, topic: str, payload: bytes, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._expire(now)
        if len(self._order) >= self.limit:
            self._pop()
        key = _fingerprint(topic, payload)
        self._counts[key] = self._counts.get(key, 0) + 1
        self._order.append((now + self.ttl, key))

    def is_echo(self, topic: str, payload: bytes, now: float | None = None) -> bool:
        """True (once per copy sent) when `topic` and `payload` are what this bridge sent up lately."""
        self._expire(time.monotonic() if now is None else now)
        key = _fingerprint(topic, payload)
        count = self._counts.get(key, 0)
        if not count:
            return False
        if count == 1:
            del self._counts[key]
        else:
            self._counts[key] = count - 1
        self.echoes += 1
        return True

    def _expire(self, now: float) -> None:
        while self._order and self._order[0][0] <= now:
            self._pop()

    def _pop(self) -> None:
        _, key = self._order.popleft()
        count = self._counts.get(key, 0)
        if count > 1:
            self._counts[key] = count - 1
        elif count:
            del self._counts[key]


def _fingerprint(topic: str, payload: bytes) -> bytes:
    return hashlib.blake2b(topic.encode("utf-8", "surrogatepass") + b"\x00" + payload, digest_size=16).digest()


def webhook_json(message: Message, queued_at: float) -> dict[str, Any]:
    """One message as the webhook receives it: topic, payload (text when it is UTF-8, else base64),
    QoS, retain, properties, origin and when the gateway queued it (seconds since the epoch)."""
    try:
        payload, encoding = message.payload.decode("utf-8"), "text"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(message.payload).decode("ascii"), "base64"
    properties: dict[str, Any] = {}
    if message.content_type is not None:
        properties["content_type"] = message.content_type
    if message.correlation_data is not None:
        properties["correlation_data"] = base64.b64encode(message.correlation_data).decode("ascii")
    if message.response_topic is not None:
        properties["response_topic"] = message.response_topic
    if message.user_properties:
        properties["user_properties"] = [list(pair) for pair in message.user_properties]
    if message.expiry is not None:
        properties["message_expiry_interval"] = message.remaining_expiry()
    if message.payload_format_utf8:
        properties["payload_format_indicator"] = 1
    origin = message.origin
    return {
        "topic": message.topic, "payload": payload, "payload_encoding": encoding, "qos": message.qos,
        "retain": message.retain, "properties": properties,
        "origin": {"protocol": origin.protocol, "client_id": origin.client_id, "username": origin.username},
        "timestamp": round(queued_at, 6),
    }
