"""The aiocoap resources of the CoAP listener: ``/ps/...`` (pub/sub) and ``/mqtt/connection``.

Thin glue: the request's options go to the pure modules (`query`, `access`,
`pubsub`), their plan is carried out on the core, and errors become responses
through `errors.error_response` only. aiocoap's `Block1Spool` and `Block2Cache`
(the ones every `aiocoap.resource.Resource` has) do block-wise transfers both
ways, for notifications larger than a block too. Observe registrations run an
`ObserveLink` (adapters.coap.exchange).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiocoap import Message as CoAPMessage
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type
from aiocoap.resource import PathCapable, Resource
from aiocoap.util.linkformat import Link, LinkFormat

from core.message import Message
from core.principal import Principal

from adapters.coap.access import Identity
from adapters.coap.errors import BadBlock, BadOption, CoAPError, Forbidden, MethodNotAllowed, NotFound, \
    TooLarge, Unauthorized, error_response, publish_refusal
from adapters.coap.exchange import ListenerState, ObserveLink, end_observers_of, error_message, notification_message
from adapters.coap.pubsub import Clear, Observe, Publish, Read, Unobserve, check_critical_options, notification_for, \
    plan_request
from adapters.coap.query import parse_query
from adapters.coap.topics import href_for_topic


class PubSubResource(Resource, PathCapable):
    """``/ps/...``: publish, read, clear, observe (see `adapters.coap.pubsub`)."""

    def __init__(self, state: ListenerState, mount: tuple[str, ...] = ("ps",)) -> None:
        super().__init__()
        self.state = state
        self.mount = mount

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
                             confirmable=True, observe=None, origin=(await state.identify(request, query)).origin,
                             max_payload=state.settings.max_payload_size, now=state.clock())
            try:
                request = self._block1.feed_and_take(request)  # 2.31 Continue until the last block
            except ValueError as exc:  # e.g. a non-final block shorter than its size (RFC 7959 2.3)
                raise BadBlock(f"malformed block-wise transfer: {exc}") from None
        identity = await state.identify(request, query)
        plan = plan_request(
            str(request.code), request.opt.uri_path, query,
            payload=request.payload, content_format=request.opt.content_format,
            confirmable=request.mtype is Type.CON, observe=request.opt.observe, origin=identity.origin,
            max_payload=state.settings.max_payload_size, now=state.clock(),
        )
        principal = identity.principal(state.broker)
        access = principal.access
        if access is not None:
            _check_access(access, plan)
        if isinstance(plan, Publish):
            response = await self._publish(principal, plan.message, request.mtype is Type.CON)
            response.opt.block1 = request.opt.block1
            return response
        if isinstance(plan, Read):
            return await self._block2.extract_or_insert(request, lambda: self._read(plan.topic))
        if isinstance(plan, Clear):
            return await self._clear(principal, plan.topic, request.mtype is Type.CON)
        if isinstance(plan, Unobserve):
            return await self._unobserve(plan.topic_filter, identity, request)
        await self._observe(pipe, request, plan, identity, access)
        return None

    async def _publish(self, principal: Principal, message: Message, confirmable: bool) -> CoAPMessage:
        state = self.state
        if state.begin_publish(principal, message, confirmable):  # the door: validation, ACL, routing
            await state.durable()  # the 2.04 means the core has it
        return CoAPMessage(code=Code.CHANGED)

    async def _read(self, topic: str) -> CoAPMessage:
        message = self.state.broker.router.retained.get(topic)
        if message is None:
            raise NotFound(f"no retained message on {topic!r}")
        return notification_message(notification_for(message, message.qos, self.mount), self.state.clock())

    async def _clear(self, principal: Principal, topic: str, confirmable: bool) -> CoAPMessage:
        broker = self.state.broker
        if broker.router.retained.get(topic) is None:
            raise NotFound(f"no retained message on {topic!r}")
        result = broker.clear_retained(principal, Message(topic=topic, payload=b"", retain=True,
                                                          origin=principal.origin))
        if not result.accepted:
            raise publish_refusal(result.status, topic, result.reason)
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

    async def _observe(self, pipe: Any, request: CoAPMessage, plan: Observe, identity: Identity, access: Any) -> None:
        state = self.state
        registry = state.registry
        observer, is_new = registry.register((identity.key, request.token), plan.topic_filter, plan.qos,
                                             identity.client_id, access)
        link = ObserveLink(state, self._block2, pipe)
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


def _check_access(access: Any, plan: Any) -> None:
    """The topic ACL (core.acl.ClientAccess): read to read, subscribe to observe (publish and clear
    are checked by the core's door)."""
    if isinstance(plan, Read) and not access.can_read(plan.topic):
        raise Forbidden(f"not allowed to read {plan.topic!r}")
    if isinstance(plan, Observe) and not access.can_subscribe(plan.topic_filter):
        raise Forbidden(f"not allowed to observe {plan.topic_filter!r}")


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
            identity = await state.identify(request, dataclasses.replace(query, token=None))
            access = identity.principal(state.broker).access
            if access is not None and not access.may_use_client_id(query.client_id):
                raise Forbidden("no clientid rule of the acl lets this user use this clientid")
            connection = connections.open(query.client_id, identity.username, now, identity.grant,
                                          identity.until(now))
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
