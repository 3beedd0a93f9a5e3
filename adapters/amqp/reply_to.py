"""Direct reply-to, RabbitMQ's `amq.rabbitmq.reply-to`: RPC replies straight to the requester's channel.

A requester consumes from the pseudo-queue `amq.rabbitmq.reply-to` (no-ack, as
RabbitMQ requires) and publishes its requests with reply_to set to that name;
the channel rewrites it to `amq.rabbitmq.reply-to.<token>`, naming the
consumer. A responder publishes its reply to the default exchange with that
routing key, and it goes to the requester's consumer: no queue is declared,
nothing is stored, and a reply to a consumer gone is unroutable (returned if
mandatory). Any user may reply, as in RabbitMQ: the key is the capability.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from adapters.amqp import errors
from adapters.amqp.content import Content
from adapters.amqp.queues import Consumer, Queue

if TYPE_CHECKING:
    from adapters.amqp.channel import Channel

REPLY_QUEUE = "amq.rabbitmq.reply-to"
REPLY_PREFIX = REPLY_QUEUE + "."


class DirectReplyTo:
    """The reply consumers of one vhost, by the key their requests carry in reply_to."""

    def __init__(self) -> None:
        self._queues: dict[str, Queue] = {}  # key -> the private queue its one consumer reads

    def __len__(self) -> int:
        return len(self._queues)

    def consume(self, ch: "Channel", tag: str, no_ack: bool) -> Consumer:
        """basic.consume on amq.rabbitmq.reply-to: one no-ack consumer per channel."""
        if not no_ack:
            raise errors.precondition_failed("reply consumer cannot acknowledge")
        if ch.reply_key is not None:
            raise errors.precondition_failed("reply consumer already set")
        key = REPLY_PREFIX + secrets.token_urlsafe(24)
        queue = Queue(key, exclusive_owner=ch.conn)  # not in the vhost: no name, no store, no accounting
        self._queues[key] = queue
        ch.reply_key = key
        return Consumer(tag, queue, ch, no_ack=True, exclusive=True, prefetch=0)

    def forget(self, ch: "Channel") -> None:
        """The reply consumer was cancelled (or its channel closed)."""
        if ch.reply_key is not None:
            self._queues.pop(ch.reply_key, None)
            ch.reply_key = None

    @staticmethod
    def key_of(ch: "Channel") -> str:
        """What a request's reply_to becomes (406 without a reply consumer on the channel, as RabbitMQ)."""
        if ch.reply_key is None:
            raise errors.precondition_failed("fast reply consumer does not exist")
        return ch.reply_key

    def route(self, routing_key: str, content: Content, now: float) -> bool:
        """A publish to the default exchange with a reply key: to its consumer, if still there."""
        queue = self._queues.get(routing_key)
        if queue is None:
            return False
        queue.enqueue(content, now)
        return True
