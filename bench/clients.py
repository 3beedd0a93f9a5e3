"""Minimal MQTT 3.1.1 load clients that cost the load generator as little as possible.

Every benchmark message has the same topic and payload size, so each PUBLISH a
subscriber receives has one known size: counting is a division, acknowledging
a QoS 1 message reads the packet id at a fixed offset, and a latency sample is
a timestamp at a fixed offset. Publishers write pre-encoded batches.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

from adapters.mqtt.codec import encode, encode_publish_parts
from adapters.mqtt.packets import Connect, Subscribe, SubscriptionRequest

STAMP = struct.Struct("!d")


class Progress:
    """When any receiving client last got messages (perf_counter), shared by a scenario's clients.

    Touched once per received chunk, not per message. A scenario whose deliveries
    stop short (QoS 0 dropped for a slow consumer) is timed up to its last delivery,
    not up to its timeout.
    """

    last = 0.0

    @classmethod
    def touch(cls) -> None:
        cls.last = time.perf_counter()


def publish_size(topic: str, payload_size: int, qos: int) -> int:
    head, tail = encode_publish_parts(topic, b"\0" * payload_size, qos, False, False, b"", 4)
    return len(head) + len(tail) + (2 if qos else 0)


class BenchClient(asyncio.Protocol):
    """One MQTT connection: CONNECT, optional SUBSCRIBE, then counts fixed-size PUBLISHes."""

    def __init__(
        self, client_id: str, *, message_size: int = 0, payload_size: int = 0, qos: int = 0, latency: bool = False,
        clean_session: bool = True,
    ) -> None:
        self.client_id = client_id
        self.clean_session = clean_session  # False: a persistent session (the broker stores its state)
        self.message_size = message_size  # size of one expected inbound PUBLISH
        self.payload_size = payload_size
        self.qos = qos
        self.latency = latency
        self.transport: asyncio.Transport | None = None
        self.connected = asyncio.get_running_loop().create_future()
        self.subscribed = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.received = 0
        self.acks_received = 0
        self.latencies: list[float] = []
        self.target = 0
        self.reached: asyncio.Future[None] | None = None
        self._buffer = bytearray()
        self._handshake = True
        self._writable = asyncio.Event()
        self._writable.set()

    # -- asyncio ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(encode(Connect(self.client_id, clean_start=self.clean_session, keep_alive=0), 4))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self._handshake:
            self._buffer += data
            self._read_handshake()
            return
        self._count(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- control ---------------------------------------------------------------

    async def subscribe(self, topic_filter: str, qos: int) -> None:
        assert self.transport is not None
        self._handshake = True
        self.transport.write(encode(Subscribe(1, (SubscriptionRequest(topic_filter, qos),)), 4))
        await self.subscribed

    def expect(self, count: int) -> asyncio.Future[None]:
        """A future done once `count` PUBLISHes (or PUBACKs) have arrived."""
        self.target = count
        self.reached = asyncio.get_running_loop().create_future()
        self._check_target()
        return self.reached

    async def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if not self._writable.is_set():
            await self._writable.wait()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- parsing ---------------------------------------------------------------

    def _read_handshake(self) -> None:
        buf = self._buffer
        while len(buf) >= 2:
            size = 2 + buf[1]
            if len(buf) < size:
                return
            kind = buf[0] >> 4
            del buf[:size]
            if kind == 2:  # CONNACK
                self._handshake = False
                self.connected.set_result(None)
            elif kind == 9:  # SUBACK
                self._handshake = False
                self.subscribed.set_result(None)
            if not self._handshake:
                rest = bytes(buf)
                buf.clear()
                if rest:
                    self._count(rest)
                return

    def _count(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        size = self.message_size
        if size == 0:  # a publisher: counts its PUBACKs (4 bytes each)
            n = len(buf) // 4
            self.acks_received += n
            del buf[: n * 4]
            self._check_target()
            return
        n = len(buf) // size
        if n == 0:
            return
        if self.qos or self.latency:
            self._per_message(buf, n, size)
        del buf[: n * size]
        self.received += n
        Progress.touch()
        self._check_target()

    def _per_message(self, buf: bytearray, n: int, size: int) -> None:
        acks = bytearray()
        now = time.perf_counter()
        payload_at = size - self.payload_size  # offset of the payload in each packet
        for start in range(0, n * size, size):
            if self.qos:  # the packet id is the 2 bytes before the payload
                acks += b"\x40\x02" + buf[start + payload_at - 2 : start + payload_at]
            if self.latency:
                (sent,) = STAMP.unpack_from(buf, start + payload_at)
                self.latencies.append(now - sent)
        if acks and self.transport is not None:
            self.transport.write(bytes(acks))

    def _check_target(self) -> None:
        reached = self.reached
        if reached is not None and not reached.done():
            got = self.acks_received if self.message_size == 0 else self.received
            if got >= self.target:
                reached.set_result(None)


def publish_batch(topic: str, payload: bytes, qos: int, count: int, first_id: int = 1) -> bytes:
    """`count` pre-encoded PUBLISH packets back to back (packet ids from `first_id`, wrapping)."""
    head, tail = encode_publish_parts(topic, payload, qos, False, False, b"", 4)
    if qos == 0:
        return (head + tail) * count
    parts = []
    for i in range(count):
        packet_id = (first_id + i - 1) % 65535 + 1
        parts.append(head + packet_id.to_bytes(2, "big") + tail)
    return b"".join(parts)


async def open_client(host: str, port: int, client_id: str, **kwargs: object) -> BenchClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: BenchClient(client_id, **kwargs), host, port)  # type: ignore[arg-type]
    await asyncio.wait_for(client.connected, 30)
    return client
