"""CoAP peers for the CoAP tests: a raw UDP client that controls tokens, types and ACKs, and libcoap's CLI.

The raw client builds and parses datagrams with aiocoap's `Message` codec but
does everything else itself, so a test can re-register a token from a new
source port (NAT rebinding), leave a CON notification unacknowledged, or
answer one with RST. Every read has a timeout; nothing sleeps.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import threading
import warnings
from typing import Any, Iterator

import pytest

from aiocoap import Message
from aiocoap.error import UnparsableMessage
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from tests.conftest import LOOPBACK, RunningGateway, make_config

TIMEOUT = 10.0
_mids = itertools.count(1000)


def coap_gateway(loop: str = "asyncio", **coap: Any) -> RunningGateway:
    """A gateway with MQTT and CoAP on loopback, OS-chosen ports; `coap` adds [coap] keys."""
    sections: dict[str, Any] = {"coap": {"enabled": True, "listen": f"{LOOPBACK}:0", **coap}}
    return RunningGateway(make_config(**sections), loop=loop)


def coap_port(gateway: RunningGateway) -> int:
    return gateway.gateway.ports["coap"]


def request(code: Code, path: str, *, query: tuple[str, ...] = (), payload: bytes = b"", token: bytes = b"\x01",
            mtype: Type = Type.CON, observe: int | None = None, content_format: int | None = None) -> Message:
    """A request datagram with everything set by the caller (aiocoap's client would pick these itself)."""
    message = Message(code=code, payload=payload)
    message.opt.uri_path = tuple(part for part in path.strip("/").split("/"))
    message.opt.uri_query = query
    if observe is not None:
        message.opt.observe = observe
    if content_format is not None:
        message.opt.content_format = content_format
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        message.mtype = mtype
        message.mid = next(_mids) & 0xFFFF
        message.token = token
    return message


class RawCoAP:
    """One UDP socket speaking CoAP by hand."""

    def __init__(self, port: int) -> None:
        self.server = (LOOPBACK, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(TIMEOUT)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, message: Message) -> None:
        self.sock.sendto(message.encode(), self.server)

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def receive(self, timeout: float = TIMEOUT) -> Message:
        self.sock.settimeout(timeout)
        data, _ = self.sock.recvfrom(65536)
        return Message.decode(data)

    def receive_skipping(self, seen_mids: set[int]) -> Message:
        """The next datagram that is not a retransmission of one already seen."""
        while True:
            message = self.receive()
            if message.mid not in seen_mids:
                seen_mids.add(message.mid)
                return message

    def pending(self) -> list[bytes]:
        """Datagrams already waiting on the socket (no waiting)."""
        found = []
        self.sock.setblocking(False)
        try:
            while True:
                found.append(self.sock.recvfrom(65536)[0])
        except BlockingIOError:
            return found
        finally:
            self.sock.settimeout(TIMEOUT)

    def ask(self, message: Message) -> Message:
        """Send a CON request and return its (piggybacked) response."""
        self.send(message)
        while True:
            answer = self.receive()
            if answer.token == message.token and answer.code.is_response():
                if answer.mtype is Type.CON:
                    self.ack(answer)
                return answer

    def ack(self, message: Message, reset: bool = False) -> None:
        reply = Message(code=Code.EMPTY)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            reply.mtype = Type.RST if reset else Type.ACK
            reply.mid = message.mid
        self.sock.sendto(reply.encode(), self.server)

    def close(self) -> None:
        self.sock.close()


def parses(data: bytes) -> bool:
    try:
        Message.decode(data)
    except UnparsableMessage:
        return False
    return True


def coap_client(*args: str, stdin: bytes | None = None) -> str:
    """Run libcoap's coap-client-notls to completion (-v 6 prints the response code); returns stdout."""
    done = subprocess.run(["coap-client-notls", *args], input=stdin, capture_output=True, timeout=60)
    assert done.returncode == 0, f"coap-client-notls failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
    return done.stdout.decode("utf-8", errors="replace")


class CoAPClientProcess:
    """A long-running coap-client-notls (an observer), its output read line by line by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(["stdbuf", "-oL", "coap-client-notls", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, text: str, count: int = 1) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: sum(text in line for line in self.lines) >= count, TIMEOUT):
                raise AssertionError(f"coap-client never printed {text!r} x{count}; output: {self.lines}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    """`coap_gateway()` for one test (import it as a fixture: `from ... import gateway`)."""
    running = coap_gateway()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def raw(gateway: RunningGateway) -> Iterator[RawCoAP]:
    """A raw CoAP client of the test's `gateway` (whichever fixture that is in the test's module)."""
    client = RawCoAP(coap_port(gateway))
    try:
        yield client
    finally:
        client.close()
