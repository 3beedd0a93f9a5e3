"""What the HTTP listener's modules share on the app and the request: the gateway, who signed in, its role."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gateway.app import Gateway

GATEWAY: web.AppKey["Gateway"] = web.AppKey("gateway")
USER: web.RequestKey[str | None] = web.RequestKey("user", str)  # the basic-auth username (None: a token)
ROLE: web.RequestKey[str] = web.RequestKey("role", str)  # "admin" or "monitor" (gateway/http/access.py)
