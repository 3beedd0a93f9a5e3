"""The core as adapters see it: one router, the retained store, sessions and the store.

Adapters hold a `Broker` and call `publish`, open sessions through
`mqtt_sessions`, and read `next_deadline()` / `run_due()` for time-driven work.
`authorizer` is the topic ACL every adapter asks before a publish or subscribe
(sessions check reads per delivery themselves).
`start()` loads what the store kept (retained messages, persistent sessions).
"""

from __future__ import annotations

import time
from typing import Callable

from core.acl import Authorizer
from core.message import Message
from core.retained import RetainedStore
from core.router import Router
from core.session_registry import SessionRegistry
from core.sessions import SessionLimits
from core.stores.base import Store
from core.stores.memory import MemoryStore


class Broker:
    """Routing core shared by every protocol adapter of one gateway process."""

    def __init__(
        self,
        store: Store | None = None,
        *,
        limits: SessionLimits | None = None,
        clock: Callable[[], float] = time.time,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.store: Store = store if store is not None else MemoryStore()
        self.clock = clock
        # Topic ACL of every protocol (no file: everything allowed); see core/acl.py.
        self.authorizer = authorizer if authorizer is not None else Authorizer()
        self.router = Router(RetainedStore())
        self.router.retained_listeners.append(self._persist_retained)
        self.mqtt_sessions = SessionRegistry(
            self.router, self.store, protocol="mqtt", limits=limits, clock=clock, authorizer=self.authorizer
        )
        self.started_at = clock()

    def start(self) -> None:
        """Load retained messages and persistent sessions from the store."""
        state = self.store.load()
        now = self.clock()
        for message in state.retained.values():
            if not message.is_expired(now):
                self.router.retained.set(message)
        self.mqtt_sessions.restore(state)

    def publish(self, message: Message) -> int:
        """Route one message to every subscriber of every protocol; returns deliveries made."""
        return self.router.publish(message)

    def next_deadline(self) -> float | None:
        """Wall-clock time at which `run_due` must next run (delayed wills, session expiry)."""
        return self.mqtt_sessions.next_deadline()

    def run_due(self, now: float | None = None) -> None:
        self.mqtt_sessions.run_due(now)

    def close(self) -> None:
        self.store.close()

    def _persist_retained(self, message: Message, cleared: bool) -> None:
        if message.topic.startswith("$SYS/"):
            return  # the gateway's own status, republished while it runs: never worth a store write
        if cleared:
            self.store.delete_retained(message.topic)
        else:
            self.store.put_retained(message)
