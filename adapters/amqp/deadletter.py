"""Dead letters as RabbitMQ makes them: an x-death entry per (queue, reason), the expiration moved into it."""

from __future__ import annotations

import time

from adapters.amqp.content import Content
from adapters.amqp.properties import Timestamp, copy_properties
from adapters.amqp.queues import Entry, Queue


def dead_letter(queue: Queue, entry: Entry, reason: str, exchange: str) -> Content:
    """The message `queue` dead-letters to `exchange` ("expired", "maxlen" or "rejected")."""
    content = entry.content
    headers = dict(content.properties.headers or {})
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, dict)]
    count = 1
    for death in deaths:
        if death.get("queue") == queue.name and death.get("reason") == reason:
            count = int(death.get("count", 0)) + 1
            deaths.remove(death)
            break
    death = {"count": count, "reason": reason, "queue": queue.name, "exchange": content.exchange,
             "routing-keys": [content.routing_key],
             "time": Timestamp(int(time.time()))}
    if content.properties.expiration is not None:
        death["original-expiration"] = content.properties.expiration
    headers["x-death"] = [death, *deaths]
    headers.setdefault("x-first-death-reason", reason)
    headers.setdefault("x-first-death-queue", queue.name)
    headers.setdefault("x-first-death-exchange", content.exchange)
    routing_key = queue.dead_letter_routing_key or content.routing_key
    properties = copy_properties(content.properties, headers=headers, expiration=None)
    return Content(exchange, routing_key, properties, content.body)
