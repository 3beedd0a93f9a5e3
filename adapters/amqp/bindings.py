"""Bindings of a vhost: exchange to queue (queue.bind) and exchange to exchange (exchange.bind).

A mixin of `VirtualHost` (vhost.py), kept apart so each file holds one
concern. RabbitMQ's rules: either end missing is 404, the default exchange
is 403, binding twice is a no-op; a binding whose ends are both durable is
written to the durable log; an auto-delete exchange goes with its last
binding as a source. On the shared amq.topic a binding is a core
subscription (bridge.py): the binder's topic ACL must allow its filter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from core.acl import ClientAccess
from core.broker import Broker
from core.subscriptions import Delivery
from core.topics import InvalidTopic

from adapters.amqp import errors
from adapters.amqp.bridge import QUEUE_OPTIONS, SHARED_EXCHANGE, ExchangeSubscriber, QueueSubscriber
from adapters.amqp.durable import BindingRecord, DurableLog
from adapters.amqp.exchanges import Destination, Exchange, ToExchange
from adapters.amqp.mapping import binding_key_to_filter
from adapters.amqp.queues import Queue

if TYPE_CHECKING:
    from adapters.amqp.content import Content
    from adapters.amqp.route import Route


class Bindings:
    """queue.bind / exchange.bind and their undoing, on the vhost's exchanges and queues."""

    name: str
    core: Broker | None
    log: DurableLog | None
    clock: Callable[[], float]
    origin_header: bool
    core_queue_max_length: int | None
    exchanges: dict[str, Exchange]
    queues: dict[str, Queue]
    subscribers: dict[Destination, QueueSubscriber]

    if TYPE_CHECKING:
        def queue(self, name: str, owner: object) -> Queue: ...
        def exchange(self, name: str) -> Exchange: ...
        def delete_exchange(self, name: str, *, if_unused: bool = False) -> None: ...
        def forward(self, exchange: str, content: Content, expiration: float | None, route: Route) -> None: ...

    def bind(self, queue_name: str, exchange_name: str, key: str, arguments: dict[str, Any] | None,
             owner: object, access: ClientAccess | None = None) -> None:
        """Bind; on the shared amq.topic `access` (the ACL of the binder) must allow the filter."""
        queue = self.queue(queue_name, owner)
        exchange = self.exchange(exchange_name)
        if exchange_name == "":
            raise errors.access_refused("operation not permitted on the default exchange")
        self._bind(exchange, queue.name, queue.durable, key, arguments, access)

    def bind_exchange(self, destination: str, source: str, key: str, arguments: dict[str, Any] | None,
                      access: ClientAccess | None = None) -> None:
        """exchange.bind: what `source` routes with `key` is routed again by `destination`."""
        if "" in (destination, source):
            raise errors.access_refused("operation not permitted on the default exchange")
        target = self.exchange(destination)
        self._bind(self.exchange(source), ToExchange(target.name), target.durable, key, arguments, access)

    def unbind(self, queue_name: str, exchange_name: str, key: str, arguments: dict[str, Any] | None,
               owner: object) -> None:
        queue = self.queue(queue_name, owner)
        exchange = self.exchange(exchange_name)
        if exchange_name == "":
            raise errors.access_refused("operation not permitted on the default exchange")
        self._unbind(exchange, queue.name, key, arguments)

    def unbind_exchange(self, destination: str, source: str, key: str, arguments: dict[str, Any] | None) -> None:
        if "" in (destination, source):
            raise errors.access_refused("operation not permitted on the default exchange")
        target = self.exchange(destination)
        self._unbind(self.exchange(source), ToExchange(target.name), key, arguments)

    def _bind(self, exchange: Exchange, destination: Destination, durable: bool, key: str,
              arguments: dict[str, Any] | None, access: ClientAccess | None) -> None:
        shared = exchange.name == SHARED_EXCHANGE and self.core is not None
        if shared and access is not None:
            found = binding_key_to_filter(key)
            if found is not None and not access.can_subscribe(found.topic_filter):
                raise errors.access_refused(f"access to topic '{found.topic_filter}' in exchange "
                                            f"'{SHARED_EXCHANGE}' in vhost '{self.name}' refused")
            if destination in self.subscribers or found is not None:
                self._reader(destination).reader = access  # read rules of the latest binder apply per delivery
        if not exchange.bind(destination, key, arguments):
            return
        if shared:
            try:
                self._subscribe(destination, key)
            except errors.AMQPError:
                exchange.unbind(destination, key, arguments)
                raise
        if durable and exchange.durable and self.log is not None:
            self.log.put_binding(_record(self.name, exchange.name, destination, key, arguments))

    def _unbind(self, exchange: Exchange, destination: Destination, key: str,
                arguments: dict[str, Any] | None) -> None:
        if not exchange.unbind(destination, key, arguments):
            return
        subscriber = self.subscribers.get(destination)
        if exchange.name == SHARED_EXCHANGE and subscriber is not None and self.core is not None:
            topic_filter = subscriber.remove_binding(key)
            if topic_filter is not None:
                self.core.router.unsubscribe(subscriber, topic_filter)
        if isinstance(destination, ToExchange):
            target: Exchange | Queue | None = self.exchanges.get(destination.name)
        else:
            target = self.queues.get(destination)
        if target is not None and target.durable and exchange.durable and self.log is not None:
            self.log.delete_binding(_record(self.name, exchange.name, destination, key, arguments))
        if exchange.auto_delete and not exchange.bindings and self.exchanges.get(exchange.name) is exchange:
            self.delete_exchange(exchange.name)

    def _drop_destination(self, destination: Destination) -> None:
        """A queue or exchange is being deleted: every binding to it goes, and its core subscription."""
        for exchange in list(self.exchanges.values()):
            for key, arguments in [(i[1], a) for i, a in exchange.bindings.items() if i[0] == destination]:
                self._unbind(exchange, destination, key, arguments)
        subscriber = self.subscribers.pop(destination, None)
        if subscriber is not None and self.core is not None:
            for topic_filter in subscriber.router_filters:
                self.core.router.unsubscribe(subscriber, topic_filter)

    def _reader(self, destination: Destination) -> QueueSubscriber:
        subscriber = self.subscribers.get(destination)
        if subscriber is None:
            if isinstance(destination, ToExchange):
                subscriber = ExchangeSubscriber(destination.name, self.forward, self.clock, self.origin_header)
            else:
                subscriber = QueueSubscriber(self.queues[destination], self.clock, self.origin_header,
                                             self.core_queue_max_length)
            self.subscribers[destination] = subscriber
        return subscriber

    def _subscribe(self, destination: Destination, key: str) -> None:
        assert self.core is not None
        subscriber = self._reader(destination)
        topic_filter = subscriber.add_binding(key)
        if topic_filter is None:
            return
        router = self.core.router
        try:
            router.subscribe(subscriber, topic_filter, QUEUE_OPTIONS)
        except InvalidTopic as exc:
            subscriber.remove_binding(key)
            raise errors.precondition_failed(f"binding key '{key}' has no MQTT form: {exc}") from None
        if isinstance(destination, ToExchange):
            return  # retained messages are for subscribers that keep them: queues
        cache: dict = {}
        for message in router.retained_for(topic_filter):  # like an MQTT subscribe: the last known values
            if not message.is_expired():
                subscriber.deliver(Delivery(message, min(1, message.qos), True), cache)


def _record(vhost: str, exchange: str, destination: Destination, key: str,
            arguments: dict[str, Any] | None) -> BindingRecord:
    if isinstance(destination, ToExchange):
        return BindingRecord(vhost, exchange, destination.name, key, dict(arguments or {}), "exchange")
    return BindingRecord(vhost, exchange, destination, key, dict(arguments or {}))
