"""An in-memory store: durable for the life of the process, used by tests and `path = "memory"`.

It keeps the same records a disk store would, so a broker rebuilt on the same
`MemoryStore` recovers its sessions and retained messages: the restart
behaviour is testable without a disk.
"""

from __future__ import annotations

from typing import Callable

from core.message import Message
from core.stores.base import RecordValue, StoredDelivery, StoredSession, StoredState, Store
from core.subscriptions import SubscriptionOptions


class MemoryStore(Store):
    """Keeps every record in dicts; `sync` is immediate."""

    def __init__(self) -> None:
        self._state = StoredState()
        self._records: dict[str, dict[str, bytes]] = {}

    def load(self) -> StoredState:
        # A snapshot of the containers only: the records (sessions, deliveries,
        # messages, options) are frozen and shared. A deep copy would also fail
        # on a Message, whose `extra` is a read-only mapping proxy.
        state = self._state
        return StoredState(
            sessions=dict(state.sessions),
            subscriptions={client_id: dict(subs) for client_id, subs in state.subscriptions.items()},
            deliveries={client_id: dict(items) for client_id, items in state.deliveries.items()},
            incoming_qos2={client_id: set(ids) for client_id, ids in state.incoming_qos2.items()},
            retained=dict(state.retained),
        )

    def put_session(self, session: StoredSession) -> None:
        self._state.sessions[session.client_id] = session

    def delete_session(self, client_id: str) -> None:
        state = self._state
        state.sessions.pop(client_id, None)
        state.subscriptions.pop(client_id, None)
        state.deliveries.pop(client_id, None)
        state.incoming_qos2.pop(client_id, None)

    def put_subscription(self, client_id: str, topic_filter: str, options: SubscriptionOptions) -> None:
        self._state.subscriptions.setdefault(client_id, {})[topic_filter] = options

    def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        self._state.subscriptions.get(client_id, {}).pop(topic_filter, None)

    def put_delivery(self, client_id: str, delivery: StoredDelivery) -> None:
        self._state.deliveries.setdefault(client_id, {})[delivery.seq] = delivery

    def delete_delivery(self, client_id: str, seq: int) -> None:
        self._state.deliveries.get(client_id, {}).pop(seq, None)

    def load_deliveries(self, client_id: str) -> list[StoredDelivery]:
        deliveries = self._state.deliveries.get(client_id, {})
        return [deliveries[seq] for seq in sorted(deliveries)]

    def put_incoming_qos2(self, client_id: str, packet_id: int) -> None:
        self._state.incoming_qos2.setdefault(client_id, set()).add(packet_id)

    def delete_incoming_qos2(self, client_id: str, packet_id: int) -> None:
        self._state.incoming_qos2.get(client_id, set()).discard(packet_id)

    def put_retained(self, message: Message) -> None:
        self._state.retained[message.topic] = message

    def delete_retained(self, topic: str) -> None:
        self._state.retained.pop(topic, None)

    def put_record(self, kind: str, key: str, value: RecordValue) -> None:
        self._records.setdefault(kind, {})[key] = value if isinstance(value, bytes) else value()

    def delete_record(self, kind: str, key: str) -> None:
        self._records.get(kind, {}).pop(key, None)

    def load_records(self, kind: str) -> dict[str, bytes]:
        return dict(self._records.get(kind, {}))

    def sync(self, callback: Callable[[], None]) -> None:
        callback()
