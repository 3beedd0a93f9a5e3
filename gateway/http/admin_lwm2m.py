"""The admin API's LwM2M routes: registered devices, their object definitions, commands (issue 20).

- ``GET /api/v1/lwm2m/devices?q=&offset=&limit=``: one row per registration.
- ``GET /api/v1/lwm2m/devices/{endpoint}``: the row plus ``definitions`` of every
  object it registered that the object registry knows.
- ``POST /api/v1/lwm2m/devices/{endpoint}/commands``: the JSON an application
  publishes on ``lwm2m/{ep}/dn``, published there through the door as the signed-in
  user (403 past its topic ACL), answered with the JSON the gateway publishes on
  ``lwm2m/{ep}/up/resp`` for it (504 after 30 s).

The answer is caught by a router tap (`AnswerWaiter`), installed only while a
command waits: it sees what the gateway publishes without subscribing. An answer
is the command's: on the endpoint's ``up/resp`` topic, echoing every top-level
field of the command but ``data`` and ``msgType`` (the reqID...); two identical
commands in flight are answered in order, as the device runs them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

from aiohttp import web

from core.message import Message

from adapters.lwm2m.commands import parse_command, translate_command
from adapters.lwm2m.device import DeviceLink, remote_address
from adapters.lwm2m.errors import CommandError
from adapters.lwm2m.topics import command_topic, response_topic

from gateway.http.admin import request_principal
from gateway.http.guard import read_json
from gateway.http.keys import GATEWAY
from gateway.http.paging import listing, matches, paging, window

COMMAND_TIMEOUT = 30.0  # seconds a command waits for its answer before a 504
WAITER: web.AppKey["AnswerWaiter"] = web.AppKey("lwm2m-answer-waiter")


class AnswerWaiter:
    """A router tap that hands each answer on an ``up/resp`` topic to the first command waiting for it."""

    def __init__(self) -> None:
        self.waiting: dict[str, deque[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]]] = {}

    def __call__(self, message: Message) -> None:
        entries = self.waiting.get(message.topic)
        if not entries:
            return
        try:
            answer = json.loads(message.payload)
        except ValueError:
            return
        if not isinstance(answer, dict):
            return
        for entry in entries:
            keys, future = entry
            if not future.done() and all(answer.get(key) == value for key, value in keys.items()):
                future.set_result(answer)
                entries.remove(entry)
                return

    async def wait(self, taps: list[Any], topic: str, keys: dict[str, Any], start: Any,
                   timeout: float) -> dict[str, Any]:
        """Run `start()` (submit the command), then wait for its answer; TimeoutError after `timeout`."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        entry = (keys, future)
        self.waiting.setdefault(topic, deque()).append(entry)
        if self not in taps:
            taps.append(self)
        try:
            start()
            return await asyncio.wait_for(future, timeout)
        finally:
            entries = self.waiting.get(topic)
            if entries is not None and entry in entries:
                entries.remove(entry)
            if entries is not None and not entries:
                del self.waiting[topic]
            if not self.waiting and self in taps:
                taps.remove(self)


def _server(request: web.Request) -> Any:
    server = request.app[GATEWAY].lwm2m
    if server is None:
        raise web.HTTPNotFound(text="LwM2M is not enabled")
    return server


def _link(request: web.Request) -> tuple[Any, DeviceLink]:
    server = _server(request)
    endpoint = request.match_info["endpoint"]
    link = server.devices.get(endpoint)
    if link is None:
        raise web.HTTPNotFound(text=f"no registered LwM2M endpoint {endpoint!r}")
    return server, link


def device_row(server: Any, link: DeviceLink, wall_offset: float) -> dict[str, Any]:
    """`wall_offset`: Unix time minus the server's clock (registrations are timed by the loop's clock)."""
    registration = link.registration
    return {"endpoint": link.endpoint, "address": remote_address(link.remote), "lifetime": registration.lifetime,
            "binding": registration.binding, "version": registration.version,
            "registered_at": round(registration.registered_at + wall_offset, 3),
            "last_update": round(registration.updated_at + wall_offset, 3), "queue_mode": registration.queue_mode,
            "objects": [str(link_) for link_ in registration.objects], "location": registration.location,
            "queued": len(link.queue), "observations": len(link.observations),
            "awake": link.queue.is_awake(server.now())}


def definitions(server: Any, link: DeviceLink) -> dict[str, Any]:
    """The registry's definitions of the objects the device registered (unknown ones left out)."""
    registry = server.settings.registry
    out: dict[str, Any] = {}
    for object_id in sorted({obj.path[0] for obj in link.registration.objects if obj.path}):
        definition = registry.get(object_id)
        if definition is None:
            continue
        out[str(object_id)] = {"name": definition.name, "multiple": definition.multiple, "resources": {
            str(rid): {"name": res.name, "operations": str(res.operations), "type": str(res.type),
                       "multiple": res.multiple}
            for rid, res in sorted(definition.resources.items())}}
    return out


async def get_devices(request: web.Request) -> web.Response:
    server = _server(request)
    q, offset, limit = paging(request)
    offset_now = time.time() - server.now()
    rows = [device_row(server, link, offset_now) for _, link in sorted(server.devices.items())
            if matches(q, link.endpoint, remote_address(link.remote))]
    return web.json_response(listing("devices", window(rows, offset, limit), len(rows), offset, limit))


async def get_device(request: web.Request) -> web.Response:
    server, link = _link(request)
    row = device_row(server, link, time.time() - server.now())
    row["definitions"] = definitions(server, link)
    return web.json_response(row)


async def post_command(request: web.Request) -> web.Response:
    server, link = _link(request)
    body = await read_json(request, request.app[GATEWAY].config.http.header_timeout)
    try:
        raw = parse_command(body if isinstance(body, dict) else json.dumps(body))
        translate_command(raw, link.registration, server.settings.registry)  # a 400 here, not an answer later
    except CommandError as exc:
        raise web.HTTPBadRequest(text=f"invalid command: {exc}") from None
    keys = {key: value for key, value in raw.items() if key not in ("data", "msgType")}
    broker = request.app[GATEWAY].broker
    principal = request_principal(request)
    message = Message(command_topic(link.endpoint, server.settings.prefix), json.dumps(body).encode(), qos=1,
                      origin=principal.origin)

    def send() -> None:
        """Through the door, as an application's command on ``lwm2m/{ep}/dn``: the user's topic ACL
        applies, and the device runs it as it runs every command (its own ACL included)."""
        result = broker.publish(principal, message)
        if not result.accepted:
            raise web.HTTPForbidden(text=f"not authorized to publish to {message.topic!r}: {result.reason}")

    waiter = request.app[WAITER]
    topic = response_topic(link.endpoint, server.settings.prefix)
    try:
        answer = await waiter.wait(broker.router.taps, topic, keys, send, COMMAND_TIMEOUT)
    except TimeoutError:
        raise web.HTTPGatewayTimeout(text=f"no answer from {link.endpoint!r} within {COMMAND_TIMEOUT:g} s") from None
    return web.json_response(answer)


def add_routes(app: web.Application) -> None:
    app[WAITER] = AnswerWaiter()
    app.router.add_get("/api/v1/lwm2m/devices", get_devices)
    app.router.add_get("/api/v1/lwm2m/devices/{endpoint}", get_device)
    app.router.add_post("/api/v1/lwm2m/devices/{endpoint}/commands", post_command)
