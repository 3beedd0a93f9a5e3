"""The store interface: how the core persists what it must not forget.

The core calls one method per state change (a session, a subscription, a
queued or in-flight message, a retained message). A store may buffer these
and write them in batches; `sync` calls back once everything asked before it
is durable, which is when an adapter may acknowledge (PUBACK, PUBREC, an AMQP
confirm, a CoAP ACK). The in-memory store is durable at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable

from core.message import Message
from core.subscriptions import SubscriptionOptions


class StoreError(Exception):
    """The store cannot be used: unreadable, corrupt, from a newer version, or in use."""


@dataclass(frozen=True, slots=True)
class StoredSession:
    """What survives of a session: identity, expiry and its will."""

    client_id: str
    protocol: str
    expiry_interval: int
    username: str | None = None
    disconnected_at: float | None = None
    will: Message | None = None
    will_delay: int = 0
    will_expiry_interval: int | None = None


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """A queued or in-flight message of a session, in session order (`seq`)."""

    seq: int
    message: Message
    qos: int
    retain: bool
    subscription_ids: tuple[int, ...] = ()
    packet_id: int | None = None
    released: bool = False


@dataclass(slots=True)
class StoredState:
    """Everything a store holds, as loaded at start."""

    sessions: dict[str, StoredSession] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, SubscriptionOptions]] = field(default_factory=dict)
    deliveries: dict[str, dict[int, StoredDelivery]] = field(default_factory=dict)
    incoming_qos2: dict[str, set[int]] = field(default_factory=dict)
    retained: dict[str, Message] = field(default_factory=dict)


class Store(ABC):
    """Persistence for sessions, subscriptions, session messages and retained messages."""

    @abstractmethod
    def load(self) -> StoredState:
        """Everything stored, read once at start."""

    @abstractmethod
    def put_session(self, session: StoredSession) -> None: ...

    @abstractmethod
    def delete_session(self, client_id: str) -> None:
        """Forget a session with its subscriptions, messages and QoS 2 state."""

    @abstractmethod
    def put_subscription(self, client_id: str, topic_filter: str, options: SubscriptionOptions) -> None: ...

    @abstractmethod
    def delete_subscription(self, client_id: str, topic_filter: str) -> None: ...

    @abstractmethod
    def put_delivery(self, client_id: str, delivery: StoredDelivery) -> None:
        """Add or update a queued/in-flight message (same `seq` replaces)."""

    @abstractmethod
    def delete_delivery(self, client_id: str, seq: int) -> None: ...

    @abstractmethod
    def put_incoming_qos2(self, client_id: str, packet_id: int) -> None: ...

    @abstractmethod
    def delete_incoming_qos2(self, client_id: str, packet_id: int) -> None: ...

    @abstractmethod
    def put_retained(self, message: Message) -> None: ...

    @abstractmethod
    def delete_retained(self, topic: str) -> None: ...

    @abstractmethod
    def sync(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every change asked for so far is durable."""

    def close(self) -> None:
        """Flush and release resources."""
