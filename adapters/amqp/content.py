"""One AMQP message as queues hold it: where it was published, its properties and body.

A `Content` is shared by every queue a publish reaches; its encoded content
header is built on first delivery and reused for every consumer after that.
"""

from __future__ import annotations

from pamqp.commands import Basic

from adapters.amqp.frames import encode_address, encode_content, encode_properties


class Content:
    """Exchange, routing key, properties and body of one published message (treat as immutable)."""

    __slots__ = ("exchange", "routing_key", "properties", "body", "_header", "_frames", "_address")

    def __init__(self, exchange: str, routing_key: str, properties: Basic.Properties, body: bytes,
                 header: bytes | None = None) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.properties = properties
        self.body = body
        self._header = header  # the encoded content header payload, when already known
        self._frames: dict[tuple[int, int], bytes] = {}
        self._address: bytes | None = None

    @property
    def persistent(self) -> bool:
        return self.properties.delivery_mode == 2

    @property
    def headers(self) -> dict:
        return self.properties.headers or {}

    def header_payload(self) -> bytes:
        if self._header is None:
            self._header = encode_properties(self.properties, len(self.body))
        return self._header

    def address(self) -> bytes:
        """Exchange and routing key as basic.deliver ends with them, encoded once."""
        if self._address is None:
            self._address = encode_address(self.exchange, self.routing_key)
        return self._address

    def frames(self, channel: int, frame_max: int) -> bytes:
        """Content header and body frames for `channel`, encoded once per (channel, frame_max)."""
        key = (channel, frame_max)
        data = self._frames.get(key)
        if data is None:
            if len(self._frames) > 16:
                self._frames.clear()
            data = self._frames[key] = encode_content(channel, self.header_payload(), self.body, frame_max)
        return data

    def with_properties(self, properties: Basic.Properties, exchange: str | None = None,
                        routing_key: str | None = None) -> "Content":
        return Content(self.exchange if exchange is None else exchange,
                       self.routing_key if routing_key is None else routing_key, properties, self.body)
