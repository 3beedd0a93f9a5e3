"""Rebuild a vhost's durable exchanges, queues, bindings and persistent messages from its records.

The inverse of the `DurableLog` calls the vhost makes: run once at start,
before any client connects. Recovered entries keep their record numbers, so
acknowledging one deletes the right record; one handed to a consumer before
the restart (and not acknowledged) comes back with redelivered=True.
"""

from __future__ import annotations

from adapters.amqp.bridge import SHARED_EXCHANGE
from adapters.amqp.content import Content
from adapters.amqp.durable import DurableRecords
from adapters.amqp.exchanges import KINDS
from adapters.amqp.frames import decode_content_header
from adapters.amqp.queues import Entry, Queue, advance_sequence
from adapters.amqp.vhost import VirtualHost


def restore_vhost(vhost: VirtualHost, records: DurableRecords) -> None:
    now = vhost.clock()
    log, vhost.log = vhost.log, None  # what is being recovered is already recorded
    try:
        for record in records.exchanges.values():
            if record.vhost == vhost.name and record.name not in vhost.exchanges:
                vhost.exchanges[record.name] = KINDS[record.kind](
                    record.name, durable=True, auto_delete=record.auto_delete, internal=record.internal,
                    arguments=record.arguments)
        for record in records.queues.values():
            if record.vhost == vhost.name and record.name not in vhost.queues:
                vhost._adopt(Queue(record.name, durable=True, auto_delete=record.auto_delete,
                                   arguments=record.arguments, now=now))
        for record in records.bindings.values():
            exchange = vhost.exchanges.get(record.exchange)
            queue = vhost.queues.get(record.queue)
            if record.vhost != vhost.name or exchange is None or queue is None:
                continue
            if exchange.bind(queue.name, record.routing_key, record.arguments) and (
                record.exchange == SHARED_EXCHANGE and vhost.core is not None
            ):
                vhost._subscribe(queue, record.routing_key)
        highest = 0
        for record in sorted(records.messages.values(), key=lambda r: r.seq):
            queue = vhost.queues.get(record.queue)
            if record.vhost != vhost.name or queue is None:
                continue
            properties = decode_content_header(0, record.header).properties
            content = Content(record.exchange, record.routing_key, properties, record.body)
            queue.ready.append(Entry(content, record.expires_at, record.redelivered, seq=record.seq))
            vhost.on_held_change(1)  # counted as held, as its removal will be
            highest = max(highest, record.seq)
        advance_sequence(highest)
    finally:
        vhost.log = log
    for queue in vhost.queues.values():
        queue.expire(now)  # drops what expired while down, and schedules the rest
