"""core/metrics: traffic counted by protocol pair in the router, and the Prometheus text rendering."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from core.broker import Broker
from core.message import Message, Origin
from core.metrics import Family, LatencyHistogram, Registry, core_collector, render
from core.subscriptions import Delivery, EncodeCache, SubscriptionOptions
from core.principal import SYSTEM


class Queue:
    """A subscriber of another protocol, as the AMQP and CoAP adapters declare one."""

    protocol = "amqp"

    def __init__(self) -> None:
        self.got: list[Delivery] = []

    is_online = True

    def is_origin_of(self, message: Message) -> bool:
        return False

    def deliver(self, delivery: Delivery, cache: EncodeCache) -> None:
        self.got.append(delivery)


def test_the_router_counts_messages_bytes_and_deliveries_by_protocol_pair() -> None:
    broker = Broker()
    queue = Queue()
    broker.router.subscribe(queue, "a/#", SubscriptionOptions(qos=1))
    broker.publish(SYSTEM, Message("a/1", b"12345", origin=Origin("mqtt", "c1")))
    broker.publish(SYSTEM, Message("a/2", b"xy", origin=Origin("coap", "c2")))
    broker.publish(SYSTEM, Message("b/1", b"zzz", origin=Origin("mqtt", "c1")))
    traffic = broker.router.traffic
    assert (traffic["mqtt"].messages_in, traffic["mqtt"].bytes_in) == (2, 8)
    assert traffic["mqtt"].to == {"amqp": 1} and traffic["mqtt"].bytes_to == {"amqp": 5}
    assert traffic["coap"].to == {"amqp": 1}
    assert len(queue.got) == 2


def test_the_core_collector_renders_text_prometheus_parses() -> None:
    broker = Broker()
    broker.router.subscribe(Queue(), "#", SubscriptionOptions())
    broker.publish(SYSTEM, Message("t", b"abc", retain=True, origin=Origin("mqtt", "c")))
    registry = Registry()
    registry.register(core_collector(broker))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(registry.render()) for s in family.samples
    }
    assert samples[("rosettamq_deliveries_total", (("origin", "mqtt"), ("target", "amqp")))] == 1
    assert samples[("rosettamq_bytes_sent_total", (("protocol", "amqp"),))] == 3
    assert samples[("rosettamq_retained_messages", ())] == 1


def test_labels_and_help_are_escaped_and_histograms_are_cumulative() -> None:
    histogram = LatencyHistogram((0.01, 0.1))
    for seconds in (0.005, 0.05, 0.05, 2.0):
        histogram.observe(seconds)
    text = render([
        Family("odd", "gauge", 'help with \\ and\nnewline').add(1.5, topic='a"b\\c\nd'),
        Family("latency", "histogram", "h").add_histogram(histogram),
    ])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["rosettamq_odd"].samples[0].labels == {"topic": 'a"b\\c\nd'}
    buckets = [(s.labels["le"], s.value) for s in families["rosettamq_latency"].samples if s.name.endswith("_bucket")]
    assert buckets == [("0.01", 1), ("0.1", 3), ("+Inf", 4)]
