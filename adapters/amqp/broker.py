"""The AMQP side of one gateway: its virtual hosts (recovered from a durable log), sharing the core."""

from __future__ import annotations

import time
from typing import Callable

from core.broker import Broker

from adapters.amqp.durable import DurableLog
from adapters.amqp.permissions import Permissions
from adapters.amqp.recovery import restore_vhost
from adapters.amqp.settings import AMQPSettings
from adapters.amqp.vhost import VirtualHost


class AMQPBroker:
    """Every configured vhost; the shared one's amq.topic is the core's topic space."""

    def __init__(self, core: Broker, settings: AMQPSettings, *, log: DurableLog | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.core = core
        self.settings = settings
        self.clock = clock
        self.vhosts: dict[str, VirtualHost] = {}
        self._on_deadline_change: Callable[[], None] = lambda: None
        self.held = 0  # messages in queues, ready or unacknowledged, in every vhost
        self.blocked = False
        self.alarm_listeners: set[Callable[[bool], None]] = set()
        self.permissions = Permissions(core.authorizer, settings.is_admin)  # every vhost's queues and exchanges
        records = log.records() if log is not None else None
        for name in settings.vhosts:
            vhost = VirtualHost(name, core=core if name == settings.shared_vhost else None, log=log,
                                clock=clock, origin_header=settings.origin_header,
                                core_queue_max_length=settings.core_queue_max_length,
                                durable_queues=settings.durable_queues)
            vhost.on_deadline_change = self._deadline_changed
            vhost.on_held_change = self._held_changed
            vhost.permissions = self.permissions
            self.vhosts[name] = vhost
            if records is not None:
                restore_vhost(vhost, records)

    @property
    def on_deadline_change(self) -> Callable[[], None]:
        return self._on_deadline_change

    @on_deadline_change.setter
    def on_deadline_change(self, callback: Callable[[], None]) -> None:
        self._on_deadline_change = callback

    def _deadline_changed(self) -> None:
        self._on_deadline_change()

    def _held_changed(self, delta: int) -> None:
        """Raise or clear the resource alarm (RabbitMQ's memory alarm, counted in messages)."""
        self.held += delta
        limit = self.settings.max_held_messages
        if not limit:
            return
        if not self.blocked and self.held > limit:
            self.blocked = True
        elif self.blocked and self.held <= limit * 0.8:
            self.blocked = False
        else:
            return
        for listener in list(self.alarm_listeners):
            listener(self.blocked)

    def next_deadline(self) -> float | None:
        """Wall-clock time of the next message expiry or x-expires check, in any vhost."""
        deadlines = [d for d in (v.next_deadline() for v in self.vhosts.values()) if d is not None]
        return min(deadlines) if deadlines else None

    def run_due(self, now: float | None = None) -> None:
        for vhost in self.vhosts.values():
            vhost.run_due(now)
