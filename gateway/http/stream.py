"""``GET /api/v1/stream?filter=F``: the messages matching an MQTT filter, live, as server-sent events.

Each message is one ``message`` event whose data is `message_json`. Messages are
seen through a router tap (`StreamTap`), as the console's topic counter sees
them: not a subscriber, so no ACL check, retained message or delivery changes
because a browser watches. The tap only queues (at most `BUFFER` messages); a
browser that reads slower than messages come loses the newest ones, counted in
a ``dropped`` event (``{"dropped": total}``) sent before the next messages. A
comment line every `KEEPALIVE` seconds keeps idle proxies from closing the
stream; it ends when the client goes or the gateway shuts down. Like
``/api/v1/events``, it takes ``?access_token=`` (EventSource sends no headers).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque

from aiohttp import web

from core.message import Message
from core.filter_index import FilterIndex
from core.topics import InvalidTopic, validate_topic_filter

from gateway.http.admin import message_json
from gateway.http.events import STOP
from gateway.http.keys import GATEWAY

BUFFER = 1000  # messages waiting for one slow browser before the newest are dropped
KEEPALIVE = 15.0  # seconds between comment lines on an idle stream


class StreamTap:
    """A router tap that keeps the messages matching `topic_filter` for one stream, bounded."""

    def __init__(self, topic_filter: str, size: int = BUFFER) -> None:
        self.topic_filter = topic_filter
        self.index = FilterIndex.of([topic_filter])  # the core's one topic matcher
        self.size = size
        self.messages: deque[Message] = deque()
        self.dropped = 0
        self.arrived = asyncio.Event()

    def __call__(self, message: Message) -> None:
        if not self.index.matches(message.topic):
            return
        if len(self.messages) >= self.size:
            self.dropped += 1
        else:
            self.messages.append(message)
        self.arrived.set()


async def stream(request: web.Request) -> web.StreamResponse:
    topic_filter = request.query.get("filter", "#")
    try:
        validate_topic_filter(topic_filter)
    except InvalidTopic as exc:
        raise web.HTTPBadRequest(text=f"invalid topic filter: {exc}") from None
    if topic_filter.startswith("$share/"):
        raise web.HTTPBadRequest(text="a shared subscription filter cannot be watched")
    taps = request.app[GATEWAY].broker.router.taps
    stop = request.app[STOP]
    tap = StreamTap(topic_filter)
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    taps.append(tap)  # before the answer's head: what is published once the client has it is in the stream
    try:
        await response.prepare(request)
        reported = 0
        while not stop.is_set():
            if not tap.messages and tap.dropped == reported:
                tap.arrived.clear()
                waiters = [asyncio.ensure_future(tap.arrived.wait()), asyncio.ensure_future(stop.wait())]
                _, pending = await asyncio.wait(waiters, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
                if not tap.messages and tap.dropped == reported and not stop.is_set():
                    await response.write(b": keepalive\n\n")
                continue
            chunks = []
            if tap.dropped != reported:
                reported = tap.dropped
                chunks.append(f"event: dropped\ndata: {json.dumps({'dropped': reported})}\n\n")
            while tap.messages:
                chunks.append(f"event: message\ndata: {json.dumps(message_json(tap.messages.popleft()))}\n\n")
            await response.write("".join(chunks).encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        taps.remove(tap)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/stream", stream)
