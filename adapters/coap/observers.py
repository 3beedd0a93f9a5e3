"""CoAP observers as core subscribers: who observes what, their bounded queues and sequence numbers.

No I/O. The aiocoap glue attaches a live exchange (an `Attachment`: something it
can wake) to an `Observer`, drains the observer's queue and sends each
`Notification`. Rules:

- An observer is identified by (identity, token), not by source address. The
  identity is the ``clientid`` (with the username) when the client gave one,
  else its address. So a client that re-registers with the same clientid and
  token from a new source port (NAT rebinding) finds its observer: the
  subscription, the queue and the sequence numbers carry on, and the old
  exchange is told it was superseded. A registration under the same key for
  another filter replaces the old observer.
- One router subscription per observer: a publish reaches it once. With a
  topic ACL, each delivery (and each retained message) is checked with the
  observer's `access` (`core.acl.ClientAccess`): a ``#`` observer never gets
  a topic its client may not read.
- The queue holds at most `queue_limit` notifications; when full, the oldest
  is dropped and counted (`Observer.dropped`, `ObserverRegistry.dropped`).
  Expired messages are skipped when taken from the queue, and counted too.
- Observe sequence numbers come from one counter per registry (24 bits,
  wrapping), so they increase for every observer whatever happens to its
  exchange (RFC 7641 section 4.4 compares them per client and resource).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable, Hashable, Protocol, Sequence

from core.message import Message
from core.router import Router
from core.subscriptions import Delivery, EncodeCache, SubscriptionOptions
from core.topics import InvalidTopic, is_wildcard

from adapters.coap.errors import BadTopic, Overloaded

if TYPE_CHECKING:
    from core.acl import ClientAccess
from adapters.coap.pubsub import Notification, notification_for, notification_of_delivery

__all__ = ["Attachment", "Observer", "ObserverKey", "ObserverRegistry", "identity_key"]

ObserverKey = tuple[Hashable, bytes]
SEQUENCE_MASK = 0xFFFFFF


def identity_key(client_id: str | None, username: str | None, address: str) -> Hashable:
    """Who a request comes from: the clientid (and username) when given, else the source address."""
    if client_id:
        return ("client", client_id, username)
    return ("address", address)


class Attachment(Protocol):
    """The live exchange an observer's notifications go out on (owned by the I/O glue)."""

    def wake(self) -> None:
        """Something was queued: send it when you can."""
        ...


class Observer:
    """One observe registration: a core subscriber with a bounded queue of notifications."""

    protocol = "coap"  # the router counts deliveries by subscriber protocol
    __slots__ = ("key", "topic_filter", "qos", "client_id", "access", "attachment", "dropped", "expired",
                 "closed", "_queue", "_limit", "_registry")

    def __init__(self, registry: "ObserverRegistry", key: ObserverKey, topic_filter: str, qos: int,
                 client_id: str | None, limit: int, access: "ClientAccess | None" = None) -> None:
        self.key = key
        self.access = access
        self.topic_filter = topic_filter
        self.qos = qos
        self.client_id = client_id
        self.attachment: Attachment | None = None
        self.dropped = 0
        self.expired = 0
        self.closed = False
        self._queue: deque[Notification] = deque()
        self._limit = limit
        self._registry = registry

    # -- core.subscriptions.Subscriber ----------------------------------------

    @property
    def is_online(self) -> bool:
        return self.attachment is not None

    def is_origin_of(self, message: Message) -> bool:
        origin = message.origin
        return bool(self.client_id) and origin.protocol == "coap" and origin.client_id == self.client_id

    def deliver(self, delivery: Delivery, cache: EncodeCache) -> None:
        if self.access is not None and not self.access.can_read(delivery.message.topic):
            return
        self.push(notification_of_delivery(delivery, self._registry.mount, cache))

    # -- the queue ---------------------------------------------------------------

    def push(self, notification: Notification) -> None:
        """Queue a notification, dropping the oldest one when the queue is full."""
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self._count_drop()
        self._queue.append(notification)
        if self.attachment is not None:
            self.attachment.wake()

    def requeue(self, notification: Notification) -> None:
        """Put back an unacknowledged notification, first in line (it is the oldest: dropped if full)."""
        if len(self._queue) >= self._limit:
            self._count_drop()
            return
        self._queue.appendleft(notification)
        if self.attachment is not None:
            self.attachment.wake()

    def take(self, now: float) -> Notification | None:
        """The next notification to send, skipping expired ones; None when the queue is empty."""
        queue = self._queue
        while queue:
            notification = queue.popleft()
            if notification.expiry is None or notification.expiry > now:
                return notification
            self.expired += 1
            self._registry.expired += 1
        return None

    def __len__(self) -> int:
        return len(self._queue)

    def attach(self, attachment: Attachment) -> Attachment | None:
        """Make `attachment` the live exchange; returns the one it replaces (to be ended silently)."""
        previous, self.attachment = self.attachment, attachment
        return previous if previous is not attachment else None

    def _count_drop(self) -> None:
        self.dropped += 1
        self._registry.dropped += 1


class ObserverRegistry:
    """Every observer of one CoAP listener, keyed by (identity, token)."""

    def __init__(self, router: Router, mount: Sequence[str] = ("ps",), *, queue_limit: int = 100,
                 max_observers: int = 10_000) -> None:
        self.router = router
        self.mount = tuple(mount)
        self.queue_limit = queue_limit
        self.max_observers = max_observers
        self.dropped = 0
        self.expired = 0
        self.refused = 0  # registrations refused at `max_observers` (5.03)
        self._observers: dict[ObserverKey, Observer] = {}
        self._sequence = 0
        self.on_remove: list[Callable[[Observer], None]] = []  # metrics, tests

    def __len__(self) -> int:
        return len(self._observers)

    def find(self, key: ObserverKey) -> Observer | None:
        return self._observers.get(key)

    def of_all(self) -> list[Observer]:
        return list(self._observers.values())

    def of_client(self, client_id: str) -> list[Observer]:
        return [observer for observer in self._observers.values() if observer.client_id == client_id]

    def next_sequence(self) -> int:
        self._sequence = (self._sequence + 1) & SEQUENCE_MASK
        return self._sequence

    def register(self, key: ObserverKey, topic_filter: str, qos: int, client_id: str | None,
                 access: "ClientAccess | None" = None) -> tuple[Observer, bool]:
        """The observer for `key` and `topic_filter`, and whether it is new (False: a re-registration)."""
        existing = self._observers.get(key)
        if existing is not None:
            if existing.topic_filter == topic_filter:
                existing.access = access
                if existing.qos != qos:
                    existing.qos = qos
                    self.router.subscribe(existing, topic_filter, SubscriptionOptions(qos=qos))
                return existing, False
            self.remove(existing)
        if len(self._observers) >= self.max_observers:
            self.refused += 1
            raise Overloaded(f"observer limit of {self.max_observers} reached", retry_after=30)
        observer = Observer(self, key, topic_filter, qos, client_id, self.queue_limit, access)
        try:
            self.router.subscribe(observer, topic_filter, SubscriptionOptions(qos=qos))
        except InvalidTopic as exc:
            raise BadTopic(str(exc)) from None
        self._observers[key] = observer
        return observer, True

    def remove(self, observer: Observer) -> bool:
        """End an observation: unsubscribe it. True if it was registered."""
        observer.closed = True
        observer.attachment = None
        if self._observers.get(observer.key) is not observer:
            return False
        del self._observers[observer.key]
        self.router.unsubscribe(observer, observer.topic_filter)
        for listener in self.on_remove:
            listener(observer)
        return True

    def retained(self, observer: Observer) -> list[Notification]:
        """Notifications of the retained messages a new registration should get, at its QoS."""
        access = observer.access
        return [notification_for(message, min(message.qos, observer.qos), self.mount)
                for message in self.router.retained_for(observer.topic_filter)
                if access is None or access.can_read(message.topic)]

    @staticmethod
    def answers_with_retained(topic_filter: str) -> bool:
        """A one-topic registration answers with the retained value; a wildcard one queues them."""
        return not is_wildcard(topic_filter)
