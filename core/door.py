"""The one door into the core: every message, from every protocol and from the gateway itself.

`Door.publish(principal, message)` does, in this order:

1. validate the message once (topic, size, QoS, property types and text, and that the store
   can write the protocol fields it carries: what the store cannot write is never acknowledged);
2. check the principal's topic ACL (the gateway's own `SYSTEM` principal skips it);
3. route it (`core.router`), each subscriber getting it in its own outbox, and hand it to the
   cluster fabric (core/fabric.py; nothing in single-node mode);
4. say whether the gateway is over its memory budget (`hold`), and which subscribers' outboxes
   are past high water while their clients drain them (`hold_on`): the producer pauses briefly.

The `PublishResult` says routed / no subscribers / denied / invalid; each adapter maps
it to its wire answer in one place (MQTT reason code, AMQP reply code, CoAP code, HTTP
status). Nothing else calls the router's publish. `clear_retained` is the same door for
removing a retained message without delivering anything (the admin API).
"""

from __future__ import annotations

from collections import abc
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Final, Mapping, NamedTuple

from core.budget import MemoryBudget
from core.message import Message
from core.principal import Principal
from core.router import Router
from core.stores.codec import encode_value
from core.subscriptions import EncodeCache
from core.topics import InvalidTopic, validate_topic_name

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # MQTT's largest packet


class PublishStatus(IntEnum):
    ROUTED = 0  # delivered to at least one subscriber
    NO_SUBSCRIBERS = 1  # accepted (and retained if asked), nobody subscribed
    DENIED = 2  # the ACL refused it: not routed, not retained
    INVALID = 3  # the core cannot hold it (bad topic, too large, bad property)


REFUSED: Final = PublishStatus.DENIED  # this status and the ones after it were not accepted


class PublishResult(NamedTuple):
    """What became of one publish. `hold`: the gateway is over its memory budget."""

    status: PublishStatus
    deliveries: int = 0
    reason: str = ""
    hold: bool = False
    hold_on: tuple[Any, ...] = ()  # subscribers draining an outbox past high water: wait on them briefly

    @property
    def accepted(self) -> bool:
        return self.status < REFUSED


DENIED: Final = PublishResult(PublishStatus.DENIED, 0, "not authorized")
# The usual results, made once: routed to n < 64 subscribers or to none, nobody held.
_ROUTED_TO: Final = tuple(PublishResult(PublishStatus.ROUTED, n) for n in range(64))
_NO_SUBSCRIBERS: Final = PublishResult(PublishStatus.NO_SUBSCRIBERS)
_ROUTED: Final = PublishStatus.ROUTED  # (a member read through its Enum class is a metaclass lookup)
_NOBODY: Final = PublishStatus.NO_SUBSCRIBERS
_tuple_new: Final = tuple.__new__  # a result per publish without the NamedTuple's Python-level __new__


class Door:
    """Validates, authorizes and routes each publish; counts what it refused."""

    def __init__(self, router: Router, budget: MemoryBudget | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.router = router
        self.budget = budget if budget is not None else MemoryBudget()
        self.max_message_bytes = max_message_bytes
        self.denied = 0
        self.invalid = 0

    def publish(self, principal: Principal, message: Message, encoded: EncodeCache | None = None) -> PublishResult:
        """Validate, authorize, route. `encoded`: forms of the message the publisher already has
        (keyed as its protocol's encoder keys them), reused by same-protocol subscribers."""
        problem = self.problem(message)
        if problem is not None:
            self.invalid += 1
            return PublishResult(PublishStatus.INVALID, 0, problem)
        access = principal.access
        if access is not None and not principal.trusted and not access.can_publish(message.topic):
            self.denied += 1
            return DENIED
        router = self.router
        congested: list[Any] = []
        count = router.publish(message, encoded, False, congested)
        # To the other nodes of a cluster (core/fabric.py; a no-op alone), which may name a topic's
        # subscribers on another node that are behind, for the producer to wait on as on local ones.
        if router.clustered:
            remote_hold = router.fabric.forward(message)
            if remote_hold is not None:
                congested.append(remote_hold)
        return _routed(count, self.budget.congested, congested)

    def publish_remote(self, message: Message, share: tuple[str, str] | None = None) -> PublishResult:
        """A message another node of the cluster published (and authorized): validated, then routed
        to this node's subscribers only, never forwarded again. `share`: (group, filter) when the
        fabric picked this node for one member of a share group. `hold_on` names the subscribers here
        whose outboxes it pushed past high water, for the fabric to tell the publisher's node."""
        problem = self.problem(message)
        if problem is not None:
            self.invalid += 1
            return PublishResult(PublishStatus.INVALID, 0, problem)
        congested: list[Any] = []
        if share is not None:
            count = self.router.deliver_to_share(message, share[0], share[1])
        else:
            count = self.router.publish(message, None, True, congested)
        return _routed(count, False, congested)

    def clear_retained(self, principal: Principal, topic: str, message: Message) -> PublishResult:
        """Remove the retained message of `topic` without delivering anything (`message`: the
        empty retained message recorded as the clear, with its origin)."""
        problem = self.problem(message)
        if problem is not None:
            self.invalid += 1
            return PublishResult(PublishStatus.INVALID, 0, problem)
        access = principal.access
        if access is not None and not principal.trusted and not access.can_publish(topic):
            self.denied += 1
            return DENIED
        self.router.set_retained(message)
        return PublishResult(PublishStatus.NO_SUBSCRIBERS)

    def problem(self, message: Message) -> str | None:
        """Why the core cannot take `message`, or None. Cheap for the usual ASCII topic.

        Fields are read untyped: a caller may have put anything in them, and the door's answer
        for a wrong type is a reason, never the TypeError a compiled read raises."""
        # Read by position from the tuple: compiled, each is one native item read (an unpacking of an
        # untyped value walks an iterator; a dozen attribute reads are a dozen lookups).
        fields: tuple[Any, ...] = message
        topic, payload, qos, retain = fields[0], fields[1], fields[2], fields[3]
        content_type, correlation, response_topic, user_properties = fields[4], fields[5], fields[6], fields[7]
        expiry, payload_format_utf8, extra = fields[8], fields[9], fields[11]
        if (type(topic) is not str or not topic or not topic.isascii() or len(topic) > 65535
                or "+" in topic or "#" in topic or "\x00" in topic):
            try:
                validate_topic_name(topic)
            except (InvalidTopic, TypeError) as exc:
                return str(exc) if isinstance(exc, InvalidTopic) else "topic must be text"
        if type(payload) is not bytes:
            return "payload must be bytes"
        if len(payload) > self.max_message_bytes:
            return f"payload of {len(payload)} bytes is over the limit of {self.max_message_bytes}"
        if type(qos) is not int or qos not in (0, 1, 2):
            return f"QoS {qos!r} is not 0, 1 or 2"
        if type(retain) is not bool or type(payload_format_utf8) is not bool:
            return "retain and payload format must be booleans"
        if expiry is not None and type(expiry) is not float and type(expiry) is not int:
            return f"expiry {expiry!r} is not a time"
        if correlation is not None and type(correlation) is not bytes:
            return "correlation data must be bytes"
        if user_properties or content_type is not None or response_topic is not None:
            problem = _property_problem(fields)
            if problem is not None:
                return problem
        if type(extra) not in _MAPPINGS and not isinstance(extra, abc.Mapping):  # (typing's isinstance is slow)
            return "protocol fields must be a mapping"
        if extra and (qos or retain):
            return _extra_problem(extra)  # it may be stored: the store must be able to write it
        return None


def _routed(count: int, over_budget: bool, congested: list[Any]) -> PublishResult:
    """The result of a message routed to `count` subscribers (a shared one when nobody is held)."""
    if not congested and not over_budget and count < 64:
        return _ROUTED_TO[count] if count else _NO_SUBSCRIBERS
    return _tuple_new(PublishResult, (_ROUTED if count else _NOBODY, count,  # type: ignore[no-any-return]
                                      "", over_budget, tuple(congested) if congested else ()))


def _property_problem(message: Any) -> str | None:
    """Property values every protocol could at least carry as text: str, encodable as UTF-8."""
    texts: list[object] = [message.content_type, message.response_topic]
    pairs = message.user_properties
    if type(pairs) is not tuple:
        return "user properties must be a tuple of (name, value) pairs"
    for pair in pairs:
        if type(pair) is not tuple or len(pair) != 2:
            return "a user property must be a (name, value) pair"
        texts.extend(pair)
    for text in texts:
        if text is None:
            continue
        if type(text) is not str:
            return f"property value {text!r} is not text"
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return "property value is not valid UTF-8 text"
    if message.response_topic is not None and not message.response_topic:
        return "response topic must not be empty"
    return None


_SIMPLE = (bytes, int, float, bool, type(None))
_MAPPINGS = (MappingProxyType, dict)  # what every adapter builds Message.extra as


def _extra_problem(extra: Mapping[str, object]) -> str | None:
    """Protocol fields carried for same-protocol delivery must be values the store can write
    (core.stores.codec): a message it could not write must not be acknowledged."""
    for key, value in extra.items():
        if type(key) is str and (type(value) in _SIMPLE or (type(value) is str and value.isascii())):
            continue
        try:
            encode_value({key: value})
        except (TypeError, ValueError) as exc:
            return f"protocol field {key!r} cannot be stored: {exc}"
    return None
