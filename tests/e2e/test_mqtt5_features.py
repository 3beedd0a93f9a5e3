"""MQTT 5 features end to end: a real gateway on loopback, real peers (paho v5) and raw wire clients.

Absence is proven with a barrier, never with a sleep: a client sends PINGREQ
and collects what arrives before the PINGRESP. The server answers in order,
so anything it had queued for that client comes first. Time-driven behaviour
(message expiry) is driven by publishing messages whose deadline has already
passed through the core on the gateway's own loop.
"""

from __future__ import annotations

import base64
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties
from paho.mqtt.subscribeoptions import SubscribeOptions

from adapters.mqtt.packets import (
    Auth,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PingResp,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    SubscriptionRequest,
)
from adapters.mqtt.properties import Properties
from core.message import Message
from core.passwords import PasswordFile
from core.principal import SYSTEM
from tests.conftest import RunningGateway, make_config
from tests.scram_client import ScramClient
from tests.wire_client import WireClient

TIMEOUT = 5.0


# --- fixtures and helpers --------------------------------------------------------------


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., RunningGateway]]:
    """Start a gateway whose [mqtt] section gets the given keys; stopped after the test."""
    running: list[RunningGateway] = []

    def start(**mqtt: Any) -> RunningGateway:
        gw = RunningGateway(make_config(mqtt={"listen": "127.0.0.1:0", **mqtt}))
        running.append(gw)
        return gw

    yield start
    for gw in running:
        gw.stop()


@pytest.fixture
def wire() -> Iterator[Callable[..., WireClient]]:
    """Open a v5 WireClient (closed after the test)."""
    opened: list[WireClient] = []

    def open_client(port: int) -> WireClient:
        client = WireClient(port, 5, timeout=TIMEOUT)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture
def connected(wire: Callable[..., WireClient]) -> Callable[..., WireClient]:
    """A v5 WireClient that has connected successfully, with CONNECT properties from kwargs."""

    def connect(port: int, client_id: str, *, clean_start: bool = True, keep_alive: int = 60, **props: Any) -> WireClient:
        client = wire(port)
        ack = client.connect(client_id, clean_start=clean_start, keep_alive=keep_alive, properties=Properties(**props))
        assert isinstance(ack, ConnAck) and ack.reason_code == 0, ack
        client.connack = ack  # type: ignore[attr-defined]
        return client

    return connect


def until_pingresp(client: WireClient) -> list[Packet]:
    """Barrier: send PINGREQ and return every packet that arrived before the PINGRESP."""
    client.send(PingReq())
    seen: list[Packet] = []
    while True:
        packet = client.recv()
        if isinstance(packet, PingResp):
            return seen
        seen.append(packet)


def subscribe(client: WireClient, *requests: SubscriptionRequest, packet_id: int = 1, sub_id: int | None = None) -> list[Packet]:
    """SUBSCRIBE, check the SUBACK grants everything, return what followed it (retained messages)."""
    props = Properties(subscription_identifiers=(sub_id,)) if sub_id is not None else Properties()
    client.send(Subscribe(packet_id, tuple(requests), props))
    ack = client.recv()
    assert isinstance(ack, SubAck) and ack.packet_id == packet_id, ack
    assert all(code < 0x80 for code in ack.reason_codes), ack
    return until_pingresp(client)


def publish_qos1(client: WireClient, topic: str, payload: bytes, packet_id: int, **props: Any) -> PubAck:
    client.send(Publish(topic, payload, qos=1, packet_id=packet_id, properties=Properties(**props)))
    ack = client.recv()
    assert isinstance(ack, PubAck) and ack.packet_id == packet_id, ack
    return ack


def expect_disconnect(client: WireClient) -> Disconnect:
    """The next packet is the server's DISCONNECT, and the server then closes the connection."""
    packet = client.recv()
    assert isinstance(packet, Disconnect), packet
    assert client.closed_by_server()
    return packet


def publishes(packets: list[Packet]) -> list[Publish]:
    assert all(isinstance(p, Publish) for p in packets), packets
    return packets  # type: ignore[return-value]


class PahoV5:
    """A paho-mqtt 2.x MQTT 5 client on its own network thread; messages land in a queue."""

    def __init__(self, port: int, client_id: str) -> None:
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.on_message: Callable[[paho.MQTTMessage], None] | None = None
        self._connected = threading.Event()
        self._subacks: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self.client.on_connect = self._handle_connect
        self.client.on_subscribe = self._handle_subscribe
        self.client.on_message = self._handle_message
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        assert self._connected.wait(TIMEOUT), "paho never got its CONNACK"
        assert self.reason_code == 0

    def _handle_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.reason_code = reason_code.value
        self._connected.set()

    def _handle_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        with self._lock:
            self._subacks.setdefault(mid, threading.Event()).set()

    def _handle_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        if self.on_message is not None:
            self.on_message(message)
        self.messages.put(message)

    def subscribe(self, topic: str, qos: int = 1) -> None:
        result, mid = self.client.subscribe(topic, options=SubscribeOptions(qos=qos))
        assert result == paho.MQTT_ERR_SUCCESS
        with self._lock:
            done = self._subacks.setdefault(mid, threading.Event())
        assert done.wait(TIMEOUT), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, qos: int = 1, properties: PahoProperties | None = None) -> None:
        info = self.client.publish(topic, payload, qos=qos, properties=properties)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    def next_message(self) -> paho.MQTTMessage:
        return self.messages.get(timeout=TIMEOUT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def paho_client() -> Iterator[Callable[[int, str], PahoV5]]:
    opened: list[PahoV5] = []

    def open_client(port: int, client_id: str) -> PahoV5:
        client = PahoV5(port, client_id)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


def publish_properties(**values: Any) -> PahoProperties:
    props = PahoProperties(PacketTypes.PUBLISH)
    for name, value in values.items():
        setattr(props, name, value)
    return props


# --- properties pass through ------------------------------------------------------------


def test_publish_properties_reach_the_subscriber_unchanged(gateway: RunningGateway, paho_client: Callable[[int, str], PahoV5]) -> None:
    subscriber = paho_client(gateway.mqtt_port, "props-sub")
    subscriber.subscribe("props/t", qos=1)
    publisher = paho_client(gateway.mqtt_port, "props-pub")
    user_properties = [("k", "1"), ("a", "x"), ("k", "2"), ("k", "1")]
    props = publish_properties(
        UserProperty=user_properties,
        ContentType="application/json; charset=utf-8",
        PayloadFormatIndicator=1,
        ResponseTopic="props/reply",
        CorrelationData=b"\x00\x01corr\xff",
        MessageExpiryInterval=60,
    )
    publisher.publish("props/t", b'{"v": 1}', qos=1, properties=props)

    message = subscriber.next_message()
    assert message.topic == "props/t" and message.payload == b'{"v": 1}'
    received = message.properties
    assert received.UserProperty == user_properties  # order and duplicates kept
    assert received.ContentType == "application/json; charset=utf-8"
    assert received.PayloadFormatIndicator == 1
    assert received.ResponseTopic == "props/reply"
    assert received.CorrelationData == b"\x00\x01corr\xff"
    assert 1 <= received.MessageExpiryInterval <= 60


def test_a_message_without_properties_arrives_without_them(gateway: RunningGateway, paho_client: Callable[[int, str], PahoV5]) -> None:
    subscriber = paho_client(gateway.mqtt_port, "bare-sub")
    subscriber.subscribe("bare/t", qos=1)
    paho_client(gateway.mqtt_port, "bare-pub").publish("bare/t", b"plain", qos=1)

    received = subscriber.next_message().properties
    for name in ("UserProperty", "ContentType", "PayloadFormatIndicator", "ResponseTopic",
                 "CorrelationData", "MessageExpiryInterval"):
        assert not hasattr(received, name), name


def test_request_response_answers_on_the_response_topic_with_the_correlation_data(
    gateway: RunningGateway, paho_client: Callable[[int, str], PahoV5]
) -> None:
    responder = paho_client(gateway.mqtt_port, "responder")

    def answer(request: paho.MQTTMessage) -> None:
        props = publish_properties(CorrelationData=request.properties.CorrelationData)
        responder.client.publish(request.properties.ResponseTopic, b"pong:" + request.payload, qos=1, properties=props)

    responder.on_message = answer
    responder.subscribe("service/ping", qos=1)
    requester = paho_client(gateway.mqtt_port, "requester")
    requester.subscribe("replies/requester", qos=1)

    for n in (1, 2):
        correlation = f"req-{n}".encode()
        props = publish_properties(ResponseTopic="replies/requester", CorrelationData=correlation)
        requester.publish("service/ping", f"hello{n}".encode(), qos=1, properties=props)
        reply = requester.next_message()
        assert reply.topic == "replies/requester"
        assert reply.payload == f"pong:hello{n}".encode()
        assert reply.properties.CorrelationData == correlation


# --- message expiry -----------------------------------------------------------------------


def test_a_retained_message_whose_expiry_passed_is_not_sent_to_a_new_subscriber(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    now = time.time()
    # Published with a 1 s expiry a little over 1 s ago, next to one that is still valid.
    gateway.call(lambda: gateway.broker.publish(SYSTEM, Message("exp/r/old", b"stale", 1, True, expiry=now - 0.1)))
    gateway.call(lambda: gateway.broker.publish(SYSTEM, Message("exp/r/new", b"fresh", 1, True, expiry=now + 60)))

    late = connected(gateway.mqtt_port, "late-subscriber")
    retained = publishes(subscribe(late, SubscriptionRequest("exp/r/#", qos=1)))

    assert [(p.topic, p.payload) for p in retained] == [("exp/r/new", b"fresh")]


def test_a_retained_message_published_with_a_1_second_expiry_keeps_that_deadline(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    publisher = connected(gateway.mqtt_port, "exp-pub")
    before = time.time()
    publisher.send(Publish("exp/r1", b"short-lived", qos=0, retain=True, properties=Properties(message_expiry_interval=1)))
    until_pingresp(publisher)
    after = time.time()

    stored = gateway.call(lambda: gateway.broker.router.retained.get("exp/r1"))
    assert stored is not None and before + 1 <= stored.expiry <= after + 1

    subscriber = connected(gateway.mqtt_port, "exp-sub")
    [message] = publishes(subscribe(subscriber, SubscriptionRequest("exp/r1", qos=0)))
    assert message.retain and message.properties.message_expiry_interval == 1


def test_an_expired_message_queued_for_an_offline_session_is_not_delivered(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "offline-sub", session_expiry_interval=300)
    subscribe(subscriber, SubscriptionRequest("exp/q", qos=1))
    subscriber.send(Disconnect())
    assert subscriber.closed_by_server()

    now = time.time()
    gateway.call(lambda: gateway.broker.publish(SYSTEM, Message("exp/q", b"expired", 1, expiry=now - 0.1)))
    publisher = connected(gateway.mqtt_port, "offline-pub")
    publish_qos1(publisher, "exp/q", b"fresh", 1, message_expiry_interval=60)
    queued = gateway.call(lambda: gateway.broker.mqtt_sessions.get("offline-sub").queued)
    assert queued == 2

    back = connected(gateway.mqtt_port, "offline-sub", clean_start=False, session_expiry_interval=300)
    assert back.connack.session_present  # type: ignore[attr-defined]
    [message] = publishes(until_pingresp(back))
    assert message.payload == b"fresh"
    assert 1 <= message.properties.message_expiry_interval <= 60  # the time left, never more than asked
    assert gateway.call(lambda: gateway.broker.mqtt_sessions.get("offline-sub").counters.expired) == 1


# --- subscription options ------------------------------------------------------------------


def test_no_local_keeps_a_clients_own_publish_from_it_but_not_from_others(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    me = connected(gateway.mqtt_port, "nl-me")
    other = connected(gateway.mqtt_port, "nl-other")
    subscribe(me, SubscriptionRequest("nl/t", qos=1, no_local=True))
    subscribe(other, SubscriptionRequest("nl/t", qos=1))

    me.send(Publish("nl/t", b"mine", qos=1, packet_id=7))
    assert [type(p) for p in until_pingresp(me)] == [PubAck]  # the PUBACK and nothing else
    [seen] = publishes(until_pingresp(other))
    assert seen.payload == b"mine"

    other.send(Publish("nl/t", b"theirs", qos=1, packet_id=8))
    assert [(type(p), getattr(p, "payload", None)) for p in until_pingresp(other)] == [(Publish, b"theirs"), (PubAck, None)]
    [echo] = publishes(until_pingresp(me))
    assert echo.payload == b"theirs"


def test_retain_as_published_keeps_the_retain_flag_on_live_delivery_only_when_asked(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    keeps = connected(gateway.mqtt_port, "rap-on")
    clears = connected(gateway.mqtt_port, "rap-off")
    subscribe(keeps, SubscriptionRequest("rap/t", qos=0, retain_as_published=True))
    subscribe(clears, SubscriptionRequest("rap/t", qos=0))
    publisher = connected(gateway.mqtt_port, "rap-pub")

    publisher.send(Publish("rap/t", b"retained", retain=True))
    publisher.send(Publish("rap/t", b"plain"))
    until_pingresp(publisher)

    assert [(p.payload, p.retain) for p in publishes(until_pingresp(keeps))] == [(b"retained", True), (b"plain", False)]
    assert [(p.payload, p.retain) for p in publishes(until_pingresp(clears))] == [(b"retained", False), (b"plain", False)]


def _retain_one(gateway: RunningGateway, connected: Callable[..., WireClient], topic: str) -> None:
    publisher = connected(gateway.mqtt_port, f"pub-{topic}")
    publisher.send(Publish(topic, b"kept", qos=1, retain=True, packet_id=1))
    assert isinstance(publisher.recv(), PubAck)


def test_retain_handling_0_sends_retained_messages_on_every_subscribe(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    _retain_one(gateway, connected, "rh0/t")
    client = connected(gateway.mqtt_port, "rh0")
    request = SubscriptionRequest("rh0/t", qos=1, retain_handling=0)
    for packet_id in (1, 2):
        [message] = publishes(subscribe(client, request, packet_id=packet_id))
        assert message.retain and message.payload == b"kept"
        client.send(PubAck(message.packet_id))


def test_retain_handling_1_sends_retained_messages_only_for_a_new_subscription(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    _retain_one(gateway, connected, "rh1/t")
    client = connected(gateway.mqtt_port, "rh1")
    request = SubscriptionRequest("rh1/t", qos=1, retain_handling=1)
    [message] = publishes(subscribe(client, request, packet_id=1))
    assert message.retain and message.payload == b"kept"
    client.send(PubAck(message.packet_id))
    assert subscribe(client, request, packet_id=2) == []  # re-subscribing: nothing


def test_retain_handling_2_never_sends_retained_messages(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    _retain_one(gateway, connected, "rh2/t")
    client = connected(gateway.mqtt_port, "rh2")
    request = SubscriptionRequest("rh2/t", qos=1, retain_handling=2)
    assert subscribe(client, request, packet_id=1) == []
    assert subscribe(client, request, packet_id=2) == []
    # The subscription itself works: live messages arrive.
    publish_qos1(connected(gateway.mqtt_port, "rh2-pub"), "rh2/t", b"live", 1)
    [live] = publishes(until_pingresp(client))
    assert live.payload == b"live" and not live.retain


# --- subscription identifiers ------------------------------------------------------------


def test_overlapping_subscriptions_deliver_once_with_every_subscription_identifier(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    client = connected(gateway.mqtt_port, "sid")
    assert client.connack.properties.subscription_identifier_available != 0  # type: ignore[attr-defined]
    subscribe(client, SubscriptionRequest("sid/#", qos=1), packet_id=1, sub_id=1)
    subscribe(client, SubscriptionRequest("sid/+", qos=0), packet_id=2, sub_id=2)

    publish_qos1(connected(gateway.mqtt_port, "sid-pub"), "sid/x", b"both", 1)

    [message] = publishes(until_pingresp(client))
    assert message.payload == b"both" and message.qos == 1
    assert sorted(message.properties.subscription_identifiers) == [1, 2]


def test_a_message_matching_one_subscription_carries_only_its_identifier(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    client = connected(gateway.mqtt_port, "sid-one")
    subscribe(client, SubscriptionRequest("sid1/a/#"), packet_id=1, sub_id=11)
    subscribe(client, SubscriptionRequest("sid1/b/#"), packet_id=2, sub_id=22)
    publisher = connected(gateway.mqtt_port, "sid-one-pub")
    publisher.send(Publish("sid1/b/c", b"b"))
    until_pingresp(publisher)
    [message] = publishes(until_pingresp(client))
    assert message.properties.subscription_identifiers == (22,)


# --- topic aliases -------------------------------------------------------------------------


def test_an_inbound_topic_alias_maps_an_empty_topic_to_the_aliased_name(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "alias-in-sub")
    subscribe(subscriber, SubscriptionRequest("alias/#"))
    publisher = connected(gateway.mqtt_port, "alias-in-pub")
    assert publisher.connack.properties.topic_alias_maximum == 10  # type: ignore[attr-defined]

    publisher.send(Publish("alias/in", b"first", properties=Properties(topic_alias=1)))
    publisher.send(Publish("", b"second", properties=Properties(topic_alias=1)))
    publisher.send(Publish("alias/other", b"third", properties=Properties(topic_alias=1)))  # re-map
    publisher.send(Publish("", b"fourth", properties=Properties(topic_alias=1)))
    assert until_pingresp(publisher) == []

    got = [(p.topic, p.payload) for p in publishes(until_pingresp(subscriber))]
    assert got == [("alias/in", b"first"), ("alias/in", b"second"), ("alias/other", b"third"), ("alias/other", b"fourth")]


def _publish_with_alias_zero(topic: bytes, payload: bytes) -> bytes:
    props = bytes((0x23, 0x00, 0x00))  # Topic Alias (0x23) = 0: not encodable by our codec on purpose
    body = len(topic).to_bytes(2, "big") + topic + bytes((len(props),)) + props + payload
    return bytes((0x30, len(body))) + body


def test_topic_alias_zero_gets_disconnect_topic_alias_invalid(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    client = connected(gateway.mqtt_port, "alias-zero")
    client.send_raw(_publish_with_alias_zero(b"alias/z", b"x"))
    assert expect_disconnect(client).reason_code == 0x94


def test_a_topic_alias_above_the_servers_maximum_gets_disconnect_topic_alias_invalid(
    start_gateway: Callable[..., RunningGateway], connected: Callable[..., WireClient]
) -> None:
    gw = start_gateway(topic_alias_maximum=5)
    client = connected(gw.mqtt_port, "alias-high")
    assert client.connack.properties.topic_alias_maximum == 5  # type: ignore[attr-defined]
    client.send(Publish("alias/h", b"ok", properties=Properties(topic_alias=5)))
    assert until_pingresp(client) == []  # 5 itself is allowed
    client.send(Publish("alias/h", b"x", properties=Properties(topic_alias=6)))
    assert expect_disconnect(client).reason_code == 0x94


def test_an_empty_topic_with_an_unknown_alias_gets_disconnect_protocol_error(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    client = connected(gateway.mqtt_port, "alias-unknown")
    client.send(Publish("", b"x", properties=Properties(topic_alias=3)))
    assert expect_disconnect(client).reason_code == 0x82


def test_topic_aliases_announced_by_a_subscriber_are_used_up_to_its_maximum(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "alias-out-sub", topic_alias_maximum=2)
    subscribe(subscriber, SubscriptionRequest("oa/#"))
    publisher = connected(gateway.mqtt_port, "alias-out-pub")
    for topic in ("oa/1", "oa/1", "oa/2", "oa/3", "oa/3", "oa/2", "oa/1"):
        publisher.send(Publish(topic, topic.encode()))
    until_pingresp(publisher)

    got = [(p.topic, p.properties.topic_alias, p.payload) for p in publishes(until_pingresp(subscriber))]
    assert got == [
        ("oa/1", 1, b"oa/1"),  # first use: name and alias
        ("", 1, b"oa/1"),  # later: the alias alone
        ("oa/2", 2, b"oa/2"),
        ("oa/3", None, b"oa/3"),  # aliases used up: the full name, no alias
        ("oa/3", None, b"oa/3"),
        ("", 2, b"oa/2"),
        ("", 1, b"oa/1"),
    ]


def test_a_subscriber_without_topic_alias_maximum_never_gets_aliases(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "alias-none-sub")
    subscribe(subscriber, SubscriptionRequest("na/#"))
    publisher = connected(gateway.mqtt_port, "alias-none-pub")
    publisher.send(Publish("na/1", b"a"))
    publisher.send(Publish("na/1", b"b"))
    until_pingresp(publisher)
    got = [(p.topic, p.properties.topic_alias) for p in publishes(until_pingresp(subscriber))]
    assert got == [("na/1", None), ("na/1", None)]


# --- receive maximum -----------------------------------------------------------------------


def test_more_qos2_publishes_than_the_servers_receive_maximum_get_disconnect_0x93(
    start_gateway: Callable[..., RunningGateway], connected: Callable[..., WireClient]
) -> None:
    gw = start_gateway(max_inflight=3)
    client = connected(gw.mqtt_port, "rm-in")
    assert client.connack.properties.receive_maximum == 3  # type: ignore[attr-defined]
    for packet_id in (1, 2, 3):
        client.send(Publish("rm/in", b"x", qos=2, packet_id=packet_id))
        assert client.recv() == PubRec(packet_id, 0x10)  # no subscribers, yet accepted
    client.send(Publish("rm/in", b"x", qos=2, packet_id=4))
    assert expect_disconnect(client).reason_code == 0x93


def test_the_servers_receive_maximum_counts_only_qos2_publishes_awaiting_pubrel(
    start_gateway: Callable[..., RunningGateway], connected: Callable[..., WireClient]
) -> None:
    gw = start_gateway(max_inflight=2)
    client = connected(gw.mqtt_port, "rm-in-ok")
    for packet_id in range(1, 7):  # 6 QoS 2 flows, never more than 2 open at once
        client.send(Publish("rm/ok", b"x", qos=2, packet_id=packet_id))
        assert isinstance(client.recv(), PubRec)
        if packet_id % 2 == 0:
            for done in (packet_id - 1, packet_id):
                client.send(PubRel(done))
                assert client.recv() == PubComp(done)
    assert until_pingresp(client) == []


def test_a_subscribers_receive_maximum_bounds_the_qos1_messages_in_flight(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "rm-out-sub", receive_maximum=2)
    subscribe(subscriber, SubscriptionRequest("rm/out", qos=1))
    publisher = connected(gateway.mqtt_port, "rm-out-pub")
    for n in range(5):
        publish_qos1(publisher, "rm/out", f"m{n}".encode(), n + 1)

    first = publishes(until_pingresp(subscriber))
    assert [p.payload for p in first] == [b"m0", b"m1"]  # exactly 2 in flight

    subscriber.send(PubAck(first[0].packet_id))
    released = publishes(until_pingresp(subscriber))
    assert [p.payload for p in released] == [b"m2"]  # one acknowledged, one more released

    for packet in [first[1], released[0]]:
        subscriber.send(PubAck(packet.packet_id))
    assert [p.payload for p in publishes(until_pingresp(subscriber))] == [b"m3", b"m4"]


# --- maximum packet size -------------------------------------------------------------------


def test_a_publish_larger_than_the_servers_maximum_packet_size_gets_disconnect_0x95(
    start_gateway: Callable[..., RunningGateway], connected: Callable[..., WireClient]
) -> None:
    gw = start_gateway(max_packet_size=200)
    client = connected(gw.mqtt_port, "mps-in")
    assert client.connack.properties.maximum_packet_size == 200  # type: ignore[attr-defined]
    client.send(Publish("mps/in", b"x" * 150, qos=1, packet_id=1))  # fits
    assert isinstance(client.recv(), PubAck)
    client.send(Publish("mps/in", b"x" * 500, qos=1, packet_id=2))
    assert expect_disconnect(client).reason_code == 0x95


def test_a_message_too_large_for_the_subscribers_maximum_packet_size_is_skipped(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "mps-out-sub", maximum_packet_size=100)
    subscribe(subscriber, SubscriptionRequest("mps/out", qos=1))
    publisher = connected(gateway.mqtt_port, "mps-out-pub")
    publish_qos1(publisher, "mps/out", b"B" * 500, 1)
    publish_qos1(publisher, "mps/out", b"small", 2)

    [message] = publishes(until_pingresp(subscriber))
    assert message.payload == b"small"
    subscriber.send(PubAck(message.packet_id))
    until_pingresp(subscriber)
    assert gateway.call(lambda: dict(gateway.broker.mqtt_sessions.get("mps-out-sub").inflight)) == {}


def test_a_skipped_oversized_message_does_not_leave_a_topic_alias_the_subscriber_never_saw(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "mps-alias-sub", maximum_packet_size=100, topic_alias_maximum=2)
    subscribe(subscriber, SubscriptionRequest("mps/alias", qos=0))
    publisher = connected(gateway.mqtt_port, "mps-alias-pub")
    publisher.send(Publish("mps/alias", b"B" * 500))
    publisher.send(Publish("mps/alias", b"one"))
    publisher.send(Publish("mps/alias", b"two"))
    until_pingresp(publisher)

    got = [(p.topic, p.properties.topic_alias, p.payload) for p in publishes(until_pingresp(subscriber))]
    assert got == [("mps/alias", 1, b"one"), ("", 1, b"two")]


# --- keep alive and reason strings -------------------------------------------------------


def test_a_keep_alive_above_the_servers_maximum_is_lowered_with_server_keep_alive(
    start_gateway: Callable[..., RunningGateway], connected: Callable[..., WireClient]
) -> None:
    gw = start_gateway(max_keepalive=30)
    lowered = connected(gw.mqtt_port, "ka-high", keep_alive=120)
    assert lowered.connack.properties.server_keep_alive == 30  # type: ignore[attr-defined]
    kept = connected(gw.mqtt_port, "ka-low", keep_alive=20)
    assert kept.connack.properties.server_keep_alive is None  # type: ignore[attr-defined]


def test_a_server_disconnect_carries_a_reason_string(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    client = connected(gateway.mqtt_port, "rs-on")
    client.send(Publish("", b"x", properties=Properties(topic_alias=3)))
    disconnect = expect_disconnect(client)
    assert disconnect.reason_code == 0x82
    assert disconnect.properties.reason_string


def test_a_client_that_asks_for_no_problem_information_gets_no_reason_string(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    client = connected(gateway.mqtt_port, "rs-off", request_problem_information=0)
    client.send(Publish("", b"x", properties=Properties(topic_alias=3)))
    disconnect = expect_disconnect(client)
    assert disconnect.reason_code == 0x82
    assert disconnect.properties.reason_string is None


# --- enhanced authentication: SCRAM-SHA-256 ------------------------------------------------

# RFC 7677 section 3 example.
RFC_USER, RFC_PASSWORD = "user", "pencil"
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
SCRAM = "SCRAM-SHA-256"


def test_the_scram_test_client_reproduces_the_rfc_7677_example() -> None:
    client = ScramClient(RFC_USER, RFC_PASSWORD, RFC_CLIENT_NONCE)
    assert client.first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert client.final(RFC_SERVER_FIRST.encode()).decode() == RFC_CLIENT_FINAL
    assert client.expected_server_final == RFC_SERVER_FINAL


@pytest.fixture
def scram_gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    """A gateway with a password file holding the RFC 7677 user: SCRAM-SHA-256 comes with it."""
    passwords = PasswordFile()
    passwords.set(RFC_USER, RFC_PASSWORD, iterations=4096, salt=RFC_SALT)
    passwords.save(tmp_path / "passwords")
    running = RunningGateway(make_config(auth={"password_file": str(tmp_path / "passwords")}))
    try:
        yield running
    finally:
        running.stop()


def _auth_props(data: bytes) -> Properties:
    return Properties(authentication_method=SCRAM, authentication_data=data)


def _scram_connect(client: WireClient, scram: ScramClient, client_id: str) -> Packet:
    """CONNECT with client-first, answer the AUTH challenge with client-final; returns the final answer."""
    client.send(Connect(client_id, protocol_level=5, properties=_auth_props(scram.first())))
    challenge = client.recv()
    assert isinstance(challenge, Auth) and challenge.reason_code == 0x18, challenge
    assert challenge.properties.authentication_method == SCRAM
    client.send(Auth(0x18, _auth_props(scram.final(challenge.properties.authentication_data or b""))))
    return client.recv()


def test_a_scram_sha_256_exchange_over_the_wire_ends_in_connack_with_the_server_signature(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    client.send(Connect("scram-rfc", protocol_level=5, properties=_auth_props(f"n,,n=user,r={RFC_CLIENT_NONCE}".encode())))
    challenge = client.recv()
    assert isinstance(challenge, Auth) and challenge.reason_code == 0x18
    server_first = (challenge.properties.authentication_data or b"").decode()
    nonce, salt, iterations = server_first.split(",")
    assert nonce.startswith("r=" + RFC_CLIENT_NONCE) and len(nonce) > len("r=" + RFC_CLIENT_NONCE)
    assert (salt, iterations) == ("s=W22ZaJ0SNY7soEsUEjb6gQ==", "i=4096")  # from the password file

    scram = ScramClient(RFC_USER, RFC_PASSWORD, RFC_CLIENT_NONCE)
    client.send(Auth(0x18, _auth_props(scram.final(server_first.encode()))))
    connack = client.recv()
    assert isinstance(connack, ConnAck) and connack.reason_code == 0, connack
    assert connack.properties.authentication_method == SCRAM
    assert connack.properties.authentication_data == scram.expected_server_final.encode()
    assert scram_gateway.call(lambda: scram_gateway.broker.mqtt_sessions.get("scram-rfc").username) == RFC_USER


def test_a_scram_login_lets_the_client_publish_and_subscribe(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    scram = ScramClient(RFC_USER, RFC_PASSWORD)
    connack = _scram_connect(client, scram, "scram-ok")
    assert isinstance(connack, ConnAck) and connack.reason_code == 0, connack
    assert connack.properties.authentication_data == scram.expected_server_final.encode()
    subscribe(client, SubscriptionRequest("scram/t", qos=1))
    client.send(Publish("scram/t", b"hi", qos=1, packet_id=5))
    message, ack = until_pingresp(client)
    assert isinstance(message, Publish) and message.payload == b"hi"
    assert ack == PubAck(5)


def test_a_scram_login_with_a_wrong_password_gets_connack_not_authorized(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    answer = _scram_connect(client, ScramClient(RFC_USER, "not-pencil"), "scram-bad")
    assert isinstance(answer, ConnAck) and answer.reason_code == 0x87
    assert client.closed_by_server()


def test_a_scram_login_for_an_unknown_user_gets_connack_not_authorized(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    answer = _scram_connect(client, ScramClient("nobody", RFC_PASSWORD), "scram-nobody")
    assert isinstance(answer, ConnAck) and answer.reason_code == 0x87
    assert client.closed_by_server()


def test_an_unknown_authentication_method_gets_connack_bad_authentication_method(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    client.send(Connect("scram-unknown", protocol_level=5,
                        properties=Properties(authentication_method="SCRAM-SHA-1", authentication_data=b"n,,n=user,r=abc")))
    answer = client.recv()
    assert isinstance(answer, ConnAck) and answer.reason_code == 0x8C
    assert client.closed_by_server()


def test_a_scram_client_can_re_authenticate_after_connecting(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    assert _scram_connect(client, ScramClient(RFC_USER, RFC_PASSWORD), "scram-reauth").reason_code == 0

    again = ScramClient(RFC_USER, RFC_PASSWORD)
    client.send(Auth(0x19, _auth_props(again.first())))
    challenge = client.recv()
    assert isinstance(challenge, Auth) and challenge.reason_code == 0x18, challenge
    client.send(Auth(0x18, _auth_props(again.final(challenge.properties.authentication_data or b""))))
    assert client.recv() == Auth(0x00, _auth_props(again.expected_server_final.encode()))
    assert until_pingresp(client) == []  # still connected and working


def test_a_failed_re_authentication_disconnects_with_not_authorized(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    assert _scram_connect(client, ScramClient(RFC_USER, RFC_PASSWORD), "scram-reauth-bad").reason_code == 0

    wrong = ScramClient(RFC_USER, "wrong")
    client.send(Auth(0x19, _auth_props(wrong.first())))
    challenge = client.recv()
    assert isinstance(challenge, Auth) and challenge.reason_code == 0x18
    client.send(Auth(0x18, _auth_props(wrong.final(challenge.properties.authentication_data or b""))))
    assert expect_disconnect(client).reason_code == 0x87


# --- edges where the features meet ----------------------------------------------------------


def test_a_retained_message_sent_on_subscribe_carries_the_subscription_identifier(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    _retain_one(gateway, connected, "sidr/t")
    client = connected(gateway.mqtt_port, "sid-retained")
    [message] = publishes(subscribe(client, SubscriptionRequest("sidr/#", qos=1), sub_id=42))
    assert message.retain and message.properties.subscription_identifiers == (42,)


def test_outbound_topic_aliases_work_for_qos1_and_keep_subscription_identifiers(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "alias-q1-sub", topic_alias_maximum=1)
    subscribe(subscriber, SubscriptionRequest("aq/#", qos=1), sub_id=9)
    publisher = connected(gateway.mqtt_port, "alias-q1-pub")
    publish_qos1(publisher, "aq/x", b"one", 1)
    publish_qos1(publisher, "aq/x", b"two", 2)

    first, second = publishes(until_pingresp(subscriber))
    assert (first.topic, first.properties.topic_alias, first.payload) == ("aq/x", 1, b"one")
    assert (second.topic, second.properties.topic_alias, second.payload) == ("", 1, b"two")
    assert first.qos == second.qos == 1 and first.packet_id != second.packet_id
    assert first.properties.subscription_identifiers == second.properties.subscription_identifiers == (9,)


def test_an_inbound_topic_alias_is_forgotten_when_the_connection_ends(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    first = connected(gateway.mqtt_port, "alias-forget")
    first.send(Publish("alias/f", b"x", properties=Properties(topic_alias=1)))
    assert until_pingresp(first) == []
    first.send(Disconnect())
    assert first.closed_by_server()

    second = connected(gateway.mqtt_port, "alias-forget")
    second.send(Publish("", b"y", properties=Properties(topic_alias=1)))
    assert expect_disconnect(second).reason_code == 0x82  # aliases live for one connection [MQTT-3.3.2-7]


def test_a_subscribers_receive_maximum_counts_qos2_messages_until_pubcomp(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "rm2-sub", receive_maximum=1)
    subscribe(subscriber, SubscriptionRequest("rm2/t", qos=2))
    publisher = connected(gateway.mqtt_port, "rm2-pub")
    for n in range(2):
        publisher.send(Publish("rm2/t", f"m{n}".encode(), qos=2, packet_id=n + 1))
        assert isinstance(publisher.recv(), PubRec)

    [first] = publishes(until_pingresp(subscriber))
    assert first.payload == b"m0"
    subscriber.send(PubRec(first.packet_id))
    assert until_pingresp(subscriber) == [PubRel(first.packet_id)]  # PUBREC does not free the slot
    subscriber.send(PubComp(first.packet_id))
    [second] = publishes(until_pingresp(subscriber))
    assert second.payload == b"m1"


def test_a_resumed_session_resends_no_more_than_the_new_receive_maximum(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "rm-resume", session_expiry_interval=300, receive_maximum=5)
    subscribe(subscriber, SubscriptionRequest("rmr/t", qos=1))
    publisher = connected(gateway.mqtt_port, "rm-resume-pub")
    for n in range(5):
        publish_qos1(publisher, "rmr/t", f"m{n}".encode(), n + 1)
    assert len(publishes(until_pingresp(subscriber))) == 5  # all in flight, none acknowledged
    subscriber.close()  # gone without acknowledging (taken over if the server has not noticed yet)
    publish_qos1(publisher, "rmr/t", b"queued", 6)  # the window is full: it waits in the queue

    back = connected(gateway.mqtt_port, "rm-resume", clean_start=False, session_expiry_interval=300, receive_maximum=2)
    resent = publishes(until_pingresp(back))
    assert [(p.payload, p.dup) for p in resent] == [(b"m0", True), (b"m1", True)]
    back.send(PubAck(resent[0].packet_id))
    [third] = publishes(until_pingresp(back))
    assert (third.payload, third.dup) == (b"m2", True)

    for packet in (resent[1], third):
        back.send(PubAck(packet.packet_id))
    rest = publishes(until_pingresp(back))
    assert [(p.payload, p.dup) for p in rest] == [(b"m3", True), (b"m4", True)]
    for packet in rest:
        back.send(PubAck(packet.packet_id))
    [last] = publishes(until_pingresp(back))
    assert (last.payload, last.dup) == (b"queued", False)


def test_a_disconnect_reason_string_is_left_out_when_it_would_exceed_the_clients_maximum_packet_size(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    client = connected(gateway.mqtt_port, "rs-small", maximum_packet_size=20)
    client.send(Publish("", b"x", properties=Properties(topic_alias=3)))
    disconnect = expect_disconnect(client)
    assert disconnect.reason_code == 0x82
    assert disconnect.properties.reason_string is None  # [MQTT-3.14.2-3]


def test_a_v5_client_asking_for_no_keep_alive_is_given_the_servers_maximum(
    start_gateway: Callable[..., RunningGateway], connected: Callable[..., WireClient]
) -> None:
    gw = start_gateway(max_keepalive=30)
    client = connected(gw.mqtt_port, "ka-zero", keep_alive=0)
    assert client.connack.properties.server_keep_alive == 30  # type: ignore[attr-defined]


def test_authentication_data_without_an_authentication_method_is_a_protocol_error(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    answer = client.connect("auth-data-only", username=RFC_USER, password=RFC_PASSWORD.encode(),
                            properties=Properties(authentication_data=b"n,,n=user,r=abc"))
    assert isinstance(answer, ConnAck) and answer.reason_code == 0x82
    assert client.closed_by_server()


def test_re_authentication_on_a_connection_that_did_not_use_enhanced_auth_is_a_protocol_error(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    connack = client.connect("reauth-plain", username=RFC_USER, password=RFC_PASSWORD.encode())
    assert isinstance(connack, ConnAck) and connack.reason_code == 0  # a plain password login
    client.send(Auth(0x19, _auth_props(ScramClient(RFC_USER, RFC_PASSWORD).first())))
    assert expect_disconnect(client).reason_code == 0x82


def test_an_auth_continue_outside_a_running_exchange_is_a_protocol_error(
    scram_gateway: RunningGateway, wire: Callable[..., WireClient]
) -> None:
    client = wire(scram_gateway.mqtt_port)
    scram = ScramClient(RFC_USER, RFC_PASSWORD)
    assert _scram_connect(client, scram, "auth-stray").reason_code == 0
    client.send(Auth(0x18, _auth_props(scram.final(b"r=" + scram.nonce.encode() + b"x,s=AAAA,i=4096"))))
    assert expect_disconnect(client).reason_code == 0x82


def test_empty_strings_and_empty_correlation_data_pass_through_as_present(
    gateway: RunningGateway, connected: Callable[..., WireClient]
) -> None:
    subscriber = connected(gateway.mqtt_port, "empty-props-sub")
    subscribe(subscriber, SubscriptionRequest("empty/props"))
    publisher = connected(gateway.mqtt_port, "empty-props-pub")
    sent = Properties(content_type="", correlation_data=b"", user_properties=(("", ""), ("k", "")))
    publisher.send(Publish("empty/props", b"", properties=sent))
    until_pingresp(publisher)
    [message] = publishes(until_pingresp(subscriber))
    assert message.properties == sent
