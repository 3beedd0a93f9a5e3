"""The admin API (``/api/v1``) and ``/metrics`` on the HTTP listener.

Who may call it, and with which role, is access.py's middleware. Errors are
JSON ``{"error": {"status": N, "message": "..."}}`` with the HTTP status (400
bad input, 401 credentials, 403 role or ACL, 404 unknown, 405 method, 413 body
too large, 429 login backoff).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from core.door import PublishStatus
from core.message import Message, expiry_from_interval
from core.principal import Principal
from core.topics import InvalidTopic, validate_topic_filter, validate_topic_name

from gateway.clients import PROTOCOLS, kick
from gateway.http.guard import read_json
from gateway.http.keys import GATEWAY, USER
from gateway.metrics import stats
from gateway.process_metrics import render_process_metrics

log = logging.getLogger("rosettamq.http")

# The administrator (API token, or an API without protection): no topic ACL applies.
ADMIN = Principal("http", "admin-api", None, trusted=True)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"status": status, "message": message}}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error under /api as JSON; unexpected exceptions are a logged 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        return error(exc.status, exc.reason if exc.text is None or exc.text.startswith(str(exc.status)) else exc.text)
    except ConnectionError:  # the client went away mid-request: aiohttp drops the request quietly
        raise
    except Exception:
        log.exception("admin api internal error path=%s", request.path)
        return error(500, "internal error")


# -- metrics and status ------------------------------------------------------------------


async def metrics(request: web.Request) -> web.Response:
    text = request.app[GATEWAY].metrics.render() + render_process_metrics()
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def health(request: web.Request) -> web.Response:
    """Alive while the process answers; ready once every configured listener is listening."""
    gateway = request.app[GATEWAY]
    states = gateway.listener_states()
    ready = bool(states) and all(state == "listening" for state in states.values())
    body = {"status": "ok" if ready else "starting", "alive": True, "ready": ready,
            "listeners": dict(gateway.ports), "listener_states": states}
    return web.json_response(body, status=200 if ready else 503)


async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(stats(request.app[GATEWAY]))


# -- clients and subscriptions -------------------------------------------------------------


def protocol_param(request: web.Request) -> str | None:
    protocol = request.query.get("protocol") or None
    if protocol is not None and protocol not in PROTOCOLS:
        raise web.HTTPBadRequest(text=f"protocol must be one of {', '.join(PROTOCOLS)}")
    return protocol


async def delete_client(request: web.Request) -> web.Response:
    client_id = request.match_info["client_id"]
    gateway = request.app[GATEWAY]
    kicked = kick(gateway, client_id, protocol_param(request))
    if gateway.fabric is not None:
        kicked += await gateway.fabric.admin.kick(client_id, protocol_param(request))
    if not kicked:
        raise web.HTTPNotFound(text=f"no connected client {client_id!r}")
    log.info("admin kicked client_id=%s protocols=%s user=%s", client_id, ",".join(kicked), request.get(USER))
    return web.json_response({"kicked": client_id, "protocols": kicked})


async def get_subscriptions(request: web.Request) -> web.Response:
    protocol = protocol_param(request)
    out = []
    for topic_filter, group, subscriber, options in request.app[GATEWAY].broker.router.subscriptions():
        sub_protocol = getattr(subscriber, "protocol", "internal")
        if protocol is not None and sub_protocol != protocol:
            continue
        out.append({
            "topic": topic_filter if group is None else f"$share/{group}/{topic_filter}",
            "protocol": sub_protocol, "client_id": _subscriber_name(subscriber), "qos": options.qos,
            "shared_group": group, "no_local": options.no_local,
        })
    out.sort(key=lambda s: (s["topic"], s["protocol"], s["client_id"]))
    return web.json_response({"subscriptions": out, "count": len(out)})


def _subscriber_name(subscriber: Any) -> str:
    """A client id (MQTT, CoAP), an LwM2M endpoint, or an AMQP queue (other subscribers have a
    `queue` too, an LwM2M device its command queue: only a named one is an AMQP queue)."""
    for attr in ("client_id", "endpoint"):
        value = getattr(subscriber, attr, None)
        if value:
            return str(value)
    queue_name = getattr(getattr(subscriber, "queue", None), "name", None)
    if isinstance(queue_name, str):
        return f"queue:{queue_name}"
    return repr(subscriber)


# -- retained messages ---------------------------------------------------------------------


def _filter_param(request: web.Request) -> str:
    """The ``topic`` query parameter (``filter`` is another name for it), an MQTT filter; default #."""
    topic_filter = request.query.get("topic", request.query.get("filter", "#"))
    try:
        validate_topic_filter(topic_filter)
    except InvalidTopic as exc:
        raise web.HTTPBadRequest(text=f"invalid topic filter: {exc}") from None
    return topic_filter


def message_json(message: Message) -> dict[str, Any]:
    try:
        payload, encoding = message.payload.decode("utf-8"), "text"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(message.payload).decode(), "base64"
    return {"topic": message.topic, "payload": payload, "payload_encoding": encoding, "qos": message.qos,
            "content_type": message.content_type, "origin": message.origin.protocol, "expiry": message.expiry}


async def get_retained(request: web.Request) -> web.Response:
    messages = request.app[GATEWAY].broker.router.retained.match(_filter_param(request))
    messages.sort(key=lambda m: m.topic)
    return web.json_response({"retained": [message_json(m) for m in messages], "count": len(messages)})


async def delete_retained(request: web.Request) -> web.Response:
    broker = request.app[GATEWAY].broker
    principal = request_principal(request)
    topics = [m.topic for m in broker.router.retained.match(_filter_param(request))]
    deleted = []
    for topic in topics:
        result = broker.clear_retained(principal, Message(topic, b"", retain=True, origin=principal.origin))
        if result.accepted:
            deleted.append(topic)
    if topics and not deleted:
        raise web.HTTPForbidden(text="not authorized to clear these retained messages")
    return web.json_response({"deleted": sorted(deleted), "count": len(deleted)})


def request_principal(request: web.Request) -> Principal:
    """Who an API request acts as: the basic-auth user (their topic ACL applies), or, signed in
    with the API token (or on an API without protection), the administrator."""
    user = request.get(USER)
    broker = request.app[GATEWAY].broker
    if user is None:
        return ADMIN
    return broker.principal("http", f"http:{user}", user, request.remote)


# -- publishing ----------------------------------------------------------------------------


async def publish(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    body = await read_json(request, gateway.config.http.header_timeout)
    principal = request_principal(request)
    message = parse_publish(body, principal)
    result = gateway.broker.publish(principal, message)  # the door: validation, the user's ACL, routing
    if result.status is PublishStatus.DENIED:
        raise web.HTTPForbidden(text=f"not authorized to publish to {message.topic!r}")
    if result.status is PublishStatus.INVALID:
        raise web.HTTPBadRequest(text=f"message refused: {result.reason}")
    deliveries = result.deliveries
    if message.qos > 0:  # acknowledged once what it changed is durable, like a PUBACK
        done = asyncio.get_running_loop().create_future()
        gateway.broker.store.sync(lambda: done.done() or done.set_result(None))
        await asyncio.wait_for(done, 10)
    return web.json_response({"topic": message.topic, "deliveries": deliveries})


def parse_publish(body: Any, principal: Principal) -> Message:
    """A core message from the JSON body of POST /api/v1/publish; raises HTTPBadRequest."""
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    topic = body.get("topic")
    if not isinstance(topic, str):
        raise web.HTTPBadRequest(text="topic (string) is required")
    try:
        validate_topic_name(topic)
    except InvalidTopic as exc:
        raise web.HTTPBadRequest(text=f"invalid topic: {exc}") from None
    payload = body.get("payload", "")
    encoding = body.get("payload_encoding", "text")
    if not isinstance(payload, str) or encoding not in ("text", "base64"):
        raise web.HTTPBadRequest(text='payload must be a string; payload_encoding "text" or "base64"')
    if encoding == "text":
        data = _utf8(payload, "payload")
    else:
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise web.HTTPBadRequest(text="payload is not valid base64") from None
    qos, retain = body.get("qos", 0), body.get("retain", False)
    if qos not in (0, 1, 2) or isinstance(qos, bool) or not isinstance(retain, bool):
        raise web.HTTPBadRequest(text="qos must be 0, 1 or 2; retain a boolean")
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise web.HTTPBadRequest(text="properties must be an object")
    return Message(
        topic, data, qos, retain,
        content_type=_opt_str(props, "content_type"),
        correlation_data=_utf8(_opt_str(props, "correlation_data") or "", "properties.correlation_data") or None,
        response_topic=_opt_str(props, "response_topic"),
        user_properties=_user_properties(props.get("user_properties")),
        expiry=expiry_from_interval(_opt_int(props, "message_expiry_interval")),
        payload_format_utf8=encoding == "text",
        origin=principal.origin,
    )


def _utf8(text: str, what: str) -> bytes:
    """`text` as UTF-8; JSON can carry lone surrogates (\\ud800), which have none: a 400."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise web.HTTPBadRequest(text=f"{what} is not valid Unicode (a lone surrogate)") from None


def _opt_str(props: dict[str, Any], key: str, default: str | None = None) -> Any:
    value = props.get(key, default)
    if value is not None and not isinstance(value, str):
        raise web.HTTPBadRequest(text=f"properties.{key} must be a string")
    return value


def _opt_int(props: dict[str, Any], key: str) -> int | None:
    value = props.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise web.HTTPBadRequest(text=f"properties.{key} must be a non-negative integer")
    return value


def _user_properties(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    pairs = value.items() if isinstance(value, dict) else value
    try:
        out = tuple((str(k), str(v)) for k, v in pairs)
    except (TypeError, ValueError):
        raise web.HTTPBadRequest(text="properties.user_properties: an object or a list of [name, value]") from None
    return out


def add_routes(app: web.Application) -> None:
    app.middlewares.append(json_errors)  # then access.require_credentials
    router = app.router
    router.add_get("/metrics", metrics)
    router.add_get("/api/v1/health", health)
    router.add_get("/api/v1/stats", get_stats)
    router.add_delete("/api/v1/clients/{client_id}", delete_client)
    router.add_get("/api/v1/subscriptions", get_subscriptions)
    router.add_get("/api/v1/retained", get_retained)
    router.add_delete("/api/v1/retained", delete_retained)
    router.add_post("/api/v1/publish", publish)
