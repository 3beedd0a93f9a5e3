"""amq.topic shared with the core: queues bound to it are core subscribers, publishes go to the router.

One `QueueSubscriber` per queue holds all of that queue's amq.topic bindings
as MQTT filters, so a message matching several bindings reaches the queue
once (the router merges a subscriber's overlapping filters). Each publish is
converted to AMQP once per fan-out through the router's encode cache. An
exchange bound to amq.topic (exchange.bind) is an `ExchangeSubscriber`: what
reaches it is routed again from that exchange, within the fan-out's `Route`
(route.py), so a queue reached both ways gets one copy.
"""

from __future__ import annotations

from typing import Callable

from core.acl import ClientAccess
from core.message import Message
from core.subscriptions import Delivery, EncodeCache, SubscriptionOptions
from core.trie import SubscriptionTrie

from adapters.amqp.content import Content
from adapters.amqp.errors import AMQPError
from adapters.amqp.frames import decode_content_header
from adapters.amqp.mapping import (
    amqp_from_message, binding_key_to_filter, routing_key_fits, topic_key_matches, topic_to_routing_key,
)
from adapters.amqp.queues import Queue
from adapters.amqp.route import Route, route_of

SHARED_EXCHANGE = "amq.topic"
# Queues take QoS 1 (they are reliable buffers); retained messages keep their x-retain header.
QUEUE_OPTIONS = SubscriptionOptions(qos=1, retain_as_published=True)


# The key under which a publish through amq.topic seeds the fan-out's encode cache with its
# own `Content`, so AMQP subscribers of that very publish reuse it (no header decoded again).
ORIGINAL_CONTENT = ("amqp", "original")


def content_for(delivery: Delivery, cache: EncodeCache, now: float, origin_header: bool) -> Content:
    """The AMQP form of a delivery, built once per (QoS, retain) of a fan-out.

    A message first published over AMQP keeps its original properties (the core
    carries their encoded content header in `extra["amqp"]`, plain bytes a store can
    keep), so AMQP-to-AMQP traffic through amq.topic is unchanged.
    """
    key = ("amqp", delivery.qos, delivery.retain, origin_header)
    content = cache.get(key)
    if content is None:
        message = delivery.message
        original = message.extra.get("amqp")
        content = None
        seeded = cache.get(ORIGINAL_CONTENT) if original is not None else None
        if seeded is not None and seeded.header_payload() is original:
            content = seeded
        elif isinstance(original, bytes):
            try:
                properties = decode_content_header(0, original).properties
            except AMQPError:
                pass  # not ours after all: map the core fields instead
            else:
                content = Content(SHARED_EXCHANGE, topic_to_routing_key(message.topic), properties,
                                  message.payload, header=original)
        if content is None:
            routing_key, properties = amqp_from_message(
                message, delivery.qos, delivery.retain, now=now, origin_header=origin_header
            )
            content = Content(SHARED_EXCHANGE, routing_key, properties, message.payload)
        cache[key] = content
    return content


class QueueSubscriber:
    """A queue as the router sees it: always online, never the origin of a message."""

    protocol = "amqp"  # the router counts deliveries by subscriber protocol
    __slots__ = ("queue", "filters", "router_filters", "inexact", "reader", "_clock", "_origin_header",
                 "_default_max_length", "_exact")

    def __init__(self, queue: Queue, clock: Callable[[], float], origin_header: bool,
                 default_max_length: int | None = None) -> None:
        self.queue = queue
        self.filters: dict[str, int] = {}  # exact MQTT filter -> bindings using it
        self._exact: SubscriptionTrie[str, None] = SubscriptionTrie()  # the same filters, to match topics
        self.inexact: dict[str, int] = {}  # binding keys MQTT cannot express -> bindings using it
        self.router_filters: dict[str, int] = {}  # filter registered in the router -> bindings using it
        self.reader: ClientAccess | None = None  # the ACL whose read rules apply (None: no ACL)
        self._clock = clock
        self._origin_header = origin_header
        self._default_max_length = default_max_length  # the queue's bound if it sets none itself

    def add_binding(self, binding_key: str) -> str | None:
        """Count a binding; returns the filter to subscribe with if the router lacks it."""
        found = binding_key_to_filter(binding_key)
        if found is None:
            return None
        topic_filter, exact = found
        table, item = (self.filters, topic_filter) if exact else (self.inexact, binding_key)
        table[item] = table.get(item, 0) + 1
        if exact and table[item] == 1:
            self._exact.add(topic_filter, topic_filter, None)
        count = self.router_filters.get(topic_filter, 0)
        self.router_filters[topic_filter] = count + 1
        return topic_filter if count == 0 else None

    def remove_binding(self, binding_key: str) -> str | None:
        """Forget a binding; returns the filter to unsubscribe if no binding needs it any more."""
        found = binding_key_to_filter(binding_key)
        if found is None:
            return None
        topic_filter, exact = found
        table, item = (self.filters, topic_filter) if exact else (self.inexact, binding_key)
        if item in table:
            table[item] -= 1
            if not table[item]:
                del table[item]
                if exact:
                    self._exact.remove(topic_filter, topic_filter)
        count = self.router_filters.get(topic_filter, 0) - 1
        if count > 0:
            self.router_filters[topic_filter] = count
            return None
        self.router_filters.pop(topic_filter, None)
        return topic_filter

    @property
    def is_online(self) -> bool:
        return not self.queue.deleted

    def is_origin_of(self, message: Message) -> bool:
        return False

    def deliver(self, delivery: Delivery, cache: EncodeCache) -> None:
        route = route_of(cache, SHARED_EXCHANGE)
        route.core_calls += 1  # routed only if it reaches a queue, whatever the router counts
        if not self.is_online:
            return
        message = delivery.message
        if self.inexact and not self._matches(message.topic):
            return
        if self.reader is not None and not self.reader.can_read(message.topic):
            return
        if message.origin.protocol != "amqp" and not routing_key_fits(message.topic):
            return  # AMQP cannot carry it (counted); one subscriber's loss, as for a full outbox
        now = self._clock()
        if message.expiry is not None:
            remaining = message.expiry - now
            if remaining <= 0:
                return
        else:
            remaining = None
        self._take(content_for(delivery, cache, now, self._origin_header), now, remaining, route)

    def _take(self, content: Content, now: float, remaining: float | None, route: Route) -> None:
        route.offer(self.queue, content, now, remaining, self._default_max_length)

    def _matches(self, topic: str) -> bool:
        """With a binding MQTT cannot express, check the AMQP rule (the router used a wider filter)."""
        if self._exact.match(topic):
            return True
        routing_key = topic_to_routing_key(topic)
        return any(topic_key_matches(key, routing_key) for key in self.inexact)


class ExchangeSubscriber(QueueSubscriber):
    """An exchange bound to amq.topic: `forward(exchange, content, expiration, route)` routes on from it."""

    __slots__ = ("exchange", "forward")

    def __init__(self, exchange: str, forward: Callable[[str, Content, float | None, Route], None],
                 clock: Callable[[], float], origin_header: bool) -> None:
        super().__init__(None, clock, origin_header)  # type: ignore[arg-type]  # no queue of its own
        self.exchange = exchange
        self.forward = forward

    @property
    def is_online(self) -> bool:
        return True

    def _take(self, content: Content, now: float, remaining: float | None, route: Route) -> None:
        self.forward(self.exchange, content, remaining, route)
