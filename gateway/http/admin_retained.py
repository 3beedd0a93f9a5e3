"""``GET /api/v1/retained/value?topic=T``: one retained message whole, for the management UI (issue 20).

The payload is always base64 (``payload_encoding`` "base64"), with ``payload_text``
beside it when it is valid UTF-8 (the UI shows text, pretty JSON or hex), and
every property: content type, response topic, correlation data (base64), user
properties, the payload format indicator and the seconds left before it expires.
404 when the topic holds no retained message.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from core.message import Message
from core.topics import InvalidTopic, validate_topic_name

from gateway.http.admin import message_json
from gateway.http.keys import GATEWAY


def message_detail(message: Message) -> dict[str, Any]:
    """`message_json`'s fields with the payload in base64, its text when UTF-8, and the properties."""
    body = message_json(message)
    body.update(payload=base64.b64encode(message.payload).decode(), payload_encoding="base64",
                payload_bytes=len(message.payload), retain=message.retain)
    try:
        body["payload_text"] = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    correlation = message.correlation_data
    body["properties"] = {
        "content_type": message.content_type, "response_topic": message.response_topic,
        "correlation_data": None if correlation is None else base64.b64encode(correlation).decode(),
        "user_properties": [list(pair) for pair in message.user_properties],
        "payload_format_utf8": message.payload_format_utf8,
        "message_expiry_interval": message.remaining_expiry(),
    }
    return body


async def get_retained_value(request: web.Request) -> web.Response:
    topic = request.query.get("topic")
    if not topic:
        raise web.HTTPBadRequest(text="topic is required")
    try:
        validate_topic_name(topic)
    except InvalidTopic as exc:
        raise web.HTTPBadRequest(text=f"invalid topic: {exc}") from None
    message = request.app[GATEWAY].broker.router.retained.get(topic)
    if message is None:
        raise web.HTTPNotFound(text=f"no retained message on {topic!r}")
    return web.json_response(message_detail(message))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/retained/value", get_retained_value)
