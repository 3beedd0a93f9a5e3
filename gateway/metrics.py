"""The gateway's metrics: the core's collector plus one for its listeners, read at scrape time.

Connections by protocol and listener (current, opened, closed by reason,
refused by reason), failed logins, CoAP observers and notification drops,
AMQP queues. `stats(gateway)` is the same data as JSON for ``/api/v1/stats``,
the console and ``$SYS``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from adapters.amqp.mapping import ADAPTED as AMQP_ADAPTED
from adapters.mqtt.outbound import ADAPTED
from adapters.mqtt.server import CONNECTION_COUNTERS
from core.metrics import Family, Registry, core_collector

from gateway.version import gateway_version

if TYPE_CHECKING:
    from gateway.app import Gateway

MQTT_LISTENERS = ("mqtt", "mqtt_tls", "ws", "wss")
LISTENER_PROTOCOLS = {"amqp": "amqp", "amqps": "amqp", "coap": "coap"}  # every other listener speaks MQTT
AUTH_REFUSALS = ("bad_user_name_or_password", "not_authorized")


def build_registry(gateway: "Gateway") -> Registry:
    registry = Registry()
    registry.register(core_collector(gateway.broker))
    registry.register(lambda: listener_families(gateway))
    return registry


def tls_families(gateway: "Gateway") -> list[Family]:
    """TLS handshakes of each TLS listener (connections are admitted before them: adapters/tls/server.py)."""
    handshaking = Family("tls_handshaking", "gauge", "Connections admitted whose TLS handshake is not done yet")
    handshakes = Family("tls_handshakes", "counter", "TLS handshakes ended, by listener and result")
    for name, server in sorted(gateway.tls_servers.items()):
        stats = server.stats
        handshaking.add(stats.handshaking, listener=name)
        handshakes.add(stats.handshakes, listener=name, result="ok")
        handshakes.add(stats.failed, listener=name, result="failed")
        handshakes.add(stats.timed_out, listener=name, result="timed_out")
    return [handshaking, handshakes]


def listener_families(gateway: "Gateway") -> list[Family]:
    current = Family("connections", "gauge", "Open connections, by protocol and listener")
    opened = Family("connections_opened", "counter", "Connections accepted, by protocol and listener")
    closed = Family("connections_closed", "counter", "Connections ended, by protocol, listener and reason")
    refused = Family("connections_refused", "counter", "Connections or logins refused, by protocol, listener and reason")
    auth = Family("auth_failures", "counter", "Failed logins, by protocol")
    dropped = Family("messages_dropped", "counter", "Messages dropped, by reason")
    denied = Family("mqtt_connection_events", "counter", "MQTT per-connection counters summed over every connection")
    tracker = gateway.mqtt_connections
    live: dict[str, int] = {}
    sums: dict[tuple[str, str], int] = dict(tracker.totals)
    for conn in tracker.connections:
        live[conn.listener] = live.get(conn.listener, 0) + 1
        for name in CONNECTION_COUNTERS:
            key = (conn.listener, name)
            sums[key] = sums.get(key, 0) + getattr(conn, name)
    for name in MQTT_LISTENERS:
        if name in gateway.ports:
            current.add(live.get(name, 0), protocol="mqtt", listener=name)
    for name, gate in sorted(gateway.security.gates.items()):
        protocol = LISTENER_PROTOCOLS.get(name, "mqtt")
        if protocol != "amqp":  # AMQP's opened count is the service's own, below
            opened.add(gate.accepted, protocol=protocol, listener=name)
        refused.add(gate.refused_max_connections, protocol=protocol, listener=name, reason="max_connections")
        refused.add(gate.refused_rate, protocol=protocol, listener=name, reason="max_connection_rate")
    for (listener, reason), n in sorted(tracker.closed.items()):
        closed.add(n, protocol="mqtt", listener=listener, reason=reason)
    failures = 0
    for (listener, reason), n in sorted(tracker.refused.items()):
        refused.add(n, protocol="mqtt", listener=listener, reason=reason)
        if reason in AUTH_REFUSALS:
            failures += n
    auth.add(failures, protocol="mqtt")
    too_large = sum(n for (_, name), n in sums.items() if name == "dropped_too_large")
    dropped.add(too_large, reason="too_large_for_client", protocol="mqtt")
    for (listener, name), n in sorted(sums.items()):
        denied.add(n, listener=listener, event=name)
    adapted = Family("mqtt_properties_adapted", "counter",
                     "Properties left out of MQTT 5 PUBLISHes because MQTT cannot carry them, by kind")
    for kind in ADAPTED.KINDS:
        adapted.add(getattr(ADAPTED, kind), kind=kind)
    families = [current, opened, closed, refused, auth, dropped, denied, adapted, *tls_families(gateway)]
    amqp = gateway.amqp
    if amqp is not None:
        by_listener: dict[str, int] = {}
        for conn in amqp.connections:
            by_listener[conn.listener] = by_listener.get(conn.listener, 0) + 1
        for name in ("amqp", "amqps"):
            if name in gateway.ports:
                current.add(by_listener.get(name, 0), protocol="amqp", listener=name)
        opened.add(amqp.opened, protocol="amqp", listener="amqp")
        for (reason, n) in sorted(getattr(amqp, "closed", {}).items()):
            closed.add(n, protocol="amqp", listener="amqp", reason=reason)
        auth.add(getattr(amqp, "login_failures", 0), protocol="amqp")
        ready = unacked = queues = 0
        for vhost in amqp.broker.vhosts.values():
            for queue in vhost.queues.values():
                queues += 1
                ready += len(queue.ready)
                unacked += sum(consumer.unacked for consumer in queue.consumers)
        families.append(Family("amqp_queues", "gauge", "AMQP queues, every vhost").add(queues))
        families.append(Family("queued_messages", "gauge", "Messages waiting in queues").add(ready, protocol="amqp"))
        families.append(Family("inflight_messages", "gauge", "Messages delivered and not yet acknowledged").add(
            unacked, protocol="amqp"))
        amqp_adapted = Family("amqp_adapted", "counter", "What AMQP could not carry from other protocols, by kind: "
                              "properties left out, messages whose topic is too long for a routing key")
        for kind in AMQP_ADAPTED.__slots__:
            amqp_adapted.add(getattr(AMQP_ADAPTED, kind), kind=kind)
        families.append(amqp_adapted)
    coap = gateway.coap
    if coap is not None:
        metrics = coap.metrics()
        current.add(metrics["connections"], protocol="coap", listener="coap")
        families.append(Family("coap_observers", "gauge", "CoAP observe registrations").add(metrics["observers"]))
        dropped.add(metrics["notifications_dropped"], reason="queue_full", protocol="coap")
        dropped.add(metrics["notifications_expired"], reason="expired", protocol="coap")
        for reason in ("max_connections", "max_observers", "login_backoff"):
            refused.add(metrics[f"refused_{reason}"], protocol="coap", listener="coap", reason=reason)
        refused.add(metrics["refused_rate"], protocol="coap", listener="coap", reason="max_connection_rate")
        auth.add(metrics["login_failures"], protocol="coap")
        families.append(Family("coap_fast_path_publishes", "counter", "CoAP publishes taken below aiocoap "
                               "by the fast path (adapters/coap/fast_path.py)").add(metrics["fast_publishes"]))
        faults = Family("coap_datagram_faults", "counter",
                        "CoAP datagrams the listener could not use, and reader re-arms, by reason")
        for reason, count in coap.faults.counts.items():
            faults.add(count, reason=reason)
        families.append(faults)
    if gateway.lwm2m is not None:
        refused.add(gateway.lwm2m.refused_rate, protocol="lwm2m", listener="coap", reason="max_connection_rate")
    families.append(Family("uptime_seconds", "gauge", "Seconds since the gateway started").add(
        round(time.time() - gateway.broker.started_at, 3)))
    if gateway.fabric is not None:
        cluster = Family("cluster", "counter", "The cluster fabric: messages forwarded to and received from "
                         "other nodes, duplicates dropped, errors, NATS subscriptions (interest), nodes seen")
        for name, value in gateway.fabric.metrics().items():
            cluster.add(value, what=name)
        families.append(cluster)
    if gateway.bridges is not None and len(gateway.bridges):
        families += gateway.bridges.families()
    return families


def stats(gateway: "Gateway") -> dict[str, Any]:
    """A JSON summary of the metrics: totals by protocol and protocol pair, gauges, drops."""
    families = gateway.metrics.collect()

    def by(name: str, label: str) -> dict[str, float]:
        family = families.get(name)
        return {} if family is None else family.by(label)

    def total(name: str) -> float:
        family = families.get(name)
        return 0 if family is None else family.total()

    pairs: dict[str, float] = {}
    deliveries = families.get("deliveries")
    if deliveries is not None:
        for _, labels, value in deliveries.samples:
            pairs[f"{labels['origin']}->{labels['target']}"] = value
    dropped: dict[str, float] = {}
    family = families.get("messages_dropped")
    if family is not None:
        for _, labels, value in family.samples:
            key = labels["reason"]
            dropped[key] = dropped.get(key, 0) + value
    return {
        "version": gateway_version(),
        "uptime": round(time.time() - gateway.broker.started_at, 3),
        "connections": by("connections", "protocol"),
        "connections_total": total("connections"),
        "messages_received": by("messages_received", "protocol"),
        "messages_sent": by("messages_sent", "protocol"),
        "bytes_received": by("bytes_received", "protocol"),
        "bytes_sent": by("bytes_sent", "protocol"),
        "deliveries": pairs,
        "published": total("publishes"),
        "subscriptions": total("subscriptions"),
        "retained": total("retained_messages"),
        "inflight": by("inflight_messages", "protocol"),
        "queued": by("queued_messages", "protocol"),
        "dropped": dropped,
        "auth_failures": by("auth_failures", "protocol"),
    }
