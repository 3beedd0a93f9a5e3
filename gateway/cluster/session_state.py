"""Persistent sessions replicated in JetStream, so that a node that dies loses nothing it acknowledged.

In cluster mode the store of every node is wrapped (`ReplicatedStore`): each change to a
persistent MQTT session (its record, a subscription, a queued or in-flight message, a received
QoS 2 packet id) goes to the local store as before and to the JetStream stream
``<prefix>_state`` (`replicas` copies), one message per subject, the subject naming the session
and the item::

    <prefix>.st.<client id hex>.s              the session (expiry, owner, will)
    <prefix>.st.<client id hex>.f.<filter hex> a subscription
    <prefix>.st.<client id hex>.d.<seq>        a queued or in-flight message
    <prefix>.st.<client id hex>.q.<packet id>  a QoS 2 packet id received, not yet released

A deletion purges its subject (no tombstone is left); a session that ends purges all of its
subjects, when this node wrote any (a clean session without a will writes nothing here). Changes are sent in order by one task,
publishes of a burst concurrently, and sent again until JetStream acknowledges them; `sync`
(what PUBACK, PUBREC and AMQP confirms wait for) calls back only once every change asked before
it is acknowledged, so an acknowledged message is on `replicas` NATS servers. While NATS is
unreachable those acknowledgements wait OUTAGE_GRACE (3 s: a NATS server failing over to
another), then go on: the node serves its clients alone, as everywhere in the cluster, and the
changes are sent when NATS is back (what a node acknowledges during a longer outage is not safe
from its own death).

When the node holding a session is gone, the node its client reconnects to reads the session
back from the stream (`load_session`) and adopts it (gateway/cluster/sessions.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable

import nats
from nats.js import api

from core.message import Message
from core.session_handover import SessionSnapshot
from core.stores.base import RecordValue, Store, StoredDelivery, StoredSession, StoredState
from core.stores.codec import CodecError
from core.subscriptions import SubscriptionOptions

from gateway.cluster.handover import (
    decode_delivery, decode_options, decode_session, encode_delivery, encode_options, encode_session,
)

log = logging.getLogger("rosettamq.cluster")

STATE = "st"
LOAD_TIMEOUT = 10.0  # seconds to read a session back (a stream may be electing a new leader)
RETRY = 0.2  # seconds between attempts to send what JetStream did not acknowledge
OUTAGE_GRACE = 3.0  # seconds acknowledgements wait for NATS to come back (a server failing over)


class SessionUnavailable(Exception):
    """A replicated session could not be read (JetStream electing a leader, NATS away): nothing was lost."""


def state_subject(prefix: str, client_id: str, *item: str) -> str:
    return ".".join((prefix, STATE, client_id.encode("utf-8").hex(), *item))


class Replicator:
    """Sends session changes to the stream in order; tells `sync` waiters when they are acknowledged."""

    def __init__(self, prefix: str, replicas: int) -> None:
        self.prefix = prefix
        self.replicas = replicas
        self.stream = f"{prefix}_state".replace(".", "_")
        self.sent = self.failed = 0
        self._js: Any = None
        self._conn: Any = None
        self._ops: deque[tuple[int, str, bytes | None]] = deque()  # (number, subject, payload; None: purge)
        self._asked = 0  # changes asked for so far
        self._done = 0  # changes acknowledged (or given up) so far
        self._waiters: deque[tuple[int, Callable[[], None]]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.local_only: set[str] = set()  # client ids whose next session deletion stays local
        self.held: set[str] = set()  # client ids with something in the stream written by this node
        self._away_since: float | None = None  # when NATS became unreachable (loop time)

    async def start(self, js: Any, conn: Any) -> None:
        config = api.StreamConfig(name=self.stream, subjects=[f"{self.prefix}.{STATE}.>"], max_msgs_per_subject=1,
                                  num_replicas=self.replicas, storage=api.StorageType.FILE)
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
        self._js, self._conn = js, conn
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cluster session state")
        self._wake.set()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.is_connected

    def put(self, subject: str, payload: bytes) -> None:
        self._push(subject, payload)

    def purge(self, subject: str) -> None:
        self._push(subject, None)

    def put_state(self, client_id: str, item: tuple[str, ...], payload: bytes) -> None:
        """One item of a session (module docstring's subjects)."""
        self.held.add(client_id)
        self.put(state_subject(self.prefix, client_id, *item), payload)

    def purge_state(self, client_id: str, item: tuple[str, ...]) -> None:
        """Purge one item, if this node ever wrote anything of that session (a clean session's
        CONNECT without a will clears a will that was never written: nothing to send)."""
        if client_id in self.held:
            self.purge(state_subject(self.prefix, client_id, *item))

    def forget_state(self, client_id: str) -> None:
        """A session ended: purge all of it, if this node ever wrote any (a clean session without a
        will wrote nothing: its end costs JetStream nothing)."""
        if client_id in self.local_only:  # a stale local copy: the stream is its holder's now
            self.local_only.discard(client_id)
            self.held.discard(client_id)
            return
        if client_id in self.held:
            self.held.discard(client_id)
            self.purge(state_subject(self.prefix, client_id, ">"))

    def _push(self, subject: str, payload: bytes | None) -> None:
        self._asked += 1
        self._ops.append((self._asked, subject, payload))
        self._wake.set()

    def when_replicated(self, callback: Callable[[], None]) -> None:
        """Call back once every change asked so far is acknowledged by JetStream (while NATS is
        away, that waits: a persistent session's message is acknowledged only once replicated)."""
        if self._done >= self._asked or self._js is None or self._outage_past_grace():
            callback()
        else:
            self._waiters.append((self._asked, callback))

    async def flush(self, timeout: float = LOAD_TIMEOUT) -> None:
        """Wait until every change asked so far is acknowledged (or `timeout`)."""
        done = asyncio.get_running_loop().create_future()
        self.when_replicated(lambda: done.done() or done.set_result(None))
        try:
            await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            log.warning("cluster: session changes not replicated within %.0f s", timeout)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._ops and self.connected:
                burst: list[tuple[int, str, bytes | None]] = []
                while self._ops and self._ops[0][2] is not None and len(burst) < 256:
                    burst.append(self._ops.popleft())
                if not burst:
                    burst.append(self._ops.popleft())  # a purge, alone: it must follow what came before
                if await self._send(burst):
                    self._acknowledged(burst[-1][0])
                else:  # not acknowledged: sent again, in order, when JetStream answers (a leader moved...)
                    self._ops.extendleft(reversed(burst))
                    await asyncio.sleep(RETRY)
            if self.connected:
                self._away_since = None
            elif self._ops:
                if self._outage_past_grace():
                    self._release_waiters()  # NATS is gone for longer than a failover: go on alone
                await asyncio.sleep(RETRY)  # nats-py reconnects meanwhile; acknowledgements wait
                self._wake.set()

    async def _send(self, burst: list[tuple[int, str, bytes | None]]) -> bool:
        if burst[0][2] is None:
            subject = burst[0][1]
            try:
                await self._js.purge_stream(self.stream, subject=subject)
            except Exception as exc:
                self.failed += 1
                log.warning("cluster: could not purge %s, retrying: %r", subject, exc)
                return False
            self.sent += 1
            return True
        results = await asyncio.gather(*(self._js.publish(subject, payload) for _, subject, payload in burst),
                                       return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            self.failed += len(errors)
            log.warning("cluster: %d session changes not replicated, retrying: %r", len(errors), errors[0])
            return False
        self.sent += len(burst)
        return True

    def _outage_past_grace(self) -> bool:
        """NATS has been unreachable for longer than OUTAGE_GRACE (starting the clock if it just went)."""
        if self.connected:
            return False
        now = asyncio.get_running_loop().time()
        if self._away_since is None:
            self._away_since = now
        return now - self._away_since >= OUTAGE_GRACE

    def _release_waiters(self) -> None:
        while self._waiters:
            self._waiters.popleft()[1]()

    def _acknowledged(self, number: int) -> None:
        self._done = number
        waiters = self._waiters
        while waiters and waiters[0][0] <= number:
            waiters.popleft()[1]()

    async def load_session(self, client_id: str) -> SessionSnapshot | None:
        """The replicated state of `client_id`'s session, or None when the stream has none; raises
        SessionUnavailable when it cannot be read within LOAD_TIMEOUT."""
        if self._js is None:
            raise SessionUnavailable("not joined to JetStream yet")
        prefix = state_subject(self.prefix, client_id)
        deadline = asyncio.get_running_loop().time() + LOAD_TIMEOUT
        while True:
            try:
                return snapshot_from(await self._read(prefix))
            except Exception as exc:  # no stream leader yet, NATS reconnecting...
                if asyncio.get_running_loop().time() > deadline:
                    log.warning("cluster: could not read session %r from JetStream: %r", client_id, exc)
                    raise SessionUnavailable(repr(exc)) from exc
                await asyncio.sleep(RETRY)

    async def _read(self, prefix: str) -> dict[str, bytes]:
        """Every item under `prefix` (the last message of each subject), by relative subject."""
        items: dict[str, bytes] = {}
        sub = await self._js.subscribe(f"{prefix}.>", ordered_consumer=True,
                                       deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT)
        try:
            info = await sub.consumer_info()
            expected = info.num_pending + info.delivered.consumer_seq
            while len(items) < expected:
                msg = await sub.next_msg(timeout=2.0)
                items[msg.subject[len(prefix) + 1:]] = msg.data
        finally:
            await sub.unsubscribe()
        return items


def snapshot_from(items: dict[str, bytes]) -> SessionSnapshot | None:
    """A session from its stream items (relative subjects: "s", "f.<hex>", "d.<seq>", "q.<id>")."""
    record = items.get("s")
    if record is None:
        return None
    try:
        session = decode_session(record)
        subscriptions: dict[str, SubscriptionOptions] = {}
        deliveries: list[StoredDelivery] = []
        qos2: set[int] = set()
        for item, data in items.items():
            kind, _, name = item.partition(".")
            if kind == "f":
                subscriptions[bytes.fromhex(name).decode()] = decode_options(data)
            elif kind == "d":
                deliveries.append(decode_delivery(data))
            elif kind == "q":
                qos2.add(int(name))
    except (CodecError, ValueError, TypeError) as exc:
        log.error("cluster: a replicated session does not decode: %s", exc)
        return None
    deliveries.sort(key=lambda d: d.seq)
    return SessionSnapshot(session, subscriptions, tuple(deliveries), frozenset(qos2))


class ReplicatedStore(Store):
    """The node's store, with every persistent MQTT session change replicated (see the module)."""

    def __init__(self, local: Store, replicator: Replicator) -> None:
        self.local = local
        self.replicator = replicator
        self.reads_wait_for_writes = local.reads_wait_for_writes

    def load(self) -> StoredState:
        state = self.local.load()
        self.replicator.held.update(state.sessions)  # what it restores was replicated by an earlier run
        return state

    def put_session(self, session: StoredSession) -> None:
        self.local.put_session(session)
        if session.protocol == "mqtt":
            self.replicator.put_state(session.client_id, ("s",), encode_session(session))

    def delete_session(self, client_id: str) -> None:
        self.local.delete_session(client_id)
        self.replicator.forget_state(client_id)

    def put_subscription(self, client_id: str, topic_filter: str, options: SubscriptionOptions) -> None:
        self.local.put_subscription(client_id, topic_filter, options)
        self.replicator.put_state(client_id, ("f", topic_filter.encode().hex()), encode_options(options))

    def delete_subscription(self, client_id: str, topic_filter: str) -> None:
        self.local.delete_subscription(client_id, topic_filter)
        self.replicator.purge_state(client_id, ("f", topic_filter.encode().hex()))

    def put_delivery(self, client_id: str, delivery: StoredDelivery) -> None:
        self.local.put_delivery(client_id, delivery)
        self.replicator.put_state(client_id, ("d", str(delivery.seq)), encode_delivery(delivery))

    def delete_delivery(self, client_id: str, seq: int) -> None:
        self.local.delete_delivery(client_id, seq)
        self.replicator.purge_state(client_id, ("d", str(seq)))

    def load_deliveries(self, client_id: str) -> list[StoredDelivery]:
        return self.local.load_deliveries(client_id)

    def put_incoming_qos2(self, client_id: str, packet_id: int) -> None:
        self.local.put_incoming_qos2(client_id, packet_id)
        self.replicator.put_state(client_id, ("q", str(packet_id)), b"1")

    def delete_incoming_qos2(self, client_id: str, packet_id: int) -> None:
        self.local.delete_incoming_qos2(client_id, packet_id)
        self.replicator.purge_state(client_id, ("q", str(packet_id)))

    def put_retained(self, message: Message) -> None:
        self.local.put_retained(message)  # retained messages have their own stream (nats_fabric.py)

    def delete_retained(self, topic: str) -> None:
        self.local.delete_retained(topic)

    def put_record(self, kind: str, key: str, value: RecordValue) -> None:
        self.local.put_record(kind, key, value)

    def delete_record(self, kind: str, key: str) -> None:
        self.local.delete_record(kind, key)

    def load_records(self, kind: str) -> dict[str, bytes]:
        return self.local.load_records(kind)

    def sync(self, callback: Callable[[], None]) -> None:
        self.local.sync(lambda: self.replicator.when_replicated(callback))

    def close(self) -> None:
        self.local.close()
