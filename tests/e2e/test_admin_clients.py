"""The management UI's client list and detail (issue 20): search, sort, paging, counters, detail, last errors,
with real paho clients; and a 10,000-client list built from real connection and session objects."""

from __future__ import annotations

import socket
import time
from typing import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from adapters.mqtt.connection import MQTTConnection
from adapters.mqtt.settings import MQTTSettings
from adapters.mqtt.states import State
from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import TIMEOUT, admin_gateway, eventually, http
from tests.e2e.clients import PahoClient


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = admin_gateway(mqtt={"max_subscriptions": 3})
    try:
        yield running
    finally:
        running.stop()


def clients(gateway: RunningGateway, query: str) -> dict:
    answer = http(gateway, "GET", f"/api/v1/clients?{query}")
    assert answer.status == 200, answer.text
    return answer.json()


def test_clients_are_searched_sorted_and_paged(gateway: RunningGateway) -> None:
    alpha2 = PahoClient(gateway.mqtt_port, "Paged-Alpha-2", "5")
    alpha2.client.username_pw_set("carol")
    peers = [alpha2.connect(), PahoClient(gateway.mqtt_port, "paged-alpha-1", "311").connect(),
             PahoClient(gateway.mqtt_port, "paged-beta-1", "5").connect()]
    try:
        body = clients(gateway, "q=PAGED-ALPHA&limit=1&offset=1")
        assert (body["total"], body["count"], body["offset"], body["limit"]) == (2, 1, 1, 1)
        assert [c["id"] for c in body["clients"]] == ["paged-alpha-1"]  # "Paged-Alpha-2" < "paged-alpha-1"
        assert [c["id"] for c in clients(gateway, "q=paged-")["clients"]] == [
            "Paged-Alpha-2", "paged-alpha-1", "paged-beta-1"]
        assert [c["id"] for c in clients(gateway, "q=CAROL")["clients"]] == ["Paged-Alpha-2"]  # by username
        by_address = clients(gateway, f"q={LOOPBACK}&protocol=mqtt")
        assert by_address["total"] >= 3 and by_address["limit"] is None
        oldest_first = [c["id"] for c in clients(gateway, "q=paged-&sort=connected_since")["clients"]]
        assert oldest_first == ["Paged-Alpha-2", "paged-alpha-1", "paged-beta-1"]  # in the order they connected
        assert clients(gateway, "q=paged-&offset=5&limit=10")["clients"] == []
        for bad in ("limit=0", "limit=1001", "limit=x", "offset=-1", "sort=name"):
            answer = http(gateway, "GET", f"/api/v1/clients?{bad}")
            assert answer.status == 400 and answer.json()["error"]["status"] == 400, bad
        everyone = clients(gateway, "")
        assert everyone["count"] == everyone["total"] >= 3 and everyone["offset"] == 0
    finally:
        for peer in peers:
            peer.close()


def test_rows_count_messages_in_and_out_since_connect(gateway: RunningGateway) -> None:
    client = PahoClient(gateway.mqtt_port, "counting-1", "5").connect()
    try:
        client.subscribe("counting/#", qos=1)
        for n in range(3):
            client.publish(f"counting/{n}", b"x", qos=1)
        client.inbox.take(3)
        row = eventually(lambda: next((c for c in clients(gateway, "q=counting-1")["clients"]
                                       if c["messages_out"] == 3), None))
        assert row["messages_in"] == 3 and row["protocol"] == "mqtt"
    finally:
        client.close()


def test_a_client_detail_shows_subscription_options_expiry_will_and_last_errors(gateway: RunningGateway) -> None:
    client = PahoClient(gateway.mqtt_port, "detailed-1", "5", clean=False)
    will_props = Properties(PacketTypes.WILLMESSAGE)
    will_props.WillDelayInterval = 5
    client.client.will_set("wills/detailed-1", b"gone!", qos=1, retain=True, properties=will_props)
    connect_props = Properties(PacketTypes.CONNECT)
    connect_props.SessionExpiryInterval = 300
    client.client.connect(LOOPBACK, gateway.mqtt_port, 60, clean_start=False, properties=connect_props)
    client.client.loop_start()
    try:
        eventually(lambda: client.connack is not None)
        sub_props = Properties(PacketTypes.SUBSCRIBE)
        sub_props.SubscriptionIdentifier = 7
        options = SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True, retainHandling=2)
        _, mid = client.client.subscribe("detail/a/#", options=options, properties=sub_props)
        client._wait_ack(mid)
        for topic_filter in ("detail/b", "detail/c", "detail/d"):  # the third is over [mqtt] max_subscriptions
            client.subscribe(topic_filter, qos=0)
        answer = http(gateway, "GET", "/api/v1/clients/detailed-1?protocol=mqtt")
        assert answer.status == 200, answer.text
        detail = answer.json()
        assert detail["id"] == "detailed-1" and detail["subscriptions"] == ["detail/a/#", "detail/b", "detail/c"]
        assert detail["subscriptions_detail"][0] == {
            "filter": "detail/a/#", "qos": 1, "no_local": True, "retain_as_published": True, "retain_handling": 2,
            "subscription_id": 7}
        assert detail["subscriptions_detail"][1]["subscription_id"] is None
        assert (detail["session_expiry"], detail["clean_start"]) == (300, False)
        assert detail["will"] == {"topic": "wills/detailed-1", "qos": 1, "retain": True, "delay": 5,
                                  "payload_bytes": 5}
        assert [e["message"] for e in detail["last_errors"]] == [
            "subscribe to 'detail/d' refused: over the quota of 3 subscriptions"]
        assert abs(detail["last_errors"][0]["time"] - time.time()) < 60
    finally:
        client.client.disconnect()
        client.client.loop_stop()
    assert http(gateway, "GET", "/api/v1/clients/detailed-1").status == 404  # not connected


def test_last_errors_outlive_the_connection_that_made_them(gateway: RunningGateway) -> None:
    with socket.create_connection((LOOPBACK, gateway.mqtt_port), TIMEOUT) as sock:  # MQTT 3.1.1 CONNECT, then junk
        client_id = b"broken-1"
        variable = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
        sock.sendall(bytes([0x10, len(variable)]) + variable)
        assert sock.recv(4)[:1] == b"\x20"  # CONNACK
        sock.sendall(b"\xf0\x00")  # packet type 15 (AUTH) is not MQTT 3.1.1
        sock.settimeout(TIMEOUT)
        while sock.recv(64):
            pass
    client = PahoClient(gateway.mqtt_port, "broken-1", "311").connect()
    try:
        errors = eventually(lambda: http(gateway, "GET", "/api/v1/clients/broken-1").json()["last_errors"])
        assert len(errors) == 1 and errors[0]["message"].startswith(("PROTOCOL_ERROR", "MALFORMED_PACKET"))
        assert http(gateway, "GET", "/api/v1/clients/broken-1?protocol=amqp").status == 404
    finally:
        client.close()


def test_ten_thousand_clients_page_fast() -> None:
    running = admin_gateway()
    try:
        def connect_many() -> None:  # real connection and session objects, as the listener makes them
            gateway, settings = running.gateway, MQTTSettings()
            registry = gateway.broker.mqtt_sessions
            for i in range(10_000):
                conn = MQTTConnection(gateway.broker, settings, peer=f"10.1.{i // 250}.{i % 250}:40000")
                session, _ = registry.open(f"bulk-{i:05d}", clean_start=True, expiry_interval=0,
                                           username=f"user{i % 7}")
                conn.client_id, conn.username, conn.session = session.client_id, session.username, session
                conn.state, conn.connected_at = State.CONNECTED, 1_700_000_000 + (10_000 - i)
                gateway.mqtt_connections.connections.add(conn)

        running.call(connect_many, timeout=60)
        started = time.monotonic()
        body = clients(running, "q=BULK-0999&limit=5&offset=2")
        searched = time.monotonic() - started
        assert (body["total"], body["count"]) == (10, 5)
        assert [c["id"] for c in body["clients"]] == [f"bulk-0999{n}" for n in range(2, 7)]
        started = time.monotonic()
        newest_last = clients(running, "sort=connected_since&offset=9990&limit=1000")
        sorted_paged = time.monotonic() - started
        assert newest_last["total"] == 10_000 and [c["id"] for c in newest_last["clients"]][-1] == "bulk-00000"
        assert searched < 1.5 and sorted_paged < 1.5, (searched, sorted_paged)
    finally:
        running.call(lambda: running.gateway.mqtt_connections.connections.clear())
        running.stop()
