"""The CoAP listener: one aiocoap server context on its UDP sockets (one per IP stack), its site, its timer.

Mounting more resources (the LwM2M server's ``/rd`` tree): pass `mounts`, a
list of functions that get the started `CoAPListener` (its aiocoap `context`,
usable as a client towards devices, and its `broker`) and return
``(path, resource)`` pairs. They are added to the site next to ``/ps``,
``/mqtt/connection`` and ``/.well-known/core`` (which lists them too), so
another tree needs no edit here::

    def lwm2m_mount(listener):
        return [(("rd",), RegistrationSite(listener.broker, listener.context))]

    await start_coap_server(broker, settings, host, port, mounts=[lwm2m_mount])

The message manager is aiocoap's own, plus one hook: every ACK and RST it
receives is first shown to the listener's `AckWatch`, which is how an observe
exchange learns that its CON notification arrived (aiocoap has no API for
that) and that a NON one was answered with RST (aiocoap ignores those).
The UDP socket is read by `driver.ResilientDatagramTransport`, not aiocoap's reader: no
datagram, decode failure or ICMP error stops it (under uvloop, aiocoap's stopped for good
after one ICMP error), and a watchdog run every second re-arms a reader that has data
waiting unread. `reading()` tells health whether the listener still reads. The common publish
(POST or PUT on ``/ps/...``) is taken below aiocoap by `fast_path.FastPath`, one per socket.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any, Callable, Iterable, Sequence

from aiocoap.messagemanager import MessageManager
from aiocoap.numbers.types import Type
from aiocoap.protocol import Context
from aiocoap.resource import Site, WKCResource
from aiocoap.tokenmanager import TokenManager

from core.broker import Broker

from adapters.coap.connections import ConnectionRegistry
from adapters.coap.dtls import start_dtls_transport
from adapters.coap.limits import CoAPLimits
from adapters.coap.observers import ObserverRegistry
from adapters.coap.exchange import AckWatch, ListenerState, end_observers_of
from adapters.coap.resources import ConnectionResource, PubSubResource
from adapters.coap.settings import CoAPSettings
from adapters.coap.tokens import TokenKeepingManager
from adapters.coap.driver import DatagramFaults, GatewayUDPInterface
from adapters.net.server import bind_each, bind_udp

log = logging.getLogger("rosettamq.coap")

PS_MOUNT = ("ps",)
CONNECTION_MOUNT = ("mqtt", "connection")
Contribution = tuple[Sequence[str], Any]
Mount = Callable[["CoAPListener"], Iterable[Contribution]]


class _WatchedMessageManager(MessageManager):
    """aiocoap's message manager, showing each incoming ACK and RST to an `AckWatch` first."""

    def __init__(self, token_manager: TokenManager, watch: AckWatch) -> None:
        super().__init__(token_manager)
        self._watch = watch

    def dispatch_message(self, message: Any) -> None:
        if message.mtype is Type.ACK or message.mtype is Type.RST:
            self._watch.answered(message.remote, message.mid, message.mtype is Type.RST)
        super().dispatch_message(message)


def build_site(contributions: Iterable[Contribution]) -> Site:
    """A site with every (path, resource) contribution, and /.well-known/core listing them all."""
    site = Site()
    for path, resource in contributions:
        site.add_resource(tuple(path), resource)
    site.add_resource((".well-known", "core"), WKCResource(site.get_resources_as_linkheader, impl_info=None))
    return site


class CoAPListener:
    """A running CoAP listener: pub/sub, connection mode, discovery and mounted trees."""

    def __init__(self, broker: Broker, settings: CoAPSettings, clock: Callable[[], float] = time.time) -> None:
        self.broker = broker
        self.settings = settings
        self.context: Context | None = None
        self.port = 0
        self.dtls_port = 0  # coaps://, when start_dtls ran
        self.sockets: list[Any] = []  # the bound UDP sockets
        self.dtls_addresses: list[str] = []  # where coaps:// is bound ("localhost": 127.0.0.1 and ::1)
        self._timer: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._interfaces: list[GatewayUDPInterface] = []  # a socket each ("localhost": 127.0.0.1 and ::1)
        self.faults = DatagramFaults()
        self.state = ListenerState(
            broker=broker,
            settings=settings,
            loop=asyncio.get_running_loop(),
            clock=clock,
            registry=ObserverRegistry(broker.router, PS_MOUNT, queue_limit=settings.observer_queue,
                                      max_observers=settings.max_observers),
            connections=ConnectionRegistry(settings.heartbeat, max_connections=settings.max_connections),
            on_connections_changed=self._rearm,
            limits=CoAPLimits(settings.rate_limiter, settings.login_backoff),
        )

    @property
    def observers(self) -> ObserverRegistry:
        return self.state.registry

    def metrics(self) -> dict[str, int]:
        """Counters for the admin API: live observers and connections, dropped and expired notifications,
        and requests refused by a limit (max observers / connections: 5.03; new identities over the
        per-address rate and logins held by the backoff: 4.29; failed logins: 4.01), and the publishes
        the fast path (adapters.coap.fast_path) handed to the core."""
        registry, limits = self.state.registry, self.state.limits
        return {
            "observers": len(registry),
            "connections": len(self.state.connections),
            "notifications_dropped": registry.dropped,
            "notifications_expired": registry.expired,
            "publishes_waiting_for_store": self.state.pending_publishes,
            "refused_max_observers": registry.refused,
            "refused_max_connections": self.state.connections.refused,
            "refused_rate": limits.refused_rate,
            "refused_login_backoff": limits.refused_login_backoff,
            "login_failures": limits.login_failures,
            "fast_publishes": sum(interface.fast_path.published for interface in self._interfaces
                                  if interface.fast_path is not None),
            **{f"datagrams_{reason}": count for reason, count in self.faults.counts.items()},
        }

    def use_fast_path(self, enabled: bool) -> None:
        """Take common publishes below aiocoap (the default, adapters.coap.fast_path) or leave every
        request to aiocoap (to compare the two)."""
        for interface in self._interfaces:
            interface.fast = interface.fast_path if enabled else None

    def reading(self) -> bool:
        """False when datagrams have waited unread past the grace period (the receive path stopped)."""
        return not any(interface.transport.stalled() for interface in self._interfaces)

    async def start(self, host: str, port: int, mounts: Iterable[Mount] = (), reuse_port: bool = False) -> int:
        """Bind the UDP sockets `host` means (adapters.net.server: "localhost" is both loopbacks, on one
        port), one aiocoap message stack each, and build the site; returns the bound port. Without
        `reuse_port` (workers sharing the port: the kernel keeps a client on one) a port in use is an error."""
        loop = asyncio.get_running_loop()
        context = Context(loop=loop, serversite=None, loggername="rosettamq.coap.aiocoap")
        self.context = context
        self.sockets = await bind_udp(host, port, reuse_port=reuse_port, mapped=True)
        for sock in self.sockets:
            tokens = TokenKeepingManager(context)
            messages = _WatchedMessageManager(tokens, self.state.watch)
            transport = await GatewayUDPInterface.create_server(messages, context.log, loop, sock, self.faults)
            self._interfaces.append(transport)
            transport.attach_fast_path(self.state, PS_MOUNT[0])
            messages.message_interface = transport
            tokens.token_interface = messages
            context.request_interfaces.append(tokens)
        contributions: list[Contribution] = [
            (PS_MOUNT, PubSubResource(self.state, PS_MOUNT)),
            (CONNECTION_MOUNT, ConnectionResource(self.state)),
        ]
        for mount in mounts:
            contributions.extend(mount(self))
        context.serversite = build_site(contributions)
        self.port = self.sockets[0].getsockname()[1]
        self._watch_reader()
        return self.port

    async def start_dtls(self, host: str, port: int, psks: dict[bytes, bytes]) -> int:
        """Serve the same site over DTLS with these PSKs (adapters.coap.dtls), after `start`; the bound port."""
        assert self.context is not None, "start() first"
        context = self.context

        async def bind_one(address: str, port: int) -> int:
            return await start_dtls_transport(
                context, lambda tokens: _WatchedMessageManager(tokens, self.state.watch), address, port, psks,
                asyncio.get_running_loop())

        self.dtls_addresses, self.dtls_port = await bind_each(host, port, socket.SOCK_DGRAM, bind_one)
        return self.dtls_port

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.state.connections.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - self.state.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        self._timer = None
        for client_id in self.state.connections.expire(self.state.clock()):
            log.info("coap connection expired client_id=%s", client_id)
            end_observers_of(self.state, client_id, "connection expired")
        self._rearm()

    def _watch_reader(self) -> None:
        self._watchdog = None
        if self._interfaces:
            for interface in self._interfaces:
                interface.transport.watchdog()
            self._watchdog = asyncio.get_running_loop().call_later(1.0, self._watch_reader)

    async def stop(self) -> None:
        """Close the socket and end every exchange (observers are unsubscribed as their tasks end)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._interfaces = []
        if self._timer is not None:
            self._timer.cancel()
        if self.context is not None:
            await self.context.shutdown()
        for observer in list(self.state.registry.of_all()):
            self.state.registry.remove(observer)


async def start_coap_server(
    broker: Broker, settings: CoAPSettings, host: str, port: int, mounts: Iterable[Mount] = (),
    reuse_port: bool = False,
) -> CoAPListener:
    listener = CoAPListener(broker, settings)
    await listener.start(host, port, mounts, reuse_port)
    return listener
