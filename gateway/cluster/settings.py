"""`[cluster]`: where the NATS cluster is, this node's name, and how much is replicated."""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any


def default_node_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """The NATS servers, this node's unique name, JetStream replicas, and NATS credentials / TLS."""

    servers: tuple[str, ...]
    node: str
    prefix: str = "rmq"  # first subject token of everything the cluster sends
    replicas: int = 1  # JetStream copies of what the cluster shares (3 on a 3-server NATS cluster)
    heartbeat: float = 1.0  # seconds between heartbeats; a node silent for 3 of them leaves the view
    reconnect_wait: float = 0.5
    user: str | None = None
    password: str | None = None
    creds_file: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    # AMQP durable queues: "refuse" (queue.declare 406: they would live on one node only) or "local"
    # (this node keeps them, as a single gateway does; the operator sends their clients here).
    durable_queues: str = "refuse"

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of `nats.connect` (reconnecting for ever)."""
        options: dict[str, Any] = {
            "servers": list(self.servers), "max_reconnect_attempts": -1, "allow_reconnect": True,
            "reconnect_time_wait": self.reconnect_wait, "connect_timeout": 2, "ping_interval": 5,
            "max_outstanding_pings": 2, "pending_size": 16 * 1024 * 1024,
        }
        if self.user is not None:
            options.update(user=self.user, password=self.password)
        if self.creds_file is not None:
            options["user_credentials"] = self.creds_file
        if self.tls_ca or self.tls_cert:
            context = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_cert:
                context.load_cert_chain(self.tls_cert, self.tls_key)
            options["tls"] = context
        return options
