"""Reading a RosettaMQ SQLite file back: the whole state at start-up, one session's queue, records.

The caller holds the connection (the writer thread shares it) and has committed what was queued.
A row that cannot be read raises `StoreError` naming the file and the table.
"""

from __future__ import annotations

import sqlite3

from core.stores.base import StoredDelivery, StoredSession, StoredState, StoreError
from core.stores.codec import CodecError, decode_message
from core.subscriptions import SubscriptionOptions

_UNREADABLE = (sqlite3.DatabaseError, CodecError, ValueError)


def read_state(db: sqlite3.Connection, path: str) -> StoredState:
    """Every session, subscription, queued message, inbound QoS 2 id and retained message."""
    state = StoredState()
    table = "sessions"
    try:
        for row in db.execute(
            "SELECT client_id, protocol, expiry_interval, username, disconnected_at, will, will_delay,"
            " will_expiry_interval FROM sessions"
        ):
            client_id, protocol, expiry, username, disconnected_at, will, delay, will_expiry = row
            state.sessions[client_id] = StoredSession(
                client_id, protocol, expiry, username, disconnected_at,
                None if will is None else decode_message(will), delay, will_expiry,
            )
        table = "subscriptions"
        for client_id, topic_filter, qos, no_local, rap, handling, sub_id in db.execute(
            "SELECT client_id, topic_filter, qos, no_local, retain_as_published, retain_handling,"
            " subscription_id FROM subscriptions"
        ):
            options = SubscriptionOptions(qos, bool(no_local), bool(rap), handling, sub_id)
            state.subscriptions.setdefault(client_id, {})[topic_filter] = options
        table = "deliveries"
        for client_id, seq, qos, retain, ids, packet_id, released, message in db.execute(
            "SELECT client_id, seq, qos, retain, subscription_ids, packet_id, released, message"
            " FROM deliveries ORDER BY client_id, seq"
        ):
            state.deliveries.setdefault(client_id, {})[seq] = _delivery(
                seq, qos, retain, ids, packet_id, released, message)
        table = "incoming_qos2"
        for client_id, packet_id in db.execute("SELECT client_id, packet_id FROM incoming_qos2"):
            state.incoming_qos2.setdefault(client_id, set()).add(packet_id)
        table = "retained"
        for topic, message in db.execute("SELECT topic, message FROM retained"):
            state.retained[topic] = decode_message(message)
    except _UNREADABLE as exc:
        raise StoreError(f"{path}: cannot read {table}: {exc}") from exc
    return state


def read_deliveries(db: sqlite3.Connection, path: str, client_id: str) -> list[StoredDelivery]:
    """One session's messages in `seq` order."""
    try:
        rows = db.execute(
            "SELECT seq, qos, retain, subscription_ids, packet_id, released, message FROM deliveries"
            " WHERE client_id=? ORDER BY seq", (client_id,)).fetchall()
        return [_delivery(*row) for row in rows]
    except _UNREADABLE as exc:
        raise StoreError(f"{path}: cannot read the messages of {client_id!r}: {exc}") from exc


def read_records(db: sqlite3.Connection, path: str, kind: str) -> dict[str, bytes]:
    """Every record of `kind`, by key."""
    try:
        rows = db.execute("SELECT key, value FROM records WHERE kind=?", (kind,)).fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot read records of {kind}: {exc}") from exc
    return {key: bytes(value) for key, value in rows}


def _delivery(seq: int, qos: int, retain: int, ids: str, packet_id: int | None, released: int,
              message: bytes) -> StoredDelivery:
    return StoredDelivery(seq, decode_message(message), qos, bool(retain),
                          tuple(int(i) for i in ids.split(",") if i), packet_id, bool(released))
