"""The cluster fabric on NATS: the asyncio layer around the pure pieces (subjects, envelope, view).

Two connections to the NATS cluster (nats-py):

- the *main* one, with ``no_echo``: this node publishes every local message on
  ``PREFIX.t.<subject>`` and subscribes to the subjects of its local subscribers' filters,
  so it never receives its own messages back; heartbeats go on ``PREFIX.ctl.hb``;
- the *shares* one holds the queue-group subscriptions of shared subscriptions: NATS gives
  each message to one member of a queue group across every node, this node included (echo
  is on there, as the message was published on the other connection).

Retained messages live in a JetStream stream (gateway/cluster/retained_share.py).

Nothing here blocks the event loop: interest changes are applied in order by one task,
outgoing messages are published in batches once per loop iteration. While NATS is
unreachable the node serves its local clients, counts what it could not forward
(`not_forwarded`), and nats-py re-subscribes when it reconnects.

Flow control (gateway/cluster/flow.py): a node whose subscribers fall behind on another
node's messages sends that node holds and releases on ``PREFIX.ctl.flow.<its run id>``;
a held topic's publishers wait as they would for a congested subscriber of their own node.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import time
from collections import OrderedDict
from typing import Any, Callable

import nats

from core.broker import Broker
from core.fabric import SessionClaim
from core.message import Message

from gateway.cluster.admin import ClusterAdmin
from gateway.cluster.envelope import decode_envelope, node_header
from gateway.cluster.flow import HeldTopics, HoldReports, routed_behind
from gateway.cluster.forwarding import Forwarding
from gateway.cluster.retained_share import RetainedShare
from gateway.cluster.session_state import Replicator
from gateway.cluster.sessions import ClusterSessions
from gateway.cluster.settings import ClusterSettings
from gateway.cluster.subjects import (
    CONTROL, TOPICS, filter_subjects, flow_subject, queue_group, topic_subject,
)
from gateway.cluster.view import ClusterView

log = logging.getLogger("rosettamq.cluster")

RECENT = 16384  # (node, seq) pairs remembered to drop a second copy of one message


class NATSFabric:
    """This node's part of the cluster; see the module docstring."""

    shares_across_nodes = True

    def __init__(self, broker: Broker, settings: ClusterSettings, details: Callable[[], dict[str, Any]],
                 replicator: Replicator | None = None,
                 admin_answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.broker = broker
        self.settings = settings
        self.node = settings.node
        self.details = details  # what this node's heartbeat says about it
        self.view = ClusterView(settings.heartbeat)
        self.started_at = time.time()
        self.forwarded = self.received = self.duplicates = self.errors = self.not_forwarded = 0
        # Envelopes name this run of the node: a restarted node numbers its messages from 1 again.
        self._origin = f"{self.node}/{secrets.token_hex(4)}"
        self._header = node_header(self._origin)
        self._held = HeldTopics()  # topics other nodes asked us to hold (our publishers wait)
        # What we asked others to hold. Routing goes straight to the (compiled) door: no interpreted
        # frame per message received from another node.
        self._holding = HoldReports(functools.partial(routed_behind, broker.door.publish_remote), self._send_flow)
        self._main: Any = None
        self._shares: Any = None
        self._connected = asyncio.Event()
        self._recent: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._interest: asyncio.Queue[tuple[bool, str, str | None]] = asyncio.Queue()
        self._subs: dict[tuple[str, str | None], list[Any]] = {}
        self.retained = RetainedShare(broker, settings, self._origin, self._header)
        self._tasks: list[asyncio.Task[None]] = []
        self._heartbeat: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._forwarding = Forwarding(self._header, functools.partial(topic_subject, settings.prefix, TOPICS),
                                      self._schedule_flush, self._held, self._loop.time)
        # The door's call for every local message (core/fabric.py `forward`): the compiled queue's own
        # method, so a publish runs no interpreted frame on its way to the other nodes.
        self.forward = self._forwarding.forward
        self.replicator = replicator if replicator is not None else Replicator(settings.prefix, settings.replicas)
        self.admin = ClusterAdmin(self.node, settings.prefix, admin_answer or (lambda request: {}),
                                  lambda: list(self.view.nodes))
        self.sessions = ClusterSessions(broker.mqtt_sessions, self.node, settings.prefix, settings.replicas,
                                        lambda name: name in self.view.nodes, self.replicator)

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the router at once (local interest is recorded), connect in the background."""
        self.broker.router.attach_fabric(self)
        self._tasks = [asyncio.create_task(self._connect(), name="cluster connect"),
                       asyncio.create_task(self._apply_interest(), name="cluster interest"),
                       asyncio.create_task(self.retained.publish_changes(self._connected), name="cluster retained")]
        self._beat()

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        if self.replicator.connected:
            await self.replicator.flush(timeout=5)  # what was acknowledged is in JetStream before we go
        self.replicator.stop()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for task in self._tasks:
            task.cancel()
        await self.retained.stop()
        for conn in (self._main, self._shares):
            if conn is not None and not conn.is_closed:
                try:
                    await asyncio.wait_for(conn.close(), 5)
                except (TimeoutError, nats.errors.Error, OSError):
                    pass
                except asyncio.CancelledError:  # nats-py's own tasks, when NATS went away as we stop
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise  # we are being cancelled: let it through

    async def _connect(self) -> None:
        options = self.settings.connect_options()
        callbacks = {"error_cb": self._on_error, "disconnected_cb": self._on_disconnected,
                     "reconnected_cb": self._on_reconnected}
        while True:
            try:
                self._main = await nats.connect(name=f"rosettamq {self.node}", no_echo=True, **callbacks,
                                                **options)
                self._shares = await nats.connect(name=f"rosettamq {self.node} shares", **callbacks, **options)
                await self._main.subscribe(f"{self.settings.prefix}.{CONTROL}.hb", cb=self._on_heartbeat)
                await self._main.subscribe(flow_subject(self.settings.prefix, self._origin), cb=self._on_flow)
                js = self._main.jetstream()
                await self.retained.start(js)
                await self.replicator.start(js, self._main)
                await self.sessions.start(js, self._main)
                await self.admin.start(self._main)
                break
            except Exception as exc:  # NATS or JetStream not there (yet): serve locally, try again
                self.errors += 1
                log.warning("cluster: cannot join through NATS %s: %r; retrying",
                            ",".join(self.settings.servers), exc)
                for conn in (self._main, self._shares):
                    if conn is not None and not conn.is_closed:
                        await conn.close()
                self._main = self._shares = None
                await asyncio.sleep(self.settings.reconnect_wait)
        self._connected.set()
        log.info("cluster: node %s joined through NATS %s", self.node, self._main.connected_url.netloc)

    async def _on_error(self, exc: Exception) -> None:
        self.errors += 1
        log.warning("cluster: NATS error: %r", exc)

    async def _on_disconnected(self) -> None:
        log.warning("cluster: disconnected from NATS; serving local clients, reconnecting")

    async def _on_reconnected(self) -> None:
        url = self._main.connected_url.netloc if self._main is not None and self._main.connected_url else "?"
        log.info("cluster: reconnected to NATS %s", url)

    # -- the core's calls (core/fabric.py) ------------------------------------------------

    def interest_added(self, topic_filter: str, share_group: str | None) -> None:
        self._interest.put_nowait((True, topic_filter, share_group))

    def interest_removed(self, topic_filter: str, share_group: str | None) -> None:
        self._interest.put_nowait((False, topic_filter, share_group))

    @property
    def claims_sessions(self) -> bool:
        return self.sessions.ready

    async def claim_session(self, client_id: str, username: str | None, clean_start: bool) -> SessionClaim:
        return await self.sessions.claim(client_id, username, clean_start)

    def retained_changed(self, message: Message, cleared: bool) -> None:
        topic = message.topic
        if topic.startswith("$SYS/") and not topic.startswith("$SYS/broker/nodes/"):
            return
        self.retained.changed(message)

    # -- outgoing -------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        self._loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._tasks.append(asyncio.create_task(self._flush()))
        self._tasks = [task for task in self._tasks if not task.done()]

    async def _flush(self) -> None:
        forwarding = self._forwarding
        pending = forwarding.take()
        while pending:
            conn = self._main
            if conn is None or conn.is_closed or not self._connected.is_set():
                self.not_forwarded += len(pending)
            else:
                sent = 0
                try:
                    for subject, data, count in forwarding.batches(pending):
                        await conn.publish(subject, data)
                        sent += count
                    self.forwarded += sent
                except Exception as exc:  # the reconnect buffer is full, or the connection is closed
                    self.forwarded += sent
                    self.not_forwarded += len(pending) - sent
                    self.errors += 1
                    log.debug("cluster: forward failed: %r", exc)
            pending = forwarding.take()
        forwarding.flushing = False

    async def _apply_interest(self) -> None:
        """Interest changes, in order: one NATS subscription per subject of each filter."""
        while True:
            added, topic_filter, group = await self._interest.get()
            await self._connected.wait()
            key = (topic_filter, group)
            try:
                if added and key not in self._subs:
                    self._subs[key] = await self._subscribe(topic_filter, group)
                elif not added:
                    for sub in self._subs.pop(key, []):
                        await sub.unsubscribe()
            except Exception as exc:
                self.errors += 1
                log.warning("cluster: interest change for %r failed: %r", topic_filter, exc)

    async def _subscribe(self, topic_filter: str, group: str | None) -> list[Any]:
        subjects = filter_subjects(self.settings.prefix, TOPICS, topic_filter)
        if group is None:
            return [await self._main.subscribe(subject, cb=self._on_message) for subject in subjects]
        queue = queue_group(group, topic_filter)

        async def on_share(msg: Any) -> None:
            self._receive(msg.data, (group, topic_filter))

        return [await self._shares.subscribe(subject, queue=queue, cb=on_share) for subject in subjects]

    # -- incoming -------------------------------------------------------------------------

    async def _on_message(self, msg: Any) -> None:
        self._receive(msg.data, None)

    def _receive(self, data: bytes, share: tuple[str, str] | None) -> None:
        try:
            envelope = decode_envelope(data)
        except (ValueError, UnicodeDecodeError) as exc:
            self.errors += 1
            log.debug("cluster: undecodable message: %r", exc)
            return
        key = (envelope.node, envelope.seq)
        if share is None:
            recent = self._recent
            if key in recent:
                self.duplicates += 1  # a second subscription of ours matched the same message
                return
            recent[key] = None
            if len(recent) > RECENT:
                recent.popitem(last=False)
        self.received += len(envelope.messages)
        if share is not None:  # one member of a share group: delivered as it comes
            door = self.broker.door
            for message in envelope.messages:
                door.publish_remote(message, share)
            return
        # Each routed, or parked behind a hold on its topic.
        self._holding.receive_all(envelope.node, envelope.messages, self._loop.time())

    # -- flow control across nodes (gateway/cluster/flow.py) ------------------------------

    def _send_flow(self, origin: str, hold: bool, topic: str) -> None:
        conn = self._main
        if conn is None or conn.is_closed:
            return  # the hold expires on its own at the other end
        data = json.dumps({"node": self._origin, "hold": hold, "topic": topic}).encode()
        self._tasks.append(self._loop.create_task(self._publish_control(flow_subject(self.settings.prefix, origin),
                                                                         data)))

    async def _publish_control(self, subject: str, data: bytes) -> None:
        try:
            await self._main.publish(subject, data)
        except Exception as exc:
            log.debug("cluster: control message not sent: %r", exc)

    async def _on_flow(self, msg: Any) -> None:
        try:
            document = json.loads(msg.data)
            node, hold, topic = str(document["node"]), bool(document["hold"]), str(document["topic"])
        except (ValueError, KeyError, TypeError):
            self.errors += 1
            return
        if hold:
            self._held.hold(topic, node, self._loop.time())
        else:
            self._held.release(topic, node)

    # -- heartbeats and the view ----------------------------------------------------------

    def _beat(self) -> None:
        now = time.monotonic()
        for name in self.view.expire(now):
            log.warning("cluster: node %s silent for %.1f s: dropped from the view", name, self.view.timeout)
            self.sessions.node_gone(name)
        if self._connected.is_set() and self._main is not None and not self._main.is_closed:
            document = {"node": self.node, "started": self.started_at, **self.details()}
            self._tasks.append(asyncio.create_task(self._publish_control(f"{self.settings.prefix}.{CONTROL}.hb",
                                                                         json.dumps(document).encode())))
            self._tasks = [task for task in self._tasks if not task.done()]
        self._heartbeat = self._loop.call_later(self.settings.heartbeat, self._beat)

    async def _on_heartbeat(self, msg: Any) -> None:
        try:
            document = json.loads(msg.data)
            name = str(document["node"])
        except (ValueError, KeyError, TypeError):
            self.errors += 1
            return
        if self.view.heard(name, document, time.monotonic()):
            log.info("cluster: node %s joined the view", name)

    # -- operations -----------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """This node, its NATS connection and the nodes it sees (GET /api/v1/cluster)."""
        main = self._main
        now = time.monotonic()
        connected = bool(main is not None and main.is_connected)
        return {
            "node": self.node,
            "nats": {"connected": connected,
                     "server": main.connected_url.netloc if connected and main.connected_url else None,
                     "reconnects": main.stats.get("reconnects", 0) if main is not None else 0},
            "nodes": [{"name": self.node, "self": True, "uptime": time.time() - self.started_at, **self.details()}]
            + [{"name": info.name, "self": False, "last_heartbeat_s": round(now - info.last_seen, 3),
                "uptime": time.time() - float(info.details.get("started", time.time())),
                **{k: v for k, v in info.details.items() if k not in ("node", "started")}}
               for info in sorted(self.view.nodes.values(), key=lambda n: n.name)],
            "sessions": self.sessions.describe(),
        }

    def metrics(self) -> dict[str, int]:
        return {"forwarded": self.forwarded, "received": self.received, "duplicates_dropped": self.duplicates,
                "not_forwarded": self.not_forwarded, "errors": self.errors + self.retained.errors, "interest": len(self._subs),
                "retained_published": self.retained.published, "retained_received": self.retained.received,
                "holds_sent": self._holding.holds_sent, "holds_received": self._held.holds_received,
                "parked": self._holding.parked,
                "nodes": len(self.view.nodes) + 1}
