"""The gateway's HTTP listener (aiohttp): admin API, metrics, console and the browser dashboard.

Routes:

- ``/api/v1/...`` and ``/metrics``: the admin API (admin.py beside this file, its
  OpenAPI document in openapi.py) and the live event stream (events.py); the
  management UI's routes (issue 20): clients searched and paged with their detail
  (admin_clients.py), offline sessions (admin_sessions.py), a retained value
  (admin_retained.py), AMQP queues and publishing (admin_amqp.py), LwM2M devices
  and commands (admin_lwm2m.py), live messages (stream.py), metrics history
  (history.py); `paging` is their shared q/offset/limit.
- ``GET /``: the live web console (static files in console/).
- ``GET /dashboard``: the MQTT-over-WebSocket dashboard (examples/dashboard),
  with ``/dashboard/config.json`` telling the page where the WebSocket
  listeners are (their real ports, even when the config asked for port 0).

`build_app` is the one place routes are added.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from adapters.net.server import bind_tcp
from core.redact import redact_text

from gateway.http import (access, admin, admin_amqp, admin_clients, admin_lwm2m, admin_retained, admin_sessions,
                          events, history, openapi, stream)
from gateway.http.guard import ACCESS_LOG, AccessLog
from gateway.http.keys import GATEWAY

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("rosettamq.http")

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "examples" / "dashboard"
CONSOLE_DIR = Path(__file__).resolve().parent / "console"
SHUTDOWN_TIMEOUT = 2.0  # seconds requests in progress get at shutdown


async def console_index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(CONSOLE_DIR / "index.html", headers={"Cache-Control": "no-store"})


async def dashboard_redirect(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/dashboard/")


async def dashboard_index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(DASHBOARD_DIR / "index.html")


async def dashboard_config(request: web.Request) -> web.Response:
    """Where the page finds MQTT over WebSocket: {"ws": {"port", "path"}, "wss": {...}} for enabled ones."""
    gateway = request.app[GATEWAY]
    listeners: dict[str, Any] = {}
    for name in ("ws", "wss"):
        if name in gateway.ports:
            listeners[name] = {"port": gateway.ports[name], "path": getattr(gateway.config, name).path}
    return web.json_response(listeners, headers={"Cache-Control": "no-store"})


async def get_cluster(request: web.Request) -> web.Response:
    """This node, its NATS connection and the nodes it sees; `{"node": null}` in single-node mode."""
    fabric = request.app[GATEWAY].fabric
    body = {"node": None, "nodes": []} if fabric is None else fabric.describe()
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def get_bridges(request: web.Request) -> web.Response:
    """Each bridge: kind, upstream (without its password), connected, queued, forwarded, received,
    dropped by reason, failures and the last error; `{"bridges": []}` when none is configured."""
    bridges = request.app[GATEWAY].bridges
    body = {"node": bridges.node if bridges else None, "bridges": bridges.describe() if bridges else []}
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def build_app(gateway: "Gateway") -> web.Application:
    app = web.Application(client_max_size=gateway.config.http.max_body_size)
    app[GATEWAY] = gateway
    admin.add_routes(app)
    access.add_routes(app)
    admin_clients.add_routes(app)
    admin_amqp.add_routes(app)
    admin_lwm2m.add_routes(app)
    admin_sessions.add_routes(app)
    admin_retained.add_routes(app)
    stream.add_routes(app)
    history.add_routes(app)
    events.add_routes(app)
    openapi.add_routes(app)
    app.router.add_get("/api/v1/cluster", get_cluster)
    app.router.add_get("/api/v1/bridges", get_bridges)
    app.router.add_get("/", console_index)
    app.router.add_static("/console/", CONSOLE_DIR)
    if DASHBOARD_DIR.is_dir():
        app.router.add_get("/dashboard", dashboard_redirect)
        app.router.add_get("/dashboard/", dashboard_index)
        app.router.add_get("/dashboard/config.json", dashboard_config)
        app.router.add_static("/dashboard/", DASHBOARD_DIR)
    else:  # an installed package without the examples folder
        log.warning("dashboard files not found at %s; /dashboard is off", DASHBOARD_DIR)
    return app


class ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger, as the other listeners log bad input: a request its HTTP parser
    refused (answered 400), or a client gone before its request was read, is one INFO line
    without a traceback; anything else stays an ERROR with its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError):
            reason = exc.message.strip().splitlines()[0] if exc.message.strip() else type(exc).__name__
            self.info("http bad request refused status=%s error=%s: %s", exc.code, type(exc).__name__,
                      redact_text(reason))  # a reason may quote the request line, query and all
        elif isinstance(exc, ConnectionError):
            self.info("http client gone mid-request error=%s", exc)
        else:
            super().exception(msg, *args, exc_info=exc_info, **kwargs)


class HTTPServer:
    """The HTTP listener's lifecycle: `start` returns the bound port, `stop` is graceful."""

    def __init__(self, gateway: "Gateway") -> None:
        self._runner = web.AppRunner(
            build_app(gateway), shutdown_timeout=SHUTDOWN_TIMEOUT, logger=ServerLog(log, {}),
            access_log=ACCESS_LOG, access_log_class=AccessLog,
            keepalive_timeout=gateway.config.http.header_timeout,  # also bounds reading a request head
        )
        self.sockets: list[Any] = []  # the bound sockets (two for "localhost": 127.0.0.1 and ::1)

    async def start(self, host: str, port: int, reuse_port: bool = False) -> int:
        """Bind `host` as every listener does (adapters.net.server: "localhost" is both loopbacks)."""
        await self._runner.setup()
        self.sockets = await bind_tcp(host, port, backlog=128, reuse_port=reuse_port)
        for sock in self.sockets:
            await web.SockSite(self._runner, sock).start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()
