"""One message's way through a vhost: each exchange visited once, each queue given one copy.

RabbitMQ's rules for exchange-to-exchange bindings: a message an exchange
routes to another exchange is routed again there (by that exchange's type,
with the same routing key); cycles end at an exchange already visited, and a
queue reached by several paths gets the message once. A `Route` is that
walk's memory, shared by the vhost's walk and, through the core router's
encode cache, by the amq.topic subscribers a hop through the core reaches.
It also notes what the publisher's confirm depends on: whether a queue
refused the message (x-overflow reject-publish), and the core subscribers the
message left behind, for the publisher to wait on (core/flow.py).
"""

from __future__ import annotations

from typing import Any

from adapters.amqp.content import Content
from adapters.amqp.queues import Queue

ROUTE = ("amqp", "route")  # the key of the Route under way in a core fan-out's encode cache


class Route:
    """The exchanges one publish visited, the queues it reached, whether one refused it."""

    __slots__ = ("visited", "reached", "routed", "rejected", "core_calls", "hold_on")

    def __init__(self) -> None:
        self.visited: set[str] = set()
        self.reached: set[Queue] = set()
        self.routed = False  # reached a queue or a core subscriber (else basic.return when mandatory)
        self.rejected = False  # a full queue with x-overflow reject-publish(-dlx) refused it (basic.nack)
        self.core_calls = 0  # AMQP subscribers the core router handed it to (it counts each as a delivery)
        self.hold_on: tuple[Any, ...] = ()  # core subscribers behind on it (the door's `hold_on`)

    def enter(self, exchange: str) -> bool:
        """False if the walk was at `exchange` before (a cycle of bindings ends there)."""
        if exchange in self.visited:
            return False
        self.visited.add(exchange)
        return True

    def offer(self, queue: Queue, content: Content, now: float, expiration: float | None,
              default_max_length: int | None = None) -> None:
        """Enqueue unless this publish already reached `queue`."""
        if queue in self.reached:
            return
        self.reached.add(queue)
        self.routed = True
        if not queue.enqueue(content, now, expiration, default_max_length):
            self.rejected = True


def route_of(cache: dict[Any, Any], entered: str) -> Route:
    """The Route of a core fan-out (one a vhost walk put there, or a new one entered at `entered`)."""
    route = cache.get(ROUTE)
    if route is None:
        route = cache[ROUTE] = Route()
        route.visited.add(entered)
    return route
