"""Live data for the console: ``GET /api/v1/events``, server-sent events once a second.

Each ``stats`` event is the `/api/v1/stats` summary plus message rates per
protocol pair (deliveries per second since the previous event) and the
busiest topics. Topics are counted by a `TopicWatcher`, a router tap (it sees
every publish without being a subscriber, so deliveries and "no subscribers"
answers are unchanged) installed only while at least one event stream is
open: a gateway nobody watches pays nothing for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from core.message import Message

from gateway.http.admin import GATEWAY, message_json
from gateway.metrics import stats

if TYPE_CHECKING:
    from gateway.app import Gateway

PERIOD = 1.0  # seconds between events
STOP: web.AppKey[asyncio.Event] = web.AppKey("events-stop")  # set at shutdown: streams end at once
MAX_TOPICS = 2000  # topics the watcher remembers (the least recently seen go first)


class TopicWatcher:
    """Counts messages per topic and keeps the latest one (`$` topics left out)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.latest: dict[str, Message] = {}
        self.streams = 0

    def __call__(self, message: Message) -> None:
        topic = message.topic
        if topic.startswith("$"):
            return
        counts = self.counts
        if topic not in counts and len(counts) >= MAX_TOPICS:
            oldest = next(iter(self.latest))
            counts.pop(oldest, None)
            self.latest.pop(oldest, None)
        counts[topic] = counts.get(topic, 0) + 1
        self.latest.pop(topic, None)
        self.latest[topic] = message

    def top(self, n: int = 10) -> list[dict[str, Any]]:
        ranked = sorted(self.counts.items(), key=lambda item: -item[1])[:n]
        return [{"topic": topic, "messages": count} for topic, count in ranked]


def watcher(gateway: "Gateway") -> TopicWatcher:
    if gateway.topic_watcher is None:
        gateway.topic_watcher = TopicWatcher()
    return gateway.topic_watcher


def _attach(gateway: "Gateway") -> TopicWatcher:
    topic_watcher = watcher(gateway)
    if topic_watcher.streams == 0:
        gateway.broker.router.taps.append(topic_watcher)
    topic_watcher.streams += 1
    return topic_watcher


def _detach(gateway: "Gateway", topic_watcher: TopicWatcher) -> None:
    topic_watcher.streams -= 1
    if topic_watcher.streams == 0:
        gateway.broker.router.taps.remove(topic_watcher)


def snapshot(gateway: "Gateway", topic_watcher: TopicWatcher, previous: dict[str, Any] | None) -> dict[str, Any]:
    """One event's data: stats, per-pair rates since `previous`, top topics."""
    data = stats(gateway)
    data["time"] = time.time()
    rates: dict[str, float] = {}
    if previous is not None:
        elapsed = max(data["time"] - previous["time"], 1e-6)
        for pair, count in data["deliveries"].items():
            rates[pair] = round((count - previous["deliveries"].get(pair, 0)) / elapsed, 2)
    data["rates"] = rates
    data["top_topics"] = topic_watcher.top()
    return data


async def events(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    topic_watcher = _attach(gateway)
    previous: dict[str, Any] | None = None
    stop = request.app[STOP]
    try:
        while not stop.is_set():
            data = snapshot(gateway, topic_watcher, previous)
            previous = data
            await response.write(f"event: stats\ndata: {json.dumps(data)}\n\n".encode())
            try:  # the stream's pace; shutdown ends the wait at once
                await asyncio.wait_for(stop.wait(), PERIOD)
            except asyncio.TimeoutError:
                pass
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        _detach(gateway, topic_watcher)
    return response


async def get_topics(request: web.Request) -> web.Response:
    """The topic tree's leaves: every retained topic and every topic seen while a console watched."""
    gateway = request.app[GATEWAY]
    topics: dict[str, dict[str, Any]] = {}
    for message in gateway.broker.router.retained.match("#"):
        topics[message.topic] = {**message_json(message), "retained": True}
    topic_watcher = gateway.topic_watcher
    if topic_watcher is not None:
        for topic, message in topic_watcher.latest.items():
            entry = topics.get(topic)
            if entry is None:
                topics[topic] = {**message_json(message), "retained": False}
            entry = topics[topic]
            entry["messages"] = topic_watcher.counts.get(topic, 0)
    ordered = [topics[topic] for topic in sorted(topics)]
    return web.json_response({"topics": ordered, "count": len(ordered)})


async def _stop_streams(app: web.Application) -> None:
    app[STOP].set()


def add_routes(app: web.Application) -> None:
    app[STOP] = asyncio.Event()
    app.on_shutdown.append(_stop_streams)
    app.router.add_get("/api/v1/events", events)
    app.router.add_get("/api/v1/topics", get_topics)
