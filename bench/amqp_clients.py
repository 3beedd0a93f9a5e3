"""A minimal AMQP 0-9-1 consumer for the bench: handshake and setup through pamqp, then frame counting.

After basic.consume, every delivery is three frames (method, header, body);
the consumer walks frame headers (type, channel, size) and counts body frames
without decoding anything, so it costs the load generator about a microsecond
per message. No-ack mode: the figure is delivery throughput, as QoS 0 is for MQTT.
"""

from __future__ import annotations

import asyncio
import socket

from pamqp import commands, frame, header

from bench.clients import Progress

_FRAME_HEADER = 7  # type (1) + channel (2) + size (4); then the payload and 0xCE


class AMQPCounter(asyncio.Protocol):
    """Connects and opens channel 1; with a binding key, consumes an exclusive queue on amq.topic
    without acks and counts bodies; without one, it is a publisher (`write` pre-encoded frames)."""

    def __init__(self, binding_key: str | None) -> None:
        self.binding_key = binding_key
        self._writable = asyncio.Event()
        self._writable.set()
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.get_running_loop().create_future()
        self.received = 0
        self.target = 0
        self.reached: asyncio.Future[None] | None = None
        self._buffer = bytearray()
        self._setup = True
        self._queue = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.write(frame.marshal(header.ProtocolHeader(), 0))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._setup:
            self._handshake()
        else:
            self._count()

    def expect(self, count: int) -> asyncio.Future[None]:
        self.target = count
        self.reached = asyncio.get_running_loop().create_future()
        self._check()
        return self.reached

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
        await self._writable.wait()

    def _send(self, value: object, channel: int = 0) -> None:
        assert self.transport is not None
        self.transport.write(frame.marshal(value, channel))  # type: ignore[arg-type]

    def _handshake(self) -> None:
        while self._setup and self._buffer:
            try:
                consumed, channel, value = frame.unmarshal(bytes(self._buffer))
            except Exception:  # pamqp raises on a partial frame: wait for more bytes
                return
            del self._buffer[:consumed]
            if isinstance(value, commands.Connection.Start):
                self._send(commands.Connection.StartOk(response="\0guest\0guest"))
            elif isinstance(value, commands.Connection.Tune):
                self._send(commands.Connection.TuneOk(value.channel_max, value.frame_max, 0))
                self._send(commands.Connection.Open("/"))
            elif isinstance(value, commands.Connection.OpenOk):
                self._send(commands.Channel.Open(), 1)
            elif isinstance(value, commands.Channel.OpenOk) and self.binding_key is None:
                self._setup = False
                self.ready.set_result(None)
            elif isinstance(value, commands.Channel.OpenOk):
                self._send(commands.Queue.Declare(exclusive=True), 1)
            elif isinstance(value, commands.Queue.DeclareOk):
                self._queue = value.queue
                self._send(commands.Queue.Bind(queue=self._queue, exchange="amq.topic", routing_key=self.binding_key), 1)
            elif isinstance(value, commands.Queue.BindOk):
                self._send(commands.Basic.Consume(queue=self._queue, no_ack=True), 1)
            elif isinstance(value, commands.Basic.ConsumeOk):
                self._setup = False
                self.ready.set_result(None)
                self._count()

    def _count(self) -> None:
        buf = self._buffer
        pos, size, bodies = 0, len(buf), 0
        while pos + _FRAME_HEADER <= size:
            end = pos + _FRAME_HEADER + int.from_bytes(buf[pos + 3 : pos + 7], "big") + 1
            if end > size:
                break
            if buf[pos] == 3:  # a body frame: one message (bodies fit one frame here)
                bodies += 1
            pos = end
        del buf[:pos]
        if bodies:
            self.received += bodies
            Progress.touch()
        self._check()

    def _check(self) -> None:
        if self.reached is not None and not self.reached.done() and self.received >= self.target:
            self.reached.set_result(None)


def publish_frames(routing_key: str, body: bytes, count: int) -> bytes:
    """`count` basic.publish messages to amq.topic on channel 1, pre-encoded back to back."""
    one = (
        frame.marshal(commands.Basic.Publish(exchange="amq.topic", routing_key=routing_key), 1)
        + frame.marshal(header.ContentHeader(0, len(body), commands.Basic.Properties()), 1)
        + frame.marshal(body_frame(body), 1)
    )
    return one * count


def body_frame(body: bytes):  # type: ignore[no-untyped-def]
    from pamqp.body import ContentBody

    return ContentBody(body)


async def open_amqp_counter(host: str, port: int, binding_key: str | None) -> AMQPCounter:
    loop = asyncio.get_running_loop()
    _, counter = await loop.create_connection(lambda: AMQPCounter(binding_key), host, port)
    await asyncio.wait_for(counter.ready, 30)
    return counter
