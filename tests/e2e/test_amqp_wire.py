"""AMQP over a real socket with a hand-driven client: bad input closes only its own connection."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from pamqp import commands as c, frame as pamqp_frame
from pamqp.heartbeat import Heartbeat

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.amqp_support import TIMEOUT, amqp_gateway, amqp_port, connect, unique

__all__ = ["amqp_gateway"]

HEADER = b"AMQP\x00\x00\x09\x01"


class RawClient:
    """A socket speaking AMQP frame by frame (pamqp encodes and decodes)."""

    def __init__(self, gateway: RunningGateway) -> None:
        self.sock = socket.create_connection((LOOPBACK, amqp_port(gateway)), timeout=TIMEOUT)
        self.buffer = b""

    def send(self, channel: int, *methods: Any) -> None:
        self.sock.sendall(b"".join(pamqp_frame.marshal(m, channel) for m in methods))

    def read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def frame(self) -> Any:
        """The next frame (heartbeats included)."""
        head = self.read_exactly(7)
        size = struct.unpack(">I", head[3:7])[0]
        _, _, value = pamqp_frame.unmarshal(head + self.read_exactly(size + 1))
        return value

    def method(self) -> Any:
        while True:
            value = self.frame()
            if not isinstance(value, Heartbeat):
                return value

    def closed_by_server(self) -> bool:
        """True once the server has closed the socket (reads until EOF, with the socket's timeout)."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return True

    def handshake(self, *, heartbeat: int = 0, frame_max: int = 131072) -> None:
        self.sock.sendall(HEADER)
        assert isinstance(self.method(), c.Connection.Start)
        self.send(0, c.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0guest\0guest"))
        assert isinstance(self.method(), c.Connection.Tune)
        self.send(0, c.Connection.TuneOk(channel_max=16, frame_max=frame_max, heartbeat=heartbeat),
                  c.Connection.Open(virtual_host="/"))
        assert isinstance(self.method(), c.Connection.OpenOk)
        self.send(1, c.Channel.Open())
        assert isinstance(self.method(), c.Channel.OpenOk)

    def close(self) -> None:
        self.sock.close()


def healthy_round_trip(gateway: RunningGateway) -> None:
    with connect(gateway) as conn:
        ch = conn.channel()
        queue = unique("healthy")
        ch.queue_declare(queue)
        ch.basic_publish("", queue, b"still fine")
        assert ch.basic_get(queue, auto_ack=True)[2] == b"still fine"


def test_a_wrong_protocol_header_gets_our_header_back_and_the_socket_closes(amqp_gateway: RunningGateway) -> None:
    client = RawClient(amqp_gateway)
    client.sock.sendall(b"AMQP\x00\x00\x08\x00")
    assert client.read_exactly(8) == HEADER
    assert client.closed_by_server()
    client.close()


def test_a_malformed_frame_closes_that_connection_with_501_and_no_other(amqp_gateway: RunningGateway) -> None:
    with connect(amqp_gateway) as bystander:
        channel = bystander.channel()
        client = RawClient(amqp_gateway)
        client.handshake()
        bad = bytearray(pamqp_frame.marshal(c.Queue.Declare(queue="q"), 1))
        bad[-1] = 0x55  # not the frame-end octet
        client.sock.sendall(bytes(bad))
        close = client.method()
        assert isinstance(close, c.Connection.Close) and close.reply_code == 501
        assert client.closed_by_server()
        client.close()
        assert channel.queue_declare(unique("after"), exclusive=True).method.message_count == 0
    healthy_round_trip(amqp_gateway)


def test_a_frame_above_frame_max_closes_that_connection_with_501(amqp_gateway: RunningGateway) -> None:
    client = RawClient(amqp_gateway)
    client.handshake(frame_max=4096)
    client.send(1, c.Basic.Publish(exchange="", routing_key="q"))
    client.sock.sendall(struct.pack(">BHI", 2, 1, 8000) + b"\x00" * 8000 + b"\xce")
    close = client.method()
    assert isinstance(close, c.Connection.Close) and close.reply_code == 501
    assert "frame_max" in close.reply_text
    assert client.closed_by_server()
    client.close()
    healthy_round_trip(amqp_gateway)


def test_content_out_of_sequence_closes_with_505_after_close_ok(amqp_gateway: RunningGateway) -> None:
    client = RawClient(amqp_gateway)
    client.handshake()
    client.sock.sendall(struct.pack(">BHI", 3, 1, 3) + b"abc\xce")  # a body with no publish before it
    close = client.method()
    assert isinstance(close, c.Connection.Close) and close.reply_code == 505
    client.send(0, c.Connection.CloseOk())
    assert client.closed_by_server()
    client.close()
    healthy_round_trip(amqp_gateway)


def test_a_heartbeat_timeout_closes_a_silent_connection(amqp_gateway: RunningGateway) -> None:
    client = RawClient(amqp_gateway)
    started = time.monotonic()
    client.handshake(heartbeat=1)
    beats = 0
    try:
        while True:
            if isinstance(client.frame(), Heartbeat):
                beats += 1
    except EOFError:
        pass
    elapsed = time.monotonic() - started
    assert beats >= 1  # the server kept its side alive
    assert 1.9 <= elapsed < TIMEOUT  # and dropped us after two silent intervals
    client.close()
    healthy_round_trip(amqp_gateway)
