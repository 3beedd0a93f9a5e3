"""The aiocoap resources of the CoAP listener: thin glue between aiocoap and the pure modules.

aiocoap does the message layer (message ids, deduplication, piggybacked and
separate responses, CON retransmission) and block-wise transfers (its
`Block1Spool` and `Block2Cache`, also for notifications larger than a block).
The resources here implement `render_to_pipe`, aiocoap's stable server
interface, instead of `ObservableResource`: its `ServerObservation` keeps no
per-observer queue, numbers notifications per request, knows no identity, and
never learns that a CON notification was acknowledged. So each observe
exchange is a `Link` run by the request's own task (one task per observer,
none per message) that:

- sends one notification at a time from its `Observer`'s bounded queue; a CON
  one is followed by waiting for its ACK (reported by the listener's message
  manager through `AckWatch`), which bounds what aiocoap buffers to one
  message per observer;
- ends on RST (aiocoap stops the exchange for a CON; for a NON the watch tells
  us), on a CON left unanswered after its retransmissions (aiocoap cancels the
  exchange), on GET with Observe=1, or when superseded by a re-registration of
  the same (identity, token) from another address: then it ends silently and
  hands its unacknowledged notification to the new exchange.

Nothing here imports asyncio: futures come from the listener's loop.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
import dataclasses
from typing import Any, Callable

from aiocoap import Message as CoAPMessage
from aiocoap.numbers.codes import Code
from aiocoap.numbers.constants import TransportTuning
from aiocoap.numbers.types import Type
from aiocoap.resource import PathCapable, Resource
from aiocoap.util.linkformat import Link, LinkFormat

from core.broker import Broker
from core.message import Message

from adapters.coap.access import AuthCache, Identity, authenticate
from adapters.coap.connections import ConnectionRegistry
from adapters.coap.errors import BadOption, CoAPCode, CoAPError, ErrorResponse, MethodNotAllowed, NotFound, \
    Overloaded, TooLarge, Unauthorized, error_response
from adapters.coap.observers import Observer, ObserverRegistry
from adapters.coap.pubsub import Clear, Notification, Observe, Publish, Read, Unobserve, check_critical_options, \
    notification_for, plan_request
from adapters.coap.query import parse_query
from adapters.coap.settings import CoAPSettings
from adapters.coap.topics import href_for_topic

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
    on_connections_changed: Callable[[], None] = lambda: None
    pending_publishes: int = 0
    links: set["ObserveLink"] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.con = _Tuning(True, self.settings)
        self.non = _Tuning(False, self.settings)

    def identify(self, request: CoAPMessage, query: Any) -> Identity:
        return authenticate(query, request.remote.hostinfo, self.settings.authenticator, self.connections,
                            self.clock(), self.auth_cache)

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

    def __init__(self, state: ListenerState, resource: "PubSubResource", pipe: Any) -> None:
        self.state = state
        self.resource = resource
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

        message = await self.resource.block2_cache.extract_or_insert(self.request, build)
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


class PubSubResource(Resource, PathCapable):
    """``/ps/...``: publish, read, clear, observe (see `adapters.coap.pubsub`)."""

    def __init__(self, state: ListenerState, mount: tuple[str, ...] = ("ps",)) -> None:
        super().__init__()
        self.state = state
        self.mount = mount

    @property
    def block2_cache(self) -> Any:
        return self._block2

    async def render_to_pipe(self, pipe: Any) -> None:
        try:
            response = await self._render(pipe, pipe.request)
        except CoAPError as exc:
            response = error_message(error_response(exc))
        if response is not None:
            pipe.add_response(response, is_last=True)

    async def _render(self, pipe: Any, request: CoAPMessage) -> CoAPMessage | None:
        state = self.state
        check_critical_options(int(option.number) for option in request.opt.option_list())
        query = parse_query(request.opt.uri_query)
        block1 = request.opt.block1
        if block1 is not None:
            if block1.start + len(request.payload) > state.settings.max_payload_size:
                raise TooLarge(state.settings.max_payload_size)
            if block1.block_number == 0 and request.code in (Code.POST, Code.PUT):
                plan_request(str(request.code), request.opt.uri_path, query, payload=b"", content_format=None,
                             confirmable=True, observe=None, origin=state.identify(request, query).origin,
                             max_payload=state.settings.max_payload_size, now=state.clock())
            request = self._block1.feed_and_take(request)  # 2.31 Continue until the last block
        identity = state.identify(request, query)
        plan = plan_request(
            str(request.code), request.opt.uri_path, query,
            payload=request.payload, content_format=request.opt.content_format,
            confirmable=request.mtype is Type.CON, observe=request.opt.observe, origin=identity.origin,
            max_payload=state.settings.max_payload_size, now=state.clock(),
        )
        if isinstance(plan, Publish):
            response = await self._publish(plan.message, request.mtype is Type.CON)
            response.opt.block1 = request.opt.block1
            return response
        if isinstance(plan, Read):
            return await self._block2.extract_or_insert(request, lambda: self._read(plan.topic))
        if isinstance(plan, Clear):
            return await self._clear(plan.topic, request.mtype is Type.CON)
        if isinstance(plan, Unobserve):
            return await self._unobserve(plan.topic_filter, identity, request)
        await self._observe(pipe, request, plan, identity)
        return None

    async def _publish(self, message: Message, confirmable: bool) -> CoAPMessage:
        state = self.state
        if state.pending_publishes >= state.settings.max_pending_publishes:
            raise Overloaded("too many publishes waiting for the store")
        state.broker.publish(message)
        if confirmable or message.qos > 0:
            await state.durable()  # the 2.04 means the core has it
        return CoAPMessage(code=Code.CHANGED)

    async def _read(self, topic: str) -> CoAPMessage:
        message = self.state.broker.router.retained.get(topic)
        if message is None:
            raise NotFound(f"no retained message on {topic!r}")
        return notification_message(notification_for(message, message.qos, self.mount), self.state.clock())

    async def _clear(self, topic: str, confirmable: bool) -> CoAPMessage:
        router = self.state.broker.router
        if router.retained.get(topic) is None:
            raise NotFound(f"no retained message on {topic!r}")
        router.set_retained(Message(topic=topic, payload=b"", retain=True))
        if confirmable:
            await self.state.durable()
        return CoAPMessage(code=Code.DELETED)

    async def _unobserve(self, topic_filter: str, identity: Identity, request: CoAPMessage) -> CoAPMessage:
        registry = self.state.registry
        observer = registry.find((identity.key, request.token))
        if observer is not None and observer.topic_filter == topic_filter:
            link = observer.attachment
            registry.remove(observer)
            if isinstance(link, ObserveLink):
                link.stop("superseded")  # the deregistration's own response is the answer
        if registry.answers_with_retained(topic_filter) and self.state.broker.router.retained.get(topic_filter):
            return await self._read(topic_filter)
        return CoAPMessage(code=Code.CONTENT)

    async def _observe(self, pipe: Any, request: CoAPMessage, plan: Observe, identity: Identity) -> None:
        state = self.state
        registry = state.registry
        observer, is_new = registry.register((identity.key, request.token), plan.topic_filter, plan.qos,
                                             identity.client_id)
        link = ObserveLink(state, self, pipe)
        previous = observer.attach(link)
        if isinstance(previous, ObserveLink):
            previous.stop("superseded")  # NAT rebinding: same identity and token, new address
        state.links.add(link)
        try:
            first = CoAPMessage(code=Code.CONTENT)
            if is_new:
                retained = registry.retained(observer)
                if retained and registry.answers_with_retained(plan.topic_filter):
                    first = notification_message(retained[0], state.clock())
                else:
                    for notification in retained:
                        observer.push(notification)

            async def build() -> CoAPMessage:
                return first

            await link.first_response(await self._block2.extract_or_insert(request, build))
            await link.run(observer)
        finally:
            state.links.discard(link)
            if observer.attachment is link:
                registry.remove(observer)

    def get_resources_as_linkheader(self) -> LinkFormat:
        """``/ps`` itself, and each topic holding a retained message (at most `max_wellknown_topics`)."""
        links = [Link("", rt="core.ps", obs=None)]
        limit = self.state.settings.max_wellknown_topics
        for index, message in enumerate(self.state.broker.router.retained):
            if index >= limit:
                break
            attributes: dict[str, Any] = {"obs": None}
            content_format = notification_for(message, 0, self.mount).content_format
            if content_format is not None:
                attributes["ct"] = str(content_format)
            links.append(Link(href_for_topic((), message.topic), **attributes))
        return LinkFormat(links)


class ConnectionResource(Resource):
    """``/mqtt/connection``: open (POST), heartbeat (PUT) and close (DELETE) a connection."""

    rt = "core.mqtt.connection"

    def __init__(self, state: ListenerState) -> None:
        super().__init__()
        self.state = state

    async def render_to_pipe(self, pipe: Any) -> None:
        try:
            response = await self._render(pipe.request)
        except CoAPError as exc:
            response = error_message(error_response(exc))
        pipe.add_response(response, is_last=True)

    async def _render(self, request: CoAPMessage) -> CoAPMessage:
        state = self.state
        query = parse_query(request.opt.uri_query)
        now = state.clock()
        connections = state.connections
        if not query.client_id:
            raise BadOption("clientid is required")
        if request.code == Code.POST:
            identity = authenticate(dataclasses.replace(query, token=None), request.remote.hostinfo,
                                    state.settings.authenticator, connections, now)
            connection = connections.open(query.client_id, identity.username, now)
            state.on_connections_changed()
            return CoAPMessage(code=Code.CREATED, payload=connection.token.encode("ascii"), content_format=0)
        if request.code == Code.PUT:
            if not connections.keep_alive(query.client_id, query.token, now):
                raise Unauthorized("unknown or expired connection token for this clientid")
            state.on_connections_changed()
            return CoAPMessage(code=Code.CHANGED)
        if request.code == Code.DELETE:
            if not connections.close(query.client_id, query.token, now):
                raise Unauthorized("unknown or expired connection token for this clientid")
            end_observers_of(state, query.client_id, "connection closed")
            state.on_connections_changed()
            return CoAPMessage(code=Code.DELETED)
        raise MethodNotAllowed("use POST (open), PUT (heartbeat) or DELETE (close)")


def end_observers_of(state: ListenerState, client_id: str, why: str) -> None:
    """End the observations a client's connection owned, each with a final 4.01 notification."""
    for observer in state.registry.of_client(client_id):
        link = observer.attachment
        state.registry.remove(observer)
        if isinstance(link, ObserveLink):
            link.stop(ErrorResponse(CoAPCode.UNAUTHORIZED, why))

