"""``[cluster]``: read into `gateway.cluster.settings.ClusterSettings` (None: single-node mode)."""

from __future__ import annotations

import re
from typing import Any

from gateway.cluster.settings import ClusterSettings, default_node_name
from gateway.config_sections import ConfigError

_NATS_URL = re.compile(r"^(nats|tls)://[^\s/]+(:\d+)?/?$")
_PREFIX = re.compile(r"^[A-Za-z0-9_-]+$")


def read_cluster(sec: Any) -> ClusterSettings | None:
    """`sec` is a `Section` (gateway/config_reader.py) of ``[cluster]``; an absent section is single-node mode."""
    if not sec.data:
        sec.done()
        return None
    servers = sec._get("nats", list, None)
    if not servers or not all(isinstance(url, str) and _NATS_URL.match(url) for url in servers):
        raise ConfigError(f'{sec.name}.nats: expected a non-empty array of "nats://host:port" URLs, got {servers!r}')
    node = sec.string("node", None) or default_node_name()
    if not 0 < len(node.encode("utf-8")) <= 255 or any(c.isspace() for c in node):
        raise ConfigError(f"{sec.name}.node: a name of 1 to 255 bytes without spaces, got {node!r}")
    prefix: str = sec.string("prefix", "rmq")  # type: ignore[assignment]
    if not _PREFIX.match(prefix):
        raise ConfigError(f"{sec.name}.prefix: letters, digits, '-' and '_' only, got {prefix!r}")
    settings = ClusterSettings(
        servers=tuple(servers), node=node, prefix=prefix,
        replicas=sec.integer("replicas", 1, 1, 5),
        heartbeat=sec.number("heartbeat", 1.0, 0.1, 60.0),
        user=sec.string("user", None), password=sec.string("password", None),
        creds_file=sec.path("creds_file"), tls_ca=sec.path("tls_ca"), tls_cert=sec.path("tls_cert"),
        tls_key=sec.path("tls_key"), durable_queues=_durable_queues(sec),
    )
    sec.done()
    return settings


def _durable_queues(sec: Any) -> str:
    value = sec.string("durable_queues", "refuse")
    if value not in ("refuse", "local"):
        raise ConfigError(f'{sec.name}.durable_queues: "refuse" or "local", got {value!r}')
    return value  # type: ignore[no-any-return]
