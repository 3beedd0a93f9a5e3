"""What a subscription is, and what a subscriber must offer the router.

A subscriber is anything that receives messages: an MQTT session, an AMQP
queue bound to amq.topic, a CoAP observer. The router only sees this
interface, so every protocol receives every other protocol's messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from core.message import Message


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """Per-filter options (MQTT 5 subscription options; defaults suit every protocol).

    The router keys each fan-out's deliveries by options: the hash is computed once, and the
    router keeps one instance of each distinct value (`Router.subscribe`), so lookups end at
    the identity check."""

    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0
    subscription_id: int | None = None
    # Set only by the router when it merges overlapping subscriptions of one subscriber.
    subscription_ids: tuple[int, ...] | None = None
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.qos, self.no_local, self.retain_as_published,
                                                self.retain_handling, self.subscription_id, self.subscription_ids)))

    def __hash__(self) -> int:
        return self._hash


class Delivery(NamedTuple):
    """One message on its way to one subscriber, with the QoS and flags it gets (built per fan-out)."""

    message: Message
    qos: int
    retain: bool
    subscription_ids: tuple[int, ...] = ()


# A dict shared by every subscriber of one publish, so each protocol encodes
# an outgoing packet once per (protocol, QoS, flags) and not once per subscriber.
EncodeCache = dict[Any, Any]


@runtime_checkable
class Subscriber(Protocol):
    """The router's view of a message receiver."""

    @property
    def is_online(self) -> bool:
        """Whether it can take a message now (shared subscriptions prefer online members)."""
        ...

    def is_origin_of(self, message: Message) -> bool:
        """True if this subscriber published `message` (for the no-local option)."""
        ...

    def __hash__(self) -> int:  # a key of the subscription trie (by identity, as object's)
        ...

    def deliver(self, delivery: Delivery, cache: EncodeCache) -> bool | None:
        """Take one message. Must not block and must not raise for flow reasons. A true answer asks
        the producer to pause briefly (its outbox is past high water while its client drains it)."""
        ...
