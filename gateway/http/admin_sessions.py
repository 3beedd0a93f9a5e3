"""The admin API's offline MQTT sessions (issue 20).

- ``GET /api/v1/sessions?q=&offset=&limit=``: persistent sessions whose client is
  not connected, by client id: ``client_id``, ``username``, ``queued`` (messages
  waiting, in the store while offline), ``subscriptions`` (their filters) and
  ``expires_at`` (Unix seconds; null: never).
- ``DELETE /api/v1/sessions/{client_id}``: ends an offline session now, its queue
  and stored state with it (a will still pending is published, as when it
  expires); 404 unknown, 409 while its client is connected (kick it first).

Sessions of this node only (in a cluster, each node lists its own).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from core.sessions import Session

from gateway.http.keys import GATEWAY, USER
from gateway.http.paging import listing, matches, paging, window

log = logging.getLogger("rosettamq.http")


def session_row(session: Session) -> dict[str, Any]:
    return {"client_id": session.client_id, "username": session.username, "queued": session.queued,
            "subscriptions": sorted(session.subscriptions), "expires_at": session.expire_at}


async def get_sessions(request: web.Request) -> web.Response:
    q, offset, limit = paging(request)
    registry = request.app[GATEWAY].broker.mqtt_sessions
    offline = sorted((s for s in list(registry.sessions.values())
                      if s.sink is None and s.persistent and not s.ended and matches(q, s.client_id, s.username)),
                     key=lambda s: s.client_id)
    rows = [session_row(session) for session in window(offline, offset, limit)]
    return web.json_response(listing("sessions", rows, len(offline), offset, limit))


async def delete_session(request: web.Request) -> web.Response:
    client_id = request.match_info["client_id"]
    registry = request.app[GATEWAY].broker.mqtt_sessions
    session = registry.get(client_id)
    if session is None:
        raise web.HTTPNotFound(text=f"no session {client_id!r}")
    if session.sink is not None:
        raise web.HTTPConflict(text=f"client {client_id!r} is connected: kick it first")
    registry.discard(client_id)
    log.info("admin deleted session client_id=%s user=%s", client_id, request.get(USER))
    return web.json_response({"deleted": client_id})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/sessions", get_sessions)
    app.router.add_delete("/api/v1/sessions/{client_id}", delete_session)
