"""The store interface: how the core persists what it must not forget.

The core calls one method per state change (a session, a subscription, a
queued or in-flight message, a retained message). A store may buffer these
and write them in batches; `sync` calls back once everything asked before it
is durable, which is when an adapter may acknowledge (PUBACK, PUBREC, an AMQP
confirm, a CoAP ACK). The in-memory store is durable at once.

Adapters persist their own state (AMQP durable exchanges, queues, bindings and
messages; LwM2M registrations) as opaque records: `put_record(kind, key,
value)`. The core stores bytes under (kind, key) and knows nothing of what
they mean; each adapter owns its kinds (named "<adapter>.<thing>"), keys and
encoding. Records share the write path of the core's state: one commit holds
both, and `sync` covers both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Union

from core.message import Message
from core.subscriptions import SubscriptionOptions


RecordValue = Union[bytes, Callable[[], bytes]]
"""A record's bytes, or a function making them: a store may call it later, on another thread,
and not at all if the record is replaced or deleted before it is written (so it must only read
immutable data)."""


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


class StoredDelivery(NamedTuple):
    """A queued or in-flight message of a session, in session order (`seq`).

    A NamedTuple, not a frozen dataclass: one is made per message a persistent session queues or
    sends (core/sessions.py builds it without even the tuple's Python-level ``__new__``), and a
    frozen dataclass's ``__init__`` sets each of its seven fields through ``object.__setattr__``
    (14% of a persistent QoS 1 message's CPU)."""

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
    def load_deliveries(self, client_id: str) -> list[StoredDelivery]:
        """One session's messages in `seq` order, including changes not yet committed.

        Read when an offline session comes back: its queue lives only in the store meanwhile."""

    @abstractmethod
    def put_incoming_qos2(self, client_id: str, packet_id: int) -> None: ...

    @abstractmethod
    def delete_incoming_qos2(self, client_id: str, packet_id: int) -> None: ...

    @abstractmethod
    def put_retained(self, message: Message) -> None: ...

    @abstractmethod
    def delete_retained(self, topic: str) -> None: ...

    @abstractmethod
    def put_record(self, kind: str, key: str, value: RecordValue) -> None:
        """Add or replace an adapter's record (see the module docstring)."""

    @abstractmethod
    def delete_record(self, kind: str, key: str) -> None: ...

    @abstractmethod
    def load_records(self, kind: str) -> dict[str, bytes]:
        """Every record of `kind`, including changes not yet committed; read at start."""

    #: True when `load_deliveries` may wait for the store's writes (run it off the event loop).
    reads_wait_for_writes = False

    @abstractmethod
    def sync(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every change asked for so far is durable or no longer needed.

        A delivery deleted (acknowledged, dropped) may release it unwritten: nothing acknowledged
        depends on it any more (see core.stores.sqlite)."""

    def close(self) -> None:
        """Flush and release resources."""
