"""A client session: its subscriptions and the QoS 1/2 state of messages sent to it.

A `Session` outlives its network connections when its expiry interval says so.
While a connection is attached (its `SessionSink`), messages go out at once
within the client's receive maximum; the rest wait in a bounded queue, in
order. Unacknowledged messages are resent with DUP when the client comes back.
Every change of a persistent session is written to the store.

While a persistent session is offline its queue lives only in the store (only
`offline_queued`, their count, is in memory, for the `max_queued` limit), so
many offline sessions with full queues cost disk, not memory; core/session_loading.py reads
them back in order when a connection takes the session again.

The queue is the session's `Outbox` (core/outbox.py): bounded by messages and
bytes, with its own overflow policy. While offline, a full queue refuses new
messages (the oldest are in the store, not in memory).

Flow control (core/flow.py): a session whose outbox passes its high-water mark
while its client is *draining it* (the outbox shrank, the client acknowledged
something, its QoS 1/2 window took a message, or its socket took everything until
its outbox began to fill, within the last `PROGRESS_WINDOW` seconds; a client whose
socket filled up and stays full holds no one after that) says so from `deliver`
(True), and the producer
that fed it pauses briefly, so a burst reaches a reading client whole instead of
overflowing its outbox. A client that stopped reading makes no progress, holds
no one, and meets its outbox's bound and policy instead.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable, Final

from core.acl import ClientAccess
from core.budget import MemoryBudget
from core.message import Message
from core.outbox import Outbox
from core.router import Router
from core.session_loading import reload
from core.session_parts import InFlight, SessionCounters, SessionLimits, SessionSink
from core.stores.base import Store, StoredDelivery, StoredSession
from core.subscriptions import Delivery, EncodeCache, SubscriptionOptions

PROGRESS_WINDOW: Final = 0.05  # seconds: a client whose outbox did not drain for this long is not reading it
_now: Final = time.monotonic
_tuple_new: Final = tuple.__new__  # a StoredDelivery per message without its Python-level __new__


_NO_IDS: frozenset[int] = frozenset()


def _in_sent_order(inflight: dict[int, InFlight]) -> deque[int]:
    """The packet ids in flight, in the order they were first sent (a function of its own: compiled,
    a method making a lambda makes its frame object on every call)."""
    return deque(sorted(inflight, key=lambda packet_id: inflight[packet_id].seq))


_NO_DROPS = SessionCounters()  # what `Session.counters` reads for a session that never dropped (never written)

class Session:
    """Subscriptions, in-flight window and queue of one client; a router `Subscriber`."""

    def __init__(
        self,
        client_id: str,
        *,
        protocol: str,
        router: Router,
        store: Store,
        expiry_interval: int = 0,
        username: str | None = None,
        limits: SessionLimits | None = None,
        budget: MemoryBudget | None = None,
    ) -> None:
        self.client_id = client_id
        self.protocol = protocol
        self.username = username
        self.expiry_interval = expiry_interval
        self.limits = limits or SessionLimits()
        self.subscriptions: dict[str, SubscriptionOptions] = {}
        self.inflight: dict[int, InFlight] = {}
        self.queue = Outbox(self.limits.outbox, budget)
        self.offline_queued = 0  # queued messages kept only in the store while offline (persistent)
        # Created on first use: an empty set is 216 bytes and an empty deque 624, per idle connection.
        self.incoming_qos2: set[int] | frozenset[int] = _NO_IDS
        # In-flight packet ids still to be resent on this connection, in the order first sent.
        self.resend: deque[int] | None = None  # in-flight packet ids to resend after a reconnect
        self.sink: SessionSink | None = None
        self._counters: SessionCounters | None = None  # made by the first drop (most sessions never drop)
        # The client's ACL view (set by the registry); None: no ACL, every message may be read.
        self.access: ClientAccess | None = None
        self.will: Message | None = None
        self.will_delay = 0
        self.will_expiry_interval: int | None = None
        self.will_at: float | None = None
        self.expire_at: float | None = None
        self.disconnected_at: float | None = None
        self.ended = False
        # Whether the store may hold records of it: it was persistent at some time (only then is it
        # written), or its will was handed to the cluster. Ending one that never was writes nothing.
        self.in_store = expiry_interval > 0
        self.loading: int | None = None  # while its stored queue is read off the event loop: the last seq then
        self._router = router
        self.store = store
        self.last_seq = 0  # the seq of the newest delivery it took (numbered in arrival order)
        self._next_packet_id = 1
        self.last_progress = 0.0  # monotonic time something last left the outbox or was acknowledged
        self._drain_waiters: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"<Session {self.protocol}:{self.client_id!r} online={self.is_online}>"

    @property
    def counters(self) -> SessionCounters:
        """Drops by reason, to read (metrics); all zero for a session that never dropped anything."""
        return self._counters if self._counters is not None else _NO_DROPS

    @property
    def has_dropped(self) -> bool:
        """Whether `counters` has anything but zeros."""
        return self._counters is not None

    def _drops(self) -> SessionCounters:
        counters = self._counters
        if counters is None:
            counters = self._counters = SessionCounters()
        return counters

    @property
    def persistent(self) -> bool:
        """A session that outlives its connection is written to the store."""
        return self.expiry_interval > 0

    # -- Subscriber ------------------------------------------------------------

    @property
    def is_online(self) -> bool:
        return self.sink is not None

    def is_origin_of(self, message: Message) -> bool:
        origin = message.origin
        return origin.client_id == self.client_id and origin.protocol == self.protocol

    def deliver(self, delivery: Delivery, cache: EncodeCache | None = None) -> bool:
        """Take a delivery; True when the outbox is past its high-water mark while the client drains
        it (the producer should pause briefly: see the module docstring)."""
        access = self.access
        if access is not None and not access.can_read(delivery.message.topic):
            self._drops().acl_denied += 1  # a wildcard subscription matched a topic it may not read
            return False
        sink = self.sink
        queue = self.queue
        if delivery.qos == 0:
            if sink is None:
                self._drops().offline_qos0 += 1
            elif sink.can_send():
                sink.send_publish(None, delivery, False, cache)
            elif queue.full_for(delivery):
                self._drops().slow_consumer_qos0 += 1  # the bound is reached: QoS 0 is what goes
            else:
                if not queue:
                    self.last_progress = _now()  # the socket took everything until now: not yet a stall
                queue.append(0, delivery)  # the transport is paused: wait in the outbox, never stored (seq 0)
                return self._pressing()
            return False
        if sink is not None and not queue and not self.resend and self._window_open(sink):
            self._send_new(self._next_seq(), delivery, cache)
            self.last_progress = _now()  # a QoS 1/2 window that just took a message is no sign of a stall
            return False
        if queue.full_for(delivery, self.offline_queued) and not self._make_room(delivery):
            return False
        seq = self._next_seq()
        if self.persistent:
            self.store.put_delivery(self.client_id, _stored(seq, delivery))
            if sink is None and self.loading is None:
                self.offline_queued += 1
                return False
        queue.append(seq, delivery)  # online, or arriving while the stored queue is being read
        return sink is not None and self._pressing()

    def _pressing(self) -> bool:
        return len(self.queue) >= self.limits.high_water and _now() - self.last_progress < PROGRESS_WINDOW

    def _make_room(self, delivery: Delivery) -> bool:
        """The outbox is full for a QoS 1/2 `delivery`: apply the overflow policy; True if it may go in."""
        policy = self.limits.overflow
        queue = self.queue
        if policy == "disconnect" and self.sink is not None:
            self._drops().overflow_disconnects += 1
            self._drops().queue_full += 1
            self.sink.quota_exceeded()
            return False
        if policy == "drop_oldest" and self.sink is not None:
            while queue and queue.full_for(delivery):
                seq, dropped = queue.popleft()
                if dropped.qos == 0:
                    self._drops().slow_consumer_qos0 += 1
                    continue
                self._drops().dropped_oldest += 1
                if self.persistent:
                    self.store.delete_delivery(self.client_id, seq)
            if not queue.full_for(delivery):
                return True
        self._drops().queue_full += 1  # drop_new, offline, or one message larger than the whole bound
        return False

    # -- subscriptions -------------------------------------------------------

    def subscribe(self, topic_filter: str, options: SubscriptionOptions) -> bool:
        """Add or replace a subscription; True if it existed. Raises InvalidTopic."""
        existed = self._router.subscribe(self, topic_filter, options)
        self.subscriptions[topic_filter] = options
        if self.persistent:
            self.store.put_subscription(self.client_id, topic_filter, options)
        return existed

    def unsubscribe(self, topic_filter: str) -> bool:
        if self.subscriptions.pop(topic_filter, None) is None:
            return False
        self._router.unsubscribe(self, topic_filter)
        if self.persistent:
            self.store.delete_subscription(self.client_id, topic_filter)
        return True

    def unsubscribe_all(self) -> None:
        for topic_filter in list(self.subscriptions):
            self._router.unsubscribe(self, topic_filter)
        self.subscriptions.clear()

    # -- QoS flows, driven by the connection --------------------------------

    def acknowledge(self, packet_id: int) -> bool:
        """PUBACK (QoS 1) or PUBCOMP (QoS 2) arrived: the message is done. False if unknown."""
        if not self._forget(packet_id):
            return False
        self.last_progress = _now()  # the client is reading
        self.pump()
        return True

    def release(self, packet_id: int) -> bool:
        """PUBREC arrived for a QoS 2 message: it is received; PUBREL follows. False if unknown."""
        entry = self.inflight.get(packet_id)
        if entry is None or entry.delivery.qos != 2:
            return False
        if not entry.released:
            entry.released = True
            if self.persistent:
                self.store.put_delivery(self.client_id, _stored(entry.seq, entry.delivery, packet_id, True))
        return True

    def drop_inflight(self, packet_id: int) -> None:
        """Forget an in-flight message the client refused (PUBREC/PUBACK with an error code)."""
        self.acknowledge(packet_id)

    def add_incoming_qos2(self, packet_id: int) -> bool:
        """Record an inbound QoS 2 packet id awaiting PUBREL; False if it was already there."""
        if packet_id in self.incoming_qos2:
            return False
        ids = self.incoming_qos2
        if type(ids) is not set:
            ids = self.incoming_qos2 = set()
        ids.add(packet_id)
        if self.persistent:
            self.store.put_incoming_qos2(self.client_id, packet_id)
        return True

    def complete_incoming_qos2(self, packet_id: int) -> bool:
        if packet_id not in self.incoming_qos2:
            return False
        self.incoming_qos2.discard(packet_id)  # type: ignore[union-attr]  # (a set: it held packet_id)
        if self.persistent:
            self.store.delete_incoming_qos2(self.client_id, packet_id)
        return True

    # -- attachment ------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Messages waiting to be sent, in memory or (offline) in the store."""
        return len(self.queue) + self.offline_queued

    def attach(self, sink: SessionSink, resume: bool) -> None:
        """Bind a connection; with `resume`, resend what is in flight (DUP) and drain the queue.

        PUBLISHes (DUP) and PUBRELs go out in their original order, and the new
        connection's receive maximum bounds the resent PUBLISHes too
        [MQTT-3.3.4-9]: the rest wait in `resend`, ahead of the queue.
        """
        reload(self)
        self.sink = sink
        self.disconnected_at = None
        self.resend = None
        if resume and self.inflight:
            self.resend = _in_sent_order(self.inflight)
        self.pump()

    def detach(self, now: float) -> None:
        self.sink = None
        self.resend = None  # everything still in flight is resent on the next connection
        self.disconnected_at = now
        qos0_held = 0
        for _, delivery in self.queue:  # (a loop: compiled, a generator is an object per call)
            if delivery.qos == 0:
                qos0_held += 1
        if qos0_held:  # QoS 0 is not kept for offline clients
            self._drops().offline_qos0 += qos0_held
            self.queue.keep([(seq, d) for seq, d in self.queue if d.qos])
        if self.persistent:  # every queued message is in the store already: memory lets go
            self.offline_queued += len(self.queue)
            self.queue.clear()
        self._release_producers()  # an offline session holds no one

    # -- flow control (core/flow.py) --------------------------------------------------------

    @property
    def congested(self) -> bool:
        return self.sink is not None and len(self.queue) > self.limits.low_water

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call `callback` once this session is no longer congested (at once if it is not)."""
        if self.congested:
            self._drain_waiters.append(callback)
        else:
            callback()

    def _release_producers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for callback in waiters:
            callback()

    def pump(self) -> None:
        """Send queued messages while the window is open, in order; expired ones are dropped."""
        sink = self.sink
        if sink is None:
            return
        waiting = len(self.queue)
        resend = self.resend
        while resend:
            packet_id = resend[0]
            entry = self.inflight.get(packet_id)
            if entry is not None and entry.released:
                sink.send_pubrel(packet_id)  # not a PUBLISH: the window does not hold it back
            elif entry is not None:
                if not self._window_open(sink):
                    return
                resend.popleft()
                if not sink.send_publish(packet_id, entry.delivery, True, None):
                    self._forget(packet_id)
                continue
            resend.popleft()
        queue = self.queue
        while queue:
            seq, delivery = queue[0]
            if delivery.qos == 0:  # held while the transport was paused; no window applies
                if not sink.can_send():
                    break
                queue.popleft()
                if not delivery.message.is_expired():
                    sink.send_publish(None, delivery, False, None)
                continue
            if not self._window_open(sink):
                break
            queue.popleft()
            if delivery.message.is_expired():
                self._drops().expired += 1
                if self.persistent:
                    self.store.delete_delivery(self.client_id, seq)
                continue
            self._send_new(seq, delivery, None)
        if len(queue) < waiting:  # the outbox drained: its client is reading (a paused producer may wait on it)
            self.last_progress = _now()
        if self._drain_waiters and not self.congested:
            self._release_producers()

    def stored(self) -> StoredSession:
        return StoredSession(
            client_id=self.client_id,
            protocol=self.protocol,
            expiry_interval=self.expiry_interval,
            username=self.username,
            disconnected_at=self.disconnected_at,
            will=self.will,
            will_delay=self.will_delay,
            will_expiry_interval=self.will_expiry_interval,
        )

    # -- internals ---------------------------------------------------------------

    def _window_open(self, sink: SessionSink) -> bool:
        resend = self.resend
        sent = len(self.inflight) - (len(resend) if resend is not None else 0)
        return sent < min(sink.receive_maximum, self.limits.max_inflight) and sink.can_send()

    def _next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def _allocate_packet_id(self) -> int:
        inflight = self.inflight
        packet_id = self._next_packet_id
        while packet_id in inflight:
            packet_id = packet_id % 65535 + 1
        self._next_packet_id = packet_id % 65535 + 1
        return packet_id

    def _send_new(self, seq: int, delivery: Delivery, cache: EncodeCache | None) -> None:
        packet_id = self._allocate_packet_id()
        self.inflight[packet_id] = InFlight(seq, delivery)
        if self.persistent:
            self.store.put_delivery(self.client_id, _stored(seq, delivery, packet_id))
        assert self.sink is not None
        if not self.sink.send_publish(packet_id, delivery, False, cache):
            self._forget(packet_id)

    def _forget(self, packet_id: int) -> bool:
        entry = self.inflight.pop(packet_id, None)
        if entry is None:
            return False
        resend = self.resend
        if resend and packet_id in resend:
            resend.remove(packet_id)
        if self.persistent:
            self.store.delete_delivery(self.client_id, entry.seq)
        return True


def _stored(seq: int, delivery: Delivery, packet_id: int | None = None, released: bool = False) -> StoredDelivery:
    return _tuple_new(StoredDelivery, (seq, delivery.message, delivery.qos, delivery.retain,  # type: ignore[no-any-return]
                                       delivery.subscription_ids, packet_id, released))
