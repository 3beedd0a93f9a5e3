"""Metrics: counters and gauges collected at scrape time, rendered in Prometheus text format.

The hot path only increments plain integers on objects it already holds (the
router's `Traffic` per origin protocol, session and connection counters). A
`Registry` holds collectors: functions that read those integers when someone
asks (``GET /metrics``, ``/api/v1/stats``, ``$SYS``) and return `Family`
objects. Nothing here locks or allocates per message.

`core_collector(broker)` covers the core (traffic by protocol pair, retained,
sessions, queues, in-flight, drops, ACL, store); the gateway adds collectors
for its listeners (connections by protocol and listener, refusals, logins).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from core.traffic import Traffic

if TYPE_CHECKING:
    from core.broker import Broker

__all__ = ["Traffic"]  # (defined in core/traffic.py, compiled with the hot path; read here)

PREFIX = "rosettamq_"


class LatencyHistogram:
    """Durations in seconds in cumulative buckets (Prometheus histogram); `observe` is O(log buckets)."""

    DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

    def __init__(self, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound label, observations <= it), ending with +Inf."""
        out, total = [], 0
        for bound, n in zip((*self.buckets, math.inf), self.counts):
            total += n
            out.append(("+Inf" if bound == math.inf else repr(bound), total))
        return out


Labels = dict[str, str]


@dataclass
class Family:
    """One metric: name (without the prefix), type, help, and its samples."""

    name: str
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)  # (suffix, labels, value)

    def add(self, value: float, **labels: str) -> "Family":
        self.samples.append(("", labels, value))
        return self

    def add_histogram(self, histogram: LatencyHistogram, **labels: str) -> "Family":
        for bound, n in histogram.cumulative():
            self.samples.append(("_bucket", {**labels, "le": bound}, n))
        self.samples.append(("_sum", labels, histogram.sum))
        self.samples.append(("_count", labels, histogram.count))
        return self

    def total(self) -> float:
        return sum(value for suffix, _, value in self.samples if not suffix)

    def by(self, label: str) -> dict[str, float]:
        """Plain samples summed by one label's value."""
        out: dict[str, float] = {}
        for suffix, labels, value in self.samples:
            if not suffix:
                key = labels.get(label, "")
                out[key] = out.get(key, 0) + value
        return out


Collector = Callable[[], Iterable[Family]]


class Registry:
    """Collectors called at scrape time; families of the same name are merged."""

    def __init__(self) -> None:
        self.collectors: list[Collector] = []

    def register(self, collector: Collector) -> None:
        self.collectors.append(collector)

    def collect(self) -> dict[str, Family]:
        families: dict[str, Family] = {}
        for collector in self.collectors:
            for family in collector():
                known = families.get(family.name)
                if known is None:
                    families[family.name] = family
                else:
                    known.samples.extend(family.samples)
        return families

    def render(self) -> str:
        return render(self.collect().values())


def render(families: Iterable[Family]) -> str:
    """Prometheus text exposition format 0.0.4 (counters get the ``_total`` suffix)."""
    lines: list[str] = []
    for family in families:
        name = PREFIX + family.name
        exposed = name + "_total" if family.kind == "counter" else name
        lines.append(f"# HELP {exposed} {_escape_help(family.help)}")
        lines.append(f"# TYPE {exposed} {family.kind}")
        for suffix, labels, value in family.samples:
            sample = exposed if family.kind == "counter" else name + suffix
            lines.append(f"{sample}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_value(str(value))}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
        return str(int(value))
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def core_collector(broker: "Broker") -> Collector:
    """The core's metrics: traffic by protocol and protocol pair, retained, sessions, drops, ACL, store."""

    def collect() -> list[Family]:
        router = broker.router
        messages_in = Family("messages_received", "counter", "Messages published, by origin protocol")
        bytes_in = Family("bytes_received", "counter", "Payload bytes published, by origin protocol")
        messages_out = Family("messages_sent", "counter", "Deliveries to subscribers, by subscriber protocol")
        bytes_out = Family("bytes_sent", "counter", "Payload bytes delivered, by subscriber protocol")
        pairs = Family("deliveries", "counter", "Deliveries by origin protocol and subscriber protocol")
        out: dict[str, list[int]] = {}
        for origin, traffic in sorted(router.traffic.items()):
            messages_in.add(traffic.messages_in, protocol=origin)
            bytes_in.add(traffic.bytes_in, protocol=origin)
            for target, flow in sorted(traffic.flows.items()):
                pairs.add(flow.deliveries, origin=origin, target=target)
                sums = out.setdefault(target, [0, 0])
                sums[0] += flow.deliveries
                sums[1] += flow.bytes
        for target, (n, size) in sorted(out.items()):
            messages_out.add(n, protocol=target)
            bytes_out.add(size, protocol=target)
        sessions = broker.mqtt_sessions
        inflight = queued = online = 0
        drops = sessions.ended_counters.copy()
        for session in sessions.sessions.values():
            inflight += len(session.inflight)
            queued += session.queued
            online += session.sink is not None
            counters = session.counters
            for reason in drops:
                drops[reason] += getattr(counters, reason)
        dropped = Family("messages_dropped", "counter", "Messages dropped, by reason")
        dropped.add(router.dropped_no_subscribers, reason="no_subscribers", protocol="any")
        dropped.add(router.delivery_errors, reason="delivery_error", protocol="any")
        for reason, n in drops.items():
            dropped.add(n, reason=reason, protocol="mqtt")
        authorizer = broker.authorizer
        acl = Family("acl_denied", "counter", "Topic ACL refusals, by action")
        acl.add(authorizer.publish_denied, action="publish")
        acl.add(authorizer.subscribe_denied, action="subscribe")
        acl.add(authorizer.read_denied, action="read")
        families = [
            messages_in, bytes_in, messages_out, bytes_out, pairs,
            Family("publishes", "counter", "Messages routed by the core").add(router.published),
            Family("retained_messages", "gauge", "Retained messages held").add(len(router.retained)),
            Family("subscriptions", "gauge", "Subscriptions in the router, every protocol").add(
                router.subscription_count()),
            Family("sessions", "gauge", "MQTT sessions, by state").add(online, state="online").add(
                len(sessions) - online, state="offline"),
            Family("inflight_messages", "gauge", "QoS 1/2 messages sent and not yet acknowledged").add(
                inflight, protocol="mqtt"),
            Family("queued_messages", "gauge", "Messages waiting in session queues").add(queued, protocol="mqtt"),
            dropped, acl,
            Family("publishes_refused", "counter", "Publishes the core's door refused, by reason").add(
                broker.door.denied, reason="denied").add(broker.door.invalid, reason="invalid"),
            Family("outbox_bytes", "gauge", "Bytes waiting in subscribers' outboxes (the memory budget's use)").add(
                broker.budget.used),
            Family("memory_budget_bytes", "gauge", "The memory budget ([limits] max_memory; 0: none)").add(
                broker.budget.limit),
            Family("memory_budget_congestions", "counter", "Times the memory budget was passed").add(
                broker.budget.congestions),
            Family("wills_published", "counter", "Will messages published").add(sessions.wills_published),
            Family("sessions_expired", "counter", "Sessions ended by their expiry interval").add(
                sessions.sessions_expired),
        ]
        families.extend(store_families(broker))
        return families

    return collect


def store_families(broker: "Broker") -> list[Family]:
    """Store metrics the store exposes (the SQLite store: commits and their latency)."""
    store = broker.store
    out: list[Family] = []
    commits = getattr(store, "commits", None)
    if commits is not None:
        out.append(Family("store_commits", "counter", "Store transactions committed").add(commits))
    latency = getattr(store, "commit_latency", None)
    if isinstance(latency, LatencyHistogram):
        out.append(Family("store_write_seconds", "histogram", "Store commit duration (group commit)")
                   .add_histogram(latency))
    failures = getattr(store, "encode_failures", None)
    if isinstance(failures, int):
        out.append(Family("store_encode_failures", "counter", "Changes the store could not encode").add(failures))
    pending = getattr(store, "pending", None)
    if isinstance(pending, int):
        out.append(Family("store_pending_writes", "gauge", "Changes queued, not yet committed").add(pending))
    return out
