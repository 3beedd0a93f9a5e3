"""Who may call the admin API, and what they may do there (issue 24).

Who: ``/api/v1/health``, ``/api/v1/openapi.json`` and ``/metrics`` are open
(load balancers and Prometheus scrape them). Every other ``/api/`` route
needs, when ``[http] api_token`` is set, ``Authorization: Bearer <token>``
(or ``?access_token=``, for browsers' EventSource, which cannot send
headers); when ``[auth] password_file`` is set, HTTP basic credentials of
that file work too. With `[auth.jwt]`, an OAuth 2.0 access token is a bearer token too,
its role from the token: ``admin`` or ``monitor`` in the roles claim (`[auth.jwt]
roles_claim`), or RabbitMQ's ``rabbitmq.tag:administrator`` / ``monitoring`` scopes. With
none of these, the API is open (its default address is 127.0.0.1) and every caller is an
administrator.

Wrong passwords and wrong tokens count as failed logins in the login backoff
every listener shares (per address, and per user name for basic logins): a
refusal past `[auth] login_backoff_after` failures is a 429 with Retry-After,
and so is every login from there (correct or not) until that time.

What: the API token is an administrator's credential. Of the password file's
users, `[http] admins` may do everything and `[http] monitors` may only read
(GET, HEAD); anyone else signed in gets 403. A user who signs in with no role
is named once in a warning, so an upgrade that took their access is not silent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import math
from aiohttp import web

from core.auth import Credentials, Grant, passwords_of
from core.jwt_tokens import looks_like_jwt

from gateway.auth_jwt import TokenAuthenticator
from gateway.http.admin import Handler, error
from gateway.http.keys import GATEWAY, ROLE, USER

log = logging.getLogger("rosettamq.http")

OPEN_PATHS = frozenset({"/api/v1/health", "/api/v1/openapi.json", "/metrics"})
READ_METHODS = frozenset({"GET", "HEAD"})
ADMIN_ROLE, MONITOR_ROLE = "admin", "monitor"
WARNED: web.AppKey[set[str]] = web.AppKey("users-warned-without-role", set)  # each named once


@web.middleware
async def require_credentials(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sign the request in (token, basic credentials or an open API), then check its role."""
    if not request.path.startswith("/api/") or request.path in OPEN_PATHS:
        return await handler(request)
    gateway = request.app[GATEWAY]
    token = gateway.config.http.api_token
    passwords = passwords_of(gateway.authenticator)
    tokens = gateway.authenticator if isinstance(gateway.authenticator, TokenAuthenticator) else None
    if token is None and passwords is None and tokens is None:
        request[USER], request[ROLE] = None, ADMIN_ROLE
        return await handler(request)
    header = request.headers.get("Authorization")
    scheme, _, value = (header or "").partition(" ")
    offered = value.strip() if scheme.lower() == "bearer" else None if header else request.query.get("access_token")
    username, password = _basic(value) if scheme.lower() == "basic" and passwords is not None else (None, None)
    if offered is None and username is None:
        return _unauthorized()
    backoff, peer, loop = gateway.security.login_backoff, request.remote or "", asyncio.get_running_loop()
    held = 0.0 if backoff is None else backoff.hold(peer, loop.time(), username)
    if held > 0:
        return _too_many(held)
    if offered is not None:
        if token is not None and hmac.compare_digest(offered.encode(), token.encode()):
            request[USER], request[ROLE] = None, ADMIN_ROLE
            return await handler(request)
        if tokens is not None and looks_like_jwt(offered):
            credentials = Credentials("http", "http:token", None, offered.encode("ascii", "replace"), peer)
            granted = await loop.run_in_executor(None, tokens.authenticate, credentials)
            if isinstance(granted, Grant):
                request[USER] = granted.username
                return await _with_role(request, handler, granted.username, granted.roles)
    elif passwords is not None and username is not None:
        credentials = Credentials("http", f"http:{username}", username, password, peer)
        if await loop.run_in_executor(None, passwords.authenticate, credentials):
            request[USER] = username
            return await _with_role(request, handler, username)
    log.warning("login refused peer=%s username=%s credential=%s", peer, username,
                "bearer token" if offered is not None else "basic")
    delay = 0.0 if backoff is None else backoff.failed(peer, loop.time(), username)
    return _too_many(delay) if delay > 0 else _unauthorized()


async def _with_role(request: web.Request, handler: Handler, username: str,
                     roles: frozenset[str] = frozenset()) -> web.StreamResponse:
    """`roles`: an access token's (``admin``, ``monitor``), besides `[http] admins` and `monitors`."""
    security = request.app[GATEWAY].security
    if security.is_admin(username) or ADMIN_ROLE in roles:
        request[ROLE] = ADMIN_ROLE
    elif security.is_monitor(username) or MONITOR_ROLE in roles:
        if request.method not in READ_METHODS:
            return error(403, f"user {username!r} is a monitor: the admin API is read-only for it (GET); "
                              "actions need [http] admins")
        request[ROLE] = MONITOR_ROLE
    else:
        _warn_once(request.app, username)
        return error(403, f"user {username!r} has no admin API role: an administrator can add it to "
                          "[http] admins (every action) or [http] monitors (read only)")
    return await handler(request)


def _warn_once(app: web.Application, username: str) -> None:
    """The one line that tells an operator why a user who could use the API (before roles) cannot."""
    warned = app[WARNED]
    if username not in warned and len(warned) < 10_000:
        warned.add(username)
        log.warning("admin API refused a signed-in user with no role (403): to grant access, add the name to "
                    "[http] admins (every action) or [http] monitors (read only) and reload user=%s", username)


def _unauthorized() -> web.Response:
    response = error(401, "credentials required: a bearer token or HTTP basic credentials")
    response.headers["WWW-Authenticate"] = 'Bearer realm="rosettamq", Basic realm="rosettamq"'
    return response


def _too_many(seconds: float) -> web.Response:
    wait = max(1, math.ceil(seconds))
    response = error(429, f"too many failed logins from this address or for this user: retry in {wait} s")
    response.headers["Retry-After"] = str(wait)
    return response


def _basic(value: str) -> tuple[str | None, bytes | None]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None, None
    username, sep, password = decoded.partition(b":")
    if not sep:
        return None, None
    return username.decode("utf-8", "replace"), password


async def whoami(request: web.Request) -> web.Response:
    """Who this request signed in as and its role: the console shows only what the role allows."""
    return web.json_response({"user": request.get(USER), "role": request.get(ROLE, ADMIN_ROLE)},
                             headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app[WARNED] = set()
    app.middlewares.append(require_credentials)
    app.router.add_get("/api/v1/whoami", whoami)
