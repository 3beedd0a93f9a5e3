"""The one bind helper every listener uses (adapters/net/server.py): what a listen host binds, one port
for both stacks, the IPv4-only fallback without IPv6, SO_REUSEPORT on both sockets; and how IPv6 and
IPv4-mapped peers are written and counted (adapters/peer.py, core/limits.py), and shown (banner)."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from types import SimpleNamespace
from typing import Any

import pytest

import adapters.net.server as net
from adapters.net.server import Target, bind_sockets, bind_tcp, bind_udp, free_port
from adapters.peer import format_peer
from core.limits import ConnectionGate, RateLimiter, address_key
from gateway.cli.banner import banner_lines
from gateway.config import Config, config_from_dict, parse_listen

needs_ipv6 = pytest.mark.usefixtures("ipv6_loopback")  # fails, never skips, on a host without ::1
LOCALHOST = [Target(socket.AF_INET, "127.0.0.1"), Target(socket.AF_INET6, "::1", optional=True)]


def tcp(host: str, port: int = 0, **options: Any) -> list[socket.socket]:
    return asyncio.run(bind_tcp(host, port, backlog=8, **options))


def close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def v6only(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)


@pytest.fixture
def fresh_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The no-IPv6 line is said once per process: as if nothing had said it yet."""
    monkeypatch.setattr(net, "_said_no_ipv6", False)


def test_the_default_listen_host_is_localhost_both_loopbacks() -> None:
    assert {section.listen.host for section in Config().enabled_listeners().values()} == {"localhost"}
    assert parse_listen("localhost:1883").host == "localhost" and parse_listen("[::]:1883").host == "::"
    assert parse_listen("0.0.0.0:1883").host == "0.0.0.0" == parse_listen(":1883").host


@needs_ipv6
def test_localhost_binds_127_0_0_1_and_ipv6_loopback_on_the_port_the_os_chose() -> None:
    sockets = tcp("localhost")
    try:
        assert [(s.family, s.getsockname()[0]) for s in sockets] == [(socket.AF_INET, "127.0.0.1"),
                                                                     (socket.AF_INET6, "::1")]
        assert sockets[0].getsockname()[1] == sockets[1].getsockname()[1] != 0
        assert v6only(sockets[1]) == 1
        for host in ("127.0.0.1", "::1"):  # both accept
            socket.create_connection((host, sockets[0].getsockname()[1]), timeout=5).close()
    finally:
        close(sockets)


@needs_ipv6
def test_port_0_picks_again_when_the_os_port_is_taken_on_ipv6(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OS's port for 127.0.0.1 may be in use on ::1: every socket is closed and the pair tried again."""
    taken = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    taken.bind(("::1", 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    real_bound, calls, made = net._bound, [], []

    def first_ipv4_gets_the_busy_port(target: Target, port: int, kind: int, reuse_port: bool) -> socket.socket:
        calls.append((target.address, port))
        if len(calls) == 1:  # as if the OS had chosen `busy` for 127.0.0.1
            port = busy
        made.append(real_bound(target, port, kind, reuse_port))
        return made[-1]

    monkeypatch.setattr(net, "_bound", first_ipv4_gets_the_busy_port)
    try:
        sockets = tcp("localhost")
        try:
            assert calls[:2] == [("127.0.0.1", 0), ("::1", busy)]  # ::1 found it taken
            assert calls[2] == ("127.0.0.1", 0) and len(sockets) == 2
            assert sockets[0].getsockname()[1] == sockets[1].getsockname()[1] != busy
        finally:
            close(sockets)
        # The first try's 127.0.0.1 socket was closed (checked on the socket itself: a bind probe of
        # its port can meet another test's connection in TIME_WAIT there).
        assert made[0].fileno() == -1
    finally:
        taken.close()


@needs_ipv6
def test_a_fixed_port_taken_on_ipv6_fails_the_listener_and_leaves_nothing_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    real_bound, made = net._bound, []

    def recorded(target: Target, port: int, kind: int, reuse_port: bool) -> socket.socket:
        made.append(real_bound(target, port, kind, reuse_port))
        return made[-1]

    monkeypatch.setattr(net, "_bound", recorded)
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as taken:
        taken.bind(("::1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        with pytest.raises(OSError) as failed:
            tcp("localhost", busy)
        assert failed.value.errno == errno.EADDRINUSE
    assert len(made) == 1 and made[0].fileno() == -1  # the 127.0.0.1 socket bound before was closed


@pytest.mark.parametrize("missing", ["socket", "bind"])
def test_without_ipv6_localhost_binds_ipv4_alone_and_says_so_once(
        missing: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fresh_notice: None) -> None:
    """A kernel without IPv6: creating an AF_INET6 socket fails (EAFNOSUPPORT), or ::1 is not an
    address of the host (EADDRNOTAVAIL, IPv6 disabled on lo). The listener starts on IPv4."""
    real_socket = socket.socket

    class NoIPv6(real_socket):  # type: ignore[misc, valid-type]
        def __init__(self, family: int = socket.AF_INET, *args: Any, **kwargs: Any) -> None:
            if family == socket.AF_INET6 and missing == "socket":
                raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
            super().__init__(family, *args, **kwargs)

        def bind(self, address: Any) -> None:
            if address[0] == "::1" and missing == "bind":
                raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
            super().bind(address)

    monkeypatch.setattr(net.socket, "socket", NoIPv6)
    caplog.set_level(logging.INFO, logger="rosettamq.listen")
    tcp_sockets = tcp("localhost")
    udp_sockets = asyncio.run(bind_udp("localhost", 0, mapped=missing == "bind"))
    try:
        assert [s.getsockname()[0] for s in tcp_sockets] == ["127.0.0.1"]
        assert [s.getsockname()[0] for s in udp_sockets] == \
            ["::ffff:127.0.0.1" if missing == "bind" else "127.0.0.1"]
    finally:
        close(tcp_sockets + udp_sockets)
    notices = [r for r in caplog.records if r.name == "rosettamq.listen"]
    assert len(notices) == 1 and notices[0].levelno == logging.INFO
    assert "no IPv6 on this host" in notices[0].getMessage() and "127.0.0.1 only" in notices[0].getMessage()


def test_without_ipv6_an_explicit_ipv6_address_is_still_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the ::1 of "localhost" may be left out: "[::1]:P" asked for IPv6 and must say it has none."""
    real_socket = socket.socket

    def no_ipv6(family: int = socket.AF_INET, *args: Any) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real_socket(family, *args)

    monkeypatch.setattr(net.socket, "socket", no_ipv6)
    with pytest.raises(OSError) as failed:
        tcp("::1")
    assert failed.value.errno == errno.EAFNOSUPPORT


@needs_ipv6
def test_explicit_addresses_bind_one_stack_and_the_unspecified_ipv6_address_both() -> None:
    for host, family, address in (("0.0.0.0", socket.AF_INET, "0.0.0.0"), ("127.0.0.1", socket.AF_INET, "127.0.0.1"),
                                  ("::1", socket.AF_INET6, "::1")):
        (sock,) = tcp(host)
        try:
            assert (sock.family, sock.getsockname()[0]) == (family, address)
        finally:
            sock.close()
    (dual,) = tcp("::")
    try:
        assert dual.family == socket.AF_INET6 and v6only(dual) == 0
        with socket.create_connection(("127.0.0.1", dual.getsockname()[1]), timeout=5):  # IPv4, mapped
            dual.setblocking(True)
            accepted, peer = dual.accept()
            accepted.close()
        assert peer[0] == "::ffff:127.0.0.1" and format_peer(peer).startswith("127.0.0.1:")
    finally:
        dual.close()


@needs_ipv6
def test_udp_for_coap_binds_ipv6_sockets_an_ipv4_address_mapped() -> None:
    sockets = asyncio.run(bind_udp("localhost", 0, mapped=True))
    try:
        assert [(s.family, s.getsockname()[0]) for s in sockets] == [(socket.AF_INET6, "::ffff:127.0.0.1"),
                                                                     (socket.AF_INET6, "::1")]
        assert len({s.getsockname()[1] for s in sockets}) == 1
        assert [v6only(s) for s in sockets] == [0, 1]
    finally:
        close(sockets)


@needs_ipv6
def test_workers_share_both_sockets_with_so_reuseport() -> None:
    """`run --workers N`: the supervisor picks a port free on both loopbacks, each worker binds both."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        port = free_port("localhost", kind)
        first = bind_sockets(LOCALHOST, port, kind, reuse_port=True, backlog=8 if kind == socket.SOCK_STREAM else None)
        second = bind_sockets(LOCALHOST, port, kind, reuse_port=True,
                              backlog=8 if kind == socket.SOCK_STREAM else None)
        try:
            assert [s.getsockname()[:2] for s in first] == [s.getsockname()[:2] for s in second] == \
                [("127.0.0.1", port), ("::1", port)]
            assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in first + second)
        finally:
            close(first + second)


def test_peers_print_ipv6_in_brackets_and_ipv4_mapped_as_ipv4() -> None:
    assert format_peer(("::1", 40000, 0, 0)) == "[::1]:40000"
    assert format_peer(("::ffff:127.0.0.1", 40000, 0, 0)) == "127.0.0.1:40000"
    assert format_peer(("127.0.0.1", 40000)) == "127.0.0.1:40000"
    assert format_peer(("fe80::1%lo", 5, 0, 1)) == "[fe80::1%lo]:5"


def test_limits_count_an_ipv4_mapped_client_as_its_ipv4_address() -> None:
    assert address_key(format_peer(("::ffff:127.0.0.1", 1, 0, 0))) == address_key("127.0.0.1:2") == "127.0.0.1"
    assert address_key("[::ffff:127.0.0.1]:1") == "127.0.0.1"
    assert address_key(format_peer(("::1", 1, 0, 0))) == "::/64"
    gate = ConnectionGate(rate_limiter=RateLimiter(rate=1, burst=1))
    assert gate.admit(format_peer(("127.0.0.1", 1)), now=0.0) is None
    assert gate.admit(format_peer(("::ffff:127.0.0.1", 2, 0, 0)), now=0.0) is not None  # the same address's bucket
    assert gate.admit(format_peer(("::1", 3, 0, 0)), now=0.0) is None  # another address


def test_the_banner_says_loopback_on_both_stacks() -> None:
    def text(bound: dict[str, tuple[str, int]]) -> str:
        gateway = SimpleNamespace(config=config_from_dict({}), listening=SimpleNamespace(bound=bound),
                                  lwm2m=None, authenticator=None)
        return "\n".join(banner_lines(gateway, None))  # type: ignore[arg-type]

    both = text({"mqtt": ("localhost", 1883), "http": ("localhost", 8080)})
    assert "mqtt://localhost:1883" in both and "http://localhost:8080/" in both
    assert "local only: every listener binds loopback (127.0.0.1 and ::1)" in both
    fallback = text({"mqtt": ("127.0.0.1", 1883)})
    assert "mqtt://127.0.0.1:1883" in fallback and "::1" not in fallback.split("local only")[1].split(".")[0]
    dual = text({"mqtt": ("::", 1883)})
    assert "mqtt://[::1]:1883  (every interface, IPv6 and IPv4)" in dual and "anonymous" in dual
