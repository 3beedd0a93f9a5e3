"""One virtual host: exchanges, queues and bindings, publishing and dead-lettering.

RabbitMQ's rules, checked in its order: names starting with `amq.` are
reserved (403), passive declarations of missing things are 404, exclusive
queues of another connection are 405, redeclarations that differ are 406.
In the shared vhost (normally "/"), amq.topic is the core's topic space:
bindings to it are core subscriptions and publishes to it go through
`core.Broker.publish`, so MQTT, WebSocket and CoAP clients take part.
Durable state changes are reported to a `DurableLog` (see durable.py).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any, Callable

from core.broker import Broker
from core.principal import Principal

from adapters.amqp import errors
from adapters.amqp.bindings import Bindings
from adapters.amqp.bridge import QueueSubscriber
from adapters.amqp.deadletter import dead_letter
from adapters.amqp.durable import DurableLog, ExchangeRecord, MessageRecord, QueueRecord
from adapters.amqp.exchanges import BUILTINS, KINDS, Destination, Exchange, ToExchange
from adapters.amqp.permissions import ANY, CONFIGURE, EXCHANGE, QUEUE, Permissions, owner_record
from adapters.amqp.publishing import Publishing
from adapters.amqp.queues import Deadlines, Entry, Queue
from adapters.amqp.reply_to import DirectReplyTo

logger = logging.getLogger("rosettamq.amqp")

MAX_DEAD_LETTER_DEPTH = 8


class VirtualHost(Bindings, Publishing):
    """The AMQP broker model of one vhost (no I/O; times are wall-clock seconds).

    Bindings are in bindings.py, publishing (the walk through exchanges) in publishing.py."""

    def __init__(self, name: str, *, core: Broker | None = None, log: DurableLog | None = None,
                 clock: Callable[[], float] = time.time, origin_header: bool = False,
                 core_queue_max_length: int = 0, durable_queues: bool = True) -> None:
        self.name = name
        self.durable_queues = durable_queues  # False: a cluster node, whose queues no other node sees
        self.core = core  # set in the vhost that shares amq.topic with the core
        self.log = log
        self.clock = clock
        self.origin_header = origin_header
        self.core_queue_max_length = core_queue_max_length or None  # bound of queues fed from the core
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        self.subscribers: dict[Destination, QueueSubscriber] = {}  # amq.topic bindings as core subscribers
        self.replies = DirectReplyTo()  # amq.rabbitmq.reply-to consumers
        self.on_deadline_change: Callable[[], None] = lambda: None
        self.on_held_change: Callable[[int], None] = lambda delta: None
        self._deadlines = Deadlines()
        self._dead_letter_depth = 0
        self.dead_letters_refused = 0  # dead letters refused (the queue owner's permissions or ACL, invalid)
        self.permissions = Permissions(core.authorizer if core is not None else None)  # the broker's, shared
        for exchange_name, kind in BUILTINS:
            self.exchanges[exchange_name] = KINDS[kind](exchange_name, durable=True, builtin=True)

    # -- exchanges ------------------------------------------------------------------------

    def declare_exchange(self, name: str, kind: str, *, passive: bool = False, durable: bool = False,
                         auto_delete: bool = False, internal: bool = False,
                         arguments: dict[str, Any] | None = None, principal: Principal | None = None) -> Exchange:
        """Declare as `principal` (its permissions checked; None: the gateway itself), who owns a new one."""
        if not name:
            raise errors.access_refused("operation not permitted on the default exchange")
        if principal is not None:
            self.permissions.require(self, principal, ANY if passive else CONFIGURE, EXCHANGE, name)
        exchange = self.exchanges.get(name)
        if passive:
            if exchange is None:
                raise errors.not_found(f"no exchange '{name}' in vhost '{self.name}'")
            return exchange
        if kind not in KINDS:
            raise errors.precondition_failed(f"invalid exchange type '{kind}'")  # RabbitMQ 3.x: 406, the channel
        if exchange is None and name.startswith("amq."):
            raise errors.access_refused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
        if exchange is not None:
            if not exchange.equivalent(kind, durable, auto_delete, internal):
                raise errors.precondition_failed(
                    f"inequivalent arg for exchange '{name}' in vhost '{self.name}': "
                    f"received type '{kind}' durable={durable} but current is type '{exchange.kind}' "
                    f"durable={exchange.durable}")
            return exchange
        exchange = KINDS[kind](name, durable=durable, auto_delete=auto_delete, internal=internal,
                               arguments=arguments)
        exchange.owner = principal
        self.exchanges[name] = exchange
        if durable and self.log is not None:
            self.log.put_exchange(ExchangeRecord(self.name, name, kind, auto_delete, internal, dict(arguments or {}),
                                                 owner_record(principal)))
        return exchange

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        exchange = self.exchanges.get(name)
        if exchange is None:
            return  # deleting a missing exchange succeeds, as in RabbitMQ
        if exchange.builtin:
            raise errors.access_refused(f"operation not permitted on exchange '{name}'")
        if if_unused and exchange.bindings:
            raise errors.precondition_failed(f"exchange '{name}' in vhost '{self.name}' in use")
        del self.exchanges[name]
        for ident, arguments in list(exchange.bindings.items()):
            self._unbind(exchange, ident[0], ident[1], arguments)
        self._drop_destination(ToExchange(name))  # RabbitMQ: bindings to it go too
        if exchange.durable and self.log is not None:
            self.log.delete_exchange(self.name, name)

    def exchange(self, name: str) -> Exchange:
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise errors.not_found(f"no exchange '{name}' in vhost '{self.name}'")
        return exchange

    # -- queues -------------------------------------------------------------------------

    def queue(self, name: str, owner: object) -> Queue:
        """The queue `name` as connection `owner` may use it (404 missing, 405 another's exclusive queue)."""
        queue = self.queues.get(name)
        if queue is None:
            raise errors.not_found(f"no queue '{name}' in vhost '{self.name}'")
        if queue.exclusive_owner is not None and queue.exclusive_owner is not owner:
            raise errors.resource_locked(
                f"cannot obtain exclusive access to locked queue '{name}' in vhost '{self.name}'")
        return queue

    def declare_queue(self, name: str, owner: object, *, passive: bool = False, durable: bool = False,
                      exclusive: bool = False, auto_delete: bool = False,
                      arguments: dict[str, Any] | None = None, principal: Principal | None = None) -> Queue:
        """Declare as `principal` through connection `owner` (permissions checked; None: the gateway
        itself). A new queue is owned by `principal`, and exclusive to `owner` when `exclusive`."""
        now = self.clock()
        arguments = dict(arguments or {})
        if passive:
            if principal is not None:
                self.permissions.require(self, principal, ANY, QUEUE, name, owner)
            return self.queue(name, owner)
        server_named = not name
        if server_named:
            name = "amq.gen-" + secrets.token_urlsafe(16)
        elif name.startswith("amq.") and name not in self.queues:
            raise errors.access_refused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        if principal is not None and not (server_named and exclusive):
            self.permissions.require(self, principal, CONFIGURE, QUEUE, name, owner)
        queue = self.queues.get(name)
        if queue is not None:
            queue = self.queue(name, owner)
            differs = queue.equivalent(durable, auto_delete, arguments)
            if differs is not None:
                raise errors.precondition_failed(
                    f"inequivalent arg '{differs}' for queue '{name}' in vhost '{self.name}'")
            queue.last_used = now
            return queue
        if durable and not exclusive and not self.durable_queues:
            raise errors.precondition_failed(
                f"durable queue '{name}' refused: in a cluster, AMQP queues are not replicated between nodes; "
                "declare it durable=false, or set [cluster] durable_queues = \"local\" on the one node to keep it")
        queue = Queue(name, durable=durable, exclusive_owner=owner if exclusive else None,
                      auto_delete=auto_delete, arguments=arguments, now=now)
        if principal is not None:
            self.permissions.check_dead_letter_target(self, principal, queue, owner)
        queue.owner = principal
        self._adopt(queue)
        if durable and not exclusive and self.log is not None:
            self.log.put_queue(QueueRecord(self.name, name, auto_delete, arguments, owner_record(principal)))
        queue.expire(now)  # schedules x-expires
        return queue

    def _adopt(self, queue: Queue) -> None:
        queue.on_dead_letter = self._dead_letter
        queue.on_deadline = self._schedule
        queue.on_removed = self._message_removed
        queue.on_stored = self.message_stored
        self.queues[queue.name] = queue
        self.exchanges[""].bind(queue.name, queue.name, None)  # the default exchange's implicit binding

    def delete_queue(self, name: str, owner: object, *, if_unused: bool = False, if_empty: bool = False) -> int:
        """Delete a queue; its consumers are cancelled. Returns how many messages it held."""
        if name not in self.queues:
            return 0
        queue = self.queue(name, owner)
        if if_unused and queue.consumers:
            raise errors.precondition_failed(f"queue '{name}' in vhost '{self.name}' in use")
        if if_empty and queue.ready:
            raise errors.precondition_failed(f"queue '{name}' in vhost '{self.name}' not empty")
        return self._remove_queue(queue)

    def _remove_queue(self, queue: Queue) -> int:
        count = queue.message_count
        queue.deleted = True
        del self.queues[queue.name]
        self._drop_destination(queue.name)
        for consumer in list(queue.consumers):
            queue.remove_consumer(consumer, self.clock())
            consumer.sink.cancelled_by_server(consumer)  # type: ignore[attr-defined]
        queue.purge()
        if queue.durable and queue.exclusive_owner is None and self.log is not None:
            self.log.delete_queue(self.name, queue.name)
        return count

    def purge_queue(self, name: str, owner: object) -> int:
        return self.queue(name, owner).purge()

    def consumer_gone(self, queue: Queue) -> None:
        """After a cancel: an auto-delete queue goes with its last consumer."""
        if queue.auto_delete and queue.had_consumer and not queue.consumers and not queue.deleted:
            self._remove_queue(queue)

    def release_owner(self, owner: object) -> None:
        """A connection closed: its exclusive queues go."""
        for queue in [q for q in self.queues.values() if q.exclusive_owner is owner]:
            self._remove_queue(queue)

    # -- dead letters and durable messages ------------------------------------------------

    def _dead_letter(self, queue: Queue, entry: Entry, reason: str) -> None:
        if queue.dead_letter_exchange is None or self._dead_letter_depth >= MAX_DEAD_LETTER_DEPTH:
            return
        exchange = self.exchanges.get(queue.dead_letter_exchange)
        if exchange is None:
            return
        dead = dead_letter(queue, entry, reason, exchange.name)
        routing_key, owner = dead.routing_key, self._owner_of(queue)
        self._dead_letter_depth += 1
        try:  # on behalf of the queue's owner: its permissions, and into amq.topic the door and its ACL
            self.permissions.check_dead_letter(self, owner, exchange.name, routing_key)
            self._route(exchange, routing_key, dead, None, owner)
        except errors.AMQPError as exc:
            self.dead_letters_refused += 1
            logger.info("dead letter dropped vhost=%s queue=%s reason=%s", self.name, queue.name, exc.text)
        finally:
            self._dead_letter_depth -= 1

    def _owner_of(self, queue: Queue) -> Principal:
        """Who acts for `queue`: the principal that declared it (restored from the stored username);
        for one stored by a version before issue 24, an anonymous principal (the ACL's anonymous rules)."""
        if isinstance(queue.owner, Principal):
            return queue.owner
        return self.permissions.principal(None)

    def _message_removed(self, queue: Queue, entry: Entry) -> None:
        self.on_held_change(-1)
        if self.log is not None and queue.durable and entry.content.persistent:
            self.log.delete_message(self.name, queue.name, entry.seq)

    def message_stored(self, queue: Queue, entry: Entry) -> None:
        self.on_held_change(1)
        if self.log is not None and queue.durable and entry.content.persistent:
            content = entry.content
            self.log.put_message(MessageRecord(self.name, queue.name, entry.seq, content.exchange,
                                               content.routing_key, content.header_payload(), content.body,
                                               entry.expires_at))

    def message_delivered(self, queue: Queue, entry: Entry) -> None:
        """First handed to a consumer that must acknowledge it: after a restart it is redelivered."""
        if self.log is not None and queue.durable and entry.content.persistent:
            self.log.mark_delivered(self.name, queue.name, entry.seq)

    # -- time ------------------------------------------------------------------------------

    def _schedule(self, queue: Queue, deadline: float) -> None:
        if self._deadlines.add(queue, deadline):
            self.on_deadline_change()

    def next_deadline(self) -> float | None:
        return self._deadlines.earliest()

    def run_due(self, now: float | None = None) -> None:
        """Expire messages (dead-lettering them) and delete queues unused past x-expires."""
        now = self.clock() if now is None else now
        for queue in self._deadlines.due(now):
            if queue.unused_since_expiry(now):
                self._remove_queue(queue)
            else:
                queue.expire(now)
