"""The core as adapters see it: one router, the retained store, sessions and the store.

Adapters hold a `Broker` and publish through its door, `publish(principal,
message)` (core/door.py: validation, the principal's ACL, routing, the memory
budget), open sessions through `mqtt_sessions`, and read `next_deadline()` /
`run_due()` for time-driven work. `authorizer` makes each principal's ACL view
at login (sessions check reads per delivery themselves).
`start()` loads what the store kept (retained messages, persistent sessions).
"""

from __future__ import annotations

import time
from typing import Callable

from core.acl import Authorizer
from core.budget import MemoryBudget
from core.door import DEFAULT_MAX_MESSAGE_BYTES, Door, PublishResult
from core.message import Message
from core.principal import Principal
from core.retained import RetainedStore
from core.router import Router
from core.session_registry import SessionRegistry
from core.session_parts import SessionLimits
from core.stores.base import Store
from core.stores.memory import MemoryStore
from core.subscriptions import EncodeCache


RETAINED_SWEEP = 60.0  # seconds between sweeps of expired retained messages (lookups prune them too)


class Broker:
    """Routing core shared by every protocol adapter of one gateway process."""

    def __init__(
        self,
        store: Store | None = None,
        *,
        limits: SessionLimits | None = None,
        clock: Callable[[], float] = time.time,
        authorizer: Authorizer | None = None,
        max_memory: int = 0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.store: Store = store if store is not None else MemoryStore()
        self.clock = clock
        # Topic ACL of every protocol (no file: everything allowed); see core/acl.py.
        self.authorizer = authorizer if authorizer is not None else Authorizer()
        self.router = Router(RetainedStore())
        self.router.retained_listeners.append(self._persist_retained)
        self.router.retained.on_expired = self.store.delete_retained  # expired ones leave the store too
        self._next_retained_sweep = clock() + RETAINED_SWEEP
        self.budget = MemoryBudget(max_memory)
        self.door = Door(self.router, self.budget, max_message_bytes)
        self.mqtt_sessions = SessionRegistry(
            self.door, self.store, protocol="mqtt", limits=limits, clock=clock, authorizer=self.authorizer
        )
        self.started_at = clock()

    def start(self) -> None:
        """Load retained messages and persistent sessions from the store."""
        state = self.store.load()
        now = self.clock()
        for message in state.retained.values():
            if not message.is_expired(now):
                self.router.retained.set(message)
            else:
                self.store.delete_retained(message.topic)  # expired while the gateway was down
        self.mqtt_sessions.restore(state)

    def publish(self, principal: Principal, message: Message, encoded: EncodeCache | None = None) -> PublishResult:
        """The door: validate, check `principal`'s ACL, route to every subscriber of every protocol."""
        return self.door.publish(principal, message, encoded)

    def clear_retained(self, principal: Principal, message: Message) -> PublishResult:
        """The door for removing `message.topic`'s retained message without delivering anything."""
        return self.door.clear_retained(principal, message.topic, message)

    def principal(self, protocol: str, client_id: str, username: str | None,
                  address: str | None = None) -> Principal:
        """The principal of a client that has logged in, with its ACL view."""
        return Principal.login(self.authorizer, protocol, client_id, username, address)

    def next_deadline(self) -> float | None:
        """Wall-clock time at which `run_due` must next run (delayed wills, session expiry, and the
        sweep of expired retained messages, every `RETAINED_SWEEP` seconds)."""
        sessions = self.mqtt_sessions.next_deadline()
        return self._next_retained_sweep if sessions is None else min(sessions, self._next_retained_sweep)

    def run_due(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self.mqtt_sessions.run_due(now)
        if now >= self._next_retained_sweep:
            self.router.retained.prune_expired(now)
            self._next_retained_sweep = now + RETAINED_SWEEP

    def close(self) -> None:
        self.store.close()

    def apply_remote_retained(self, message: Message) -> None:
        """A retained message set (or, empty, cleared) on another node of the cluster: kept here
        and in this node's store, not passed back to the fabric."""
        retained = self.router.retained
        changed = retained.set(message) if message.payload else retained.delete(message.topic)
        if changed and not message.topic.startswith("$SYS/"):
            self._persist_retained(message, not message.payload, local=False)

    def _persist_retained(self, message: Message, cleared: bool, local: bool = True) -> None:
        if local:
            self.router.fabric.retained_changed(message, cleared)
        if message.topic.startswith("$SYS/"):
            return  # the gateway's own status, republished while it runs: never worth a store write
        if cleared:
            self.store.delete_retained(message.topic)
        else:
            self.store.put_retained(message)
