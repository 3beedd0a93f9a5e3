"""Delivering inputs to a listener: TCP connections or UDP datagrams, a batch at a time.

TCP: one connection per input, its chunks written at once, then one of
  "read"  read what the gateway answers until it closes or `linger` passes,
  "half"  shut down our sending side first, then read the same way,
  "abort" close at once with RST (SO_LINGER 0), answers unread.
UDP: each chunk is one datagram from the input's own socket, then
  "vanish" close the socket at once, so answers meet a closed port (ICMP
           port unreachable: the way issue 14 stopped the CoAP listener),
  "wait"   keep the socket open while answers arrive, up to `linger`.

Connections run concurrently (a bounded number at a time); the gateway being
slow to read is not an error here, only what the probes find afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
import time
from dataclasses import dataclass
from typing import Sequence

from fuzz.mutate import Case

HOST = "127.0.0.1"
TCP_MODES = ("read", "read", "half", "abort")
UDP_MODES = ("vanish", "wait")


@dataclass(frozen=True)
class Input:
    """One input as sent: the target it was made for, how the connection ended, its chunks."""

    target: str
    mode: str
    chunks: Case

    @property
    def size(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    def line(self) -> str:
        """`target mode hex hex ...` (an empty chunk is "-"): one line of a failure file."""
        return " ".join([self.target, self.mode, *(chunk.hex() or "-" for chunk in self.chunks)])

    @classmethod
    def parse(cls, line: str) -> "Input":
        target, mode, *chunks = line.split()
        return cls(target, mode, tuple(b"" if c == "-" else bytes.fromhex(c) for c in chunks))


async def _tcp_one(port: int, item: Input, linger: float, gate: asyncio.Semaphore) -> None:
    async with gate:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), linger * 4)
        except (OSError, asyncio.TimeoutError):
            return  # a refused connection is the probes' business
        try:
            writer.write(b"".join(item.chunks))  # one write: what the gateway reads does not depend on timing
            await asyncio.wait_for(writer.drain(), linger)
            if item.mode == "abort":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if item.mode == "half" and writer.can_write_eof():
                writer.write_eof()
            deadline = asyncio.get_running_loop().time() + linger
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0 or not await asyncio.wait_for(reader.read(65536), left):
                    break
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort() if item.mode == "abort" else writer.close()
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), linger)


async def _tcp_batch(port: int, items: Sequence[Input], linger: float, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    await asyncio.gather(*(_tcp_one(port, item, linger, gate) for item in items))


def send_tcp(port: int, items: Sequence[Input], linger: float = 0.1, concurrency: int = 64) -> None:
    """Send each input on its own connection to 127.0.0.1:`port`."""
    asyncio.run(_tcp_batch(port, items, linger, concurrency))


def send_udp(port: int, items: Sequence[Input], linger: float = 0.05) -> None:
    """Send each input's chunks as datagrams from its own socket to 127.0.0.1:`port`."""
    kept: list[socket.socket] = []
    try:
        for item in items:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            for chunk in item.chunks:
                with contextlib.suppress(OSError):  # ECONNREFUSED from an earlier ICMP, a full buffer
                    sock.sendto(chunk, (HOST, port))
            if item.mode == "vanish":
                sock.close()
            else:
                kept.append(sock)
        deadline = time.monotonic() + linger
        while kept and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(kept, [], [], left)
            for sock in ready:
                with contextlib.suppress(OSError):
                    sock.recv(65536)
    finally:
        for sock in kept:
            sock.close()
