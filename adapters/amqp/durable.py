"""The seam for persisting durable AMQP state: plain records and the log they are written to.

The vhost calls a `DurableLog` once per change of durable state: a durable
exchange or queue declared or deleted, a binding between durable ends added
or removed, a persistent message entering or leaving a durable queue. The
records are plain values, ready for a store table each; `MemoryLog` keeps
them in dicts (a vhost rebuilt from its `records()` is a restarted vhost);
store_log.py's `StoreLog` writes them to the gateway's store (SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol


@dataclass(frozen=True, slots=True)
class Owner:
    """Who declared a queue or exchange: a username, None for an anonymous client.

    A record without an `Owner` (None) was stored by a version before issue 24: nobody owns it."""

    username: str | None


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    vhost: str
    name: str
    kind: str
    auto_delete: bool = False
    internal: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)
    owner: Owner | None = None


@dataclass(frozen=True, slots=True)
class QueueRecord:
    vhost: str
    name: str
    auto_delete: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)
    owner: Owner | None = None


@dataclass(frozen=True, slots=True)
class BindingRecord:
    """A binding of `exchange` to the queue `queue`, or (destination_kind "exchange") to the exchange so named."""

    vhost: str
    exchange: str
    queue: str
    routing_key: str
    arguments: dict[str, Any] = field(default_factory=dict)
    destination_kind: str = "queue"

    @property
    def key(self) -> tuple[str, ...]:
        key = (self.vhost, self.exchange, self.queue, self.routing_key, repr(sorted(self.arguments.items())))
        return key if self.destination_kind == "queue" else (*key, self.destination_kind)

    def ends_at(self, kind: str, name: str) -> bool:
        """Whether the binding's destination is the queue or exchange `name` (kind "queue" / "exchange")."""
        return self.destination_kind == kind and self.queue == name


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A persistent message in a durable queue; `header` is the encoded content header payload.

    `redelivered`: it was handed to a consumer before (`mark_delivered`), so it comes back marked so.
    """

    vhost: str
    queue: str
    seq: int
    exchange: str
    routing_key: str
    header: bytes
    body: bytes
    expires_at: float | None = None
    redelivered: bool = False


@dataclass(slots=True)
class DurableRecords:
    exchanges: dict[tuple[str, str], ExchangeRecord] = field(default_factory=dict)
    queues: dict[tuple[str, str], QueueRecord] = field(default_factory=dict)
    bindings: dict[tuple, BindingRecord] = field(default_factory=dict)
    messages: dict[tuple[str, str, int], MessageRecord] = field(default_factory=dict)


class DurableLog(Protocol):
    def put_exchange(self, record: ExchangeRecord) -> None: ...
    def delete_exchange(self, vhost: str, name: str) -> None: ...
    def put_queue(self, record: QueueRecord) -> None: ...
    def delete_queue(self, vhost: str, name: str) -> None: ...
    def put_binding(self, record: BindingRecord) -> None: ...
    def delete_binding(self, record: BindingRecord) -> None: ...
    def put_message(self, record: MessageRecord) -> None: ...
    def delete_message(self, vhost: str, queue: str, seq: int) -> None: ...
    def mark_delivered(self, vhost: str, queue: str, seq: int) -> None:
        """A stored message was handed to a consumer that must acknowledge it."""
    def sync(self, callback: Callable[[], None]) -> None:
        """Call back once every change so far is durable (publisher confirms wait for it)."""
    def records(self) -> DurableRecords: ...


class MemoryLog:
    """Durable records in dicts: survives a vhost (and adapter) restart within one process."""

    def __init__(self) -> None:
        self.state = DurableRecords()

    def put_exchange(self, record: ExchangeRecord) -> None:
        self.state.exchanges[(record.vhost, record.name)] = record

    def delete_exchange(self, vhost: str, name: str) -> None:
        self.state.exchanges.pop((vhost, name), None)
        for key in [k for k, b in self.state.bindings.items()
                    if b.vhost == vhost and (b.exchange == name or b.ends_at("exchange", name))]:
            del self.state.bindings[key]

    def put_queue(self, record: QueueRecord) -> None:
        self.state.queues[(record.vhost, record.name)] = record

    def delete_queue(self, vhost: str, name: str) -> None:
        self.state.queues.pop((vhost, name), None)
        for key in [k for k, b in self.state.bindings.items() if b.vhost == vhost and b.ends_at("queue", name)]:
            del self.state.bindings[key]
        for key in [k for k in self.state.messages if k[0] == vhost and k[1] == name]:
            del self.state.messages[key]

    def put_binding(self, record: BindingRecord) -> None:
        self.state.bindings[record.key] = record

    def delete_binding(self, record: BindingRecord) -> None:
        self.state.bindings.pop(record.key, None)

    def put_message(self, record: MessageRecord) -> None:
        self.state.messages[(record.vhost, record.queue, record.seq)] = record

    def delete_message(self, vhost: str, queue: str, seq: int) -> None:
        self.state.messages.pop((vhost, queue, seq), None)

    def mark_delivered(self, vhost: str, queue: str, seq: int) -> None:
        record = self.state.messages.get((vhost, queue, seq))
        if record is not None:
            self.state.messages[(vhost, queue, seq)] = replace(record, redelivered=True)

    def sync(self, callback: Callable[[], None]) -> None:
        callback()

    def records(self) -> DurableRecords:
        state = self.state
        return DurableRecords(dict(state.exchanges), dict(state.queues), dict(state.bindings), dict(state.messages))
