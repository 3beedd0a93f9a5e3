"""The management UI's offline sessions and retained values (issue 20), with paho clients."""

from __future__ import annotations

import base64
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import eventually, gateway, http
from tests.e2e.clients import PahoClient

__all__ = ["gateway"]  # the module's gateway with the admin API (a fixture)


def persistent(gateway: RunningGateway, client_id: str, expiry: int) -> PahoClient:
    """An MQTT 5 client whose session outlives it by `expiry` seconds."""
    client = PahoClient(gateway.mqtt_port, client_id, "5", clean=False)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry
    client.client.connect(LOOPBACK, gateway.mqtt_port, 60, clean_start=False, properties=props)
    client.client.loop_start()
    eventually(lambda: client.connack is not None)
    return client


def sessions(gateway: RunningGateway, query: str = "") -> dict:
    answer = http(gateway, "GET", f"/api/v1/sessions?{query}")
    assert answer.status == 200, answer.text
    return answer.json()


def test_offline_sessions_are_listed_paged_and_deleted_with_their_queue(gateway: RunningGateway) -> None:
    first = persistent(gateway, "offline-1", 300)
    first.subscribe("offline/#", qos=1)
    first.close()
    second = PahoClient(gateway.mqtt_port, "offline-2", "311", clean=False).connect()
    second.subscribe("elsewhere/#", qos=1)
    second.close()
    online = PahoClient(gateway.mqtt_port, "offline-but-not-yet", "311", clean=False).connect()
    publisher = PahoClient(gateway.mqtt_port, "offline-publisher", "5").connect()
    try:
        eventually(lambda: sessions(gateway, "q=OFFLINE-")["total"] == 2)
        for n in range(2):
            publisher.publish("offline/news", f"n{n}".encode(), qos=1)
        body = eventually(lambda: (b := sessions(gateway, "q=offline-"))["sessions"][0]["queued"] == 2 and b)
        first_row, second_row = body["sessions"]
        assert (first_row["client_id"], first_row["subscriptions"], first_row["username"]) == (
            "offline-1", ["offline/#"], None)
        assert abs(first_row["expires_at"] - (time.time() + 300)) < 30
        assert (second_row["client_id"], second_row["expires_at"], second_row["queued"]) == ("offline-2", None, 0)
        paged = sessions(gateway, "q=offline-&offset=1&limit=1")
        assert (paged["total"], paged["count"], [s["client_id"] for s in paged["sessions"]]) == (2, 1, ["offline-2"])
        assert http(gateway, "GET", "/api/v1/sessions?limit=5000").status == 400

        refused = http(gateway, "DELETE", "/api/v1/sessions/offline-but-not-yet")
        assert refused.status == 409 and "kick" in refused.json()["error"]["message"]
        assert http(gateway, "DELETE", "/api/v1/sessions/no-such-session").status == 404
        answer = http(gateway, "DELETE", "/api/v1/sessions/offline-1")
        assert answer.status == 200 and answer.json() == {"deleted": "offline-1"}
        assert [s["client_id"] for s in sessions(gateway, "q=offline-")["sessions"]] == ["offline-2"]
        back = persistent(gateway, "offline-1", 300)  # a new session: nothing present, nothing queued
        try:
            flags = back.connack[0]
            assert flags.session_present is False
            back.publish("offline/ping", b"after", qos=1)  # no subscription survived: nothing arrives
            assert back.inbox.pending() == []
        finally:
            back.close()
    finally:
        online.close()
        publisher.close()


def test_a_retained_value_comes_whole_with_its_properties(gateway: RunningGateway) -> None:
    publisher = PahoClient(gateway.mqtt_port, "retainer-1", "5").connect()
    try:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        props.UserProperty = [("site", "north")]
        info = publisher.client.publish("ui/retained/json", b'{"t": 21.5}', qos=1, retain=True, properties=props)
        info.wait_for_publish(5)
        publisher.publish("ui/retained/binary", b"\xff\x00\x01", qos=1, retain=True)
        answer = http(gateway, "GET", "/api/v1/retained/value?topic=ui/retained/json")
        assert answer.status == 200, answer.text
        value = answer.json()
        assert (value["topic"], value["payload_text"], value["content_type"]) == (
            "ui/retained/json", '{"t": 21.5}', "application/json")
        assert base64.b64decode(value["payload"]) == b'{"t": 21.5}' and value["payload_encoding"] == "base64"
        assert value["properties"]["user_properties"] == [["site", "north"]] and value["retain"] is True
        binary = http(gateway, "GET", "/api/v1/retained/value?topic=ui/retained/binary").json()
        assert base64.b64decode(binary["payload"]) == b"\xff\x00\x01" and "payload_text" not in binary
        assert http(gateway, "GET", "/api/v1/retained/value?topic=ui/retained/none").status == 404
        assert http(gateway, "GET", "/api/v1/retained/value?topic=ui/%23").status == 400
        listed = http(gateway, "GET", "/api/v1/retained?filter=ui/retained/%2B").json()
        assert sorted(m["topic"] for m in listed["retained"]) == ["ui/retained/binary", "ui/retained/json"]
        cleared = http(gateway, "DELETE", "/api/v1/retained?filter=ui/retained/binary")
        assert cleared.json()["deleted"] == ["ui/retained/binary"]
        assert http(gateway, "GET", "/api/v1/retained/value?topic=ui/retained/binary").status == 404
    finally:
        publisher.close()
