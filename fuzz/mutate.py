"""Byte mutations of valid seed inputs, driven by one seeded `random.Random`.

An input is a `Case`: the chunks one connection sends in order (over TCP they
are written back to back; over UDP each chunk is one datagram). A `Seed` is a
valid case; its first `keep` chunks open a session (an MQTT CONNECT, the AMQP
handshake, a WebSocket upgrade) and are mutated less often, so most
mutations reach the packet handlers behind the login.

Mutations: bit flips, interesting bytes, byte insert/delete, range duplication,
splice with another seed's chunk, length-field corruption and huge length
claims (through the protocol's `LengthField`), truncation, repeated chunks,
and random bytes. The same seed (and the same calls) gives the same inputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

Case = tuple[bytes, ...]
# (chunk, rng, huge) -> the chunk with one length field rewritten (huge: a claim far past any limit).
LengthField = Callable[[bytes, random.Random, bool], bytes]

T = TypeVar("T")
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0x20, 0x2F, 0x23, 0x2B)


@dataclass(frozen=True)
class Seed:
    """A valid input of one protocol: `chunks`, the first `keep` of which open the session."""

    chunks: Case
    keep: int = 0


@dataclass
class Mutator:
    """Mutates seeds into inputs; `length_field` knows where the protocol keeps its lengths."""

    rng: random.Random
    seeds: Sequence[Seed]
    length_field: LengthField | None = None
    max_repeat: int = 200
    max_repeat_bytes: int = 256 * 1024
    counts: dict[str, int] = field(default_factory=dict)  # how often each mutation was applied

    def case(self) -> Case:
        """One mutated input from a random seed."""
        seed = self.rng.choice(self.seeds)
        chunks = list(seed.chunks)
        if self.rng.random() < 0.03:
            return self._count("random", (self.random_bytes(),))
        targets = range(len(chunks)) if seed.keep == 0 or self.rng.random() < 0.2 else range(seed.keep, len(chunks))
        if not targets:
            targets = range(len(chunks))
        for _ in range(1 + (self.rng.random() < 0.3) + (self.rng.random() < 0.1)):
            index = self.rng.choice(targets)
            chunks[index : index + 1] = self.chunk(chunks[index])
        if self.rng.random() < 0.05:
            cut = self.rng.randrange(len(chunks) + 1)
            chunks = chunks[:cut]
        return tuple(chunks)

    def chunk(self, data: bytes) -> list[bytes]:
        """One chunk mutated once; a list because `repeat` makes several."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.06:
            most = max(2, min(self.max_repeat, self.max_repeat_bytes // max(1, len(data))))
            return self._count("repeat", [data] * rng.randint(2, most))
        if roll < 0.16 and self.length_field is not None:
            huge = rng.random() < 0.3
            return [self._count("huge_length" if huge else "length", self.length_field(data, rng, huge))]
        if roll < 0.22:
            return [self._count("truncate", data[: rng.randrange(len(data) + 1)])]
        if roll < 0.28:
            return [self._count("splice", self.splice(data))]
        operation = rng.choice(self.BYTE_OPERATIONS)
        out = bytearray(data)
        for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
            operation(self, out)
        return [self._count(operation.__name__.lstrip("_"), bytes(out))]

    # -- byte operations on a bytearray ------------------------------------------------------

    def _bit_flip(self, out: bytearray) -> None:
        if out:
            out[self.rng.randrange(len(out))] ^= 1 << self.rng.randrange(8)

    def _interesting_byte(self, out: bytearray) -> None:
        if out:
            out[self.rng.randrange(len(out))] = self.rng.choice(INTERESTING)

    def _insert(self, out: bytearray) -> None:
        at = self.rng.randrange(len(out) + 1)
        out[at:at] = self.rng.randbytes(self.rng.choice((1, 1, 2, 4, 16, 100)))

    def _delete(self, out: bytearray) -> None:
        if out:
            at = self.rng.randrange(len(out))
            del out[at : at + self.rng.choice((1, 1, 2, 4, 16))]

    def _duplicate(self, out: bytearray) -> None:
        if out:
            at = self.rng.randrange(len(out))
            piece = out[at : at + self.rng.randint(1, 32)]
            out[at:at] = piece * self.rng.randint(1, 8)

    BYTE_OPERATIONS = (_bit_flip, _bit_flip, _interesting_byte, _insert, _delete, _duplicate)

    # -- whole-chunk mutations ------------------------------------------------------------------

    def splice(self, data: bytes) -> bytes:
        """The head of `data` joined to the tail of a chunk of another (or the same) seed."""
        other = self.rng.choice(self.rng.choice(self.seeds).chunks)
        return data[: self.rng.randrange(len(data) + 1)] + other[self.rng.randrange(len(other) + 1) :]

    def random_bytes(self) -> bytes:
        return random_bytes(self.rng)

    def _count(self, name: str, value: T) -> T:
        self.counts[name] = self.counts.get(name, 0) + 1
        return value


def random_bytes(rng: random.Random) -> bytes:
    """Noise of a random size, from nothing to a full datagram."""
    return rng.randbytes(rng.choice((0, 1, 2, 5, 8, 16, 64, 300, 1400)))


def bad_length(rng: random.Random, huge: bool, current: int, limit: int) -> int:
    """A corrupted length: off by a little, zero, or (huge) a claim near the field's maximum `limit`."""
    if huge:
        return rng.choice((limit, limit - 1, limit // 2 + 1, rng.randint(limit // 16, limit)))
    return max(0, min(limit, rng.choice((0, 1, current - 1, current + 1, current * 2, current + rng.randint(2, 300)))))
