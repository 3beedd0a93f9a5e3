"""A session moving between gateway nodes: everything it holds, taken from one registry, given to another.

In a cluster a client reconnects to whichever node a load balancer picks. The node that held
its session hands it over (`export_session`): the connection still attached there is taken
over (MQTT 5 DISCONNECT 0x8E), and the session leaves that node with its subscriptions, its
queue, its in-flight QoS 1/2 deliveries (with their packet ids, so the client's acks still
match), the QoS 2 packet ids it received and not yet released, its expiry and a will still
waiting for its delay. The new node adopts it (`adopt_session`) offline, then the CONNECT
resumes it as any local one: session present, in-flight resent with DUP, the queue in order.

Pure state: the transport of a `SessionSnapshot` between nodes is the fabric's
(gateway/cluster/sessions.py). No I/O here, except what the session's store does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from core.session_loading import adopt_delivery, reload
from core.session_parts import NEVER_EXPIRES
from core.sessions import Session
from core.stores.base import StoredDelivery, StoredSession
from core.subscriptions import SubscriptionOptions

if TYPE_CHECKING:
    from core.session_registry import SessionRegistry

__all__ = ["SessionSnapshot", "adopt_session", "export_session"]


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """One session as it leaves a node: identity, expiry and will (`session`), subscriptions,
    deliveries in session order (in flight: with a packet id), received QoS 2 packet ids."""

    session: StoredSession
    subscriptions: dict[str, SubscriptionOptions] = field(default_factory=dict)
    deliveries: tuple[StoredDelivery, ...] = ()
    incoming_qos2: frozenset[int] = frozenset()


def export_session(registry: SessionRegistry, client_id: str) -> SessionSnapshot | None:
    """Take the session of `client_id` off this node (its connection, if any, taken over first);
    None when this node has none. The session ends here without its will: the will travels."""
    session = registry.sessions.get(client_id)
    if session is not None and session.sink is not None:
        session.sink.session_taken_over()  # the connection goes; a persistent session stays, offline
        session = registry.sessions.get(client_id)
    if session is None or session.ended:
        return None
    reload(session)  # what waited in the store comes along
    deliveries = [StoredDelivery(seq, d.message, d.qos, d.retain, d.subscription_ids) for seq, d in session.queue]
    deliveries += [StoredDelivery(entry.seq, entry.delivery.message, entry.delivery.qos, entry.delivery.retain,
                                  entry.delivery.subscription_ids, packet_id, entry.released)
                   for packet_id, entry in session.inflight.items()]
    deliveries.sort(key=lambda stored: stored.seq)
    snapshot = SessionSnapshot(session.stored(), dict(session.subscriptions), tuple(deliveries),
                               frozenset(session.incoming_qos2))
    session.will = None  # it is the snapshot's now
    registry.release(session)
    return snapshot


def adopt_session(registry: SessionRegistry, snapshot: SessionSnapshot) -> Session:
    """Make the session of a snapshot this node's, offline until its client attaches (a CONNECT
    resuming it follows); a stale local session of that client id is dropped first."""
    stored = snapshot.session
    client_id = stored.client_id
    stale = registry.sessions.get(client_id)
    if stale is not None:
        stale.will = None
        registry.release(stale)
    now = registry.clock()
    session = Session(client_id, protocol=registry.protocol, router=registry.router, store=registry.store,
                      expiry_interval=stored.expiry_interval, username=stored.username,
                      limits=registry.limits, budget=registry.door.budget)
    session.access = registry.authorizer.for_client(client_id, stored.username)
    registry.sessions[client_id] = session
    session.disconnected_at = stored.disconnected_at if stored.disconnected_at is not None else now
    session.will, session.will_delay = stored.will, stored.will_delay
    session.will_expiry_interval = stored.will_expiry_interval
    persistent = session.persistent
    if persistent:
        registry.store.put_session(replace(stored, disconnected_at=session.disconnected_at))
    for topic_filter, options in snapshot.subscriptions.items():
        registry.router.subscribe(session, topic_filter, options)
        session.subscriptions[topic_filter] = options
        if persistent:
            registry.store.put_subscription(client_id, topic_filter, options)
    for delivery in snapshot.deliveries:
        adopt_delivery(session, delivery)
    for packet_id in snapshot.incoming_qos2:
        session.add_incoming_qos2(packet_id)
    if session.will is not None:
        session.will_at = session.disconnected_at + min(session.will_delay, session.expiry_interval)
        registry.schedule(session.will_at, client_id)
    if stored.expiry_interval != NEVER_EXPIRES:
        session.expire_at = session.disconnected_at + stored.expiry_interval
        registry.schedule(session.expire_at, client_id)
    return session
