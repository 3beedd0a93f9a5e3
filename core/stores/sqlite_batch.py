"""The SQLite store's write batches: operation codes, compaction, SQL rows and the transaction (writer thread only).

`compact` keeps the last operation per record of a batch, session wipes first. A delivery's delete
is dropped as well when its row cannot be on disk: `Written` knows, per session, the highest `seq`
on disk at open or written by a commit since; a higher one was never written. A session's seqs
grow, so an acknowledged message whose put and delete meet in one batch costs no SQL at all.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

from core.stores.codec import encode_message

# Operation codes, the first item of each queued tuple.
(PUT_SESSION, DEL_SESSION, PUT_SUB, DEL_SUB, PUT_DELIVERY, DEL_DELIVERY,
 PUT_QOS2, DEL_QOS2, PUT_RETAINED, DEL_RETAINED, PUT_RECORD, DEL_RECORD) = range(12)

# Columns are named so that a later migration may add columns with defaults.
SQL = {
    PUT_SESSION: "INSERT OR REPLACE INTO sessions (client_id, protocol, expiry_interval, username, disconnected_at,"
    " will, will_delay, will_expiry_interval) VALUES (?,?,?,?,?,?,?,?)",
    PUT_SUB: "INSERT OR REPLACE INTO subscriptions (client_id, topic_filter, qos, no_local, retain_as_published,"
    " retain_handling, subscription_id) VALUES (?,?,?,?,?,?,?)",
    DEL_SUB: "DELETE FROM subscriptions WHERE client_id=? AND topic_filter=?",
    PUT_DELIVERY: "INSERT OR REPLACE INTO deliveries (client_id, seq, qos, retain, subscription_ids, packet_id,"
    " released, message) VALUES (?,?,?,?,?,?,?,?)",
    DEL_DELIVERY: "DELETE FROM deliveries WHERE client_id=? AND seq=?",
    PUT_QOS2: "INSERT OR IGNORE INTO incoming_qos2 (client_id, packet_id) VALUES (?,?)",
    DEL_QOS2: "DELETE FROM incoming_qos2 WHERE client_id=? AND packet_id=?",
    PUT_RETAINED: "INSERT OR REPLACE INTO retained (topic, message) VALUES (?,?)",
    DEL_RETAINED: "DELETE FROM retained WHERE topic=?",
    PUT_RECORD: "INSERT OR REPLACE INTO records (kind, key, value) VALUES (?,?,?)",
    DEL_RECORD: "DELETE FROM records WHERE kind=? AND key=?",
}
_TABLE = {
    PUT_SESSION: "sessions", PUT_SUB: "subscriptions", DEL_SUB: "subscriptions", PUT_DELIVERY: "deliveries",
    DEL_DELIVERY: "deliveries", PUT_QOS2: "incoming_qos2", DEL_QOS2: "incoming_qos2", PUT_RETAINED: "retained",
    DEL_RETAINED: "retained", PUT_RECORD: "records", DEL_RECORD: "records",
}
# op[1:end] is the record's key: one column for sessions and retained messages, two for the rest.
_KEY_END = {kind: 2 if table in ("sessions", "retained") else 3 for kind, table in _TABLE.items()}
_SESSION_TABLES = ("sessions", "subscriptions", "deliveries", "incoming_qos2")
WIPE_SESSION = [f"DELETE FROM {table} WHERE client_id=?" for table in _SESSION_TABLES]


class Written:
    """Per session, the highest delivery `seq` any committed put may have written.

    Raised by the writer after each commit, before it releases that batch's puts; read under the
    store's lock by `delete_delivery`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.high: dict[str, int] = dict(db.execute("SELECT client_id, max(seq) FROM deliveries GROUP BY client_id"))

    def maybe_on_disk(self, client_id: str, seq: int) -> bool:
        return seq <= self.high.get(client_id, -1)

    def committed(self, puts: dict[str, int]) -> None:
        """After a commit: the highest seq each session's puts in it wrote."""
        high = self.high
        for client_id, seq in puts.items():
            if seq > high.get(client_id, -1):
                high[client_id] = seq


def compact(batch: list[tuple[Any, ...] | None], written: Written) -> tuple[list[str], list[tuple[Any, ...]], dict[str, int]]:
    """Sessions to wipe first, then the last operation per record, in one transaction; and the
    highest delivery seq put per session (for `Written.committed` once it is).

    A record's key is its table and primary key: (table, client_id[, ...]), ("retained", topic) or
    ("records", kind, key); deliveries are keyed (client_id, seq) apart. A session wipe drops only
    session tables' pending changes. `None` items (dropped puts) are skipped.
    """
    wipes: dict[str, None] = {}
    final: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    deliveries: dict[tuple[str, int], tuple[Any, ...]] = {}
    for op in batch:
        if op is None:  # a delivery put its delete dropped before the writer took it
            continue
        kind = op[0]
        if kind == PUT_DELIVERY or kind == DEL_DELIVERY:
            deliveries[(op[1], op[2])] = op
        elif kind == DEL_SESSION:
            client_id = op[1]
            wipes[client_id] = None
            final = {k: v for k, v in final.items() if k[1] != client_id or k[0] not in _SESSION_TABLES}
            deliveries = {k: v for k, v in deliveries.items() if k[0] != client_id}
        else:
            final[(_TABLE[kind], *op[1:_KEY_END[kind]])] = op
    ops = list(final.values())
    puts: dict[str, int] = {}
    maybe_on_disk = written.maybe_on_disk
    for (client_id, seq), op in deliveries.items():
        if op[0] == PUT_DELIVERY:
            ops.append(op)
            if seq > puts.get(client_id, -1):
                puts[client_id] = seq
        elif maybe_on_disk(client_id, seq):
            ops.append(op)
    return list(wipes), ops, puts


def sql_row(op: tuple[Any, ...]) -> tuple[Any, ...]:
    kind = op[0]
    if kind == PUT_DELIVERY:
        _, client_id, seq, d = op
        ids = ",".join(map(str, d.subscription_ids))
        return (client_id, seq, d.qos, int(d.retain), ids, d.packet_id, int(d.released), encode_message(d.message))
    if kind == PUT_SESSION:
        _, client_id, s = op
        will = None if s.will is None else encode_message(s.will)
        return (client_id, s.protocol, s.expiry_interval, s.username, s.disconnected_at, will, s.will_delay,
                s.will_expiry_interval)
    if kind == PUT_SUB:
        _, client_id, topic_filter, o = op
        return (client_id, topic_filter, o.qos, int(o.no_local), int(o.retain_as_published), o.retain_handling,
                o.subscription_id)
    if kind == PUT_RETAINED:
        return (op[1], encode_message(op[2]))
    if kind == PUT_RECORD:
        _, record_kind, key, value = op
        return (record_kind, key, value if isinstance(value, bytes) else value())
    return op[1:]  # deletes and inbound QoS 2 ids: the key is the row


def sql_rows(final: list[tuple[Any, ...]],
             on_failure: Callable[[tuple[Any, ...], Exception], None]) -> dict[int, list[tuple[Any, ...]]]:
    """SQL parameters per statement; messages are encoded here, off the event loop. An operation
    whose record cannot be encoded is left out and handed to `on_failure`."""
    rows: dict[int, list[tuple[Any, ...]]] = {}
    for op in final:
        try:
            row = sql_row(op)
        except Exception as exc:
            on_failure(op, exc)
            continue
        rows.setdefault(op[0], []).append(row)
    return rows


def write_transaction(db: sqlite3.Connection, wipes: list[str], rows: dict[int, list[tuple[Any, ...]]]) -> None:
    """One transaction: the session wipes, then every row; rolled back if any statement fails."""
    db.execute("BEGIN")
    try:
        for client_id in wipes:
            for sql in WIPE_SESSION:
                db.execute(sql, (client_id,))
        for kind, values in rows.items():
            db.executemany(SQL[kind], values)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
