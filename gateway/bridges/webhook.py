"""A bridge to an HTTP webhook, with aiohttp's client.

Each message matching ``out`` is POSTed as JSON (marks.py `webhook_json`: topic, payload as text
or base64, QoS, retain, properties, origin, timestamp) with the configured headers. With
``batch = 1`` the body is one object; with more, an array of up to `batch` messages, whatever is
waiting when the previous request ends (no waiting to fill a batch). One request at a time, so
messages arrive in order.

| answer                                   | what happens                                          |
|------------------------------------------|-------------------------------------------------------|
| 2xx                                      | acknowledged: removed from the queue                  |
| 408, 429, 5xx, no answer, timeout        | the upstream is unavailable: the same messages again  |
|                                          | after a backoff (exponential, with jitter)            |
| any other 4xx                            | refused: dropped and counted, one log line (retrying  |
|                                          | the same request cannot succeed)                      |

"Connected" means the server answers HTTP: each (re)connection first sends a HEAD to the URL, and
any answer will do.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from core.broker import Broker
from core.stores.base import Store

from gateway.bridges.base import Bridge, UpstreamError
from gateway.bridges.marks import webhook_json
from gateway.bridges.queue import Entry
from gateway.bridges.settings import HTTPBridgeSettings

log = logging.getLogger("rosettamq.bridge")

RETRY_STATUSES = frozenset((408, 429))


class UpstreamUnavailable(UpstreamError):
    """The webhook answered with a status that asks to try again later."""


class WebhookBridge(Bridge):
    """`[[bridge.http]]`: see the module docstring."""

    kind = "http"
    settings: HTTPBridgeSettings

    def __init__(self, settings: HTTPBridgeSettings, broker: Broker, node: str, store: Store | None) -> None:
        super().__init__(settings, broker, node, store)
        self.session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def connect(self) -> None:
        settings = self.settings
        connector = aiohttp.TCPConnector(ssl=settings.tls.context() if settings.secure else False)
        headers = {"User-Agent": "rosettamq-bridge", **dict(settings.headers)}
        self.session = aiohttp.ClientSession(connector=connector, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=settings.timeout))
        async with self.session.head(settings.url, allow_redirects=False) as response:
            await response.read()  # any answer: the server is there

    async def disconnect(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    async def _pump(self) -> None:
        """One request at a time, each with what is waiting (up to `batch` messages)."""
        while True:
            batch = [await self.next_entry()]
            while len(batch) < self.settings.batch:
                entry = self.queue.take()
                if entry is None:
                    break
                batch.append(entry)
            await self._post(batch)

    async def send(self, entry: Entry) -> None:
        await self._post([entry])

    async def _post(self, batch: list[Entry]) -> None:
        session = self.session
        if session is None:
            raise UpstreamError("not connected")
        documents = [webhook_json(self.outgoing(entry), entry.time) for entry in batch]
        body: Any = documents[0] if self.settings.batch == 1 else documents
        self.requests += 1
        async with session.post(self.settings.url, json=body) as response:
            text = await response.text(errors="replace")
            status = response.status
        if 200 <= status < 300:
            for entry in batch:
                self.acked(entry.seq)
        elif status in RETRY_STATUSES or status >= 500:
            raise UpstreamUnavailable(f"HTTP {status} {response.reason}: {text[:200]}")
        else:
            for entry in batch:
                self.refused(entry.seq, f"HTTP {status} {response.reason}: {text[:200]}")
