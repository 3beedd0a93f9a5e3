"""Rebuild a vhost's durable exchanges, queues, bindings (to queues and exchanges) and persistent messages.

The inverse of the `DurableLog` calls the vhost makes: run once at start,
before any client connects. Recovered entries keep their record numbers, so
acknowledging one deletes the right record; one handed to a consumer before
the restart (and not acknowledged) comes back with redelivered=True.

Queues and exchanges get their owner back from the stored username (their
permissions and dead letters act as it). Ones stored by a version before
issue 24 have no owner: they load, and one warning says who may use them. A
name no AMQP client could use (not a short string: over 255 octets of UTF-8)
is skipped with a warning, never a failed start.
"""

from __future__ import annotations

import logging

from adapters.amqp.bridge import SHARED_EXCHANGE
from adapters.amqp.content import Content
from adapters.amqp.durable import DurableRecords, Owner
from adapters.amqp.exchanges import KINDS, Destination, ToExchange
from adapters.amqp.frames import decode_content_header
from adapters.amqp.queues import Entry, Queue, advance_sequence
from adapters.amqp.vhost import VirtualHost

logger = logging.getLogger("rosettamq.amqp")


def restore_vhost(vhost: VirtualHost, records: DurableRecords) -> None:
    now = vhost.clock()
    log, vhost.log = vhost.log, None  # what is being recovered is already recorded
    ownerless: list[str] = []
    try:
        for record in records.exchanges.values():
            if record.vhost == vhost.name and record.name not in vhost.exchanges and _usable(vhost, record.name):
                exchange = vhost.exchanges[record.name] = KINDS[record.kind](
                    record.name, durable=True, auto_delete=record.auto_delete, internal=record.internal,
                    arguments=record.arguments)
                exchange.owner = _owner(vhost, record.owner, f"exchange '{record.name}'", ownerless)
        for record in records.queues.values():
            if record.vhost == vhost.name and record.name not in vhost.queues and _usable(vhost, record.name):
                queue = Queue(record.name, durable=True, auto_delete=record.auto_delete, arguments=record.arguments,
                              now=now)
                queue.owner = _owner(vhost, record.owner, f"queue '{record.name}'", ownerless)
                vhost._adopt(queue)
        for record in records.bindings.values():
            exchange = vhost.exchanges.get(record.exchange)
            destination: Destination = record.queue
            if record.destination_kind == "exchange":  # an exchange-to-exchange binding
                destination = ToExchange(record.queue)
                there = record.queue in vhost.exchanges
            else:
                there = record.queue in vhost.queues
            if record.vhost != vhost.name or exchange is None or not there:
                continue
            if exchange.bind(destination, record.routing_key, record.arguments) and (
                record.exchange == SHARED_EXCHANGE and vhost.core is not None
            ):
                vhost._subscribe(destination, record.routing_key)
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
    if ownerless:
        logger.warning("%d queues and exchanges in vhost '%s' were stored without an owner by a version before "
                       "issue 24 (%s): with an ACL file only admins and users whose `queue` / `exchange` rules "
                       "grant them may use them", len(ownerless), vhost.name, ", ".join(ownerless[:10]))


def _usable(vhost: VirtualHost, name: str) -> bool:
    """Whether a stored name fits an AMQP short string; a record an older version let through is skipped."""
    try:
        if len(name.encode("utf-8")) <= 255:
            return True
    except UnicodeEncodeError:  # a lone surrogate: JSON keys can hold one
        pass
    logger.warning("skipped a stored queue or exchange of vhost '%s' whose name no AMQP client can use: %r",
                   vhost.name, name[:80])
    return False


def _owner(vhost: VirtualHost, owner: Owner | None, what: str, ownerless: list[str]) -> object:
    if owner is None:
        ownerless.append(what)
        return None
    return vhost.permissions.principal(owner.username)
