"""CoAP requests on the pub/sub tree (``/ps/...``) as core operations, and messages as notifications.

No I/O: the aiocoap glue (`adapters.coap.resources`) hands in what it parsed
from a request and gets back a plan; it hands in a `Delivery` and gets back a
`Notification` to send. The mapping (DESIGN.md, CoAP column):

| request                          | plan       | core operation                                |
|----------------------------------|------------|-----------------------------------------------|
| POST or PUT ``/ps/{topic}``      | Publish    | publish; CON = QoS 1, NON = QoS 0, ``?qos=``   |
| GET ``/ps/{filter}`` Observe=0   | Observe    | subscribe (QoS: CON 1, NON 0, ``?qos=``)       |
| GET ``/ps/{topic}`` Observe=1    | Unobserve  | unsubscribe, then answer like a read          |
| GET ``/ps/{topic}``              | Read       | the retained message (2.05), or 4.04           |
| DELETE ``/ps/{topic}``           | Clear      | clear the retained message (2.02), or 4.04     |
| any other method                 | -          | 4.05                                          |

Every notification carries its concrete topic as Location-Path options
(``ps``, then one option per level): that is how an observer of a wildcard
filter tells which topic each notification came from. The payload and its
Content-Format are the message's own, untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from core.message import Message, Origin, expiry_from_interval
from core.subscriptions import Delivery

from adapters.coap.contentformat import content_format_for, content_type_for
from adapters.coap.errors import BadCriticalOption, BadTopic, MethodNotAllowed, TooLarge
from adapters.coap.query import Query
from adapters.coap.topics import filter_from_path, path_for_topic, topic_from_path

__all__ = [
    "check_critical_options", "Clear", "Notification", "Observe", "Publish", "Read", "Unobserve",
    "notification_for", "plan_request",
]

# Critical (odd) options the adapter processes; any other critical option is refused with 4.02.
# Uri-Host and Uri-Port are accepted and ignored (one origin), and so is Accept (every read answers in
# the stored message's own format).
PROCESSED_CRITICAL = frozenset({3, 7, 11, 15, 17, 23, 27})  # + Uri-Path, Uri-Query, Block2, Block1

OBSERVE_REGISTER = 0
OBSERVE_DEREGISTER = 1


@dataclass(frozen=True, slots=True)
class Publish:
    message: Message


@dataclass(frozen=True, slots=True)
class Read:
    topic: str


@dataclass(frozen=True, slots=True)
class Clear:
    topic: str


@dataclass(frozen=True, slots=True)
class Observe:
    topic_filter: str
    qos: int


@dataclass(frozen=True, slots=True)
class Unobserve:
    topic_filter: str


Plan = Publish | Read | Clear | Observe | Unobserve


@dataclass(frozen=True, slots=True)
class Notification:
    """One message as CoAP sends it: built once per publish and QoS, shared by every observer."""

    topic: str
    payload: bytes
    content_format: int | None
    location: tuple[str, ...]
    confirmable: bool
    expiry: float | None  # absolute deadline (time.time()); Max-Age is what is left of it

    def max_age(self, now: float) -> int | None:
        """Seconds left before expiry (at least 1), or None for no expiry."""
        if self.expiry is None:
            return None
        return max(1, int(self.expiry - now + 0.999))


def check_critical_options(numbers: Iterable[int]) -> None:
    """Raise BadCriticalOption for a critical option the adapter would not honour (If-Match, Proxy-Uri, ...)."""
    for number in numbers:
        if number & 1 and number not in PROCESSED_CRITICAL:
            raise BadCriticalOption(f"critical option {number} is not supported")


def plan_request(
    method: str,
    path: Sequence[str],
    query: Query,
    *,
    payload: bytes,
    content_format: int | None,
    confirmable: bool,
    observe: int | None,
    origin: Origin,
    max_payload: int,
    now: float,
) -> Plan:
    """What a request below the mount point asks of the core; raises CoAPError subclasses."""
    if method in ("POST", "PUT"):
        if len(payload) > max_payload:
            raise TooLarge(max_payload)
        return Publish(_message(topic_from_path(path), query, payload, content_format, confirmable, origin, now))
    if method == "GET":
        if observe == OBSERVE_REGISTER:
            qos = query.qos if query.qos is not None else (1 if confirmable else 0)
            return Observe(filter_from_path(path), qos)
        if observe == OBSERVE_DEREGISTER:
            return Unobserve(filter_from_path(path))
        return Read(_read_topic(path))
    if method == "DELETE":
        return Clear(topic_from_path(path))
    raise MethodNotAllowed(f"{method} is not allowed here; use POST/PUT (publish), GET (read, observe) or DELETE")


def _read_topic(path: Sequence[str]) -> str:
    try:
        return topic_from_path(path)
    except BadTopic as exc:
        raise BadTopic(f"{exc} (wildcards need Observe: a read names one topic)") from None


def _message(
    topic: str, query: Query, payload: bytes, content_format: int | None, confirmable: bool, origin: Origin, now: float
) -> Message:
    content_type = content_type_for(content_format)
    return Message(
        topic=topic,
        payload=payload,
        qos=query.qos if query.qos is not None else (1 if confirmable else 0),
        retain=bool(query.retain),
        content_type=content_type,
        expiry=expiry_from_interval(query.expiry, now),
        payload_format_utf8=content_format == 0,
        origin=origin,
    )


def notification_for(message: Message, qos: int, mount: Sequence[str]) -> Notification:
    """The notification of `message` delivered at `qos` (CON for QoS >= 1, NON for QoS 0)."""
    return Notification(
        topic=message.topic,
        payload=message.payload,
        content_format=content_format_for(message.content_type),
        location=path_for_topic(mount, message.topic),
        confirmable=qos >= 1,
        expiry=message.expiry,
    )


def notification_of_delivery(delivery: Delivery, mount: Sequence[str], cache: dict) -> Notification:
    """`notification_for` once per (protocol, QoS) of one fan-out, through the router's encode cache."""
    key = ("coap", delivery.qos, tuple(mount))
    found = cache.get(key)
    if found is None:
        found = cache[key] = notification_for(delivery.message, delivery.qos, mount)
    return found
