"""Valid MQTT-over-WebSocket inputs: the HTTP upgrade on /mqtt, then masked client frames.

Two kinds of mutation reach the listener: byte mutations of the upgrade
request and of the frames (opcode, mask bit, payload length forms), and MQTT
mutations (fuzz.seeds.mqtt) framed correctly, so bad MQTT reaches the MQTT
decoder through a valid WebSocket stream.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from adapters.mqtt.codec import encode
from adapters.mqtt.packets import Connect

from fuzz.mutate import Case, Mutator, Seed, bad_length
from fuzz.seeds import http as http_seeds
from fuzz.seeds import mqtt as mqtt_seeds

BINARY, CONTINUATION, TEXT, CLOSE, PING, PONG = 0x2, 0x0, 0x1, 0x8, 0x9, 0xA


def upgrade(path: str = "/mqtt", subprotocol: str | None = "mqtt", extra: str = "") -> bytes:
    """An RFC 6455 opening handshake for MQTT over WebSocket."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


UPGRADES = (
    upgrade(),
    upgrade(subprotocol="mqttv3.1"),
    upgrade(subprotocol="mqtt, mqttv3.1"),
    upgrade("/mqtt?access_token=abc&x=1", extra="Origin: http://example.com\r\nX-Forwarded-For: 10.0.0.1\r\n"),
    upgrade(extra="Authorization: Bearer abc\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
    upgrade("/other"),
    upgrade(subprotocol=None),
)


def frame(payload: bytes, rng: random.Random, opcode: int = BINARY, fin: bool = True) -> bytes:
    """One masked client frame (RFC 6455 5.2), mask from `rng` so a seed reproduces it."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    mask = rng.randbytes(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def framed(chunks: Case, rng: random.Random) -> list[bytes]:
    """MQTT bytes as WebSocket frames: mostly one frame each, sometimes fragmented or joined."""
    out: list[bytes] = []
    for chunk in chunks:
        roll = rng.random()
        if roll < 0.15 and len(chunk) > 1:
            cut = rng.randrange(1, len(chunk))
            out += [frame(chunk[:cut], rng, fin=False), frame(chunk[cut:], rng, CONTINUATION)]
        elif roll < 0.2:
            out += [frame(b"ping", rng, PING), frame(chunk, rng)]
        else:
            out.append(frame(chunk, rng))
    return out


def seeds(rng: random.Random) -> list[Seed]:
    """Each upgrade alone, and the standard upgrade followed by framed MQTT flows and control frames."""
    out = [Seed((u,)) for u in UPGRADES]
    mqtt = mqtt_seeds.seeds()
    for seed in mqtt[::3]:
        out.append(Seed((UPGRADES[0], *(frame(c, rng) for c in seed.chunks)), keep=1))
    connect = frame(encode(Connect("fz-ws", keep_alive=5), 4), rng)
    out += [
        Seed((UPGRADES[0], connect, frame(b"", rng, PING), frame(b"", rng, PONG)), keep=1),
        Seed((UPGRADES[0], connect, frame(struct.pack(">H", 1000) + b"bye", rng, CLOSE)), keep=1),
        Seed((UPGRADES[0], connect, frame(b"text is not MQTT", rng, TEXT)), keep=1),
        *(Seed((UPGRADES[0], *framed(seed.chunks, rng)), keep=1) for seed in mqtt[1::9]),
    ]
    return out


def length_field(chunk: bytes, rng: random.Random, huge: bool) -> bytes:
    """A frame's payload length (7-bit, 16-bit or 64-bit form), or the upgrade's Content-Length."""
    if chunk.startswith(b"GET "):
        return http_seeds.length_field(chunk, rng, huge)
    if len(chunk) < 2:
        return chunk
    n7 = chunk[1] & 0x7F
    head, rest = (4, chunk[4:]) if n7 == 126 else (10, chunk[10:]) if n7 == 127 else (2, chunk[2:])
    current = len(rest) - 4
    if huge:
        claim = rng.choice((2**63 - 1, 2**63, 2**64 - 1, 2**32, 0x7FFFFFFF))
        return bytes([chunk[0], (chunk[1] & 0x80) | 127]) + struct.pack(">Q", claim) + rest
    n = bad_length(rng, False, current, 2**16 - 1)
    form = rng.choice((0, 1, 2))  # also non-minimal forms, which RFC 6455 5.2 forbids
    if form == 0 and n < 126:
        return bytes([chunk[0], (chunk[1] & 0x80) | n]) + rest
    if form == 1:
        return bytes([chunk[0], (chunk[1] & 0x80) | 126]) + struct.pack(">H", n) + rest
    return bytes([chunk[0], (chunk[1] & 0x80) | 127]) + struct.pack(">Q", n) + rest


@dataclass
class WSCases:
    """Inputs for the WebSocket listener: half frame-level mutations, half framed MQTT mutations."""

    rng: random.Random
    frames: Mutator = field(init=False)
    inner: Mutator = field(init=False)
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.frames = Mutator(self.rng, seeds(self.rng), length_field)
        self.inner = Mutator(self.rng, mqtt_seeds.seeds(), mqtt_seeds.length_field)
        self.counts = self.frames.counts
        self.inner.counts = self.counts

    def case(self) -> Case:
        if self.rng.random() < 0.5:
            return self.frames.case()
        self.counts["framed_mqtt"] = self.counts.get("framed_mqtt", 0) + 1
        return (self.rng.choice(UPGRADES[:3]), *framed(self.inner.case(), self.rng))
