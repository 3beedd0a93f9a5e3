"""What every bridge does, whatever its upstream: the router side, the reconnect loop, its state.

Towards the core a bridge is a subscriber like any client: the router hands it what matches its
``out`` filters (subscribed with no-local, so what came in through it never goes back out), and
it publishes what it brings in through the door, `broker.publish(principal, message)`, on behalf
of its own principal (``Principal("bridge", name)``, trusted: the bridge is the gateway's own
configuration). Deliveries go into its store-and-forward queue (queue.py).

Towards the upstream each kind (mqtt.py, amqp.py, webhook.py) implements three steps:
`connect()` (raise on failure), `send(entry)` (hand one message over and call `acked` or
`refused` when the upstream answers) and `disconnect()`; a lost connection is reported with
`connection_lost(exc)`. This module runs them: connect, pump the queue in order within the
in-flight window until the connection is lost, wait with exponential backoff and jitter,
connect again. A failure is one log line naming the bridge, the upstream and the reason; a
bridge never stops retrying, and never takes the gateway down.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Callable

from core.broker import Broker
from core.door import PublishResult, PublishStatus
from core.message import Message
from core.principal import Principal
from core.stores.base import Store
from core.subscriptions import Delivery, EncodeCache, SubscriptionOptions

from gateway.bridges.marks import marked, passed_through
from gateway.bridges.queue import Entry, ForwardQueue
from gateway.bridges.settings import BridgeSettings

log = logging.getLogger("rosettamq.bridge")

LOOPED = PublishResult(PublishStatus.NO_SUBSCRIBERS, 0, "already passed through this gateway")
STABLE = 1.0  # seconds a connection must last for the backoff to start again from reconnect_min


def backoff_delay(attempt: int, low: float, high: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before attempt `attempt` + 1: doubling from `low` up to `high`, then drawn
    from the upper half of that (jitter, so many gateways do not come back in step)."""
    ceiling = min(high, low * 2 ** min(attempt, 32))
    return ceiling / 2 + rand() * ceiling / 2


class UpstreamError(ConnectionError):
    """What a bridge's client says went wrong with its upstream, in words (logged without a type name)."""


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    if isinstance(exc, UpstreamError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Bridge:
    """One bridge: router subscriber, queue, and the connect / pump / backoff loop (see the module)."""

    protocol = "bridge"  # the router counts deliveries by subscriber protocol

    def __init__(self, settings: BridgeSettings, broker: Broker, node: str, store: Store | None) -> None:
        self.settings = settings
        self.name = settings.name
        self.broker = broker
        self.node = node  # this gateway, as the via marker names it
        self.principal = Principal("bridge", settings.name, None, trusted=True)
        self.queue = ForwardQueue(settings.name, settings.queue, broker.budget, store)
        self.queue.on_ready = self._wake
        self.connected = False
        self.connected_since: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.forwarded = 0  # acknowledged by the upstream
        self.received = 0  # brought in and accepted by the door
        self.refused_in = 0  # brought in, refused by the door (invalid, denied)
        self.loops = 0  # not sent: it had already left this gateway through a bridge
        self.connects = 0
        self.failures = 0  # connection attempts that failed, and connections lost
        self.attempt = 0  # failures in a row (the backoff's exponent)
        self._ready: asyncio.Event | None = None
        self._lost: asyncio.Future[None] | None = None
        # A loss reported between the handshake and `_serve` (the upstream's DISCONNECT right behind
        # its CONNACK): kept for `_serve`, which would otherwise wait on a connection already gone.
        self._lost_early: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the router's side (core/subscriptions.py Subscriber) --------------------------------------

    @property
    def is_online(self) -> bool:
        return True  # the queue takes every message; it knows what to keep while the upstream is down

    def is_origin_of(self, message: Message) -> bool:
        origin = message.origin
        return origin.protocol == "bridge" and origin.client_id == self.name

    def deliver(self, delivery: Delivery, cache: EncodeCache) -> bool:
        message = delivery.message
        if passed_through(message, self.node):
            self.loops += 1
            return False
        if delivery.qos != message.qos or delivery.retain != message.retain:
            message = message._replace(qos=delivery.qos, retain=delivery.retain)
        return self.queue.push(message)

    @property
    def congested(self) -> bool:
        return self.queue.congested

    def when_drained(self, callback: Callable[[], None]) -> None:
        self.queue.when_drained(callback)

    # -- into the core ------------------------------------------------------------------------

    def bring_in(self, message: Message, done: Callable[[], None] | None = None) -> PublishResult:
        """Publish what the upstream sent through the door; `done` runs once the store holds what
        the publish queued (then the upstream may be acknowledged)."""
        if passed_through(message, self.node):  # our own message, back from the upstream: it was here already
            self.loops += 1
            if done is not None:
                done()
            return LOOPED
        result = self.broker.publish(self.principal, message._replace(origin=self.principal.origin))
        if result.accepted:
            self.received += 1
        else:
            self.refused_in += 1
            log.warning("bridge %s: message from the upstream refused topic=%s reason=%s",
                        self.name, message.topic, result.reason)
        if done is not None:
            self.broker.store.sync(done)
        return result

    def outgoing(self, entry: Entry) -> Message:
        """The message as it leaves: marked as having passed through this gateway."""
        return marked(entry.message, self.node)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the queue left by the last run, subscribe to `out`, and start connecting."""
        self._ready = asyncio.Event()
        restored = self.queue.restore()
        if restored:
            log.info("bridge %s: %d messages kept from the last run", self.name, restored)
        options = SubscriptionOptions(qos=self.settings.qos, no_local=True, retain_as_published=True)
        for topic_filter in self.settings.out:
            self.broker.router.subscribe(self, topic_filter, options)
        self._task = asyncio.create_task(self._run(), name=f"bridge:{self.name}")

    async def stop(self) -> None:
        """Stop taking messages, end the connection; what is queued stays in the store."""
        for topic_filter in self.settings.out:
            self.broker.router.unsubscribe(self, topic_filter)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.queue.close()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            self._lost_early = None
            try:
                await self.connect()
            except asyncio.CancelledError:
                await self._close_quietly()
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is logged and retried
                await self._close_quietly()
                what: str | None = self._failed("cannot connect", exc)
            else:
                what = await self._serve()
                if time.monotonic() - started >= STABLE:
                    self.attempt = 0
            delay = backoff_delay(self.attempt, self.settings.reconnect_min, self.settings.reconnect_max)
            self.attempt += 1
            log.warning("bridge %s (%s): %s; next attempt in %.2f s", self.name, self.settings.public_url(),
                        what or "connection closed", delay)
            await asyncio.sleep(delay)

    async def _serve(self) -> str | None:
        """Pump the queue until the connection is lost (or the bridge stops); says why it ended."""
        lost = self._lost = asyncio.get_running_loop().create_future()
        if self._lost_early is not None:
            lost.set_exception(self._lost_early)
            self._lost_early = None
        self.connected, self.connected_since = True, time.time()
        self.connects += 1
        log.info("bridge %s (%s): connected (%s); %d messages queued", self.name,
                 self.settings.public_url(), self.kind, len(self.queue))
        self.queue.set_online(True)
        pump = asyncio.create_task(self._pump(), name=f"bridge-pump:{self.name}")
        try:
            await asyncio.wait((pump, lost), return_when=asyncio.FIRST_COMPLETED)
            if pump.done() and not pump.cancelled() and pump.exception() is not None:
                raise pump.exception()  # type: ignore[misc]
            lost.result()
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            return self._failed("connection lost", exc)
        finally:
            pump.cancel()
            self._lost = None
            if not lost.done():
                lost.cancel()
            self.connected, self.connected_since = False, None
            self.queue.set_online(False)
            await self._close_quietly()

    async def _pump(self) -> None:
        while True:
            await self.send(await self.next_entry())

    async def next_entry(self) -> Entry:
        """The next message to send, once the in-flight window has room for it."""
        assert self._ready is not None
        while True:
            if len(self.queue.inflight) < self.settings.inflight:
                entry = self.queue.take()
                if entry is not None:
                    return entry
            self._ready.clear()
            await self._ready.wait()

    def _wake(self) -> None:
        if self._ready is not None:
            self._ready.set()

    def acked(self, seq: int) -> None:
        """The upstream acknowledged message `seq`."""
        if self.queue.acked(seq):
            self.forwarded += 1
        self._wake()

    def refused(self, seq: int, why: str) -> None:
        """The upstream answered message `seq` with a refusal: it is dropped (retrying cannot help)."""
        self.queue.refused(seq)
        self._wake()
        self.last_error, self.last_error_at = why, time.time()
        log.warning("bridge %s: the upstream refused a message, dropped: %s", self.name, why)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Called by the kind's client when the upstream connection ends."""
        lost = self._lost
        error = exc if exc is not None else UpstreamError("the upstream closed the connection")
        if lost is None:
            self._lost_early = error  # connected, not yet serving: `_serve` finds it
        elif not lost.done():
            lost.set_exception(error)

    def _failed(self, what: str, exc: BaseException) -> str:
        self.failures += 1
        self.last_error, self.last_error_at = describe_error(exc), time.time()
        return f"{what}: {self.last_error}"

    async def _close_quietly(self) -> None:
        try:
            await self.disconnect()
        except Exception as exc:  # noqa: BLE001 - closing a broken connection may fail too
            log.debug("bridge %s: while closing: %r", self.name, exc)

    # -- the kind's part --------------------------------------------------------------------

    kind = "?"

    async def connect(self) -> None:
        raise NotImplementedError

    async def send(self, entry: Entry) -> None:
        raise NotImplementedError

    async def disconnect(self) -> None:
        raise NotImplementedError

    # -- state --------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The bridge's state for /api/v1/bridges, the console and `rosettamq bridges`."""
        queue = self.queue
        return {
            "name": self.name, "kind": self.kind, "url": self.settings.public_url(), "connected": self.connected,
            "connected_since": self.connected_since, "out": list(self.settings.out),
            "queued": len(queue), "queued_bytes": queue.bytes, "inflight": len(queue.inflight),
            "forwarded": self.forwarded, "received": self.received, "dropped": dict(queue.dropped),
            "refused_in": self.refused_in, "loops_stopped": self.loops, "connects": self.connects,
            "failures": self.failures, "last_error": self.last_error, "last_error_at": self.last_error_at,
        }
