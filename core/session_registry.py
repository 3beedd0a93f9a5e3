"""All sessions by client id: open and take over, disconnect, wills, expiry, restore.

Time-driven work (delayed wills, session expiry) is exposed as deadlines:
`next_deadline()` tells when `run_due(now)` must next be called, and
`on_deadline_change` fires when an earlier deadline appears. The registry never
sleeps or schedules anything itself.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import fields
from typing import Callable

from core.acl import Authorizer
from core.door import Door, PublishStatus
from core.message import Message, expiry_from_interval
from core.principal import Principal
from core.session_loading import reload, restore_delivery
from core.session_parts import NEVER_EXPIRES, SessionCounters, SessionLimits
from core.sessions import Session
from core.stores.base import Store, StoredState


class SessionOwned(Exception):
    """A CONNECT asked for a client id whose session belongs to another user."""

    def __init__(self, client_id: str, owner: str | None, username: str | None) -> None:
        super().__init__(f"client id {client_id!r} is the session of "
                         f"{'an anonymous client' if owner is None else 'user ' + repr(owner)}; "
                         f"{'an anonymous client' if username is None else 'user ' + repr(username)} may not take it")
        self.client_id, self.owner, self.username = client_id, owner, username


class SessionRegistry:
    """Owns every session of one client-id namespace (MQTT over TCP and WebSocket share one)."""

    def __init__(
        self,
        door: Door,
        store: Store,
        *,
        protocol: str = "mqtt",
        limits: SessionLimits | None = None,
        clock: Callable[[], float] = time.time,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.door = door
        self.router = door.router
        self.authorizer = authorizer if authorizer is not None else Authorizer()
        self.wills_denied = 0
        self.store = store
        self.protocol = protocol
        self.limits = limits or SessionLimits()
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        # Sessions belong to the user who created them (its username, None for anonymous): with
        # logins checked, another user's CONNECT with that client id is refused (`SessionOwned`).
        self.owners_enforced = False
        self.takeovers_refused = 0
        self.on_deadline_change: Callable[[], None] | None = None
        self.on_ended: Callable[[str], None] | None = None  # a session ended here (the cluster forgets it)
        self.on_will: Callable[[Session], None] | None = None  # a clean session's will was set or cleared
        self.wills_published = 0
        self.sessions_expired = 0
        # Drops (SessionCounters fields) of sessions that have ended, so metrics never go backwards.
        self.ended_counters: dict[str, int] = {field.name: 0 for field in fields(SessionCounters)}
        self._timers: list[tuple[float, int, str]] = []
        self._timer_seq = 0

    def __len__(self) -> int:
        return len(self.sessions)

    def get(self, client_id: str) -> Session | None:
        return self.sessions.get(client_id)

    # -- connect / disconnect ------------------------------------------------

    def open(
        self, client_id: str, *, clean_start: bool, expiry_interval: int, username: str | None = None
    ) -> tuple[Session, bool]:
        """Find or create the session for a CONNECT; returns (session, session_present).

        An online session with the same client id is taken over: its connection
        is told to close (and its will handled) before the new one attaches. With
        `owners_enforced`, a session created by another user (or anonymously) is not:
        `SessionOwned` is raised and its owner keeps it, online or offline.
        """
        existing = self.sessions.get(client_id)
        self.check_owner(client_id, username)
        if existing is not None and existing.sink is not None:
            existing.sink.session_taken_over()
            existing = self.sessions.get(client_id)  # ending it may have removed it
        if existing is not None and clean_start:
            self._end(existing, publish_will=True)
            existing = None
        if existing is not None:
            reload(existing)  # its queue, from the store, before a new expiry may drop it there
            was_persistent = existing.persistent
            existing.will_at = None  # a new connection cancels a delayed will [MQTT-3.1.3-9]
            existing.will = None
            existing.expire_at = None
            existing.disconnected_at = None  # online again: a crash must not restore it as long offline
            existing.expiry_interval = expiry_interval
            existing.username = username
            existing.access = self.authorizer.for_client(client_id, username)
            if existing.persistent:
                existing.in_store = True
                self.store.put_session(existing.stored())
            elif was_persistent:
                self.store.delete_session(client_id)
            return existing, True
        session = Session(
            client_id,
            protocol=self.protocol,
            router=self.router,
            store=self.store,
            expiry_interval=expiry_interval,
            username=username,
            limits=self.limits, budget=self.door.budget,
        )
        session.access = self.authorizer.for_client(client_id, username)
        self.sessions[client_id] = session
        if session.persistent:
            self.store.put_session(session.stored())
        return session, False

    def check_owner(self, client_id: str, username: str | None) -> None:
        """Raise `SessionOwned` if the session of `client_id` belongs to another user."""
        existing = self.sessions.get(client_id)
        if self.owners_enforced and existing is not None and existing.username != username:
            self.takeovers_refused += 1
            raise SessionOwned(client_id, existing.username, username)

    def needs_load(self, client_id: str, clean_start: bool) -> Session | None:
        """The session whose stored queue a CONNECT resuming it should read off the event loop first
        (core/session_loading.py `begin_load`), or None: nothing to read, or a store that reads without waiting."""
        session = self.sessions.get(client_id)
        if (session is None or clean_start or not session.offline_queued or session.loading is not None
                or not self.store.reads_wait_for_writes):
            return None
        return session

    def set_will(self, session: Session, will: Message | None, delay: int = 0, expiry_interval: int | None = None) -> None:
        """Keep the will of the session's connection; its expiry interval starts when it is published."""
        session.will = will
        session.will_delay = delay
        session.will_expiry_interval = expiry_interval
        if session.persistent:
            self.store.put_session(session.stored())
        elif self.on_will is not None:
            if will is not None:
                session.in_store = True  # (the cluster's store keeps it, and forgets it with the session)
            self.on_will(session)  # a clean session's will: the cluster keeps it too (its node may die)

    def disconnected(self, session: Session, *, publish_will: bool) -> None:
        """The session's connection is gone; handle its will and start its expiry."""
        if session.ended:
            return
        now = self.clock()
        session.detach(now)
        if not publish_will:
            session.will = None  # a normal DISCONNECT discards the will [MQTT-3.14.4-3]
        if session.expiry_interval == 0:
            self._end(session, publish_will=publish_will)
            return
        if session.will is not None:
            delay = min(session.will_delay, session.expiry_interval)
            if delay <= 0:
                self._publish_will(session)
            else:
                session.will_at = now + delay
                self._schedule(session.will_at, session.client_id)
        if session.expiry_interval != NEVER_EXPIRES:
            session.expire_at = now + session.expiry_interval
            self._schedule(session.expire_at, session.client_id)
        self.store.put_session(session.stored())

    def release(self, session: Session) -> None:
        """End a session without its will: it moved to another node (core/session_handover.py)."""
        self._end(session, publish_will=False)

    def schedule(self, when: float, client_id: str) -> None:
        """Call `run_due` for `client_id` at `when` (its will or its expiry)."""
        self._schedule(when, client_id)

    def discard(self, client_id: str) -> bool:
        """End a session now (admin action); its pending will is published."""
        session = self.sessions.get(client_id)
        if session is None:
            return False
        self._end(session, publish_will=True)
        return True

    # -- deadlines -----------------------------------------------------------

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers:
            when, _, client_id = timers[0]
            session = self.sessions.get(client_id)
            if session is not None and when in (session.will_at, session.expire_at):
                return when
            heapq.heappop(timers)  # stale entry
        return None

    def run_due(self, now: float | None = None) -> None:
        """Publish delayed wills and end expired sessions whose time has come."""
        now = self.clock() if now is None else now
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, client_id = heapq.heappop(timers)
            session = self.sessions.get(client_id)
            if session is None or session.sink is not None:
                continue
            if session.will_at is not None and session.will_at <= now:
                self._publish_will(session)
            if session.expire_at is not None and session.expire_at <= now:
                self.sessions_expired += 1
                self._end(session, publish_will=True)

    # -- restart -------------------------------------------------------------------

    def restore(self, state: StoredState) -> None:
        """Rebuild persistent sessions from the store (at start); offline ones resume expiring."""
        now = self.clock()
        for client_id, stored in state.sessions.items():
            if stored.protocol != self.protocol:
                continue
            session = Session(
                client_id,
                protocol=self.protocol,
                router=self.router,
                store=self.store,
                expiry_interval=stored.expiry_interval,
                username=stored.username,
                limits=self.limits, budget=self.door.budget,
            )
            session.access = self.authorizer.for_client(client_id, stored.username)
            self.sessions[client_id] = session
            for topic_filter, options in state.subscriptions.get(client_id, {}).items():
                self.router.subscribe(session, topic_filter, options)
                session.subscriptions[topic_filter] = options
            for seq in sorted(state.deliveries.get(client_id, {})):
                restore_delivery(session, state.deliveries[client_id][seq])
            session.incoming_qos2 = set(state.incoming_qos2.get(client_id, set()))
            session.will = stored.will
            session.will_delay = stored.will_delay
            session.will_expiry_interval = stored.will_expiry_interval
            # A session that was online when the process stopped counts as disconnected now.
            session.disconnected_at = stored.disconnected_at if stored.disconnected_at is not None else now
            session.sink = None
            if stored.will is not None:
                session.will_at = session.disconnected_at + min(stored.will_delay, stored.expiry_interval)
                self._schedule(session.will_at, client_id, notify=False)
            if stored.expiry_interval != NEVER_EXPIRES:
                session.expire_at = session.disconnected_at + stored.expiry_interval
                self._schedule(session.expire_at, client_id, notify=False)
        self.run_due(now)

    # -- internals ---------------------------------------------------------------

    def _publish_will(self, session: Session) -> None:
        will, session.will, session.will_at = session.will, None, None
        if will is None:
            return
        if session.persistent and not session.ended:
            self.store.put_session(session.stored())
        if session.will_expiry_interval is not None:
            will = will.with_changes(expiry=expiry_from_interval(session.will_expiry_interval, self.clock()))
        # Through the door on the session owner's behalf, against the rules of that moment (as Mosquitto).
        principal = Principal.login(self.authorizer, session.protocol, session.client_id, session.username)
        result = self.door.publish(principal, will)
        if result.status is PublishStatus.DENIED:
            self.wills_denied += 1
        elif result.accepted:
            self.wills_published += 1

    def _end(self, session: Session, *, publish_will: bool) -> None:
        if session.ended:
            return
        session.ended = True
        if publish_will and session.will is not None:
            self._publish_will(session)
        session.unsubscribe_all()
        session.queue.clear()
        session.offline_queued = 0
        session.inflight.clear()
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        if session.has_dropped:  # (most sessions never drop anything: no work for them)
            ended, counters = self.ended_counters, session.counters
            for name in ended:
                ended[name] += getattr(counters, name)
        if session.in_store:  # (a clean session never was: no delete per connection, no SQLite write)
            self.store.delete_session(session.client_id)
        if self.on_ended is not None:
            self.on_ended(session.client_id)

    def _schedule(self, when: float, client_id: str, notify: bool = True) -> None:
        earlier = not self._timers or when < self._timers[0][0]
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, client_id))
        if notify and earlier and self.on_deadline_change is not None:
            self.on_deadline_change()
