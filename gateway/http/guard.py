"""What the HTTP listener does about clients that are slow, big, malformed or show secrets (issue 24).

- `AccessLog`: aiohttp's access log as one logfmt line per request on
  ``rosettamq.http.access``, its URL through core/redact.py (``access_token=***``);
  no header is logged but the User-Agent.
- `read_json`: a request body as JSON, or a 400 that says what is wrong with it
  (bad UTF-8, a syntax error with its place, nesting too deep), a 408 when the
  body does not arrive in time; the body limit (`[http] max_body_size`, a 413)
  is aiohttp's ``client_max_size``.
- The header timeout (`[http] header_timeout`) is aiohttp's keep-alive timer,
  which runs from the moment a connection opens and after each answer and
  closes a connection whose next request head is not complete by then.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from core.redact import redact_url

from gateway.http.keys import USER

ACCESS_LOG = logging.getLogger("rosettamq.http.access")


class AccessLog(AbstractAccessLogger):
    """``http request peer=... method=GET path=/api/v1/events?access_token=*** status=200 ...``."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request is None:  # aiohttp's own answer to a request it could not parse
            self.logger.info("http request status=%d", response.status)
            return
        self.logger.info(
            "http request peer=%s method=%s path=%s status=%d bytes=%d seconds=%.3f user=%s user_agent=%s",
            request.remote, request.method, redact_url(request.path_qs), response.status, response.body_length,
            time, request.get(USER), request.headers.get("User-Agent", "-"),
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


async def read_json(request: web.Request, timeout: float) -> Any:
    """The body decoded as JSON; raises HTTPBadRequest (with the reason), HTTPRequestTimeout or
    HTTPRequestEntityTooLarge (aiohttp, past the app's client_max_size)."""
    try:
        async with asyncio.timeout(timeout):
            body = await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text=f"the request body did not arrive within {timeout:g} s") from None
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(text="body is not valid JSON: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(
            text=f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise web.HTTPBadRequest(text="body is not valid JSON: arrays or objects nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise web.HTTPBadRequest(text=f"body is not valid JSON: {exc}") from None
