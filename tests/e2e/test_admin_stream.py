"""``GET /api/v1/stream`` (issue 20): live messages matching a filter as server-sent events, through a router tap."""

from __future__ import annotations

from http.client import HTTPConnection
import json
from typing import Iterator

import pytest

from core.message import Message
from gateway.http.stream import StreamTap
from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import TIMEOUT, admin_gateway, http
from tests.e2e.clients import PahoClient

TOKEN = "stream-token"


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = admin_gateway(http={"api_token": TOKEN})
    try:
        yield running
    finally:
        running.stop()


class EventStream:
    """One SSE connection read event by event (blocking, with a timeout)."""

    def __init__(self, gateway: RunningGateway, path: str) -> None:
        self.connection = HTTPConnection(LOOPBACK, gateway.gateway.ports["http"], timeout=TIMEOUT)
        self.connection.request("GET", path)
        self.response = self.connection.getresponse()

    def next(self) -> tuple[str, dict]:
        name, data = "message", None
        while True:
            line = self.response.readline().decode().rstrip("\n")
            assert line or data is not None or name, "stream ended"
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                return name, data

    def close(self) -> None:
        self.connection.close()


def test_a_stream_delivers_the_messages_its_filter_matches(gateway: RunningGateway) -> None:
    events = EventStream(gateway, f"/api/v1/stream?filter=lwm2m/%2B/up/%23&access_token={TOKEN}")
    publisher = PahoClient(gateway.mqtt_port, "stream-publisher", "5").connect()
    try:
        assert events.response.status == 200
        assert events.response.getheader("Content-Type") == "text/event-stream"
        publisher.publish("lwm2m/ep-1/dn", b"not this one", qos=1)
        publisher.publish("lwm2m/ep-1/up/notify", b'{"value": 1}', qos=1)
        name, data = events.next()
        assert name == "message"
        assert (data["topic"], data["payload"], data["origin"]) == ("lwm2m/ep-1/up/notify", '{"value": 1}', "mqtt")
        publisher.publish("lwm2m/ep-2/up/resp", b"\xff", qos=0)
        assert events.next()[1]["payload_encoding"] == "base64"
        subscriptions = http(gateway, "GET", "/api/v1/subscriptions", token=TOKEN).json()["subscriptions"]
        assert [s for s in subscriptions if s["topic"].startswith("lwm2m/")] == []  # a tap, not a subscriber
    finally:
        publisher.close()
        events.close()


def test_a_stream_needs_credentials_and_a_valid_filter(gateway: RunningGateway) -> None:
    assert http(gateway, "GET", "/api/v1/stream?filter=a/%23").status == 401
    assert http(gateway, "GET", "/api/v1/stream?filter=a/%23/b", token=TOKEN).status == 400
    assert http(gateway, "GET", "/api/v1/stream?filter=%24share/g/a", token=TOKEN).status == 400


def test_a_tap_keeps_a_bounded_number_of_messages_and_counts_the_rest() -> None:
    tap = StreamTap("a/#", size=2)
    for topic in ("a/1", "b/1", "a/2", "a/3", "a"):
        tap(Message(topic, b"x"))
    assert [m.topic for m in tap.messages] == ["a/1", "a/2"] and tap.dropped == 2
