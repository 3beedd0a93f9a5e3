"""The CoAP listener's UDP socket: a reader that nothing a datagram or the network does can stop.

Why aiocoap's own reader was not enough: it registers the socket with `loop.add_reader`
and reads one error-queue entry and one datagram per wake-up. The socket has IP_RECVERR
set (so ICMP errors reach the error queue and fail the exchange they concern), and an
ICMP error makes epoll report EPOLLERR. libuv (uvloop) stops a poll handle on POLLERR
after one last callback, so under uvloop the listener never read again after its first
"port unreachable": a client that went away before its answer was enough. The standard
loop's selector survives it.

`ResilientDatagramTransport` replaces that reader and keeps aiocoap's protocol side:

- on Linux the loop does not watch the socket itself but a private epoll instance that
  watches it for input: the loop sees that epoll descriptor readable, never EPOLLERR, so no
  loop can stop reading on an ICMP error (the socket's EPOLLERR wakes the inner epoll, and
  the reader drains the error queue);
- each wake-up drains the error queue, then up to `batch` datagrams, into one buffer;
- where there is no epoll, it re-arms its reader after any error (what libuv stopped); and
  everywhere a watchdog run from the listener's timer re-arms it whenever data waits unread
  past a grace period (counted: it should never have to);
- every exception a datagram causes stays inside: counted by reason in `DatagramFaults`,
  logged once per peer per interval, never as a traceback;
- a datagram that does not decode is answered as RFC 7252 says (`errors.reject_datagram`);
- the common publish (a POST or PUT on ``/ps/...``) is taken whole by `fast_path.FastPath`
  before aiocoap decodes anything; every other datagram goes to aiocoap;
- a request without Block2 is answered block-wise with a first block no larger than itself
  size (`first_block`): the listener cannot be used to amplify traffic towards a spoofed address.
"""

from __future__ import annotations

import array
import asyncio
import errno
import fcntl
import ipaddress
import logging
import select
import socket
import termios
import time
from typing import Any, Callable

from aiocoap.error import UnparsableMessage
from aiocoap.message import Direction, Message
from aiocoap.optiontypes import BlockOption
from aiocoap.transports.udp6 import MessageInterfaceUDP6, UDP6EndpointAddress
from aiocoap.util import socknumbers

from core.log_throttle import LogThrottle

from adapters.coap.errors import reject_datagram
from adapters.coap.fast_path import FastPath

log = logging.getLogger("rosettamq.coap")

MAX_DATAGRAM = 65536  # the largest UDP payload, plus one byte so that nothing is cut silently
# Errors an ICMP message leaves pending on the socket for its next call (udp(7), IP_RECVERR).
PENDING_ICMP_ERRORS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                                 errno.EPROTO, errno.ENOPROTOOPT})
FAULT_REASONS = ("undecodable", "bad_option_value", "truncated", "dispatch_error", "socket_error",
                 "icmp_error", "reader_rearmed", "watchdog_rearmed")


class DatagramFaults:
    """What the listener could not use, counted by reason, with a log line per peer per interval."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, interval: float = 60.0) -> None:
        self.counts = dict.fromkeys(FAULT_REASONS, 0)
        self._clock = clock
        self._throttle = LogThrottle(interval)

    def record(self, reason: str, peer: Any, detail: object, level: int = logging.WARNING) -> None:
        self.counts[reason] += 1
        suppressed = self._throttle.allow((reason, peer), self._clock())
        if suppressed is not None:
            more = f" (+{suppressed} more since the last line)" if suppressed else ""
            log.log(level, "coap datagram refused reason=%s peer=%s detail=%s%s", reason, peer, detail, more)


class ResilientDatagramTransport(asyncio.BaseTransport):
    """Reads one UDP socket for aiocoap's recvmsg protocol; see the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: Any,
                 faults: DatagramFaults, batch: int = 64, grace: float = 1.0) -> None:
        super().__init__(extra={"socket": sock})
        self._loop = loop
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._faults = faults
        self._batch = batch
        self._grace = grace
        self._buffer = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        self.last_read = time.monotonic()
        sock.setblocking(False)
        self._epoll: Any = None
        self._reader_fd = self._fd
        if hasattr(select, "epoll"):
            self._epoll = select.epoll(1)
            self._epoll.register(self._fd, select.EPOLLIN)  # EPOLLERR is always reported: it wakes us too
            self._reader_fd = self._epoll.fileno()
        protocol.connection_made(self)
        loop.add_reader(self._reader_fd, self._read_ready)

    # -- reading --------------------------------------------------------------------------

    def _read_ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        errors = self._drain_error_queue(sock)
        for _ in range(self._batch):
            try:
                size, ancdata, flags, address = sock.recvmsg_into([self._view], 1024)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # a pending ICMP error returned once by the plain read
                errors += 1
                self._faults.record("socket_error", None, exc, logging.DEBUG)
                continue
            self.last_read = time.monotonic()
            data = bytes(self._view[:size])
            if flags & socket.MSG_TRUNC:
                self._faults.record("truncated", address[0], f"{size}+ bytes")
                self._send_raw(reject_datagram(data, False), address)
                continue
            try:
                self._protocol.datagram_msg_received(data, ancdata, flags, address)
            except Exception as exc:  # our bug or aiocoap's: one datagram lost, the listener goes on
                self._faults.record("dispatch_error", address[0], repr(exc), logging.ERROR)
                log.debug("dispatch error from %s", address, exc_info=exc)
        if errors and self._epoll is None:
            self.rearm()

    def _drain_error_queue(self, sock: socket.socket) -> int:
        if not socknumbers.HAS_RECVERR:
            return 0
        drained = 0
        for _ in range(self._batch):
            try:
                data, ancdata, flags, address = sock.recvmsg(MAX_DATAGRAM, 1024, socknumbers.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._faults.record("socket_error", None, exc, logging.DEBUG)
                break
            drained += 1
            self._faults.record("icmp_error", address[0] if address else None, "error queue", logging.DEBUG)
            try:
                self._protocol.datagram_errqueue_received(data, ancdata, flags, address)
            except Exception as exc:
                self._faults.record("dispatch_error", None, repr(exc), logging.ERROR)
                log.debug("error-queue dispatch error", exc_info=exc)
        return drained

    def rearm(self, reason: str = "reader_rearmed") -> None:
        """Register the reader again: libuv stops a poll handle after POLLERR."""
        if self._sock is None:
            return
        self._faults.counts[reason] += 1
        self._loop.remove_reader(self._reader_fd)
        self._loop.add_reader(self._reader_fd, self._read_ready)

    @property
    def reader_fd(self) -> int:
        """The descriptor the event loop watches (the private epoll's, where there is one)."""
        return self._reader_fd

    def waiting_bytes(self) -> int:
        """Bytes in the socket's receive queue (FIONREAD)."""
        if self._sock is None:
            return 0
        buf = array.array("i", [0])
        fcntl.ioctl(self._fd, termios.FIONREAD, buf)
        return buf[0]

    def stalled(self, now: float | None = None) -> bool:
        """Data has waited unread for longer than the grace period."""
        now = time.monotonic() if now is None else now
        return self.waiting_bytes() > 0 and now - self.last_read > self._grace

    def watchdog(self) -> bool:
        """Re-arm a reader that stopped reading; True when it had to. Call it about once a second."""
        if self.stalled():
            log.warning("coap listener had stopped reading; reader re-armed")
            self.rearm("watchdog_rearmed")
            self._read_ready()
            return True
        return False

    # -- writing and closing --------------------------------------------------------------

    def sendmsg(self, data: bytes, ancdata: list[Any], flags: int, address: Any) -> None:
        """Send one datagram. An ICMP error that arrived for another peer is pending on the socket
        and fails the next send once (returning it clears it): that send is retried, and the error
        is not blamed on this peer (the error queue reports it for the right one)."""
        if self._sock is None:
            return
        for attempt in (1, 2):
            try:
                self._sock.sendmsg((data,), ancdata, flags, address)
                return
            except (BlockingIOError, InterruptedError):
                self._faults.record("socket_error", address[0], "send buffer full", logging.DEBUG)
                return
            except OSError as exc:
                self._faults.record("socket_error", address[0], exc, logging.DEBUG)
                if exc.errno in PENDING_ICMP_ERRORS and attempt == 1:
                    continue
                if exc.errno not in (errno.EINVAL, errno.EAFNOSUPPORT):
                    try:
                        self._protocol.error_received(exc)
                    except Exception as inner:
                        self._faults.record("dispatch_error", address[0], repr(inner), logging.ERROR)
                return

    def _send_raw(self, data: bytes | None, address: Any) -> None:
        if data is not None:
            self.sendmsg(data, [], 0, address)

    def is_closing(self) -> bool:
        return self._sock is None

    def close(self) -> None:
        if self._sock is None:
            return
        self._loop.remove_reader(self._reader_fd)
        if self._epoll is not None:
            self._epoll.close()
        self._sock.close()
        self._sock = None
        protocol, self._protocol = self._protocol, None
        self._loop.call_soon(protocol.connection_lost, None)


AMPLIFICATION = 1  # a response's first payload block is at most this many times the request's size


def first_block(request_size: int) -> BlockOption.BlockwiseTuple:
    """The Block2 a plain-UDP request without one is answered with: the largest block (16 to 1024
    bytes) no bigger than AMPLIFICATION times the request, so a spoofed source address cannot turn
    a small request into a large answer; a real client fetches the rest block by block (RFC 7959)."""
    budget = AMPLIFICATION * request_size
    exponent = 0
    while exponent < 6 and 16 << (exponent + 1) <= budget:
        exponent += 1
    return BlockOption.BlockwiseTuple(0, False, exponent)


class GatewayUDPInterface(MessageInterfaceUDP6):
    """aiocoap's UDP message interface on a `ResilientDatagramTransport`, decoding defensively."""

    transport: ResilientDatagramTransport
    faults: DatagramFaults
    reaches_ipv4: bool  # the socket is bound to an IPv4(-mapped) address, or to :: (dual-stack)
    reaches_ipv6: bool

    @classmethod
    async def create_server(cls, ctx: Any, log: logging.Logger, loop: asyncio.AbstractEventLoop,
                            sock: socket.socket, faults: DatagramFaults) -> "GatewayUDPInterface":
        """Serve on `sock`: an IPv6 UDP socket `adapters.net.server.bind_udp(mapped=True)` bound (an IPv4
        address as ::ffff:a.b.c.d), given the packet-info and ICMP-error options aiocoap relies on."""
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            if socknumbers.HAS_RECVERR:
                sock.setsockopt(socket.IPPROTO_IPV6, socknumbers.IPV6_RECVERR, 1)
                sock.setsockopt(socket.IPPROTO_IP, socknumbers.IP_RECVERR, 1)
            bound = ipaddress.IPv6Address(str(sock.getsockname()[0]).partition("%")[0])
        except BaseException:
            sock.close()
            raise
        interface = cls(ctx, log=log, loop=loop)
        interface.faults = faults
        interface.reaches_ipv4 = bound.is_unspecified or bound.ipv4_mapped is not None
        interface.reaches_ipv6 = bound.ipv4_mapped is None
        ResilientDatagramTransport(loop, sock, interface, faults)
        await interface.ready
        return interface

    async def determine_remote(self, request: Any) -> Any:
        """aiocoap's choice, but only for an address this socket can send to: a listener bound on both
        loopbacks has a socket per stack, and a request to a device must leave through the right one."""
        remote = await super().determine_remote(request)
        if remote is None:
            return None
        mapped = ipaddress.IPv6Address(str(remote.sockaddr[0]).partition("%")[0]).ipv4_mapped is not None
        return remote if (self.reaches_ipv4 if mapped else self.reaches_ipv6) else None

    fast_path: FastPath | None = None  # the publish fast path (adapters.coap.fast_path), when attached
    fast: FastPath | None = None  # the same while it is in use

    def attach_fast_path(self, state: Any, mount: str) -> FastPath:
        """Let `FastPath` take the common publishes of this socket before aiocoap decodes them."""
        self.fast_path = self.fast = FastPath(state, self._ctx,
                                              lambda address: UDP6EndpointAddress(address, self).hostinfo,
                                              self._reply, mount)
        return self.fast_path

    def _reply(self, data: bytes, ancdata: Any, address: Any) -> None:
        """Answer a request from `address` from the local address it was sent to (as aiocoap does)."""
        ancillary = [item for item in ancdata if item[0] == socket.IPPROTO_IPV6 and item[1] == socket.IPV6_PKTINFO]
        self.transport.sendmsg(data, ancillary, 0, address)

    def datagram_msg_received(self, data: bytes, ancdata: Any, flags: int, address: Any) -> None:
        fast = self.fast
        if fast is not None and fast.take(data, ancdata, address):
            return
        pktinfo = None
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                pktinfo = value
        remote = UDP6EndpointAddress(address, self, pktinfo=pktinfo)
        try:
            if data and data[0] & 0x0F > 8:
                raise UnparsableMessage("token length 9-15 is reserved (RFC 7252 3)")
            message = Message.decode(data, remote)
        except Exception as exc:  # UnparsableMessage, and UnicodeDecodeError from a string option
            bad_value = isinstance(exc, (UnicodeDecodeError, ValueError)) and len(data) >= 4
            self.faults.record("bad_option_value" if bad_value else "undecodable", remote.hostinfo,
                               type(exc).__name__)
            reply = reject_datagram(data, bad_value)
            if reply is not None:
                ancillary = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)] if pktinfo else []
                self.transport.sendmsg(reply, ancillary, 0, address)
            return
        message.direction = Direction.INCOMING
        if message.code.is_request() and message.opt.block2 is None and message.opt.observe is None:
            # Anti-amplification (RFC 7252 11.3). Not for observe registrations: a notification bigger
            # than the registration would need a follow-up GET, which a wildcard filter cannot take;
            # notifications are bounded by their CON retransmissions and end with an RST instead.
            message.opt.block2 = first_block(len(data))
        self._ctx.dispatch_message(message)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._shutting_down is not None and not self._shutting_down.done():
            self._shutting_down.set_result(None)
