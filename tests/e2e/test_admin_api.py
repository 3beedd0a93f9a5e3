"""The admin API and /metrics end to end, with real MQTT (paho), AMQP (pika) and CoAP (aiocoap) clients."""

from __future__ import annotations

import base64
import itertools

import paho.mqtt.client as mqtt
import pika
import pytest
from aiocoap.numbers.codes import Code
from openapi_spec_validator import validate
from paho.mqtt.client import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import TIMEOUT, coap_requests, eventually, gateway, http
from tests.e2e.amqp_support import next_message
from tests.e2e.clients import PahoClient

__all__ = ["gateway"]  # the module's gateway with the admin API (a fixture)

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def amqp_connection(gateway: RunningGateway, name: str | None = None) -> pika.BlockingConnection:
    properties = {"connection_name": name} if name else None
    return pika.BlockingConnection(pika.ConnectionParameters(
        LOOPBACK, gateway.gateway.ports["amqp"], client_properties=properties, blocked_connection_timeout=TIMEOUT))


def take(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str, count: int) -> list[bytes]:
    """`count` message bodies from one consumer (auto-ack), then cancel it."""
    bodies = []
    for method, _, body in channel.consume(queue, auto_ack=True, inactivity_timeout=TIMEOUT):
        assert method is not None, f"only {len(bodies)} of {count} messages arrived"
        bodies.append(body)
        if len(bodies) == count:
            break
    channel.cancel()
    return bodies


def scrape(gateway: RunningGateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed by prometheus_client's parser: {(sample name, sorted labels): value}."""
    answer = http(gateway, "GET", "/metrics")
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_when_mqtt_amqp_and_coap_clients_publish(gateway: RunningGateway) -> None:
    before = scrape(gateway)
    subscriber = PahoClient(gateway.mqtt_port, unique("metrics-sub"), "5").connect()
    subscriber.subscribe("metrics/#", qos=1)
    with amqp_connection(gateway) as conn:
        channel = conn.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, "amq.topic", "metrics.#")
        publisher = PahoClient(gateway.mqtt_port, unique("metrics-pub"), "311").connect()
        publisher.publish("metrics/mqtt", b"12345", qos=1)
        channel.basic_publish("amq.topic", "metrics.amqp", b"abc")
        coap_requests(gateway.gateway.ports["coap"], (Code.POST, "/ps/metrics/coap", b"7"))
        assert sorted(take(channel, queue, 3)) == [b"12345", b"7", b"abc"]
        subscriber.inbox.take(3)
        after = scrape(gateway)
        for protocol, size in (("mqtt", 5), ("amqp", 3), ("coap", 1)):
            grew = value(after, "rosettamq_messages_received_total", protocol=protocol) - value(
                before, "rosettamq_messages_received_total", protocol=protocol)
            assert grew >= 1, protocol
            assert value(after, "rosettamq_bytes_received_total", protocol=protocol) - value(
                before, "rosettamq_bytes_received_total", protocol=protocol) >= size
        for origin in ("mqtt", "amqp", "coap"):
            for target in ("mqtt", "amqp"):
                assert value(after, "rosettamq_deliveries_total", origin=origin, target=target) > value(
                    before, "rosettamq_deliveries_total", origin=origin, target=target), f"{origin}->{target}"
        assert value(after, "rosettamq_connections", protocol="mqtt", listener="mqtt") >= 2
        assert value(after, "rosettamq_connections", protocol="amqp", listener="amqp") >= 1
        assert value(after, "rosettamq_messages_sent_total", protocol="amqp") >= 3
        assert ("rosettamq_store_write_seconds_bucket", (("le", "+Inf"),)) not in after  # memory store: none
        publisher.close()
    subscriber.close()


def test_stats_sum_up_traffic_by_protocol_pair(gateway: RunningGateway) -> None:
    subscriber = PahoClient(gateway.mqtt_port, unique("stats-sub"), "5").connect()
    subscriber.subscribe("stats/#")
    coap_requests(gateway.gateway.ports["coap"], (Code.POST, "/ps/stats/x", b"1"))
    subscriber.inbox.take(1)
    stats = http(gateway, "GET", "/api/v1/stats").json()
    assert stats["deliveries"]["coap->mqtt"] >= 1
    assert stats["messages_received"]["coap"] >= 1
    assert stats["connections"]["mqtt"] >= 1
    subscriber.close()


def test_clients_lists_every_protocol_and_filters_by_protocol(gateway: RunningGateway) -> None:
    mqtt_id, amqp_name, coap_id = unique("lister"), unique("amqp-app"), unique("coap-dev")
    client = PahoClient(gateway.mqtt_port, mqtt_id, "5").connect()
    client.subscribe("lister/#", qos=1)
    (created,) = coap_requests(gateway.gateway.ports["coap"], (Code.POST, f"/mqtt/connection?clientid={coap_id}", b""))
    assert created.code == Code.CREATED
    with amqp_connection(gateway, amqp_name) as conn:
        channel = conn.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_consume(queue, lambda *args: None)
        conn.process_data_events(time_limit=0)
        clients = eventually(lambda: _by_id(http(gateway, "GET", "/api/v1/clients").json()["clients"],
                                            mqtt_id, amqp_name, coap_id))
        mqtt_client = clients[mqtt_id]
        assert mqtt_client["protocol"] == "mqtt" and mqtt_client["subscriptions"] == ["lister/#"]
        assert mqtt_client["address"].startswith(f"{LOOPBACK}:") and mqtt_client["connected_since"] > 0
        assert mqtt_client["queue_depth"] == 0
        assert clients[amqp_name]["protocol"] == "amqp" and clients[amqp_name]["subscriptions"] == [queue]
        assert clients[coap_id]["protocol"] == "coap" and clients[coap_id]["mode"] == "connection"
        only_amqp = http(gateway, "GET", "/api/v1/clients?protocol=amqp").json()["clients"]
        assert {c["protocol"] for c in only_amqp} == {"amqp"}
        assert http(gateway, "GET", "/api/v1/clients?protocol=smtp").status == 400
    client.close()


def _by_id(clients: list[dict], *ids: str) -> dict[str, dict] | None:
    found = {c["id"]: c for c in clients if c["id"] in ids}
    return found if len(found) == len(ids) else None


def test_kicking_an_mqtt5_client_sends_disconnect_administrative_action(gateway: RunningGateway) -> None:
    client_id = unique("kick-mqtt")
    client = PahoClient(gateway.mqtt_port, client_id, "5").connect()
    reasons: list[int] = []
    client.client.on_disconnect = lambda c, u, flags, reason, props: reasons.append(reason.value)
    answer = http(gateway, "DELETE", f"/api/v1/clients/{client_id}")
    assert answer.status == 200 and answer.json()["protocols"] == ["mqtt"]
    eventually(lambda: reasons)
    assert reasons == [0x98]
    eventually(lambda: not _by_id(http(gateway, "GET", "/api/v1/clients").json()["clients"], client_id))
    closed = scrape(gateway)
    assert value(closed, "rosettamq_connections_closed_total", protocol="mqtt", listener="mqtt",
                 reason="administrative_action") >= 1
    client.close()


def test_kicking_an_amqp_client_closes_its_connection_with_320(gateway: RunningGateway) -> None:
    name = unique("kick-amqp")
    conn = amqp_connection(gateway, name)
    conn.channel()
    assert http(gateway, "DELETE", f"/api/v1/clients/{name}?protocol=amqp").status == 200
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        eventually(lambda: conn.process_data_events(time_limit=0.05) or not conn.is_open)
    assert closed.value.reply_code == 320


def test_kicking_a_coap_connection_ends_it(gateway: RunningGateway) -> None:
    client_id = unique("kick-coap")
    port = gateway.gateway.ports["coap"]
    (created,) = coap_requests(port, (Code.POST, f"/mqtt/connection?clientid={client_id}", b""))
    token = created.payload.decode()
    assert http(gateway, "DELETE", f"/api/v1/clients/{client_id}").json()["protocols"] == ["coap"]
    (heartbeat,) = coap_requests(port, (Code.PUT, f"/mqtt/connection?clientid={client_id}&token={token}", b""))
    assert heartbeat.code == Code.UNAUTHORIZED


def test_kicking_an_unknown_client_is_a_json_404(gateway: RunningGateway) -> None:
    answer = http(gateway, "DELETE", "/api/v1/clients/nobody-here")
    assert answer.status == 404
    assert answer.json()["error"]["status"] == 404 and "nobody-here" in answer.json()["error"]["message"]


def test_http_publish_reaches_mqtt_and_amqp_subscribers_with_its_properties(gateway: RunningGateway) -> None:
    subscriber = PahoClient(gateway.mqtt_port, unique("http-sub"), "5").connect()
    subscriber.subscribe("http/in/#", qos=1)
    with amqp_connection(gateway) as conn:
        channel = conn.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, "amq.topic", "http.in.#")
        answer = http(gateway, "POST", "/api/v1/publish", {
            "topic": "http/in/t1", "payload": "hello", "qos": 1,
            "properties": {"content_type": "text/plain", "user_properties": {"site": "north"}},
        })
        assert answer.status == 200 and answer.json()["deliveries"] == 2
        received = subscriber.inbox.get()
        assert (received.topic, received.payload, received.qos) == ("http/in/t1", b"hello", 1)
        method, properties, body = next_message(channel, queue, auto_ack=True)
        assert (method.routing_key, body, properties.content_type) == ("http.in.t1", b"hello", "text/plain")
        assert properties.headers == {"site": "north"}
        binary = http(gateway, "POST", "/api/v1/publish", {
            "topic": "http/in/bin", "payload": base64.b64encode(b"\x00\xff").decode(), "payload_encoding": "base64"})
        assert binary.status == 200
        assert subscriber.inbox.until_topic("http/in/bin")[-1].payload == b"\x00\xff"
    subscriber.close()


@pytest.mark.parametrize("body", [
    {"payload": "no topic"}, {"topic": "a/+"}, {"topic": "a", "qos": 3}, {"topic": "a", "payload": "%%",
                                                                          "payload_encoding": "base64"},
    {"topic": "a", "properties": {"message_expiry_interval": -1}}, [1, 2],
    # found by the fuzzer: JSON escapes can carry lone surrogates, which have no UTF-8 (was a logged 500)
    {"topic": "a", "payload": "\ud800"}, {"topic": "a", "properties": {"correlation_data": "\ud800"}},
])
def test_a_bad_publish_is_a_json_400(gateway: RunningGateway, body: object) -> None:
    answer = http(gateway, "POST", "/api/v1/publish", body)
    assert answer.status == 400 and answer.json()["error"]["status"] == 400


def test_null_properties_of_a_publish_are_absent_ones(gateway: RunningGateway) -> None:
    """Found by the fuzzer: "correlation_data": null was a logged 500 (AttributeError)."""
    answer = http(gateway, "POST", "/api/v1/publish", {"topic": "http/null", "properties": {
        "content_type": None, "correlation_data": None, "response_topic": None, "user_properties": None,
        "message_expiry_interval": None}})
    assert answer.status == 200


def test_retained_messages_can_be_listed_by_filter_and_cleared(gateway: RunningGateway) -> None:
    publisher = PahoClient(gateway.mqtt_port, unique("retainer"), "311").connect()
    publisher.publish("kept/a", b"1", qos=1, retain=True)
    publisher.publish("kept/b", b"2", qos=1, retain=True)
    publisher.publish("other/c", b"3", qos=1, retain=True)
    listed = http(gateway, "GET", "/api/v1/retained?topic=kept/%23").json()
    assert [(m["topic"], m["payload"]) for m in listed["retained"]] == [("kept/a", "1"), ("kept/b", "2")]
    assert http(gateway, "DELETE", "/api/v1/retained?topic=kept/a").json()["deleted"] == ["kept/a"]
    assert [m["topic"] for m in http(gateway, "GET", "/api/v1/retained?topic=kept/%23").json()["retained"]] == [
        "kept/b"]
    late = PahoClient(gateway.mqtt_port, unique("late"), "311").connect()
    late.subscribe("kept/#")
    assert late.inbox.get().topic == "kept/b"
    assert http(gateway, "GET", "/api/v1/retained?topic=a/%23/b").status == 400
    late.close()
    publisher.close()


def test_subscriptions_of_every_protocol_are_listed(gateway: RunningGateway) -> None:
    client_id = unique("subs")
    client = PahoClient(gateway.mqtt_port, client_id, "5").connect()
    client.subscribe("subs/listed/+", qos=1)
    with amqp_connection(gateway) as conn:
        channel = conn.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, "amq.topic", "subs.amqp.*")
        subscriptions = http(gateway, "GET", "/api/v1/subscriptions").json()["subscriptions"]
        assert {"topic": "subs/listed/+", "protocol": "mqtt", "client_id": client_id, "qos": 1,
                "shared_group": None, "no_local": False} in subscriptions
        assert any(s["topic"] == "subs/amqp/+" and s["client_id"] == f"queue:{queue}" for s in subscriptions)
        only_amqp = http(gateway, "GET", "/api/v1/subscriptions?protocol=amqp").json()["subscriptions"]
        assert {s["protocol"] for s in only_amqp} == {"amqp"}
    client.close()


def test_subscriptions_list_the_command_topic_of_a_registered_lwm2m_device(gateway: RunningGateway) -> None:
    """Found by the fuzzer: while any LwM2M device was registered, the listing was a logged 500."""
    endpoint = unique("device")
    [registered] = coap_requests(gateway.gateway.ports["coap"],
                                 (Code.POST, f"/rd?ep={endpoint}&lt=300&lwm2m=1.1&b=U", b"</3/0>"))
    assert registered.code == Code.CREATED
    answer = http(gateway, "GET", "/api/v1/subscriptions")
    assert answer.status == 200
    assert [s["client_id"] for s in answer.json()["subscriptions"] if s["topic"] == f"lwm2m/{endpoint}/dn/#"] == [
        endpoint]


def test_amqp_exchanges_queues_and_bindings_are_listed(gateway: RunningGateway) -> None:
    exchange, queue = unique("ex"), unique("q")
    with amqp_connection(gateway) as conn:
        channel = conn.channel()
        channel.exchange_declare(exchange, "direct", durable=True)
        channel.queue_declare(queue)
        channel.queue_bind(queue, exchange, "key1")
        channel.basic_publish(exchange, "key1", b"waiting")
        exchanges = http(gateway, "GET", "/api/v1/amqp/exchanges").json()["exchanges"]
        assert {"vhost": "/", "name": exchange, "type": "direct", "durable": True, "auto_delete": False,
                "internal": False} in exchanges
        queues = eventually(lambda: [q for q in http(gateway, "GET", "/api/v1/amqp/queues").json()["queues"]
                                     if q["name"] == queue and q["messages"] == 1])
        assert queues[0]["consumers"] == 0
        bindings = http(gateway, "GET", "/api/v1/amqp/bindings").json()["bindings"]
        assert {"vhost": "/", "source": exchange, "destination": queue, "destination_type": "queue",
                "routing_key": "key1", "arguments": {}} in bindings
        channel.queue_delete(queue)
        channel.exchange_delete(exchange)


def test_health_and_openapi_document_are_valid(gateway: RunningGateway) -> None:
    health = http(gateway, "GET", "/api/v1/health")
    assert health.status == 200 and health.json()["ready"] is True
    assert set(health.json()["listener_states"]) == {"mqtt", "amqp", "coap", "http"}
    document = http(gateway, "GET", "/api/v1/openapi.json").json()
    validate(document)
    for path in ("/metrics", "/api/v1/clients", "/api/v1/clients/{client_id}", "/api/v1/publish",
                 "/api/v1/retained", "/api/v1/subscriptions", "/api/v1/amqp/bindings", "/api/v1/whoami"):
        assert path in document["paths"]


def test_unknown_api_routes_and_methods_are_json_errors(gateway: RunningGateway) -> None:
    missing = http(gateway, "GET", "/api/v1/nothing")
    assert missing.status == 404 and missing.json()["error"]["status"] == 404
    wrong = http(gateway, "PUT", "/api/v1/clients")
    assert wrong.status == 405 and wrong.json()["error"]["status"] == 405


def test_a_v311_client_kicked_sees_its_connection_closed(gateway: RunningGateway) -> None:
    client_id = unique("kick-311")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    gone: list[bool] = []
    client.on_disconnect = lambda *args: gone.append(True)
    client.connect(LOOPBACK, gateway.mqtt_port)
    client.loop_start()
    try:
        eventually(lambda: client.is_connected())
        assert http(gateway, "DELETE", f"/api/v1/clients/{client_id}").status == 200
        eventually(lambda: gone)
    finally:
        client.loop_stop()
