"""``GET /api/v1/history?minutes=60``: the metrics of the last hour, for the management UI's charts.

A `History` samples counters the gateway keeps anyway (`gateway.metrics.stats`)
every ``[http] history_interval`` seconds (10 by default) into a ring of one
hour, from the HTTP listener's start to its stop: no work per message. A sample
is ``{"time", "messages_in": {protocol: per second}, "messages_out": {protocol:
per second}, "connections": {protocol: n}, "queued": n}``, rates over the interval
before it; ``queued`` is messages waiting in MQTT sessions and AMQP queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from typing import TYPE_CHECKING, Any, AsyncIterator

from aiohttp import web

from gateway.http.keys import GATEWAY
from gateway.metrics import stats

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("rosettamq.http")
KEPT_SECONDS = 3600.0
MAX_SAMPLES = 36_000  # however small the interval
HISTORY: web.AppKey["History"] = web.AppKey("metrics-history")


class History:
    """A ring of samples, one per interval; `sample` takes the next from the counters' totals now."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: deque[dict[str, Any]] = deque(maxlen=min(MAX_SAMPLES, math.ceil(KEPT_SECONDS / interval)))
        self._previous: tuple[float, dict[str, float], dict[str, float]] | None = None

    def sample(self, gateway: "Gateway", now: float | None = None) -> dict[str, Any] | None:
        """Add a sample (None the first time: rates need a previous total)."""
        now = time.time() if now is None else now
        data = stats(gateway)
        received, sent = dict(data["messages_received"]), dict(data["messages_sent"])
        previous, self._previous = self._previous, (now, received, sent)
        if previous is None:
            return None
        elapsed = max(now - previous[0], 1e-6)
        queued = sum(data["queued"].values())
        if gateway.amqp is not None:
            queued += gateway.amqp.broker.held
        sample = {"time": round(now, 3), "messages_in": _rates(received, previous[1], elapsed),
                  "messages_out": _rates(sent, previous[2], elapsed),
                  "connections": {protocol: int(n) for protocol, n in data["connections"].items()},
                  "queued": int(queued)}
        self.samples.append(sample)
        return sample

    def since(self, start: float) -> list[dict[str, Any]]:
        return [sample for sample in self.samples if sample["time"] >= start]


def _rates(now: dict[str, float], before: dict[str, float], elapsed: float) -> dict[str, float]:
    return {protocol: round(max(0.0, count - before.get(protocol, 0)) / elapsed, 3) for protocol, count in now.items()}


async def _run(history: History, gateway: "Gateway") -> None:
    while True:
        try:
            history.sample(gateway)
        except Exception:  # a sample lost, never the sampler
            log.exception("metrics history sample failed")
        await asyncio.sleep(history.interval)


async def get_history(request: web.Request) -> web.Response:
    text = request.query.get("minutes", "60")
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not 0 < minutes <= KEPT_SECONDS / 60:
        raise web.HTTPBadRequest(text=f"minutes must be a number over 0, at most {KEPT_SECONDS / 60:g}")
    history = request.app[HISTORY]
    return web.json_response({"interval": history.interval, "samples": history.since(time.time() - minutes * 60)},
                             headers={"Cache-Control": "no-store"})


async def _sampler(app: web.Application) -> AsyncIterator[None]:
    """The sampler's life is the listener's (an aiohttp cleanup context)."""
    task = asyncio.get_running_loop().create_task(_run(app[HISTORY], app[GATEWAY]), name="metrics history")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def add_routes(app: web.Application) -> None:
    app[HISTORY] = History(app[GATEWAY].config.http.history_interval)
    app.cleanup_ctx.append(_sampler)
    app.router.add_get("/api/v1/history", get_history)
