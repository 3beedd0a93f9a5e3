"""Secrets kept out of logs: one place that masks them in URLs, queries, CoAP Uri-Query and headers.

Every log line that shows something a client sent as a URL or a query goes
through here first (the HTTP access log, the WebSocket upgrade, CoAP and
LwM2M). A parameter whose name (percent-decoded, any case) is in
`SECRET_NAMES` keeps its name and loses its value: ``access_token=***``.
Userinfo in a URL (``mqtt://user:pw@host``) loses its password. Headers in
`SECRET_HEADERS` are never shown. Pure functions, no I/O; `RedactFilter` does
the same to a library logger's records.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable, Mapping
from urllib.parse import unquote_plus

__all__ = ["MASK", "RedactFilter", "SECRET_HEADERS", "SECRET_NAMES", "is_secret_name", "redact_headers", "redact_params",
           "redact_query", "redact_text", "redact_url"]

MASK = "***"
# Query parameter names that carry a credential (EMQX's CoAP `p`/`t`, browsers' `access_token`...).
SECRET_NAMES = frozenset({
    "access_token", "token", "t", "p", "password", "pass", "passwd", "pwd", "secret", "client_secret",
    "api_key", "apikey", "key", "auth", "authorization", "psk", "private_key", "refresh_token", "id_token",
    "signature", "sig",
})
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
_PAIR = re.compile(r"([^&;=?#\s\"']+)=([^&;#\s\"']*)")
_USERINFO = re.compile(r"(//[^/@:\s]*):[^/@\s]*@")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter called `name` (as sent: maybe percent-encoded) carries a secret."""
    return unquote_plus(name).strip().lower() in SECRET_NAMES


def _mask_pair(match: re.Match[str]) -> str:
    return f"{match.group(1)}={MASK}" if is_secret_name(match.group(1)) else match.group(0)


def redact_query(query: str) -> str:
    """``a=1&access_token=abc`` -> ``a=1&access_token=***`` (``&`` and ``;`` both separate)."""
    return _PAIR.sub(_mask_pair, query)


def redact_url(url: str) -> str:
    """A URL or a request target (``/path?query#fragment``) with its secrets masked; the path is kept."""
    url = _USERINFO.sub(rf"\1:{MASK}@", url)
    head, sep, rest = url.partition("?")
    return head + sep + redact_query(rest) if sep else url


def redact_params(parts: Iterable[str]) -> list[str]:
    """CoAP Uri-Query options (``name=value`` each) with secret values masked."""
    out = []
    for part in parts:
        name, sep, _ = part.partition("=")
        out.append(f"{name}={MASK}" if sep and is_secret_name(name) else part)
    return out


def redact_text(text: str) -> str:
    """Free text (an error message quoting a request line) with every ``secret=value`` masked."""
    return _PAIR.sub(_mask_pair, _USERINFO.sub(rf"\1:{MASK}@", text))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers fit to log: credentials (Authorization, cookies, API keys) become ``***``."""
    return {name: MASK if name.lower() in SECRET_HEADERS else value for name, value in headers.items()}


_HEADER_LINE = re.compile(r"^([<>] )?([A-Za-z0-9-]+):\s*(.*)$", re.DOTALL)


class RedactFilter(logging.Filter):
    """For a library's logger that prints requests (websockets' handshake debug lines): each record's
    message is rewritten with its secrets masked, a credential header line as ``Authorization: ***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        header = _HEADER_LINE.match(message)
        if header is not None and header.group(2).lower() in SECRET_HEADERS:
            clean = f"{header.group(1) or ''}{header.group(2)}: {MASK}"
        else:
            clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True
