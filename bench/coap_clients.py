"""A CoAP publisher for the bench: CON POSTs to /ps/{topic} with a window of unanswered requests.

The request is encoded once by aiocoap; each datagram differs only in its
message id (bytes 2-3) and its 2-byte token (bytes 4-5), patched in place:
requests in flight together need distinct tokens (RFC 7252 section 5.3.1). Every ACK (the piggybacked 2.04)
opens the window for one more, so the gateway's UDP socket is never flooded
and the figure is a sustained rate, not a count of what survived a burst.
"""

from __future__ import annotations

import asyncio

from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type


class CoAPPublisher(asyncio.DatagramProtocol):
    """Sends `total` CON POSTs keeping at most `window` unanswered; counts the ACKs."""

    def __init__(self, topic: str, payload: bytes, total: int, window: int) -> None:
        request = Message(mtype=Type.CON, code=Code.POST, mid=0, token=b"\0\0", payload=payload,
                          uri_path=("ps", *topic.split("/")))
        self._template = bytearray(request.encode())
        self.total = total
        self.window = window
        self.sent = 0
        self.acked = 0
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def start(self) -> None:
        self._fill()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) >= 4 and (data[0] >> 4) & 3 == Type.ACK:
            self.acked += 1
            if self.acked >= self.total and not self.done.done():
                self.done.set_result(None)
            self._fill()

    def _fill(self) -> None:
        transport = self.transport
        assert transport is not None
        datagram = self._template
        while self.sent < self.total and self.sent - self.acked < self.window:
            self.sent += 1
            mid = self.sent & 0xFFFF
            datagram[2] = datagram[4] = mid >> 8
            datagram[3] = datagram[5] = mid & 0xFF
            transport.sendto(bytes(datagram))


async def open_coap_publisher(host: str, port: int, topic: str, payload: bytes, total: int, window: int) -> CoAPPublisher:
    loop = asyncio.get_running_loop()
    _, publisher = await loop.create_datagram_endpoint(
        lambda: CoAPPublisher(topic, payload, total, window), remote_addr=(host, port)
    )
    return publisher
