"""The cluster as one node sees it: the other nodes' heartbeats, and who has gone quiet. Pure.

Each node publishes a heartbeat every `interval` seconds (its name, listeners, uptime,
connections, message counts). A node not heard from for `missed` intervals is dropped
from the view; `next_deadline` says when to check next (the caller passes `now`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class NodeInfo:
    name: str
    last_seen: float
    details: dict[str, Any] = field(default_factory=dict)


class ClusterView:
    """Nodes heard from recently, by name."""

    def __init__(self, interval: float = 1.0, missed: int = 3) -> None:
        self.interval = interval
        self.timeout = interval * missed
        self.nodes: dict[str, NodeInfo] = {}
        self.joined = 0
        self.left = 0

    def heard(self, name: str, details: dict[str, Any], now: float) -> bool:
        """A heartbeat from `name`; True if the node is new to the view."""
        node = self.nodes.get(name)
        if node is None:
            self.nodes[name] = NodeInfo(name, now, details)
            self.joined += 1
            return True
        node.last_seen, node.details = now, details
        return False

    def expire(self, now: float) -> list[str]:
        """Drop the nodes not heard from within the timeout; their names."""
        gone = [name for name, node in self.nodes.items() if now - node.last_seen > self.timeout]
        for name in gone:
            del self.nodes[name]
        self.left += len(gone)
        return gone

    def next_deadline(self) -> float | None:
        if not self.nodes:
            return None
        return min(node.last_seen for node in self.nodes.values()) + self.timeout
