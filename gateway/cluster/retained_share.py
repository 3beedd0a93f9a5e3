"""Retained messages shared by every node through a JetStream stream (asyncio layer).

The stream (``PREFIX.r.>``) keeps one message per subject, `replicas` copies. A change on
this node is published there, and an ordered consumer (last per subject) brings every node's
changes into the local retained store; an empty payload is a clear. A node's own change is
applied at once and its echo skipped; another node's change to a topic this node has a
change in flight for is older in the stream and skipped, so every node ends on the stream's
order. Changes are published by one task, in order, and never block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
from nats.js import api

from core.broker import Broker
from core.message import Message

from gateway.cluster.envelope import decode_envelope, encode_envelope
from gateway.cluster.settings import ClusterSettings
from gateway.cluster.subjects import RETAINED, topic_subject

log = logging.getLogger("rosettamq.cluster")


class RetainedShare:
    """This node's side of the retained stream: its changes out, every node's changes in.

    `origin` and `header` name this run of the node in envelopes (gateway/cluster/envelope.py)."""

    def __init__(self, broker: Broker, settings: ClusterSettings, origin: str, header: bytes) -> None:
        self.broker = broker
        self.settings = settings
        self._origin = origin
        self._header = header
        self._seq = 0
        self._js: Any = None
        self._sub: Any = None
        self._changes: asyncio.Queue[Message] = asyncio.Queue()
        self._pending: dict[str, int] = {}  # topic -> the number of our change still in flight
        self.published = self.received = self.errors = 0

    async def start(self, js: Any) -> None:
        """Make sure the stream exists (JetStream may still be electing its leader), then follow it."""
        self._js = js
        prefix = self.settings.prefix
        name = f"{prefix}_retained".replace(".", "_")
        try:
            await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(api.StreamConfig(name=name, subjects=[f"{prefix}.{RETAINED}.>"],
                                                 max_msgs_per_subject=1, num_replicas=self.settings.replicas,
                                                 storage=api.StorageType.FILE))
        self._sub = await js.subscribe(f"{prefix}.{RETAINED}.>", ordered_consumer=True,
                                       deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT, cb=self._on_change)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await asyncio.wait_for(self._sub.unsubscribe(), 2)  # ends its heartbeat tasks
            except Exception:
                pass

    def changed(self, message: Message) -> None:
        self._changes.put_nowait(message)

    async def publish_changes(self, connected: asyncio.Event) -> None:
        """The task that publishes this node's changes, in order, once the node is connected."""
        while True:
            message = await self._changes.get()
            await connected.wait()
            self._seq += 1
            self._pending[message.topic] = self._seq
            subject = topic_subject(self.settings.prefix, RETAINED, message.topic)
            try:
                await self._js.publish(subject, encode_envelope(self._header, self._seq, message))
                self.published += 1
            except Exception as exc:
                self.errors += 1
                self._pending.pop(message.topic, None)
                log.warning("cluster: retained %r not shared: %r", message.topic, exc)

    async def _on_change(self, msg: Any) -> None:
        try:
            envelope = decode_envelope(msg.data)
        except (ValueError, UnicodeDecodeError):
            self.errors += 1
            return
        if len(envelope.messages) != 1:
            self.errors += 1
            return
        message = envelope.messages[0]
        topic = message.topic
        pending = self._pending.get(topic)
        if envelope.node == self._origin:
            if pending == envelope.seq:
                del self._pending[topic]  # our change, applied when it was made
            return
        elif pending is not None:
            return  # our own change to this topic comes later in the stream
        self.received += 1
        self.broker.apply_remote_retained(message)
