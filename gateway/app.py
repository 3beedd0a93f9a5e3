"""The gateway process: one core, the listeners the config turns on, and an orderly stop.

`Gateway.start()` opens and loads the store, starts the listeners (port 0 =
the OS picks; the real ports are in `Gateway.ports` and in the log), and arms
the core's deadline timer. `Gateway.stop()` is the graceful shutdown, step by step.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import operator
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.amqp.server import AMQPService
from adapters.amqp.store_log import StoreLog
from adapters.coap.dtls import PSKError, parse_psk_lines
from adapters.coap.server import CoAPListener, Mount, start_coap_server
from adapters.lwm2m.server import LwM2MServer
from adapters.mqtt.server import ConnectionTracker, start_mqtt_server
from adapters.mqtt.settings import MQTTSettings
from adapters.net.server import ServerGroup
from adapters.tls.server import TLSServer
from adapters.ws.server import WSListener, start_ws_server
from core.auth import Authenticator
from core.broker import Broker
from core.metrics import Registry
from core.stores.base import Store
from core.stores.memory import MemoryStore
from core.stores.sqlite import SqliteStore
from core.tokens import TokenFile, TokenFileError

from gateway.auth_jwt import TokenAuthenticator
from gateway.bridges.manager import Bridges
from gateway.clients import PROTOCOLS, kick, list_clients
from gateway.cluster.nats_fabric import NATSFabric
from gateway.cluster.session_state import ReplicatedStore, Replicator
from gateway.config import Config, ConfigError, WSListenerConfig, WSSListenerConfig
from gateway.http import HTTPServer
from gateway.listening import Listening
from gateway.metrics import build_registry
from gateway.sys_topics import SysPublisher
from gateway.security import Security
from gateway.tls_reload import TLSContexts
from gateway.settings import (amqp_settings, coap_settings, logins_are_checked, lwm2m_settings, mqtt_settings,
                              session_limits, ws_settings)

log = logging.getLogger("rosettamq.gateway")

SHUTDOWN_GRACE = 2.0  # seconds given to clients to receive their DISCONNECT


def open_store(config: Config, loop: asyncio.AbstractEventLoop) -> Store:
    """The store `[store] path` names: the SQLite file (acks wait for its commits on `loop`), or memory.

    Raises StoreError for a file that is not a usable RosettaMQ store.
    """
    if config.store.is_memory:
        return MemoryStore()
    return SqliteStore(config.store.path, call_soon_threadsafe=loop.call_soon_threadsafe)


def amqp_durable_log(store: Store) -> StoreLog | None:
    """AMQP durable state goes to the store's records, unless the store is memory (nothing to survive)."""
    return None if isinstance(store, MemoryStore) else StoreLog(store)


CLUSTER_CONNECT_WAIT = 5.0  # seconds the start waits for NATS before serving local clients alone


class DeadlineTimer:
    """Runs the core's time-driven work (delayed wills, session expiry) at its deadlines."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        broker.mqtt_sessions.on_deadline_change = self.rearm

    def rearm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        deadline = self._broker.next_deadline()
        if deadline is not None:
            self._handle = self._loop.call_later(max(0.0, deadline - time.time()), self._fire)

    def _fire(self) -> None:
        self._handle = None
        try:
            self._broker.run_due()
        finally:
            self.rearm()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


@dataclass
class Gateway:
    """Everything one gateway process runs."""

    config: Config
    store: Store | None = None
    broker: Broker = field(init=False)
    authenticator: Authenticator | None = field(init=False)
    security: Security = field(init=False)  # authenticator, ACL, login backoff, connection gates
    ports: dict[str, int] = field(default_factory=dict)
    listening: Listening = field(default_factory=Listening)  # bound listeners, announced once all are
    live_mqtt_settings: MQTTSettings = field(init=False)  # what a new MQTT connection gets (SIGHUP replaces it)
    mqtt_connections: ConnectionTracker = field(default_factory=ConnectionTracker)
    _servers: list[ServerGroup | TLSServer] = field(default_factory=list)
    tls_servers: dict[str, TLSServer] = field(default_factory=dict)  # by listener name (metrics)
    ws_listeners: list[WSListener] = field(default_factory=list)
    _http: HTTPServer | None = None
    coap: CoAPListener | None = None
    coap_mounts: list[Mount] = field(default_factory=list)  # more CoAP resource trees (LwM2M's /rd)
    lwm2m: LwM2MServer | None = None
    fabric: NATSFabric | None = None  # [cluster]: this node's part of the NATS fabric
    bridges: Bridges | None = None  # [[bridge.*]]: upstream MQTT brokers, RabbitMQ, webhooks
    tls: TLSContexts = field(default_factory=TLSContexts)  # reloaded on SIGHUP
    token_files: dict[str, TokenFile] = field(default_factory=dict)  # WebSocket bearer tokens, by path
    amqp: AMQPService | None = None
    _timer: DeadlineTimer | None = None
    _stopped: asyncio.Event | None = None
    _stopping: bool = False
    metrics: Registry = field(init=False)  # every collector (gateway/metrics.py), read at scrape time
    sys_publisher: SysPublisher | None = None
    topic_watcher: Any = None  # the console's topic counter while an event stream is open (gateway/http/events.py)
    _key_refresh: asyncio.Task[None] | None = None  # [auth.jwt]: the provider's keys, refreshed

    def __post_init__(self) -> None:
        self.security = Security.from_config(self.config)  # a bad password or ACL file fails here
        self.authenticator = self.security.authenticator

    async def _start_coaps(self, coap: CoAPListener) -> None:
        """[coaps]: the CoAP listener's site over DTLS with the PSK file's keys (adapters/coap/dtls.py)."""
        section = self.config.coaps
        assert section.psk_file is not None
        try:
            psks = parse_psk_lines(Path(section.psk_file).read_text(encoding="utf-8"))
        except PSKError as exc:
            raise ConfigError(f"coaps.psk_file: {section.psk_file}: {exc}") from None
        self.listening.begin("coaps", section.listen)
        port = await coap.start_dtls(section.listen.host, section.listen.port, psks)
        self.ports["coaps"] = port
        bound = coap.dtls_addresses
        self.listening.done("coaps", section.listen.host if len(bound) > 1 else bound[0], port, bound)

    def _token_file(self, section: WSListenerConfig | WSSListenerConfig) -> TokenFile | None:
        """The section's token file, loaded once and kept (SIGHUP reloads it in place)."""
        if not section.tokens_file:
            return None
        tokens = self.token_files.get(section.tokens_file)
        if tokens is None:
            tokens = self.token_files[section.tokens_file] = TokenFile.load(section.tokens_file)
        return tokens

    def reload(self) -> bool:
        """SIGHUP: re-read the password file, the ACL file, the WebSocket token files and the TLS
        certificates; connections stay (see gateway/security.py, gateway/tls_reload.py)."""
        ok = self.security.reload()
        for tokens in self.token_files.values():
            try:
                tokens.reload()
                log.info("token file reloaded path=%s", tokens.path)
            except (OSError, TokenFileError) as exc:
                ok = False
                log.error("token file reload failed path=%s: %s; keeping the current tokens", tokens.path, exc)
        return self.tls.reload() and ok

    async def start(self) -> None:
        """Open the store, bind every listener, then log one "listening" line each. A listener that
        cannot bind raises ListenerError naming it, after what was started is closed again."""
        try:
            await self._start()
        except OSError as exc:
            error = self.listening.failure(exc)
            if error is None:
                raise
            await self.stop(announce=False)
            raise error from exc
        self.listening.announce()

    async def _start(self) -> None:
        self._stopped = asyncio.Event()
        # The store is opened here, on the running loop its writer thread hands acknowledgements to.
        store = self.store if self.store is not None else open_store(self.config, asyncio.get_running_loop())
        local_store = store
        replicator = None
        if self.config.cluster is not None:  # persistent sessions replicated in JetStream too
            replicator = Replicator(self.config.cluster.prefix, self.config.cluster.replicas)
            store = ReplicatedStore(store, replicator)
        self.broker = Broker(store, limits=session_limits(self.config), authorizer=self.security.authorizer,
                             max_memory=self.config.limits.max_memory,
                             max_message_bytes=self.config.limits.max_message_size)
        self.broker.mqtt_sessions.owners_enforced = logins_are_checked(self.config, self.authenticator)
        self.broker.start()
        if isinstance(self.authenticator, TokenAuthenticator):  # keys before the first login (a thread's fetch)
            self._key_refresh = await self.authenticator.source.start()
        if self.config.cluster is not None:  # join the cluster before any client can subscribe
            self.fabric = NATSFabric(self.broker, self.config.cluster, self._cluster_details, replicator,
                                     self.admin_answer)
            await self.fabric.start()
            if not await self.fabric.wait_connected(CLUSTER_CONNECT_WAIT):
                log.warning("cluster: NATS not reachable yet; serving local clients, joining when it is")
        # Bridges after the core and the fabric, before the listeners: their queues are loaded first.
        self.bridges = Bridges(self.config.bridges, self.broker, None if isinstance(local_store, MemoryStore) else store,
                               self.config.cluster.node if self.config.cluster else None)
        await self.bridges.start()
        self._timer = DeadlineTimer(self.broker)
        self._timer.rearm()
        self.metrics = build_registry(self)
        self.live_mqtt_settings = self.security.mqtt_settings(mqtt_settings(self.config), self.config)
        # What a new MQTT connection gets, read per connection: C calls, no interpreted frame (a lambda's).
        settings = functools.partial(operator.attrgetter("live_mqtt_settings"), self)
        guard = self.security.guard
        reuse_port = self.config.reuse_port  # a worker of `rosettamq run --workers N` (gateway/workers.py)
        if self.config.mqtt.enabled:
            listen = self.config.mqtt.listen
            self.listening.begin("mqtt", listen)
            server, _ = await start_mqtt_server(
                self.broker, settings, listen.host, listen.port, listener="mqtt", tracker=self.mqtt_connections,
                guard=guard("mqtt"), reuse_port=reuse_port,
            )
            self._register("mqtt", server)
        if self.config.mqtt_tls.enabled:
            listen = self.config.mqtt_tls.listen
            self.listening.begin("mqtt_tls", listen)
            server, _ = await start_mqtt_server(
                self.broker, settings, listen.host, listen.port,
                ssl_context=self.tls.context("mqtt_tls", self.config.mqtt_tls), listener="mqtt_tls", tracker=self.mqtt_connections,
                guard=guard("mqtt_tls", self.config.mqtt_tls), reuse_port=reuse_port,
            )
            self._register("mqtt_tls", server)
        for name, section in (("ws", self.config.ws), ("wss", self.config.wss)):
            if section.enabled:
                ssl_context = self.tls.context("wss", self.config.wss) if name == "wss" else None
                self.listening.begin(name, section.listen)
                ws, _ = await start_ws_server(
                    self.broker, settings, ws_settings(self.config, section, self._token_file(section), self.authenticator), section.listen.host, section.listen.port,
                    ssl_context=ssl_context, listener=name, tracker=self.mqtt_connections, guard=guard(name, section),
                    reuse_port=reuse_port,
                )
                self.ws_listeners.append(ws)
                self._register(name, ws.server)
        for name, section in (("amqp", self.config.amqp), ("amqps", self.config.amqps)):
            if section.enabled:
                if self.amqp is None:
                    amqp = amqp_settings(self.config, self.authenticator, self.security.login_backoff,
                                         self.security.is_admin)
                    self.amqp = AMQPService(self.broker, amqp,
                                            log_=amqp_durable_log(self.broker.store))
                ssl_context = self.tls.context("amqps", self.config.amqps) if name == "amqps" else None
                self.listening.begin(name, section.listen)
                server = await self.amqp.listen(section.listen.host, section.listen.port,
                                                ssl_context=ssl_context, listener=name, gate=self.security.gate(name),
                                                reuse_port=reuse_port)
                self._register(name, server)
        if self.config.coap.enabled:
            listen = self.config.coap.listen
            mounts = list(self.coap_mounts)
            if self.config.lwm2m.enabled:
                self.lwm2m = LwM2MServer(self.broker, lwm2m_settings(self.config),
                                         rate_limiter=self.security.rate_limiter)
                mounts.append(self.lwm2m.mount)
            self.listening.begin("coap", listen)
            self.coap = await start_coap_server(self.broker, coap_settings(self.config, self.security),
                                                listen.host, listen.port, mounts=mounts, reuse_port=reuse_port)
            self.ports["coap"] = self.listening.done_sockets("coap", self.coap.sockets)
            if self.config.coaps.enabled:
                await self._start_coaps(self.coap)
        if self.config.http.enabled:
            listen = self.config.http.listen
            self._http = HTTPServer(self)
            self.listening.begin("http", listen)
            await self._http.start(listen.host, listen.port, reuse_port)
            self.ports["http"] = self.listening.done_sockets("http", self._http.sockets)
        if self.config.sys.interval > 0:
            self.sys_publisher = SysPublisher(self, self.config.sys.interval)
            self.sys_publisher.start()

    def listener_states(self) -> dict[str, str]:
        """Each started listener: "listening", "closed" once stopping, or "stalled" when the CoAP
        socket has datagrams waiting that it has not read (health then says not ready)."""
        states = {name: "listening" for name in self.ports}
        if self._stopped is not None and self._stopped.is_set() or self._stopping:
            states = {name: "closed" for name in states}
        elif self.coap is not None and "coap" in states and not self.coap.reading():
            states["coap"] = "stalled"
        return states

    def _cluster_details(self) -> dict[str, Any]:
        """What this node's heartbeat tells the cluster about it."""
        router = self.broker.router
        return {"listeners": dict(self.ports), "connections": self.connection_count(),
                "published": router.published, "delivered": router.delivered}

    def admin_answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """This node's answer to another node's admin question (gateway/cluster/admin.py)."""
        op, protocol = request.get("op"), request.get("protocol")
        if protocol not in (None, *PROTOCOLS):
            return {"error": f"unknown protocol {protocol!r}"}
        if op == "clients":
            return {"clients": list_clients(self, protocol)}
        if op == "kick":
            return {"kicked": kick(self, str(request.get("id")), protocol)}
        return {"error": f"unknown request {op!r}"}

    def connection_count(self) -> int:
        """Connected clients of every protocol (MQTT sessions online, AMQP connections, CoAP connections)."""
        mqtt = sum(1 for s in self.broker.mqtt_sessions.sessions.values() if s.sink is not None)
        amqp = len(self.amqp) if self.amqp is not None else 0
        coap = len(self.coap.state.connections) if self.coap is not None else 0
        return mqtt + amqp + coap

    def _open_connections(self) -> int:
        """MQTT connections of every transport, plus WebSocket connections not yet upgraded."""
        amqp = len(self.amqp) if self.amqp is not None else 0
        return len(self.mqtt_connections) + sum(len(ws.handshakes.pending) for ws in self.ws_listeners) + amqp

    def _register(self, name: str, server: ServerGroup | TLSServer) -> None:
        self._servers.append(server)
        if isinstance(server, TLSServer):
            self.tls_servers[name] = server
        self.ports[name] = self.listening.done_sockets(name, server.sockets)  # one port, one socket per stack

    def write_ports_file(self, path: str) -> None:
        """Write {"listener": port} as JSON, atomically (for scripts and tests using port 0)."""
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.ports, handle)
        os.replace(tmp, path)

    async def stop(self, announce: bool = True) -> None:
        """Graceful shutdown (`announce`: log "stopped"; not after a start that failed)."""
        # 1. Stop accepting new connections and publishing $SYS; finish HTTP requests in progress.
        self._stopping = True
        if self.sys_publisher is not None:
            self.sys_publisher.stop()
        for server in self._servers:
            server.close()
        if self.lwm2m is not None:
            self.lwm2m.close()  # its requests to devices end before the CoAP socket closes
        if self.coap is not None:
            await self.coap.stop()  # UDP: no connection to close, observations just end
        if self._http is not None:
            await self._http.stop()
        # 2. Tell every client why (MQTT 5: DISCONNECT 0x8B "server shutting down", WebSocket
        #    close 1001), then close; WebSocket connections still in their HTTP upgrade just close.
        for ws in self.ws_listeners:
            ws.abort_handshakes()
        self.mqtt_connections.shutdown()
        if self.amqp is not None:
            self.amqp.shutdown()  # AMQP: connection.close 320 CONNECTION_FORCED
        # 3. Give the transports a moment to write those DISCONNECTs.
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_GRACE
        while self._open_connections() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for server in self._servers:
            await server.wait_closed()
        # 4. Stop the core's timers and flush the store.
        if self._timer is not None:
            self._timer.cancel()
        if self.amqp is not None:
            self.amqp.close()
        if self.bridges is not None:
            await self.bridges.stop()  # what is still queued stays in the store for the next start
        if self.fabric is not None:
            await self.fabric.stop()
        if self._key_refresh is not None:
            self._key_refresh.cancel()
        self.broker.close()
        if announce:
            log.info("stopped")
        if self._stopped is not None:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped.wait()
