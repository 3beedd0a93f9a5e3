"""Binding a listener's address: one address may mean several sockets, all on one port.

`bind_tcp` and `bind_udp` are the only way listeners bind (MQTT, WebSocket, AMQP, their TLS
forms, the HTTP listener, CoAP). What a listen host means:

- ``localhost``: both loopbacks, 127.0.0.1 and ::1 (the defaults: local only, as mosquitto 2).
  A kernel without IPv6 (EAFNOSUPPORT or EADDRNOTAVAIL on ::1) leaves 127.0.0.1 alone, said
  once in an INFO line, never an error;
- ``::``: one dual-stack socket (IPV6_V6ONLY=0): IPv4 clients arrive as ``::ffff:a.b.c.d``;
- another IPv6 address (``::1``): that address only; an IPv4 address (``0.0.0.0`` too): IPv4 only;
- a host name: every address it resolves to, each on its own stack.

Port 0: the first socket gets the port the OS picks and the others are bound to that port;
if one of them finds it taken, all are closed and the whole is tried again, a few times.
`mapped` (CoAP: aiocoap's UDP transport takes IPv6 sockets only) binds an IPv4 address as its
IPv4-mapped IPv6 form. `ServerGroup` is one asyncio server per socket, closed as one.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

log = logging.getLogger("rosettamq.listen")

LOCALHOST = "localhost"
PORT_0_ATTEMPTS = 5  # the OS's port for the first socket was taken on another stack: pick again
NO_IPV6 = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})
_said_no_ipv6 = False  # the INFO line is said once per process, not once per listener


@dataclass(frozen=True, slots=True)
class Target:
    """One socket to bind: its family, address, IPV6_V6ONLY, and whether a missing IPv6 may skip it."""

    family: int
    address: str
    v6only: bool = True
    optional: bool = False


async def targets(host: str, kind: int, mapped: bool = False) -> list[Target]:
    """The sockets `host` means (see the module); a host name is resolved on the loop's resolver."""
    found = _literal(host)
    if found is None:
        infos = await asyncio.get_running_loop().getaddrinfo(host or None, 0, type=kind, flags=socket.AI_PASSIVE)
        found = _resolved(infos)
    return [_mapped(target) for target in found] if mapped else found


def _literal(host: str) -> list[Target] | None:
    """The sockets of "localhost" or of an IP address; None for a name to resolve."""
    if host.lower() == LOCALHOST:
        return [Target(socket.AF_INET, "127.0.0.1"), Target(socket.AF_INET6, "::1", optional=True)]
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if ip.version == 4:
        return [Target(socket.AF_INET, host)]
    return [Target(socket.AF_INET6, host, v6only=not ip.is_unspecified)]


def _resolved(infos: list[Any]) -> list[Target]:
    found = dict.fromkeys(Target(family, sockaddr[0]) for family, _, _, _, sockaddr in infos
                          if family in (socket.AF_INET, socket.AF_INET6))
    return list(found)


def free_port(host: str, kind: int) -> int:
    """A port free on every address `host` means (bound as a listener would, then closed): what
    `run --workers N` gives its workers for a listener on port 0 (blocking: resolves a name)."""
    found = _literal(host)
    if found is None:
        found = _resolved(socket.getaddrinfo(host or None, 0, type=kind, flags=socket.AI_PASSIVE))
    sockets = bind_sockets(found, 0, kind)
    port = int(sockets[0].getsockname()[1])
    for sock in sockets:
        sock.close()
    return port


def _mapped(target: Target) -> Target:
    if target.family == socket.AF_INET:
        return Target(socket.AF_INET6, f"::ffff:{target.address}", v6only=False, optional=target.optional)
    return target


def bind_sockets(found: list[Target], port: int, kind: int, *, backlog: int | None = None,
                 reuse_port: bool = False) -> list[socket.socket]:
    """Bind every target on `port` (0: the OS's choice for the first, the same for the others);
    listening (`backlog`) for TCP, non-blocking. Raises the OSError of a socket that cannot bind."""
    for attempt in range(1, PORT_0_ATTEMPTS + 1):
        try:
            return _bind_once(found, port, kind, backlog, reuse_port)
        except OSError as exc:
            if port != 0 or exc.errno != errno.EADDRINUSE or attempt == PORT_0_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _bind_once(found: list[Target], port: int, kind: int, backlog: int | None,
               reuse_port: bool) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for target in found:
            try:
                sock = _bound(target, port, kind, reuse_port)
            except OSError as exc:
                if target.optional and exc.errno in NO_IPV6:
                    _say_no_ipv6(target, exc)
                    continue
                raise
            sockets.append(sock)
            if backlog is not None:
                sock.listen(backlog)
            port = sock.getsockname()[1]
        if not sockets:
            raise OSError(errno.EADDRNOTAVAIL, "no address to bind")
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bound(target: Target, port: int, kind: int, reuse_port: bool) -> socket.socket:
    sock = socket.socket(target.family, kind)
    try:
        if kind == socket.SOCK_STREAM:  # as asyncio: restart at once over connections in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # workers of `run --workers N` share the port (the kernel spreads clients)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if target.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if target.v6only else 0)
        sock.bind((target.address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _say_no_ipv6(target: Target, exc: OSError) -> None:
    global _said_no_ipv6
    if not _said_no_ipv6:
        _said_no_ipv6 = True
        log.info("no IPv6 on this host (%s on %s): loopback listeners bind 127.0.0.1 only",
                 exc.strerror or exc, target.address.removeprefix("::ffff:"))


async def bind_tcp(host: str, port: int, *, backlog: int, reuse_port: bool = False) -> list[socket.socket]:
    """The listening TCP sockets of `host`:`port` (see the module)."""
    return bind_sockets(await targets(host, socket.SOCK_STREAM), port, socket.SOCK_STREAM, backlog=backlog,
                        reuse_port=reuse_port)


async def bind_udp(host: str, port: int, *, reuse_port: bool = False, mapped: bool = False) -> list[socket.socket]:
    """The UDP sockets of `host`:`port` (see the module); `mapped`: IPv6 sockets only."""
    return bind_sockets(await targets(host, socket.SOCK_DGRAM, mapped), port, socket.SOCK_DGRAM,
                        reuse_port=reuse_port)


async def bind_each(host: str, port: int, kind: int,
                    bind_one: Callable[[str, int], Awaitable[int]]) -> tuple[list[str], int]:
    """For a transport that binds its own socket (aiocoap's DTLS server): `bind_one(address, port)`,
    returning the bound port, for each address `host` means, the first's port (0: the OS's choice)
    for the others. Returns the addresses bound (::1 of "localhost" left out when there is no IPv6,
    as `bind_sockets` does) and the port."""
    bound: list[str] = []
    for target in await targets(host, kind):
        try:
            port = await bind_one(target.address, port)  # port 0: the next get the port the OS chose
        except OSError as exc:
            if target.optional and exc.errno in NO_IPV6:
                _say_no_ipv6(target, exc)
                continue
            raise
        bound.append(target.address)
    return bound, port


def shown_host(host: str, sockets: list[Any]) -> str:
    """How a listener's address is shown: the configured host when it bound several sockets
    (``localhost``), else the one socket's address (``127.0.0.1`` after an IPv4-only fallback)."""
    if len(sockets) > 1:
        return host
    return str(sockets[0].getsockname()[0]).removeprefix("::ffff:")


def addresses(sockets: list[Any]) -> list[str]:
    """Each socket's bound address (an IPv4-mapped one as IPv4), for the "listening" log line."""
    return [str(sock.getsockname()[0]).removeprefix("::ffff:") for sock in sockets]


class ServerGroup:
    """One listener served by an asyncio server per bound socket, used as one server."""

    def __init__(self, servers: list[asyncio.AbstractServer]) -> None:
        self.servers = servers

    @property
    def sockets(self) -> list[Any]:
        return [sock for server in self.servers for sock in getattr(server, "sockets", ())]

    def close(self) -> None:
        for server in self.servers:
            server.close()

    async def wait_closed(self) -> None:
        for server in self.servers:
            await server.wait_closed()

    def is_serving(self) -> bool:
        return any(server.is_serving() for server in self.servers)


async def serve_tcp(protocol_factory: Callable[[], asyncio.BaseProtocol], host: str, port: int, *, backlog: int,
                    reuse_port: bool = False) -> ServerGroup:
    """Listen on `host`:`port` (every socket `bind_tcp` binds) and serve `protocol_factory` on each."""
    loop = asyncio.get_running_loop()
    sockets = await bind_tcp(host, port, backlog=backlog, reuse_port=reuse_port)
    servers: list[asyncio.AbstractServer] = []
    try:
        for sock in sockets:
            servers.append(await loop.create_server(protocol_factory, sock=sock, backlog=backlog))
    except BaseException:
        for server in servers:
            server.close()
        for sock in sockets:
            sock.close()
        raise
    return ServerGroup(servers)


def loop_sets_nodelay(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether `loop` sets TCP_NODELAY on every accepted TCP connection itself (uvloop does)."""
    return type(loop).__module__.startswith("uvloop")


def set_tcp_nodelay(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY on an accepted connection's socket (asyncio does not set it on sockets accepted
    from our listeners); nothing for a socket that is not TCP or refuses it."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
