"""``GET /api/v1/clients`` (searched, sorted and paged) and ``GET /api/v1/clients/{client_id}``.

The list is built from the connections in memory (no I/O per row), merged with
the other nodes' clients in a cluster, then filtered by ``q`` (a substring of
id, address or username, any case), sorted (``id``, or ``connected_since``
with unknown times last) and paged (``offset``, ``limit``). Without those
parameters it answers as it always did, every client in one list.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.clients import client_detail, list_clients
from gateway.http.admin import protocol_param
from gateway.http.keys import GATEWAY
from gateway.http.paging import listing, matches, paging, window

SORTS = ("id", "connected_since")


def sort_rows(rows: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    if sort == "connected_since":
        return sorted(rows, key=lambda r: (r.get("connected_since") is None, r.get("connected_since") or 0,
                                           r["id"], r["protocol"], r.get("node") or ""))
    return sorted(rows, key=lambda r: (r["id"], r["protocol"], r.get("node") or ""))


async def get_clients(request: web.Request) -> web.Response:
    """Every node's clients in a cluster (each with its "node"; `nodes_missing`: no answer in time)."""
    gateway = request.app[GATEWAY]
    protocol = protocol_param(request)
    q, offset, limit = paging(request)
    sort = request.query.get("sort") or "id"
    if sort not in SORTS:
        raise web.HTTPBadRequest(text=f"sort must be one of {', '.join(SORTS)}")
    rows = list_clients(gateway, protocol)
    extra: dict[str, Any] = {}
    if gateway.fabric is not None:
        rows = [dict(row, node=gateway.fabric.node) for row in rows]
        remote, extra["nodes_missing"] = await gateway.fabric.admin.clients(protocol)
        rows += remote
    if q:
        rows = [row for row in rows if matches(q, row.get("id"), row.get("address"), row.get("username"))]
    rows = sort_rows(rows, sort)
    return web.json_response(listing("clients", window(rows, offset, limit), len(rows), offset, limit, **extra))


async def get_client(request: web.Request) -> web.Response:
    """One connected client with its subscriptions' options, session expiry, will and last errors.
    In a cluster, a client of another node is its list row (the detail fields null)."""
    gateway = request.app[GATEWAY]
    client_id, protocol = request.match_info["client_id"], protocol_param(request)
    detail = client_detail(gateway, client_id, protocol)
    if detail is None and gateway.fabric is not None:
        remote, _ = await gateway.fabric.admin.clients(protocol)
        row = next((r for r in remote if r["id"] == client_id), None)
        if row is not None:
            detail = dict(row, subscriptions_detail=None, session_expiry=None, clean_start=None, will=None,
                          last_errors=[])
    if detail is None:
        raise web.HTTPNotFound(text=f"no connected client {client_id!r}")
    if gateway.fabric is not None:
        detail.setdefault("node", gateway.fabric.node)
    return web.json_response(detail)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/clients", get_clients)
    app.router.add_get("/api/v1/clients/{client_id}", get_client)
