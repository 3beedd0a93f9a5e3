"""The bench's MQTT clients over WebSocket: the same counting client, framed by websockets' sans-I/O client.

`WSLink` is the asyncio protocol on the socket: it performs the upgrade, then
wraps every write of the inner `BenchClient` in one binary frame and unwraps
every binary frame it receives into the client's `data_received`.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from bench.clients import BenchClient


class _FramingTransport:
    """What the inner client believes is its transport: writes become WebSocket frames."""

    def __init__(self, link: "WSLink") -> None:
        self._link = link

    def write(self, data: bytes) -> None:
        self._link.ws.send_binary(data)
        self._link.flush()

    def close(self) -> None:
        self._link.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return None if name == "socket" else self._link.transport.get_extra_info(name, default)


class WSLink(asyncio.Protocol):
    """One WebSocket connection carrying one `BenchClient`."""

    def __init__(self, uri: str, client: BenchClient) -> None:
        self.ws = ClientProtocol(parse_uri(uri), subprotocols=[Subprotocol("mqtt")], max_size=None)
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.open = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Response):
                if event.status_code != 101:
                    self.open.set_exception(ConnectionError(f"upgrade refused: {event.status_code}"))
                    return
                self.client.connection_made(_FramingTransport(self))  # type: ignore[arg-type]
                self.open.set_result(None)
            elif event.opcode is Opcode.BINARY or event.opcode is Opcode.CONT:
                self.client.data_received(event.data)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.connection_lost(exc)

    def pause_writing(self) -> None:
        self.client.pause_writing()

    def resume_writing(self) -> None:
        self.client.resume_writing()

    def flush(self) -> None:
        if self.transport is not None:
            for chunk in self.ws.data_to_send():
                if chunk:
                    self.transport.write(chunk)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_ws_client(host: str, port: int, path: str, client_id: str, **kwargs: Any) -> BenchClient:
    loop = asyncio.get_running_loop()
    client = BenchClient(client_id, **kwargs)
    _, link = await loop.create_connection(lambda: WSLink(f"ws://{host}:{port}{path}", client), host, port)
    await asyncio.wait_for(link.open, 30)
    await asyncio.wait_for(client.connected, 30)
    return client
