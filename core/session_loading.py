"""A session's messages coming back into memory: from the store, and from another node.

A persistent session offline keeps its queue in the store, only its count in memory
(`Session.offline_queued`). The messages come back when its client does: `reload` reads them
on the event loop, or `begin_load` and `finish_load` bracket a read done off it (a store whose
reads wait for its writes). At start, `restore_delivery` puts back what a stored session had in
flight; `adopt_delivery` takes the messages of a session another node handed over
(core/session_handover.py). Queued messages keep their order by `seq` throughout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.session_parts import InFlight
from core.stores.base import StoredDelivery
from core.subscriptions import Delivery

if TYPE_CHECKING:
    from core.sessions import Session

__all__ = ["adopt_delivery", "begin_load", "finish_load", "reload", "restore_delivery"]


def reload(session: Session) -> None:
    """Read the messages queued while offline back from the store, in order (before a connection
    takes the session, and before its store state may change)."""
    if not session.offline_queued:
        return
    session.offline_queued = 0
    for stored in session.store.load_deliveries(session.client_id):
        if stored.packet_id is None:  # in-flight ones never left memory
            session.queue.append(stored.seq, _delivery(stored))


def begin_load(session: Session) -> None:
    """The stored queue is about to be read off the event loop (`load_deliveries` in a thread):
    until `finish_load`, new deliveries wait in memory (they are stored as usual too)."""
    session.loading = session.last_seq


def finish_load(session: Session, stored: list[StoredDelivery] | None) -> None:
    """The read is done (`stored`: its rows, None if it failed): the queue is the stored messages
    up to where the read began, then what arrived meanwhile, in order."""
    upto, session.loading = session.loading, None
    if upto is None:
        return
    queue = session.queue
    arrived = list(queue)
    if stored is None:  # failed: what arrived is in the store too; leave it all there
        session.offline_queued += len(arrived)
        queue.clear()
        return
    queue.clear()
    session.offline_queued = 0
    for row in stored:
        if row.packet_id is None and row.seq <= upto:  # in-flight ones never left memory
            queue.append(row.seq, _delivery(row))
    for seq, delivery in arrived:
        queue.append(seq, delivery)


def restore_delivery(session: Session, stored: StoredDelivery) -> None:
    """Put back an in-flight message loaded from the store (at start, the session offline);
    a queued one stays in the store until `reload`."""
    session.last_seq = max(session.last_seq, stored.seq)
    if stored.packet_id is not None:
        session.inflight[stored.packet_id] = InFlight(stored.seq, _delivery(stored), stored.released)
    else:
        session.offline_queued += 1


def adopt_delivery(session: Session, stored: StoredDelivery) -> None:
    """Take a queued or in-flight message of a session handed over by another node (offline)."""
    session.last_seq = max(session.last_seq, stored.seq)
    persistent = session.persistent
    if persistent:  # offline and persistent: queued messages wait in the store (`reload`)
        session.store.put_delivery(session.client_id, stored)
    if stored.packet_id is not None:
        session.inflight[stored.packet_id] = InFlight(stored.seq, _delivery(stored), stored.released)
    elif persistent:
        session.offline_queued += 1
    else:
        session.queue.append(stored.seq, _delivery(stored))


def _delivery(stored: StoredDelivery) -> Delivery:
    return Delivery(stored.message, stored.qos, stored.retain, stored.subscription_ids)
