"""A bytes-only AMQP client for state-machine tests: pamqp frames in, the connection's bytes out."""

from __future__ import annotations

from typing import Any

from pamqp import commands as c, frame as pamqp_frame, header as pamqp_header, body as pamqp_body
from pamqp.heartbeat import Heartbeat

from adapters.amqp.broker import AMQPBroker
from adapters.amqp.connection import AMQPConnection
from adapters.amqp.frames import PROTOCOL_HEADER
from adapters.amqp.settings import AMQPSettings
from core.broker import Broker


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Wire:
    """One AMQPConnection driven by bytes, with a frame decoder for what it sends."""

    def __init__(self, settings: AMQPSettings | None = None, *, broker: AMQPBroker | None = None,
                 clock: Clock | None = None, wall: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.wall = wall or Clock(1_700_000_000.0)
        self.broker = broker or AMQPBroker(Broker(), settings or AMQPSettings(), clock=self.wall)
        self.conn = AMQPConnection(self.broker, peer="test", clock=self.clock)
        self._pending = b""

    def send_raw(self, data: bytes) -> None:
        self.conn.receive_data(data)

    def send(self, channel: int, *frames: Any) -> None:
        self.conn.receive_data(b"".join(pamqp_frame.marshal(f, channel) for f in frames))

    def publish(self, channel: int, exchange: str, routing_key: str, body: bytes,
                properties: c.Basic.Properties | None = None, chunk: int = 4000, **flags: Any) -> None:
        self.send(channel, c.Basic.Publish(exchange=exchange, routing_key=routing_key, **flags),
                  pamqp_header.ContentHeader(0, len(body), properties or c.Basic.Properties()),
                  *[pamqp_body.ContentBody(body[i : i + chunk]) for i in range(0, len(body), chunk)])

    def received(self) -> list[tuple[int, Any]]:
        """Every frame the server wrote since the last call, as (channel, pamqp frame)."""
        data = self._pending + self.conn.data_to_send()
        frames = []
        while data:
            if data.startswith(b"AMQP"):
                frames.append((0, data[:8]))
                data = data[8:]
                continue
            try:
                used, channel, value = pamqp_frame.unmarshal(data)
            except Exception:
                break
            frames.append((channel, value))
            data = data[used:]
        self._pending = data
        return frames

    def methods(self) -> list[Any]:
        return [f for _, f in self.received() if not isinstance(f, (bytes, Heartbeat))]

    def names(self) -> list[str]:
        return [getattr(f, "name", type(f).__name__) for _, f in self.received()]

    def handshake(self, *, heartbeat: int = 0, frame_max: int = 131072, vhost: str = "/",
                  capabilities: dict[str, Any] | None = None, user: str = "guest", password: str = "guest") -> None:
        self.send_raw(PROTOCOL_HEADER)
        caps = {"consumer_cancel_notify": True, "publisher_confirms": True, **(capabilities or {})}
        self.send(0, c.Connection.StartOk(client_properties={"capabilities": caps}, mechanism="PLAIN",
                                          response=f"\0{user}\0{password}", locale="en_US"))
        self.send(0, c.Connection.TuneOk(channel_max=2047, frame_max=frame_max, heartbeat=heartbeat))
        self.send(0, c.Connection.Open(virtual_host=vhost))
        names = self.names()
        assert names[-1] == "Connection.OpenOk", names

    def open_channel(self, number: int = 1) -> None:
        self.send(number, c.Channel.Open())
        assert self.names() == ["Channel.OpenOk"]
