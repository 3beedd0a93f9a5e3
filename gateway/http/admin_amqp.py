"""The admin API's AMQP routes, in the shapes of RabbitMQ's management API (issue 20).

- ``GET /api/v1/amqp/{exchanges|queues|bindings}``: every vhost's; a queue row has
  ``messages_ready``, ``messages_unacked``, ``publish_total`` and ``deliver_total``.
- ``DELETE /api/v1/amqp/queues/{vhost}/{name}/contents``: purge, ``{"purged": n}``.
- ``DELETE /api/v1/amqp/queues/{vhost}/{name}`` (``if_empty``, ``if_unused``: 409 when
  not met): ``{"deleted": name}``; its consumers are cancelled (basic.cancel).
- ``POST /api/v1/amqp/exchanges/{vhost}/{name}/publish``: a basic.publish of a trusted
  administrator through the vhost's own routing, ``{"routed": bool}``.

The vhost is one URL-encoded path segment (``%2F`` for ``/``). Unknown vhost, queue or
exchange: 404. Exclusive queues of a connection may be purged and deleted too.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from typing import Any

from aiohttp import web
from pamqp.commands import Basic

from core.principal import Principal

from adapters.amqp.errors import AMQPError, ReplyCode
from adapters.amqp.queues import Queue
from adapters.amqp.vhost import VirtualHost

from gateway.http.admin import request_principal
from gateway.http.guard import read_json
from gateway.http.keys import GATEWAY

ADMIN = Principal("amqp", "admin-api", None, trusted=True)  # no permission or topic ACL applies
STATUS = {ReplyCode.NOT_FOUND: 404, ReplyCode.ACCESS_REFUSED: 403, ReplyCode.PRECONDITION_FAILED: 400,
          ReplyCode.RESOURCE_LOCKED: 409}
PROPERTIES = {"content_type": str, "content_encoding": str, "headers": dict, "delivery_mode": int, "priority": int,
              "correlation_id": str, "reply_to": str, "expiration": str, "message_id": str, "timestamp": int,
              "type": str, "user_id": str, "app_id": str}


def _service(request: web.Request) -> Any:
    amqp = request.app[GATEWAY].amqp
    if amqp is None:
        raise web.HTTPNotFound(text="the AMQP listener is not enabled")
    return amqp


def queue_row(vhost: VirtualHost, queue: Queue) -> dict[str, Any]:
    unacked = sum(consumer.unacked for consumer in queue.consumers)
    return {"vhost": vhost.name, "name": queue.name, "durable": queue.durable, "auto_delete": queue.auto_delete,
            "exclusive": queue.exclusive_owner is not None, "messages": len(queue.ready),
            "consumers": len(queue.consumers), "unacked": unacked, "messages_ready": len(queue.ready),
            "messages_unacked": unacked, "publish_total": queue.publish_total, "deliver_total": queue.deliver_total}


async def get_amqp(request: web.Request) -> web.Response:
    amqp = _service(request)
    kind = request.match_info["kind"]
    out: list[dict[str, Any]] = []
    for vhost in amqp.broker.vhosts.values():
        if kind == "exchanges":
            out.extend({"vhost": vhost.name, "name": e.name, "type": e.kind, "durable": e.durable,
                        "auto_delete": e.auto_delete, "internal": e.internal} for e in vhost.exchanges.values())
        elif kind == "queues":
            out.extend(queue_row(vhost, q) for q in vhost.queues.values())
        else:
            for exchange in vhost.exchanges.values():
                out.extend({"vhost": vhost.name, "source": exchange.name, "destination": str(queue),
                            "destination_type": getattr(queue, "kind", "queue"),  # "exchange": exchange.bind
                            "routing_key": key, "arguments": dict(args)}
                           for (queue, key, _), args in exchange.bindings.items())
    return web.json_response({kind: out, "count": len(out)})


def _vhost(request: web.Request) -> VirtualHost:
    name = request.match_info["vhost"]
    vhost = _service(request).broker.vhosts.get(name)
    if vhost is None:
        raise web.HTTPNotFound(text=f"no vhost {name!r}")
    return vhost


def _queue(request: web.Request) -> tuple[VirtualHost, Queue]:
    vhost = _vhost(request)
    name = request.match_info["name"]
    queue = vhost.queues.get(name)
    if queue is None:
        raise web.HTTPNotFound(text=f"no queue {name!r} in vhost {vhost.name!r}")
    return vhost, queue


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", ""):
        raise web.HTTPBadRequest(text=f"{name} must be true or false")
    return value in ("true", "1")


async def purge_queue(request: web.Request) -> web.Response:
    vhost, queue = _queue(request)
    return web.json_response({"purged": vhost.purge_queue(queue.name, queue.exclusive_owner)})


async def delete_queue(request: web.Request) -> web.Response:
    vhost, queue = _queue(request)
    if_empty, if_unused = _flag(request, "if_empty"), _flag(request, "if_unused")
    try:  # as its owner: an administrator may delete another connection's exclusive queue
        vhost.delete_queue(queue.name, queue.exclusive_owner, if_unused=if_unused, if_empty=if_empty)
    except AMQPError as exc:  # if_empty or if_unused not met
        raise web.HTTPConflict(text=exc.text) if exc.code is ReplyCode.PRECONDITION_FAILED else _http_error(exc) from None
    return web.json_response({"deleted": queue.name})


async def publish(request: web.Request) -> web.Response:
    vhost = _vhost(request)
    name = request.match_info["name"]
    if name == "amq.default":  # RabbitMQ's management name of the default exchange
        name = ""
    if name not in vhost.exchanges:
        raise web.HTTPNotFound(text=f"no exchange {name!r} in vhost {vhost.name!r}")
    body = await read_json(request, request.app[GATEWAY].config.http.header_timeout)
    routing_key, payload, properties = parse_publish(body)
    try:
        result = vhost.publish(name, routing_key, properties, payload, _publisher(request))
    except AMQPError as exc:
        raise _http_error(exc) from None
    return web.json_response({"routed": bool(getattr(result, "routed", result))})  # a Route, or a bool


def _publisher(request: web.Request) -> Principal:
    """Who publishes, as on POST /api/v1/publish: a user signed in by password keeps the topic ACL
    of its name through amq.topic; the API token (or an open API) is the administrator."""
    principal = request_principal(request)
    return ADMIN if principal.trusted else principal


def _http_error(exc: AMQPError) -> web.HTTPException:
    status = STATUS.get(exc.code, 400)
    return {404: web.HTTPNotFound, 403: web.HTTPForbidden, 409: web.HTTPConflict}.get(
        status, web.HTTPBadRequest)(text=exc.text)


def parse_publish(body: Any) -> tuple[str, bytes, Basic.Properties]:
    """(routing key, body, properties) of a RabbitMQ-style publish request; raises HTTPBadRequest."""
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    routing_key, payload = body.get("routing_key", ""), body.get("payload", "")
    encoding = body.get("payload_encoding", "string")
    if not isinstance(routing_key, str) or not isinstance(payload, str) or encoding not in ("string", "base64"):
        raise web.HTTPBadRequest(text='routing_key and payload must be strings; payload_encoding "string" or "base64"')
    if encoding == "string":
        try:
            data = payload.encode("utf-8")
        except UnicodeEncodeError:
            raise web.HTTPBadRequest(text="payload is not valid Unicode (a lone surrogate)") from None
    else:
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise web.HTTPBadRequest(text="payload is not valid base64") from None
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise web.HTTPBadRequest(text="properties must be an object")
    values: dict[str, Any] = {}
    for key, value in props.items():
        kind = PROPERTIES.get(key)
        if kind is None:
            raise web.HTTPBadRequest(text=f"unknown property {key!r}; known: {', '.join(PROPERTIES)}")
        if value is None:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise web.HTTPBadRequest(text=f"properties.{key} must be a {kind.__name__}")
        if key == "timestamp":
            value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        values["message_type" if key == "type" else key] = value
    if values.get("delivery_mode") not in (None, 1, 2):
        raise web.HTTPBadRequest(text="properties.delivery_mode must be 1 or 2")
    try:
        return routing_key, data, Basic.Properties(**values)
    except (TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"invalid properties: {exc}") from None


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/api/v1/amqp/{kind:exchanges|queues|bindings}", get_amqp)
    router.add_delete("/api/v1/amqp/queues/{vhost}/{name}/contents", purge_queue)
    router.add_delete("/api/v1/amqp/queues/{vhost}/{name}", delete_queue)
    router.add_post("/api/v1/amqp/exchanges/{vhost}/{name}/publish", publish)
