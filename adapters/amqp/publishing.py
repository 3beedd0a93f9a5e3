"""Publishing in a vhost: a message's walk through exchanges to queues and the core.

A mixin of `VirtualHost` (vhost.py), kept apart so each file holds one
concern. The walk follows exchange-to-exchange bindings with one `Route`
(route.py): each exchange once, each queue one copy. The shared amq.topic
routes through the core's door (`core.Broker.publish`), so MQTT, WebSocket
and CoAP subscribers take part and exchanges bound to amq.topic route on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from pamqp.commands import Basic

from core.broker import Broker
from core.principal import Principal

from adapters.amqp import errors
from adapters.amqp.bridge import ORIGINAL_CONTENT, SHARED_EXCHANGE
from adapters.amqp.content import Content
from adapters.amqp.exchanges import Exchange, ToExchange
from adapters.amqp.mapping import message_from_amqp, parse_expiration
from adapters.amqp.queues import Queue
from adapters.amqp.reply_to import REPLY_PREFIX, DirectReplyTo
from adapters.amqp.route import ROUTE, Route

if TYPE_CHECKING:
    from adapters.amqp.permissions import Permissions


class Publishing:
    """basic.publish and dead letters: routing a message from an exchange."""

    name: str
    core: Broker | None
    clock: Callable[[], float]
    exchanges: dict[str, Exchange]
    queues: dict[str, Queue]
    replies: DirectReplyTo
    permissions: "Permissions"

    if TYPE_CHECKING:
        def exchange(self, name: str) -> Exchange: ...

    def publish(self, exchange_name: str, routing_key: str, properties: Basic.Properties, body: bytes,
                principal: Principal, header: bytes | None = None) -> Route:
        """Route one basic.publish; the Route says whether it reached a queue (or core subscriber)
        and whether a queue refused it.

        To the shared amq.topic it goes through the core's door as `principal` (403 when its
        topic ACL refuses)."""
        exchange = self.exchange(exchange_name)
        if exchange.internal:
            raise errors.access_refused(f"cannot publish to internal exchange '{exchange_name}'")
        try:
            expiration = parse_expiration(properties.expiration)
        except ValueError as exc:
            raise errors.precondition_failed(str(exc)) from None
        content = Content(exchange_name, routing_key, properties, body, header)
        route = Route()
        self._walk(exchange, routing_key, content, expiration, principal, route, first=True)
        return route

    def _route(self, exchange: Exchange, routing_key: str, content: Content, expiration: float | None,
               principal: Principal) -> bool:
        """Route a message the vhost itself sends (a dead letter); True if it reached anything."""
        route = Route()
        self._walk(exchange, routing_key, content, expiration, principal, route, first=True)
        return route.routed

    def forward(self, exchange_name: str, content: Content, expiration: float | None, route: Route) -> None:
        """What amq.topic delivered to an exchange bound to it, routed on from there (bridge.py)."""
        exchange = self.exchanges.get(exchange_name)
        if exchange is not None:  # amq.topic is in the route: the principal never passes the door again
            self._walk(exchange, content.routing_key, content, expiration, self.permissions.principal(None), route)

    def _walk(self, exchange: Exchange, routing_key: str, content: Content, expiration: float | None,
              principal: Principal, route: Route, first: bool = False) -> None:
        if not route.enter(exchange.name):
            return
        now = self.clock()
        if exchange.name == SHARED_EXCHANGE and self.core is not None:
            message = message_from_amqp(routing_key, content.properties, content.body, origin=principal.origin,
                                        now=now, extra={"amqp": content.header_payload()})
            if message is None:
                return
            result = self.core.publish(principal, message, {ORIGINAL_CONTENT: content, ROUTE: route})
            if result.hold_on:
                route.hold_on += result.hold_on
            if not result.accepted:
                if first:
                    raise errors.publish_refused(result.status, message.topic, self.name, result.reason)
                return  # a later hop the topic ACL refuses is closed, as an unroutable one
            if result.deliveries > route.core_calls:  # an MQTT, WebSocket or CoAP subscriber got it
                route.routed = True
            return
        if exchange.name == "":
            if routing_key.startswith(REPLY_PREFIX):
                route.routed = self.replies.route(routing_key, content, now) or route.routed
                return
            queue = self.queues.get(routing_key)
            if queue is not None:
                route.offer(queue, content, now, expiration)
            return
        for destination in list(exchange.route(routing_key, content.properties.headers)):
            if isinstance(destination, ToExchange):
                target = self.exchanges.get(destination.name)
                if target is not None:
                    self._walk(target, routing_key, content, expiration, principal, route)
            else:
                queue = self.queues.get(destination)
                if queue is not None:
                    route.offer(queue, content, now, expiration)
