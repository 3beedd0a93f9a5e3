"""Query parameters the management UI's lists share: ``q``, ``offset`` and ``limit`` (issue 20)."""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

from aiohttp import web

T = TypeVar("T")
MAX_LIMIT = 1000


def paging(request: web.Request) -> tuple[str | None, int, int | None]:
    """(q, offset, limit): `limit` absent is None (everything); 1..1000 when given; else a 400."""
    q = request.query.get("q") or None
    offset = _integer(request, "offset", 0)
    if offset < 0:
        raise web.HTTPBadRequest(text="offset must be a non-negative integer")
    limit: int | None = None
    if "limit" in request.query:
        limit = _integer(request, "limit", 0)
        if not 1 <= limit <= MAX_LIMIT:
            raise web.HTTPBadRequest(text=f"limit must be an integer from 1 to {MAX_LIMIT}")
    return q, offset, limit


def _integer(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None


def matches(q: str | None, *fields: Any) -> bool:
    """True if `q` is None or a case-insensitive substring of one of `fields`."""
    if not q:
        return True
    needle = q.casefold()
    return any(field is not None and needle in str(field).casefold() for field in fields)


def window(rows: Sequence[T], offset: int, limit: int | None) -> list[T]:
    return list(rows[offset:None if limit is None else offset + limit])


def listing(key: str, rows: list[Any], total: int, offset: int, limit: int | None, **extra: Any) -> dict[str, Any]:
    """The JSON body of a paged list: ``{key: rows, "count", "total", "offset", "limit"}``."""
    return {key: rows, "count": len(rows), "total": total, "offset": offset, "limit": limit, **extra}
