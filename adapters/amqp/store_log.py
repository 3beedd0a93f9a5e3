"""A `DurableLog` on the gateway's store: AMQP durable state as the store's opaque records.

The split: the core's `Store` keeps bytes under (kind, key) in the same group
commits as MQTT state (`put_record`, see core/stores/base.py) and knows no
AMQP; this module owns the kinds, keys and encoding, so the core stays free
of AMQP imports and the SQLite schema has one generic table for every adapter.

- kinds: "amqp.exchange", "amqp.queue", "amqp.binding", "amqp.message" and
  "amqp.delivered" (an empty marker: this persistent message was handed to a
  consumer, so after a restart it comes back with redelivered=True);
- keys: the record's identity as a JSON array (vhost, name, ...), so any
  character in a name is safe and equal identities give equal keys (an
  exchange-to-exchange binding's ends with "exchange");
- values: exchanges, queues and bindings as an AMQP field table (pamqp), so
  `arguments` keep their AMQP types; the owner of an exchange or queue as a
  table under "owner" (`{"user": NAME}`, `{}` for an anonymous client; records
  of versions before issue 24 have none, and load ownerless); messages as a packed header (expiry,
  exchange, routing key, encoded content header) followed by the body, built
  on the store's writer thread: a message acknowledged within the same group
  commit is never encoded, nor written.

Only what the vhost reports reaches this log: transient messages and
non-durable queues never touch the disk.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, Callable

from pamqp import decode, encode

from core.stores.base import Store, StoreError

from adapters.amqp.durable import (
    BindingRecord, DurableRecords, ExchangeRecord, MessageRecord, Owner, QueueRecord,
)
from adapters.amqp.frames import wire_value

EXCHANGE, QUEUE, BINDING, MESSAGE, DELIVERED = (
    "amqp.exchange", "amqp.queue", "amqp.binding", "amqp.message", "amqp.delivered")
_MESSAGE_HEAD = struct.Struct(">BdHHI")  # format version, expires_at (NaN: none), len(exchange, key, header)
_MESSAGE_VERSION = 1


class StoreLog:
    """`DurableLog` writing records to a core `Store` (normally the SQLite store)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._delivered: set[str] = set()  # message keys with a "delivered" marker on disk
        self._bindings: dict[str, tuple[str, str, str, str]] = {}  # key -> (vhost, exchange, destination, kind)

    # -- exchanges, queues, bindings ----------------------------------------------------------

    def put_exchange(self, record: ExchangeRecord) -> None:
        value = _table({"kind": record.kind, "auto_delete": record.auto_delete, "internal": record.internal,
                        "arguments": record.arguments, **_owner_field(record.owner)})
        self.store.put_record(EXCHANGE, _key(record.vhost, record.name), value)

    def delete_exchange(self, vhost: str, name: str) -> None:
        self.store.delete_record(EXCHANGE, _key(vhost, name))
        self._drop_bindings(lambda ends: ends[0] == vhost and (ends[1] == name or ends[2:] == (name, "exchange")))

    def put_queue(self, record: QueueRecord) -> None:
        value = _table({"auto_delete": record.auto_delete, "arguments": record.arguments,
                        **_owner_field(record.owner)})
        self.store.put_record(QUEUE, _key(record.vhost, record.name), value)

    def delete_queue(self, vhost: str, name: str) -> None:
        """Its messages were removed one by one; its bindings go here (the vhost forgets the queue first)."""
        self.store.delete_record(QUEUE, _key(vhost, name))
        self._drop_bindings(lambda ends: ends[0] == vhost and ends[2:] == (name, "queue"))

    def put_binding(self, record: BindingRecord) -> None:
        key = _key(*record.key)
        self._bindings[key] = (record.vhost, record.exchange, record.queue, record.destination_kind)
        self.store.put_record(BINDING, key, _table({"arguments": record.arguments}))

    def delete_binding(self, record: BindingRecord) -> None:
        key = _key(*record.key)
        self._bindings.pop(key, None)
        self.store.delete_record(BINDING, key)

    def _drop_bindings(self, matches: Callable[[tuple[str, str, str, str]], bool]) -> None:
        for key in [key for key, ends in self._bindings.items() if matches(ends)]:
            del self._bindings[key]
            self.store.delete_record(BINDING, key)

    # -- messages -------------------------------------------------------------------------------

    def put_message(self, record: MessageRecord) -> None:
        self.store.put_record(MESSAGE, _key(record.vhost, record.queue, record.seq), lambda: _pack(record))

    def mark_delivered(self, vhost: str, queue: str, seq: int) -> None:
        key = _key(vhost, queue, seq)
        self._delivered.add(key)
        self.store.put_record(DELIVERED, key, b"")

    def delete_message(self, vhost: str, queue: str, seq: int) -> None:
        key = _key(vhost, queue, seq)
        self.store.delete_record(MESSAGE, key)
        if key in self._delivered:
            self._delivered.discard(key)
            self.store.delete_record(DELIVERED, key)

    def sync(self, callback: Callable[[], None]) -> None:
        self.store.sync(callback)

    # -- start ------------------------------------------------------------------------------------

    def records(self) -> DurableRecords:
        """Everything stored; records a crash left behind (a message or binding of a deleted queue) are dropped.

        Raises StoreError for a record that cannot be decoded.
        """
        try:
            return self._records()
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            raise StoreError(f"unreadable AMQP record in the store: {exc!r}") from exc

    def _records(self) -> DurableRecords:
        store, out = self.store, DurableRecords()
        for key, value in store.load_records(EXCHANGE).items():
            vhost, name = json.loads(key)
            fields = _untable(value)
            out.exchanges[(vhost, name)] = ExchangeRecord(vhost, name, fields["kind"], fields["auto_delete"],
                                                          fields["internal"], fields["arguments"], _owner(fields))
        for key, value in store.load_records(QUEUE).items():
            vhost, name = json.loads(key)
            fields = _untable(value)
            out.queues[(vhost, name)] = QueueRecord(vhost, name, fields["auto_delete"], fields["arguments"],
                                                    _owner(fields))
        for key, value in store.load_records(BINDING).items():
            vhost, exchange, queue, routing_key, _, *kind = json.loads(key)
            kind = kind[0] if kind else "queue"  # an exchange-to-exchange binding's key ends with "exchange"
            if kind == "queue" and (vhost, queue) not in out.queues:
                store.delete_record(BINDING, key)
                continue
            record = BindingRecord(vhost, exchange, queue, routing_key, _untable(value)["arguments"], kind)
            out.bindings[record.key] = record
            self._bindings[key] = (vhost, exchange, queue, kind)
        delivered = store.load_records(DELIVERED)
        for key, value in store.load_records(MESSAGE).items():
            vhost, queue, seq = json.loads(key)
            if (vhost, queue) not in out.queues:
                store.delete_record(MESSAGE, key)
                continue
            out.messages[(vhost, queue, seq)] = _unpack(vhost, queue, seq, value, key in delivered)
        for key in delivered:
            if tuple(json.loads(key)) in out.messages:
                self._delivered.add(key)
            else:
                store.delete_record(DELIVERED, key)
        return out


def _key(*parts: Any) -> str:
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


def _owner_field(owner: Owner | None) -> dict[str, Any]:
    if owner is None:
        return {}
    return {"owner": {} if owner.username is None else {"user": owner.username}}


def _owner(fields: dict[str, Any]) -> Owner | None:
    stored = fields.get("owner")
    return None if stored is None else Owner(stored.get("user"))


def _table(fields: dict[str, Any]) -> bytes:
    return encode.field_table(wire_value(fields))


def _untable(data: bytes) -> dict[str, Any]:
    return _from_wire(decode.field_table(data)[1])


def _from_wire(value: Any) -> Any:
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, dict):
        return {k: _from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_wire(v) for v in value]
    return value


def _pack(record: MessageRecord) -> bytes:
    exchange, routing_key = record.exchange.encode(), record.routing_key.encode()
    expires = math.nan if record.expires_at is None else record.expires_at
    head = _MESSAGE_HEAD.pack(_MESSAGE_VERSION, expires, len(exchange), len(routing_key), len(record.header))
    return b"".join((head, exchange, routing_key, record.header, record.body))


def _unpack(vhost: str, queue: str, seq: int, data: bytes, delivered: bool) -> MessageRecord:
    version, expires, exchange_len, key_len, header_len = _MESSAGE_HEAD.unpack_from(data)
    if version != _MESSAGE_VERSION:
        raise ValueError(f"AMQP message record of unknown format {version}")
    at = _MESSAGE_HEAD.size
    exchange = data[at:at + exchange_len].decode()
    at += exchange_len
    routing_key = data[at:at + key_len].decode()
    at += key_len
    header = data[at:at + header_len]
    body = data[at + header_len:]
    return MessageRecord(vhost, queue, seq, exchange, routing_key, header, body,
                         None if math.isnan(expires) else expires, delivered)
