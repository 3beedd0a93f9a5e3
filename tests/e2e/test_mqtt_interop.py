"""Interoperability with real MQTT clients: paho-mqtt (3.1, 3.1.1, 5) and mosquitto_pub/mosquitto_sub.

Each test runs a real gateway on a loopback port chosen by the OS and talks
to it only through real clients (or, where exact bytes matter, the raw
`WireClient`). Absence of a delivery is proven with a marker: a later
message the same client does receive, so nothing waits on a fixed sleep.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Callable, Iterator

import pytest

from adapters.mqtt.codec import encode
from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import (
    ConnAck,
    Connect,
    PingReq,
    PingResp,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    UnsubAck,
    Unsubscribe,
)
from core.message import Message
from core.principal import SYSTEM
from tests.conftest import RunningGateway
from tests.e2e.clients import Inbox, MosquittoSub, PahoClient, Received, mosquitto_pub
from tests.wire_client import WireClient

KINDS = ("paho-311", "paho-5", "mosquitto-311", "mosquitto-5")

Publisher = Callable[..., None]


class Peers:
    """Makes connected clients of any kind for one test and closes them all afterwards."""

    def __init__(self, gateway: RunningGateway) -> None:
        self.gateway = gateway
        self.port = gateway.mqtt_port
        self._made: list[PahoClient | MosquittoSub] = []

    def paho(
        self, version: str = "5", client_id: str | None = None, *, clean: bool = True, max_inflight: int = 20
    ) -> PahoClient:
        if client_id is None:
            client_id = f"paho{version}-{uuid.uuid4().hex[:12]}"
        client = PahoClient(self.port, client_id, version, clean=clean, max_inflight=max_inflight)
        self._made.append(client)
        return client.connect()

    def mosquitto_sub(self, topics: list[str], qos: int, version: str) -> MosquittoSub:
        sub = MosquittoSub(self.port, topics, qos, version)
        self._made.append(sub)
        granted = sub.wait_subscribed()
        assert granted == [qos] * len(topics)
        return sub

    def subscriber(self, kind: str, topics: list[str], qos: int) -> Inbox:
        """A subscriber of `kind` holding `topics` at `qos` (SUBACK granted checked); its inbox."""
        tool, version = kind.split("-")
        if tool == "mosquitto":
            return self.mosquitto_sub(topics, qos, version).inbox
        client = self.paho(version)
        for topic in topics:
            assert client.subscribe(topic, qos) == [qos]
        return client.inbox

    def publisher(self, kind: str) -> Publisher:
        """`publish(topic, payload, qos=, retain=)` through a client of `kind`, waiting for its flow."""
        tool, version = kind.split("-")
        if tool == "mosquitto":
            def publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
                mosquitto_pub(self.port, topic, payload, qos=qos, version=version, retain=retain)
            return publish
        return self.paho(version).publish

    def close(self) -> None:
        for client in reversed(self._made):
            client.close()


@pytest.fixture
def peers(gateway: RunningGateway) -> Iterator[Peers]:
    made = Peers(gateway)
    try:
        yield made
    finally:
        made.close()


def topics_of(messages: list[Received]) -> list[str]:
    return [m.topic for m in messages]


# -- publish and subscribe in every direction ------------------------------------------------

DIRECTIONS = [
    ("paho-311", "paho-5"),
    ("paho-5", "paho-311"),
    ("paho-311", "paho-311"),
    ("paho-5", "paho-5"),
    ("paho-5", "mosquitto-311"),
    ("paho-311", "mosquitto-5"),
    ("mosquitto-311", "paho-5"),
    ("mosquitto-5", "paho-311"),
    ("mosquitto-5", "mosquitto-311"),
    ("mosquitto-311", "mosquitto-5"),
]


@pytest.mark.parametrize("sub_qos", [0, 1, 2])
@pytest.mark.parametrize("pub_kind,sub_kind", DIRECTIONS)
def test_messages_at_each_qos_arrive_at_the_minimum_of_published_and_subscribed_qos(
    peers: Peers, pub_kind: str, sub_kind: str, sub_qos: int
) -> None:
    inbox = peers.subscriber(sub_kind, ["dir/t"], sub_qos)
    publish = peers.publisher(pub_kind)
    for pub_qos in (0, 1, 2):
        publish("dir/t", f"published at {pub_qos}".encode(), qos=pub_qos)

    received = {m.payload: m for m in inbox.take(3)}

    assert set(received) == {f"published at {q}".encode() for q in (0, 1, 2)}
    for pub_qos in (0, 1, 2):
        message = received[f"published at {pub_qos}".encode()]
        assert message.topic == "dir/t"
        assert message.qos == min(pub_qos, sub_qos)
        assert message.retain is False


PAYLOADS = {
    "empty": b"",
    "binary": bytes(range(256)) * 4 + b"\x00\xff\xfe invalid utf-8 \xc3\x28",
    "256KiB": os.urandom(256 * 1024),
}


@pytest.mark.parametrize("payload_name", list(PAYLOADS))
@pytest.mark.parametrize(
    "pub_kind,sub_kind",
    [
        ("paho-5", "mosquitto-311"),
        ("paho-311", "mosquitto-5"),
        ("mosquitto-311", "paho-5"),
        ("mosquitto-5", "paho-311"),
        ("paho-311", "paho-5"),
        ("paho-5", "paho-311"),
    ],
)
def test_payloads_arrive_byte_for_byte(peers: Peers, pub_kind: str, sub_kind: str, payload_name: str) -> None:
    payload = PAYLOADS[payload_name]
    inbox = peers.subscriber(sub_kind, ["payload/t"], 1)
    peers.publisher(pub_kind)("payload/t", payload, qos=1)

    message = inbox.get()

    assert message.topic == "payload/t"
    assert len(message.payload) == len(payload)
    assert message.payload == payload
    assert message.qos == 1


# -- ordering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("qos", [1, 2])
@pytest.mark.parametrize("pub_version,sub_version", [("5", "311"), ("311", "5")])
def test_two_hundred_messages_from_one_paho_publisher_arrive_in_order(
    peers: Peers, qos: int, pub_version: str, sub_version: str
) -> None:
    subscriber = peers.paho(sub_version)
    assert subscriber.subscribe("order/t", qos) == [qos]
    publisher = peers.paho(pub_version)

    publisher.publish_many([("order/t", str(i).encode()) for i in range(200)], qos)

    received = subscriber.inbox.take(200)
    assert [m.payload for m in received] == [str(i).encode() for i in range(200)]
    assert {m.qos for m in received} == {qos}


def test_a_v311_publisher_with_a_wide_inflight_window_is_not_disconnected(peers: Peers) -> None:
    """3.1.1 has no Receive Maximum: 100 unacknowledged QoS 2 messages are fine (paho allows setting that)."""
    subscriber = peers.paho("311")
    assert subscriber.subscribe("wide/t", 2) == [2]
    publisher = peers.paho("311", max_inflight=100)

    publisher.publish_many([("wide/t", str(i).encode()) for i in range(300)], 2)

    received = subscriber.inbox.take(300)
    assert [m.payload for m in received] == [str(i).encode() for i in range(300)]
    assert publisher.client.is_connected()


@pytest.mark.parametrize("qos", [1, 2])
def test_two_hundred_lines_from_mosquitto_pub_arrive_in_order_at_mosquitto_sub(peers: Peers, qos: int) -> None:
    sub = peers.mosquitto_sub(["order/lines"], qos, "311")
    lines = b"".join(b"line %d\n" % i for i in range(200))

    mosquitto_pub(peers.port, "order/lines", lines, qos=qos, version="5", lines=True)

    received = sub.inbox.take(200)
    assert [m.payload for m in received] == [b"line %d" % i for i in range(200)]
    assert {m.qos for m in received} == {qos}


# -- retained messages ----------------------------------------------------------------------------


@pytest.mark.parametrize("sub_kind", KINDS)
@pytest.mark.parametrize("pub_kind", ["paho-311", "mosquitto-5"])
def test_a_later_subscriber_gets_only_the_newest_retained_message(peers: Peers, pub_kind: str, sub_kind: str) -> None:
    publish = peers.publisher(pub_kind)
    publish("ret/t", b"first", qos=1, retain=True)
    publish("ret/t", b"second", qos=1, retain=True)

    inbox = peers.subscriber(sub_kind, ["ret/t"], 1)
    publish("ret/t", b"live", qos=1)

    received = inbox.until(lambda m: m.payload == b"live")
    assert received == [
        Received("ret/t", b"second", 1, True),
        Received("ret/t", b"live", 1, False),
    ]


@pytest.mark.parametrize("sub_kind", KINDS)
@pytest.mark.parametrize("pub_kind", ["paho-5", "mosquitto-311"])
def test_an_empty_retained_publish_clears_the_retained_message(peers: Peers, pub_kind: str, sub_kind: str) -> None:
    publish = peers.publisher(pub_kind)
    publish("clear/t", b"soon gone", qos=1, retain=True)
    present = peers.subscriber(sub_kind, ["clear/t"], 1)
    assert present.get() == Received("clear/t", b"soon gone", 1, True)

    publish("clear/t", b"", qos=1, retain=True)
    # A subscriber already there gets the empty message like any other live one.
    assert present.get() == Received("clear/t", b"", 1, False)

    inbox = peers.subscriber(sub_kind, ["clear/t"], 1)
    publish("clear/t", b"live", qos=1)

    assert inbox.until(lambda m: m.payload == b"live") == [Received("clear/t", b"live", 1, False)]


@pytest.mark.parametrize("retained_qos,sub_qos", [(0, 2), (2, 0), (1, 2), (2, 1), (2, 2)])
def test_a_retained_message_arrives_at_the_minimum_of_its_qos_and_the_subscription_qos(
    peers: Peers, retained_qos: int, sub_qos: int
) -> None:
    peers.publisher("mosquitto-311")("rq/t", b"kept", qos=retained_qos, retain=True)

    for kind in ("paho-5", "mosquitto-311"):
        inbox = peers.subscriber(kind, ["rq/#"], sub_qos)
        assert inbox.get() == Received("rq/t", b"kept", min(retained_qos, sub_qos), True)


@pytest.mark.parametrize("sub_kind", KINDS)
def test_a_wildcard_subscription_receives_every_matching_retained_message_with_retain_set(
    peers: Peers, sub_kind: str
) -> None:
    publish = peers.publisher("paho-5")
    retained = {"w": b"root", "w/a": b"a", "w/b/c": b"deep", "w/d": b"d", "x/a": b"elsewhere", "ww": b"prefix"}
    for topic, payload in retained.items():
        publish(topic, payload, qos=1, retain=True)

    hash_inbox = peers.subscriber(sub_kind, ["w/#"], 1)
    plus_inbox = peers.subscriber(sub_kind, ["w/+"], 1)
    publish("w/marker", b"live", qos=1)

    hash_seen = hash_inbox.until_topic("w/marker")
    plus_seen = plus_inbox.until_topic("w/marker")
    expected_hash = {Received(t, retained[t], 1, True) for t in ("w", "w/a", "w/b/c", "w/d")}
    assert len(hash_seen) == 5 and set(hash_seen[:-1]) == expected_hash
    assert set(plus_seen[:-1]) == {Received(t, retained[t], 1, True) for t in ("w/a", "w/d")}
    assert len(plus_seen) == 3
    for seen in (hash_seen, plus_seen):
        assert seen[-1] == Received("w/marker", b"live", 1, False)


@pytest.mark.parametrize("sub_kind", KINDS)
def test_live_delivery_of_a_retained_publish_has_retain_0_for_a_normal_subscription(peers: Peers, sub_kind: str) -> None:
    inbox = peers.subscriber(sub_kind, ["live/#"], 2)
    publish = peers.publisher("paho-311")

    publish("live/t", b"kept", qos=2, retain=True)

    assert inbox.get() == Received("live/t", b"kept", 2, False)
    # It was stored all the same: a new subscription gets it with the flag set.
    later = peers.subscriber(sub_kind, ["live/t"], 2)
    assert later.get() == Received("live/t", b"kept", 2, True)


# -- wildcards ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sub_kind", ["paho-5", "mosquitto-311"])
def test_plus_matches_exactly_one_level_including_an_empty_one(peers: Peers, sub_kind: str) -> None:
    inbox = peers.subscriber(sub_kind, ["p/+/c"], 1)
    publish = peers.publisher("paho-311")
    for topic in ("p/b/c", "p/c", "p/b/c/d", "p//c", "p/b/x", "q/b/c", "p/end/c"):
        publish(topic, topic.encode(), qos=1)

    assert topics_of(inbox.until_topic("p/end/c")) == ["p/b/c", "p//c", "p/end/c"]


@pytest.mark.parametrize("sub_kind", ["paho-311", "mosquitto-5"])
def test_a_trailing_hash_matches_the_parent_level_and_everything_below(peers: Peers, sub_kind: str) -> None:
    inbox = peers.subscriber(sub_kind, ["h/#"], 1)
    publish = peers.publisher("paho-5")
    for topic in ("h", "hx", "h/a", "x/h", "h/a/b/c", "h/end"):
        publish(topic, topic.encode(), qos=1)

    assert topics_of(inbox.until_topic("h/end")) == ["h", "h/a", "h/a/b/c", "h/end"]


@pytest.mark.parametrize(
    "topic_filter,expected",
    [
        ("+/a", ["/a"]),
        ("/#", ["/a", "/"]),
        ("a/+", ["a/", "a/b"]),
        ("+", ["a"]),
        ("+/+", ["/a", "/", "a/", "a/b"]),
        ("+/#", ["/a", "/", "a/", "a", "a/b"]),
        ("#", ["/a", "/", "a/", "a", "a/b"]),
    ],
)
def test_empty_levels_are_levels_that_wildcards_match(peers: Peers, topic_filter: str, expected: list[str]) -> None:
    inbox = peers.subscriber("paho-5", [topic_filter, "zz/end"], 0)
    publish = peers.publisher("paho-311")
    for topic in ("/a", "/", "a/", "a", "a/b", "$e/a", "zz/end"):
        publish(topic, b"x", qos=1)

    seen = topics_of(inbox.until_topic("zz/end"))
    assert seen[:-1] == expected


def test_root_wildcards_skip_dollar_topics_that_a_dollar_filter_receives(peers: Peers) -> None:
    everything = peers.subscriber("mosquitto-311", ["#"], 0)
    plus = peers.subscriber("paho-311", ["+/bar", "plain/bar"], 0)
    dollar_foo = peers.subscriber("paho-5", ["$foo/#", "plain/bar"], 0)
    dollar_sys = peers.subscriber("mosquitto-5", ["$SYS/#", "plain/bar"], 0)
    publish = peers.publisher("paho-5")

    publish("$foo", b"1", qos=0)
    publish("$foo/bar", b"2", qos=0)
    peers.gateway.call(lambda: peers.gateway.broker.publish(SYSTEM, Message("$SYS/broker/uptime", b"3")))
    publish("plain/bar", b"marker", qos=0)

    assert topics_of(everything.until_topic("plain/bar")) == ["plain/bar"]
    assert topics_of(plus.until_topic("plain/bar")) == ["plain/bar"]
    assert topics_of(dollar_foo.until_topic("plain/bar")) == ["$foo", "$foo/bar", "plain/bar"]
    assert topics_of(dollar_sys.until_topic("plain/bar")) == ["$SYS/broker/uptime", "plain/bar"]


# -- shared subscriptions ---------------------------------------------------------------------


def test_shared_group_members_split_the_messages_and_a_normal_subscriber_gets_them_all(peers: Peers) -> None:
    members = [
        peers.subscriber("paho-5", ["$share/g/t/#", "end"], 1),
        peers.subscriber("paho-311", ["$share/g/t/#", "end"], 1),
        peers.subscriber("mosquitto-5", ["$share/g/t/#", "end"], 1),
    ]
    normal = peers.subscriber("mosquitto-311", ["t/#", "end"], 1)
    publisher = peers.paho("5")

    sent = [f"m{i}".encode() for i in range(30)]
    publisher.publish_many([(f"t/n/{i}", payload) for i, payload in enumerate(sent)], 1)
    publisher.publish("end", b"end", qos=1)

    normal_seen = normal.until_topic("end")[:-1]
    assert sorted(m.payload for m in normal_seen) == sorted(sent)
    shares = [[m.payload for m in member.until_topic("end")[:-1]] for member in members]
    assert all(share for share in shares), [len(share) for share in shares]
    everything = [payload for share in shares for payload in share]
    assert len(everything) == 30
    assert sorted(everything) == sorted(sent)


def test_unsubscribing_a_shared_filter_takes_the_member_out_of_the_group(peers: Peers) -> None:
    leaving = peers.paho("5")
    staying = peers.paho("311")
    for member in (leaving, staying):
        assert member.subscribe("$share/grp/s/#", 1) == [1]
        assert member.subscribe("s-end", 1) == [1]
    assert leaving.unsubscribe("$share/grp/s/#") == [ReasonCode.SUCCESS]
    assert leaving.unsubscribe("$share/other/s/#") == [ReasonCode.NO_SUBSCRIPTION_EXISTED]
    publisher = peers.paho("5")

    publisher.publish_many([(f"s/{i}", b"%d" % i) for i in range(10)], 1)
    publisher.publish("s-end", b"end", qos=1)

    assert topics_of(leaving.inbox.until_topic("s-end")) == ["s-end"]
    assert [m.payload for m in staying.inbox.until_topic("s-end")[:-1]] == [b"%d" % i for i in range(10)]


# -- unsubscribe ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["311", "5"])
def test_unsubscribe_stops_delivery(peers: Peers, version: str) -> None:
    subscriber = peers.paho(version)
    assert subscriber.subscribe("u/t", 1) == [1]
    assert subscriber.subscribe("u/marker", 1) == [1]
    publish = peers.publisher("mosquitto-5")
    publish("u/t", b"before", qos=1)
    assert subscriber.inbox.get() == Received("u/t", b"before", 1, False)

    codes = subscriber.unsubscribe("u/t")
    publish("u/t", b"after", qos=1)
    publish("u/marker", b"marker", qos=1)

    assert subscriber.inbox.until_topic("u/marker") == [Received("u/marker", b"marker", 1, False)]
    if version == "5":
        assert codes == [ReasonCode.SUCCESS]


def test_v5_unsuback_says_no_subscription_existed_for_an_unknown_filter(peers: Peers) -> None:
    client = peers.paho("5")
    assert client.subscribe("known", 0) == [0]

    assert client.unsubscribe("never/subscribed") == [ReasonCode.NO_SUBSCRIPTION_EXISTED]
    assert client.unsubscribe("known") == [ReasonCode.SUCCESS]
    assert client.unsubscribe("known") == [ReasonCode.NO_SUBSCRIPTION_EXISTED]


def test_wire_unsuback_carries_one_reason_code_per_filter_on_v5_and_none_on_v311(gateway: RunningGateway) -> None:
    with WireClient(gateway.mqtt_port, 5) as v5, WireClient(gateway.mqtt_port, 4) as v311:
        assert v5.connect("wire-unsub-5").reason_code == 0
        assert v311.connect("wire-unsub-4").reason_code == 0
        for client in (v5, v311):
            client.send(Subscribe(1, (SubscriptionRequest("a", 0),)))
            assert isinstance(client.recv(), SubAck)
            client.send(Unsubscribe(2, ("a", "nope")))

        assert v5.recv() == UnsubAck(2, (0x00, 0x11))
        assert v311.recv() == UnsubAck(2, ())


# -- SUBACK codes -----------------------------------------------------------------------------


@pytest.mark.parametrize("level,failure", [(5, 0x8F), (4, 0x80), (3, 0x80)])
def test_suback_gives_each_filter_its_own_code_and_keeps_the_valid_one(
    gateway: RunningGateway, peers: Peers, level: int, failure: int
) -> None:
    with WireClient(gateway.mqtt_port, level) as client:
        assert client.connect(f"suback-{level}").reason_code == 0
        client.send(Subscribe(7, (
            SubscriptionRequest("s/ok", 1),
            SubscriptionRequest("s/#/bad", 0),
            SubscriptionRequest("s/+x", 2),
            SubscriptionRequest("s/two", 2),
        )))

        suback = client.recv()
        assert suback == SubAck(7, (1, failure, failure, 2))
        # The connection stays up and the valid subscription works.
        peers.publisher("paho-5")("s/ok", b"still here", qos=1)
        delivered = client.recv()
        assert (delivered.topic, delivered.payload, delivered.qos) == ("s/ok", b"still here", 1)


def test_paho_sees_per_filter_suback_codes_for_a_shared_filter_without_a_share_name(peers: Peers) -> None:
    v5 = peers.paho("5")
    v311 = peers.paho("311")
    for client, failure in ((v5, 0x8F), (v311, 0x80)):
        # paho refuses to send a misplaced '#' itself, but passes an empty share name through.
        result, mid = client.client.subscribe([("ok/a", 2), ("$share//x", 1)])
        assert result == 0
        assert client._wait_ack(mid) == [2, failure]


# -- client identifiers and protocol levels ----------------------------------------------------


def test_v311_clean_session_clients_with_empty_client_ids_get_distinct_working_connections(peers: Peers) -> None:
    first = peers.paho("311", client_id="", clean=True)
    second = peers.paho("311", client_id="", clean=True)
    assert first.subscribe("anon/1", 1) == [1]
    assert second.subscribe("anon/2", 1) == [1]

    # Had both been given the same id, the second CONNECT would have taken the first one over.
    first.publish("anon/2", b"to second", qos=1)
    second.publish("anon/1", b"to first", qos=1)

    assert first.inbox.get() == Received("anon/1", b"to first", 1, False)
    assert second.inbox.get() == Received("anon/2", b"to second", 1, False)
    assert first.client.is_connected() and second.client.is_connected()


def test_v311_persistent_session_with_an_empty_client_id_is_refused_with_return_code_2(gateway: RunningGateway) -> None:
    with WireClient(gateway.mqtt_port, 4) as client:
        client.send_raw(encode(Connect(client_id="", protocol_level=4, clean_start=False), 4))

        connack = client.sock.recv(4)
        assert connack == b"\x20\x02\x00\x02"  # CONNACK, session present 0, "identifier rejected"
        assert client.closed_by_server()


def test_v5_empty_client_id_gets_an_assigned_client_identifier(peers: Peers) -> None:
    first = peers.paho("5", client_id="")
    second = peers.paho("5", client_id="")

    ids = [getattr(c.connack_properties, "AssignedClientIdentifier", None) for c in (first, second)]

    assert all(ids) and ids[0] != ids[1]
    sessions = peers.gateway.call(lambda: [peers.gateway.broker.mqtt_sessions.get(i) for i in ids])
    assert all(session is not None for session in sessions)


def test_a_wire_v5_connect_with_an_empty_id_gets_the_id_in_connack(gateway: RunningGateway) -> None:
    with WireClient(gateway.mqtt_port, 5) as client:
        connack = client.connect("")
        assert isinstance(connack, ConnAck) and connack.reason_code == 0
        assigned = connack.properties.assigned_client_identifier
        assert assigned
        client.send(Subscribe(1, (SubscriptionRequest("whoami", 0),)))
        assert client.recv() == SubAck(1, (0,))


def test_mqtt31_paho_client_publishes_and_subscribes(peers: Peers) -> None:
    old = peers.paho("31", client_id="mqtt31-client")
    modern = peers.paho("5")
    assert old.subscribe("v31/#", 2) == [2]
    assert modern.subscribe("v31/from-old", 1) == [1]

    old.publish("v31/self", b"loop", qos=2)
    modern.publish("v31/to-old", b"hello 3.1", qos=1)
    old.publish("v31/from-old", b"hello 5", qos=2)

    assert {m.payload: m for m in old.inbox.take(2)} == {
        b"loop": Received("v31/self", b"loop", 2, False),
        b"hello 3.1": Received("v31/to-old", b"hello 3.1", 1, False),
    }
    assert modern.inbox.get() == Received("v31/from-old", b"hello 5", 1, False)


def test_mosquitto_clients_speak_mqtt31_to_each_other_and_to_paho(peers: Peers) -> None:
    sub = peers.mosquitto_sub(["v31m/#"], 2, "31")
    modern = peers.paho("5")
    assert modern.subscribe("v31m/#", 2) == [2]

    mosquitto_pub(peers.port, "v31m/a", b"from 3.1", qos=2, version="31")
    modern.publish("v31m/b", b"from 5", qos=1)

    # Two publishers, so no order between their messages; and both client libraries hand a QoS 2
    # message to the application only at its PUBREL, so the QoS 1 one may overtake it.
    expected = {b"from 3.1": Received("v31m/a", b"from 3.1", 2, False),
                b"from 5": Received("v31m/b", b"from 5", 1, False)}
    assert {m.payload: m for m in sub.inbox.take(2)} == expected
    assert {m.payload: m for m in modern.inbox.take(2)} == expected


def test_mqtt31_refuses_a_client_id_longer_than_23_characters_with_return_code_2(gateway: RunningGateway) -> None:
    with WireClient(gateway.mqtt_port, 3) as client:
        client.send_raw(encode(Connect(client_id="x" * 24, protocol_name="MQIsdp", protocol_level=3), 3))

        assert client.sock.recv(4) == b"\x20\x02\x00\x02"
        assert client.closed_by_server()


def test_mosquitto_sub_v5_without_an_id_adopts_the_assigned_client_identifier(peers: Peers) -> None:
    sub = peers.mosquitto_sub(["assigned/t"], 1, "5")

    assert sub.client_id is not None and sub.client_id.startswith("rmq-")
    session = peers.gateway.call(lambda: peers.gateway.broker.mqtt_sessions.get(sub.client_id))
    assert session is not None and "assigned/t" in session.subscriptions


def test_mqtt31_refuses_an_empty_client_id_with_return_code_2(gateway: RunningGateway) -> None:
    with WireClient(gateway.mqtt_port, 3) as client:
        client.send_raw(encode(Connect(client_id="", protocol_name="MQIsdp", protocol_level=3), 3))

        assert client.sock.recv(4) == b"\x20\x02\x00\x02"
        assert client.closed_by_server()


# -- keep-alive ----------------------------------------------------------------------------


@pytest.mark.parametrize("level", [3, 4, 5])
def test_pingreq_gets_pingresp(gateway: RunningGateway, level: int) -> None:
    with WireClient(gateway.mqtt_port, level) as client:
        assert client.connect(f"pinger-{level}").reason_code == 0

        client.send(PingReq())
        assert client.recv() == PingResp()
        client.send_raw(b"\xc0\x00")
        assert client.sock.recv(2) == b"\xd0\x00"



def test_paho_keep_alive_pings_are_answered_and_the_connection_stays_up(peers: Peers) -> None:
    client = PahoClient(peers.port, "paho-pinger", "311")
    peers._made.append(client)
    client.connect(keepalive=1)
    assert client.subscribe("ka/paho", 0) == [0]

    client.wait_for_log("Received PINGRESP", count=2)

    client.publish("ka/paho", b"alive", qos=1)
    assert client.inbox.get() == Received("ka/paho", b"alive", 0, False)



# -- MQTT 5 properties across versions --------------------------------------------------------

V5_PROPERTY_ARGS = (
    "-D", "publish", "user-property", "k", "v1",
    "-D", "publish", "user-property", "k", "v2",
    "-D", "publish", "content-type", "text/plain",
    "-D", "publish", "response-topic", "reply/here",
    "-D", "publish", "correlation-data", "abc",
    "-D", "publish", "payload-format-indicator", "1",
)


@pytest.mark.parametrize("retain", [False, True])
def test_mosquitto_pub_v5_properties_reach_paho_v5_and_v3_subscribers_get_the_bare_payload(
    peers: Peers, retain: bool
) -> None:
    def subscribe() -> tuple[Inbox, Inbox, Inbox]:
        return (
            peers.subscriber("paho-5", ["props/t"], 1),
            peers.subscriber("paho-311", ["props/t"], 1),
            peers.subscriber("mosquitto-311", ["props/t"], 1),
        )

    inboxes = None if retain else subscribe()
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(peers.port), "-V", "5", "-q", "1",
            "-t", "props/t", "-m", "with properties", *V5_PROPERTY_ARGS] + (["-r"] if retain else [])
    assert subprocess.run(args, capture_output=True, timeout=30).returncode == 0
    if inboxes is None:
        inboxes = subscribe()  # the retained copy keeps its properties too
    v5, v311, mosquitto = inboxes

    expected = Received("props/t", b"with properties", 1, retain)
    got = v5.get()
    assert got == expected
    assert got.properties["UserProperty"] == [("k", "v1"), ("k", "v2")]
    assert got.properties["ContentType"] == "text/plain"
    assert got.properties["ResponseTopic"] == "reply/here"
    assert got.properties["CorrelationData"] == b"abc"
    assert got.properties["PayloadFormatIndicator"] == 1
    assert v311.get() == expected
    assert mosquitto.get() == expected
