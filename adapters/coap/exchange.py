"""Observe exchanges on aiocoap: the state a listener's resources share, and one `ObserveLink` per observer.

aiocoap's `ObservableResource`/`ServerObservation` keeps no per-observer queue,
numbers notifications per request, knows no identity, and never learns that a
CON notification was acknowledged. So an observe registration is served by
`PubSubResource.render_to_pipe` (aiocoap's stable server interface), whose task
(one per observer, none per message) runs an `ObserveLink` that:

- sends one notification at a time from its `Observer`'s bounded queue; a CON
  one is followed by waiting for its ACK (reported by the listener's message
  manager through `AckWatch`), which bounds what aiocoap buffers to one
  message per observer, so the drop-oldest rule of the queue is what applies;
- ends on RST (aiocoap stops the exchange of a CON; for a NON the watch tells
  us, as aiocoap ignores such RSTs), on a CON left unanswered after its
  retransmissions (aiocoap cancels the exchange), on GET with Observe=1, when
  the owning connection ends (a final 4.01), or when superseded by a
  re-registration of the same (identity, token) from another address: then it
  ends silently and hands its unacknowledged notification to the new exchange.

Nothing here imports asyncio: futures come from the listener's loop.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from aiocoap import Message as CoAPMessage
from aiocoap.numbers.codes import Code
from aiocoap.numbers.constants import TransportTuning

from core.auth import Credentials
from core.broker import Broker

from adapters.coap.access import AuthCache, Identity, begin_login, finish_login
from adapters.coap.connections import ConnectionRegistry
from adapters.coap.errors import CoAPCode, ErrorResponse, Overloaded, Unauthorized, publish_refusal
from adapters.coap.limits import CoAPLimits
from adapters.coap.observers import Observer, ObserverRegistry, identity_key
from adapters.coap.pubsub import Notification
from adapters.coap.settings import CoAPSettings

log = logging.getLogger("rosettamq.coap")


SUPPRESS_ALL = 0b11010  # No-Response (RFC 7967): no 2.xx, 4.xx or 5.xx goes out
NON_RESETS_REMEMBERED = 8  # NON notifications per observer an RST may still answer


class AckWatch:
    """ACK/RST answers the message manager saw, for the messages someone waits on."""

    def __init__(self) -> None:
        self._callbacks: dict[tuple[Any, int], Callable[[bool], None]] = {}

    def expect(self, key: tuple[Any, int], callback: Callable[[bool], None]) -> None:
        self._callbacks[key] = callback

    def forget(self, key: tuple[Any, int]) -> None:
        self._callbacks.pop(key, None)

    def answered(self, remote: Any, mid: int, reset: bool) -> None:
        callback = self._callbacks.pop((remote, mid), None)
        if callback is not None:
            callback(reset)


class _Tuning(TransportTuning):
    """Transmission parameters of notifications: CON or NON, with the listener's timeouts."""

    def __init__(self, reliable: bool, settings: CoAPSettings) -> None:
        self.reliability = reliable
        self.ACK_TIMEOUT = settings.ack_timeout
        self.MAX_RETRANSMIT = settings.max_retransmit


@dataclass
class ListenerState:
    """What every resource of one listener shares."""

    broker: Broker
    settings: CoAPSettings
    loop: Any  # the asyncio loop: create_future() only
    clock: Callable[[], float]
    registry: ObserverRegistry
    connections: ConnectionRegistry
    watch: AckWatch = field(default_factory=AckWatch)
    auth_cache: AuthCache = field(default_factory=AuthCache)
    limits: CoAPLimits = field(default_factory=CoAPLimits)
    on_connections_changed: Callable[[], None] = lambda: None
    pending_publishes: int = 0
    links: set["ObserveLink"] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.con = _Tuning(True, self.settings)
        self.non = _Tuning(False, self.settings)

    async def identify(self, request: CoAPMessage, query: Any, admit: bool = True) -> Identity:
        """Who sent `request`; a password the authenticator must hash is checked off the event loop.

        Raises TooManyRequests (a new identity over its address's rate, or a login held by the
        backoff) and Unauthorized (counted as a failed login of the address). `admit` False: the
        caller has taken its rate token already (an LwM2M Register).
        """
        address = request.remote.hostinfo
        step = self.identify_now(address, query, admit)
        if isinstance(step, Identity):
            return step
        assert self.settings.authenticator is not None
        accepted = await self.loop.run_in_executor(None, self.settings.authenticator.authenticate, step)
        try:
            return finish_login(query, address, accepted, self.clock(), self.auth_cache)
        except Unauthorized:
            self.limits.login_failed(address, self.loop.time(), query.username)
            raise

    def identify_now(self, address: str, query: Any, admit: bool = True) -> Identity | Credentials:
        """`identify` up to the password check: the identity when it is cheap to decide, else the
        credentials to check off the loop (doing this again for them changes nothing: the rate token
        of a new identity is taken once, and a login not held stays not held)."""
        authenticator = self.settings.authenticator
        limits, now = self.limits, self.loop.time()
        if query.token is None and admit:  # a connection's requests: admitted when it was opened
            limits.admit(identity_key(query.client_id, query.username, address), address, now)
        if query.token is None and authenticator is not None and not self.auth_cache.accepted(query, self.clock()):
            limits.check_login(address, now, query.username)
        try:
            return begin_login(query, address, authenticator, self.connections, self.clock(), self.auth_cache)
        except Unauthorized:
            limits.login_failed(address, self.loop.time(), query.username)
            raise

    def begin_publish(self, principal: Any, message: Any, confirmable: bool) -> bool:
        """Hand a publish to the core's door; True when its answer must wait for the store (`durable`).
        Raises Overloaded (too many waiting already) and the door's refusal (`publish_refusal`)."""
        if self.pending_publishes >= self.settings.max_pending_publishes:
            raise Overloaded("too many publishes waiting for the store")
        result = self.broker.publish(principal, message)  # the door: validation, ACL, routing
        if not result.accepted:
            raise publish_refusal(result.status, message.topic, result.reason)
        return confirmable or message.qos > 0

    def when_durable(self, callback: Callable[[], None]) -> None:
        """`durable` for a caller that is not a task: `callback` runs (once) when the store has
        everything asked of it so far, counted in `pending_publishes` meanwhile."""
        self.pending_publishes += 1
        done = False

        def synced() -> None:
            nonlocal done
            if not done:
                done = True
                self.pending_publishes -= 1
                callback()

        self.broker.store.sync(synced)

    async def durable(self) -> None:
        """Wait until the store has everything asked of it so far (what MQTT waits for before PUBACK)."""
        future = self.loop.create_future()
        self.pending_publishes += 1
        try:
            self.broker.store.sync(lambda: future.done() or future.set_result(None))
            await future
        finally:
            self.pending_publishes -= 1


def error_message(error: ErrorResponse) -> CoAPMessage:
    message = CoAPMessage(code=Code(int(error.code)), payload=error.diagnostic.encode("utf-8"))
    if error.size1 is not None:
        message.opt.size1 = error.size1
    if error.max_age is not None:
        message.opt.max_age = error.max_age
    return message


def notification_message(notification: Notification, now: float, tuning: TransportTuning | None = None) -> CoAPMessage:
    message = CoAPMessage(code=Code.CONTENT, payload=notification.payload, transport_tuning=tuning)
    if notification.content_format is not None:
        message.opt.content_format = notification.content_format
    message.opt.location_path = notification.location
    max_age = notification.max_age(now)
    if max_age is not None:
        message.opt.max_age = max_age
    return message


class ObserveLink:
    """One observe exchange: the pipe to one remote that an `Observer`'s notifications go out on."""

    def __init__(self, state: ListenerState, block2_cache: Any, pipe: Any) -> None:
        self.state = state
        self.block2_cache = block2_cache  # the resource's aiocoap Block2Cache: big notifications go block-wise
        self.pipe = pipe
        self.request = pipe.request
        self._wakeup: Any = None
        self._stop: str | ErrorResponse | None = None  # "superseded", "reset", or a final error
        self._outstanding: tuple[tuple[Any, int], Notification] | None = None
        self._recent_non: deque[tuple[Any, int]] = deque()

    def wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def stop(self, reason: str | ErrorResponse) -> None:
        """End this exchange: "superseded" (silently), or with a final error response."""
        if self._stop is None:
            self._stop = reason
        self.wake()

    async def first_response(self, response: CoAPMessage) -> None:
        response.opt.observe = self.state.registry.next_sequence()
        self.pipe.add_response(response, is_last=False)

    async def run(self, observer: Observer) -> None:
        """Send queued notifications until stopped; the caller's task is cancelled when the client goes away."""
        state = self.state
        try:
            while self._stop is None:
                if self._outstanding is None:
                    notification = observer.take(state.clock())
                    if notification is not None:
                        await self._send(notification)
                        continue
                self._wakeup = state.loop.create_future()
                await self._wakeup
                self._wakeup = None
        finally:
            self._forget_answers(observer)
        reason = self._stop
        if reason == "reset" or reason == "superseded":
            self.pipe.add_response(CoAPMessage(code=Code.SERVICE_UNAVAILABLE, no_response=SUPPRESS_ALL), is_last=True)
        elif isinstance(reason, ErrorResponse):
            self.pipe.add_response(error_message(reason), is_last=True)

    async def _send(self, notification: Notification) -> None:
        state = self.state
        now = state.clock()
        tuning = state.con if notification.confirmable else state.non

        async def build() -> CoAPMessage:
            return notification_message(notification, now, tuning)

        message = await self.block2_cache.extract_or_insert(self.request, build)
        message.opt.observe = state.registry.next_sequence()
        message.transport_tuning = tuning
        self.pipe.add_response(message, is_last=False)
        if message.mid is None or message.remote is None:  # the exchange ended under us
            return
        key = (message.remote, message.mid)
        if notification.confirmable:
            self._outstanding = (key, notification)
            state.watch.expect(key, self._answered_con)
        else:
            state.watch.expect(key, self._answered_non)
            self._recent_non.append(key)
            if len(self._recent_non) > NON_RESETS_REMEMBERED:
                state.watch.forget(self._recent_non.popleft())

    def _answered_con(self, reset: bool) -> None:
        self._outstanding = None
        if reset:  # aiocoap also stops the exchange, which cancels our task
            self.stop("reset")
        self.wake()

    def _answered_non(self, reset: bool) -> None:
        if reset:
            self.stop("reset")

    def _forget_answers(self, observer: Observer) -> None:
        watch = self.state.watch
        for key in self._recent_non:
            watch.forget(key)
        if self._outstanding is not None:
            key, notification = self._outstanding
            watch.forget(key)
            if self._stop == "superseded":
                observer.requeue(notification)  # at least once: the new exchange sends it again
            self._outstanding = None


def end_observers_of(state: ListenerState, client_id: str, why: str) -> None:
    """End the observations a client's connection owned, each with a final 4.01 notification."""
    for observer in state.registry.of_client(client_id):
        link = observer.attachment
        state.registry.remove(observer)
        if isinstance(link, ObserveLink):
            link.stop(ErrorResponse(CoAPCode.UNAUTHORIZED, why))
