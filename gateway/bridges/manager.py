"""The bridges of one gateway: built from the config, started after the core, stopped before it.

This gateway's name in the via marker (marks.py) is its cluster node name, or else a random id
kept in the store (a new one per run with the memory store).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from core.broker import Broker
from core.metrics import Family
from core.stores.base import Store

from gateway.bridges.amqp import AMQPBridge
from gateway.bridges.base import Bridge
from gateway.bridges.mqtt import MQTTBridge
from gateway.bridges.queue import DROP_REASONS
from gateway.bridges.settings import BridgeSettings
from gateway.bridges.webhook import WebhookBridge

log = logging.getLogger("rosettamq.bridge")

KINDS: dict[str, type[Bridge]] = {"mqtt": MQTTBridge, "amqp": AMQPBridge, "http": WebhookBridge}
NODE_RECORD = ("bridge.node", "id")


def node_id(store: Store | None, cluster_node: str | None) -> str:
    """This gateway's name in the via marker."""
    if cluster_node:
        return cluster_node
    if store is None:
        return uuid.uuid4().hex[:16]
    kept = store.load_records(NODE_RECORD[0]).get(NODE_RECORD[1])
    if kept:
        return kept.decode("ascii")
    node = uuid.uuid4().hex[:16]
    store.put_record(*NODE_RECORD, node.encode("ascii"))
    return node


class Bridges:
    """Every configured bridge; `store` is None when nothing should survive a restart."""

    def __init__(self, settings: tuple[BridgeSettings, ...], broker: Broker, store: Store | None,
                 cluster_node: str | None = None) -> None:
        self.node = node_id(store, cluster_node) if settings else ""
        self.bridges = [KINDS[s.kind](s, broker, self.node, store) for s in settings]  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.bridges)

    async def start(self) -> None:
        for bridge in self.bridges:
            await bridge.start()
            log.info("bridge %s (%s) started: %s out=%s", bridge.name, bridge.kind, bridge.settings.public_url(),
                     ",".join(bridge.settings.out) or "-")

    async def stop(self) -> None:
        for bridge in self.bridges:
            await bridge.stop()

    def describe(self) -> list[dict[str, Any]]:
        return [bridge.describe() for bridge in self.bridges]

    def families(self) -> list[Family]:
        """Per bridge: connected, forwarded, received, queued (messages, bytes), dropped by reason."""
        connected = Family("bridge_connected", "gauge", "Whether the bridge's upstream is connected (1) or not (0)")
        forwarded = Family("bridge_forwarded", "counter", "Messages the upstream acknowledged")
        received = Family("bridge_received", "counter", "Messages brought in from the upstream and accepted")
        queued = Family("bridge_queued", "gauge", "Messages waiting for the upstream or in flight to it")
        queued_bytes = Family("bridge_queued_bytes", "gauge", "Bytes of the messages waiting for the upstream")
        dropped = Family("bridge_dropped", "counter", "Messages not forwarded, by reason: offline_qos0, overflow, "
                         "expired, refused (the upstream said no); loop (already passed through "
                         "this gateway); in_refused (brought in, refused by the gateway)")
        failures = Family("bridge_failures", "counter", "Connection attempts that failed and connections lost")
        for bridge in self.bridges:
            labels = {"bridge": bridge.name, "kind": bridge.kind}
            connected.add(int(bridge.connected), **labels)
            forwarded.add(bridge.forwarded, **labels)
            received.add(bridge.received, **labels)
            queued.add(len(bridge.queue), **labels)
            queued_bytes.add(bridge.queue.bytes, **labels)
            for reason in DROP_REASONS:
                dropped.add(bridge.queue.dropped[reason], reason=reason, **labels)
            dropped.add(bridge.loops, reason="loop", **labels)
            dropped.add(bridge.refused_in, reason="in_refused", **labels)
            failures.add(bridge.failures, **labels)
        return [connected, forwarded, received, queued, queued_bytes, dropped, failures]
