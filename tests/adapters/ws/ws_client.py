"""A raw MQTT-over-WebSocket client for wire-level tests: our codec's bytes in frames we choose.

Built on websockets' threading client, which answers pings by itself. Every
read has a timeout; `close_frame()` waits for the server's close frame.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Iterable

from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.sync.client import ClientConnection, connect

from adapters.mqtt.codec import MQTTDecoder, encode
from adapters.mqtt.packets import Packet

HOST = "127.0.0.1"
TIMEOUT = 5.0


class WSClient:
    """One WebSocket connection carrying MQTT at protocol `level` (4 = 3.1.1, 5 = 5.0)."""

    def __init__(
        self,
        port: int,
        *,
        level: int = 4,
        path: str = "/mqtt",
        subprotocols: Iterable[str] = ("mqtt",),
        headers: dict[str, str] | None = None,
        origin: str | None = None,
        sock: socket.socket | None = None,
        **options: Any,
    ) -> None:
        self._exit = contextlib.ExitStack()  # connect() is meant to be used as a context manager
        self.ws: ClientConnection = self._exit.enter_context(connect(
            f"ws://{HOST}:{port}{path}",
            sock=sock,
            subprotocols=list(subprotocols) or None,  # type: ignore[arg-type]
            additional_headers=headers,
            origin=origin,  # type: ignore[arg-type]
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
            proxy=None,  # loopback only, whatever the environment says
            compression=None,
            max_size=None,
            **options,
        ))
        self.level = level
        self.decoder = MQTTDecoder()
        self.decoder.protocol_level = level

    def encode(self, *packets: Packet) -> bytes:
        return b"".join(encode(packet, self.level) for packet in packets)

    def send(self, *packets: Packet) -> None:
        """All packets in one binary frame."""
        self.ws.send(self.encode(*packets))

    def send_bytes(self, data: bytes | str) -> None:
        self.ws.send(data)

    def send_fragments(self, parts: list[bytes]) -> None:
        """One binary message made of several frames (the first BINARY, then CONT)."""
        self.ws.send(parts)

    def recv(self, timeout: float = TIMEOUT) -> Packet:
        """The next MQTT packet, however the server framed it."""
        while True:
            packet = self.decoder.next_packet()
            if packet is not None:
                return packet
            data = self.ws.recv(timeout=timeout)
            assert isinstance(data, bytes), f"the server sent a text frame: {data!r}"
            self.decoder.feed(data)

    def close_frame(self, timeout: float = TIMEOUT) -> Close:
        """Read until the server closes; return its close frame (fails if it sent none)."""
        try:
            while True:
                self.ws.recv(timeout=timeout)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "the server closed the TCP connection without a close frame"
            return closed.rcvd

    def close(self) -> None:
        self._exit.close()

    def __enter__(self) -> "WSClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
