"""A raw MQTT client over a socket, for wire-level tests: send any bytes, read decoded packets."""

from __future__ import annotations

import socket
import threading
from typing import Any

from adapters.mqtt.codec import MQTTDecoder, encode
from adapters.mqtt.packets import Connect, Packet, PubAck, Publish


class WireClient:
    """Blocking socket + our decoder; every read has a timeout so a test never hangs."""

    def __init__(self, port: int, level: int = 5, host: str = "127.0.0.1", timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.level = level
        self.decoder = MQTTDecoder()
        self.decoder.protocol_level = level

    def send(self, packet: Packet) -> None:
        self.sock.sendall(encode(packet, self.level))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def connect(self, client_id: str = "wire", **fields: Any) -> Packet:
        fields.setdefault("protocol_level", self.level)
        if self.level == 3:
            fields.setdefault("protocol_name", "MQIsdp")
        self.send(Connect(client_id=client_id, **fields))
        return self.recv()

    def recv(self) -> Packet:
        """The next packet; raises ConnectionError if the server closes first, TimeoutError if silent."""
        while True:
            packet = self.decoder.next_packet()
            if packet is not None:
                return packet
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.decoder.feed(data)

    def closed_by_server(self) -> bool:
        """True once the server has closed: EOF (after reading any packets left)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.decoder.feed(data)
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "WireClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_in_background(client: WireClient, data: bytes) -> None:
    """Send `data` from a thread, so the test can read meanwhile; the test may close the socket
    before all of it is taken."""
    def send() -> None:
        try:
            client.send_raw(data)
        except OSError:
            pass
    threading.Thread(target=send, daemon=True).start()


def qos1_burst(pub: WireClient, sub: WireClient, topic: str, count: int) -> tuple[list[int], list[Packet]]:
    """`pub` sends `count` QoS 1 PUBLISHes on `topic` at once, numbered 0.. in their payloads, while
    `sub` (subscribed at QoS 1, at level 4) reads and acknowledges each: the numbers `sub` got, in
    order, and what `pub` got back for them."""
    burst = b"".join(encode(Publish(topic, str(i).encode(), qos=1, packet_id=i % 65535 + 1), 4)
                     for i in range(count))
    send_in_background(pub, burst)
    return read_numbered_qos1(sub, count), [pub.recv() for _ in range(count)]


def read_numbered_qos1(sub: WireClient, count: int) -> list[int]:
    """Read `count` QoS 1 PUBLISHes numbered in their payloads, acknowledging each: the numbers, in order."""
    received = []
    while len(received) < count:
        packet = sub.recv()
        assert isinstance(packet, Publish), packet
        received.append(int(packet.payload))
        sub.send(PubAck(packet.packet_id))  # type: ignore[arg-type]
    return received
