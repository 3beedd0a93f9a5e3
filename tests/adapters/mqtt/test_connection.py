"""Bytes-only tests of `MQTTConnection`: a real core `Broker`, a fake clock, no sockets.

Each test feeds bytes with `receive_data`, reads what the machine wants to
write with `data_to_send`, and drives time with `handle_timeout(now)`, the way
websockets' tests/test_protocol.py drives its `Protocol`.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.mqtt.codec import MQTTDecoder, encode, encode_varint
from adapters.mqtt.connection import MQTTConnection, State
from adapters.mqtt.enhanced_auth import AuthStep
from adapters.mqtt.errors import ReasonCode
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
    Will,
)
from adapters.mqtt.properties import Properties
from adapters.mqtt.settings import MQTTSettings
from core.broker import Broker
from core.stores.memory import MemoryStore

START = 1000.0


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def broker(clock: FakeClock) -> Broker:
    broker = Broker(MemoryStore(), clock=clock)
    broker.start()
    return broker


class Peer:
    """One MQTTConnection plus the client's view of it: encode what we send, decode what it sends."""

    def __init__(self, broker: Broker, clock: FakeClock, level: int, settings: MQTTSettings | None = None) -> None:
        self.conn = MQTTConnection(broker, settings or MQTTSettings(), peer="test", clock=clock)
        self.level = level
        self.output_signals = 0
        self.conn.on_output = self._on_output
        self._decoder = MQTTDecoder()
        self._decoder.protocol_level = level

    def _on_output(self) -> None:
        self.output_signals += 1

    def send(self, packet: Packet) -> None:
        self.conn.receive_data(encode(packet, self.level))

    def send_raw(self, data: bytes) -> None:
        self.conn.receive_data(data)

    def received(self) -> list[Packet]:
        """Every packet the connection has queued for the client since the last call."""
        self._decoder.feed(self.conn.data_to_send())
        packets = []
        while (packet := self._decoder.next_packet()) is not None:
            packets.append(packet)
        assert self._decoder.buffered == 0, "the connection wrote a partial packet"
        return packets

    def connect(self, client_id: str = "c", **fields: Any) -> ConnAck:
        fields.setdefault("protocol_level", self.level)
        self.send(Connect(client_id, **fields))
        packets = self.received()
        assert len(packets) == 1 and isinstance(packets[0], ConnAck), packets
        return packets[0]

    def subscribe(self, topic_filter: str, qos: int = 1, packet_id: int = 1) -> None:
        self.send(Subscribe(packet_id, (SubscriptionRequest(topic_filter, qos),)))
        assert self.received() == [SubAck(packet_id, (qos,))]


def peer(broker: Broker, clock: FakeClock, level: int = 5, settings: MQTTSettings | None = None) -> Peer:
    return Peer(broker, clock, level, settings)


def connect_bytes(name: bytes, level: int, flags: int = 0x02, payload: bytes = b"\x00\x01c", props: bytes = b"") -> bytes:
    """A CONNECT built by hand, for protocol name/level pairs our encoder refuses to write."""
    body = len(name).to_bytes(2, "big") + name + bytes((level, flags)) + (60).to_bytes(2, "big")
    body += props + payload
    return b"\x10" + encode_varint(len(body)) + body


# -- CONNECT and CONNACK ------------------------------------------------------------------


def test_a_v311_connect_is_answered_with_the_four_bytes_of_an_accepting_connack(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock, level=4)
    client.send(Connect("dev-1", protocol_level=4))
    assert client.conn.data_to_send() == b"\x20\x02\x00\x00"
    assert client.conn.state is State.CONNECTED and not client.conn.closing


def test_a_v5_connack_announces_receive_maximum_packet_size_alias_maximum_and_assigned_id(
    broker: Broker, clock: FakeClock
) -> None:
    settings = MQTTSettings(receive_maximum=7, max_packet_size=2048, topic_alias_maximum=4)
    client = peer(broker, clock, level=5, settings=settings)
    client.send(Connect("", protocol_level=5))
    data = client.conn.data_to_send()
    assert data[0] == 0x20 and data[2:4] == b"\x00\x00"  # CONNACK, no session, Success
    client._decoder.feed(data)
    connack = client._decoder.next_packet()
    assert isinstance(connack, ConnAck)
    props = connack.properties
    assert props.receive_maximum == 7
    assert props.maximum_packet_size == 2048
    assert props.topic_alias_maximum == 4
    assert props.assigned_client_identifier is not None
    assert props.assigned_client_identifier.startswith("rmq-")
    assert client.conn.client_id == props.assigned_client_identifier
    assert broker.mqtt_sessions.get(props.assigned_client_identifier) is not None


def test_a_v5_client_that_names_its_id_is_not_assigned_one(broker: Broker, clock: FakeClock) -> None:
    connack = peer(broker, clock).connect("named")
    assert connack.reason_code == ReasonCode.SUCCESS
    assert connack.properties.assigned_client_identifier is None


@pytest.mark.parametrize(
    "first_packet",
    [encode(PingReq(), 4), encode(Publish("a/b", b"x"), 4), encode(Subscribe(1, (SubscriptionRequest("a"),)), 4)],
    ids=["pingreq", "publish", "subscribe"],
)
def test_a_packet_before_connect_closes_the_connection_without_an_answer(
    broker: Broker, clock: FakeClock, first_packet: bytes
) -> None:
    client = peer(broker, clock)
    client.send_raw(first_packet)
    assert client.conn.closing
    assert client.conn.data_to_send() == b""
    assert broker.router.published == 0


def test_bytes_that_cannot_begin_a_connect_close_the_connection_at_once(broker: Broker, clock: FakeClock) -> None:
    # 'G' (0x47) reads as a packet type 4 header announcing 69 bytes: never wait for them.
    client = peer(broker, clock)
    client.send_raw(b"GET / HTTP/1.1\r\n")
    assert client.conn.closing
    assert client.conn.data_to_send() == b""


def test_a_connect_arriving_byte_by_byte_is_accepted(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock, level=4)
    for byte in encode(Connect("slow", protocol_level=4), 4):
        assert client.conn.data_to_send() == b""
        client.send_raw(bytes((byte,)))
    assert client.conn.data_to_send() == b"\x20\x02\x00\x00"


def test_a_second_connect_from_a_v5_client_is_answered_with_disconnect_0x82_then_closing(
    broker: Broker, clock: FakeClock
) -> None:
    client = peer(broker, clock)
    client.connect("twice")
    client.send(Connect("twice", protocol_level=5))
    packets = client.received()
    assert len(packets) == 1 and isinstance(packets[0], Disconnect)
    assert packets[0].reason_code == ReasonCode.PROTOCOL_ERROR
    assert client.conn.closing


def test_a_second_connect_from_a_v311_client_closes_without_a_disconnect(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock, level=4)
    client.connect("twice")
    client.send(Connect("twice", protocol_level=4))
    assert client.conn.data_to_send() == b""
    assert client.conn.closing


def test_a_second_connect_with_an_unsupported_level_is_a_protocol_error_not_a_refusal(
    broker: Broker, clock: FakeClock
) -> None:
    watcher = peer(broker, clock)
    watcher.connect("watcher")
    watcher.subscribe("wills/#")
    client = peer(broker, clock)
    client.connect("twice", will=Will("wills/twice", b"gone"))
    client.send_raw(connect_bytes(b"MQTT", 6))
    packets = client.received()
    assert [type(p) for p in packets] == [Disconnect]  # no CONNACK on a connected session
    assert packets[0].reason_code == ReasonCode.PROTOCOL_ERROR
    assert client.conn.closing
    assert [p.topic for p in watcher.received() if isinstance(p, Publish)] == ["wills/twice"]


def test_level_6_named_mqtt_gets_a_v3_connack_with_return_code_1(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock)
    client.send_raw(connect_bytes(b"MQTT", 6))
    assert client.conn.data_to_send() == b"\x20\x02\x00\x01"
    assert client.conn.closing
    assert len(broker.mqtt_sessions) == 0


def test_level_5_under_an_unknown_protocol_name_gets_a_v5_connack_0x84(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock, level=5)
    client.send_raw(connect_bytes(b"MQIsdp", 5, props=b"\x00"))
    assert client.received() == [ConnAck(False, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION)]
    assert client.conn.closing


def test_a_v5_connect_whose_will_topic_has_a_wildcard_is_refused_with_connack_0x90(
    broker: Broker, clock: FakeClock
) -> None:
    client = peer(broker, clock, level=5)
    client.send(Connect("w", protocol_level=5, will=Will("alarm/+", b"x")))
    packets = client.received()
    assert len(packets) == 1 and isinstance(packets[0], ConnAck)
    assert packets[0].reason_code == ReasonCode.TOPIC_NAME_INVALID
    assert client.conn.closing
    assert broker.mqtt_sessions.get("w") is None


def test_a_malformed_v5_connect_is_refused_with_connack_0x81(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock, level=5)
    client.send_raw(connect_bytes(b"MQTT", 5, flags=0x03, props=b"\x00"))  # reserved flag bit 0 set
    assert client.received() == [ConnAck(False, ReasonCode.MALFORMED_PACKET)]
    assert client.conn.closing


def test_a_v311_connect_whose_will_topic_has_a_wildcard_closes_without_a_connack(
    broker: Broker, clock: FakeClock
) -> None:
    client = peer(broker, clock, level=4)
    client.send(Connect("w", protocol_level=4, will=Will("alarm/#", b"x")))
    assert client.conn.data_to_send() == b""  # [MQTT-3.1.4-1] (3.1.1): no CONNACK
    assert client.conn.closing


# -- publish and acknowledge between two connections ------------------------------------------


def test_a_qos1_publish_is_acknowledged_and_delivered_to_a_subscriber_on_another_connection(
    broker: Broker, clock: FakeClock
) -> None:
    subscriber = peer(broker, clock, level=5)
    subscriber.connect("sub")
    subscriber.subscribe("sensors/+/temp", qos=1)
    publisher = peer(broker, clock, level=4)
    publisher.connect("pub")

    publisher.send(Publish("sensors/k1/temp", b"21.5", qos=1, packet_id=7))
    assert publisher.conn.data_to_send() == b"\x40\x02\x00\x07"  # PUBACK 7

    [delivered] = subscriber.received()
    assert isinstance(delivered, Publish)
    assert (delivered.topic, delivered.payload, delivered.qos) == ("sensors/k1/temp", b"21.5", 1)
    assert delivered.packet_id is not None
    session = subscriber.conn.session
    assert list(session.inflight) == [delivered.packet_id]
    subscriber.send(PubAck(delivered.packet_id))
    assert session.inflight == {}
    assert subscriber.received() == []


def test_a_qos2_publish_completes_both_four_way_handshakes(broker: Broker, clock: FakeClock) -> None:
    subscriber = peer(broker, clock, level=5)
    subscriber.connect("sub")
    subscriber.subscribe("q2", qos=2)
    publisher = peer(broker, clock, level=5)
    publisher.connect("pub")

    publisher.send(Publish("q2", b"once", qos=2, packet_id=3))
    assert publisher.received() == [PubRec(3)]
    [delivered] = subscriber.received()
    assert isinstance(delivered, Publish) and delivered.qos == 2 and delivered.payload == b"once"
    publisher.send(Publish("q2", b"once", qos=2, dup=True, packet_id=3))  # resent before PUBREL
    assert publisher.received() == [PubRec(3)]
    assert subscriber.received() == []  # never delivered twice
    publisher.send(PubRel(3))
    assert publisher.received() == [PubComp(3)]

    assert delivered.packet_id is not None
    subscriber.send(PubRec(delivered.packet_id))
    assert subscriber.received() == [PubRel(delivered.packet_id)]
    subscriber.send(PubComp(delivered.packet_id))
    assert subscriber.conn.session.inflight == {}


# -- keep alive and the CONNECT deadline ------------------------------------------------------


def test_the_deadline_is_one_and_a_half_keep_alives_after_the_last_receive(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock)
    client.connect("ka", keep_alive=10)
    assert client.conn.next_deadline() == START + 15
    clock.advance(4)
    client.send(PingReq())
    assert client.received() == [PingResp()]
    assert client.conn.next_deadline() == START + 4 + 15


def test_handle_timeout_before_the_keep_alive_deadline_does_nothing(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock)
    client.connect("ka", keep_alive=10)
    client.conn.handle_timeout(START + 14.999)
    clock.advance(14.999)
    client.conn.handle_timeout()
    assert not client.conn.closing
    assert client.received() == []
    assert client.output_signals == 0


def test_a_missed_keep_alive_sends_disconnect_0x8d_and_publishes_the_will(broker: Broker, clock: FakeClock) -> None:
    watcher = peer(broker, clock)
    watcher.connect("watcher")
    watcher.subscribe("wills/#")
    client = peer(broker, clock)
    client.connect("sleepy", keep_alive=10, will=Will("wills/sleepy", b"offline", qos=1))

    clock.advance(15)
    client.conn.handle_timeout()

    packets = client.received()
    assert len(packets) == 1 and isinstance(packets[0], Disconnect)
    assert packets[0].reason_code == ReasonCode.KEEP_ALIVE_TIMEOUT
    assert client.conn.closing and client.conn.next_deadline() is None
    assert watcher.output_signals >= 1  # the will reached the watcher outside its receive_data
    [will] = watcher.received()
    assert isinstance(will, Publish) and (will.topic, will.payload) == ("wills/sleepy", b"offline")


def test_a_missed_keep_alive_closes_a_v311_client_without_a_disconnect(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock, level=4)
    client.connect("sleepy", keep_alive=2)
    client.conn.handle_timeout(START + 3)
    assert client.conn.closing
    assert client.conn.data_to_send() == b""


@pytest.mark.parametrize("level", [4, 5])
def test_close_reason_says_why_the_server_ended_the_connection_and_stays_none_when_the_client_did(
    broker: Broker, clock: FakeClock, level: int
) -> None:
    polite = peer(broker, clock, level=level)
    polite.connect("polite")
    polite.send(Disconnect())
    assert polite.conn.closing and polite.conn.close_reason is None

    lost = peer(broker, clock, level=level)
    lost.connect("lost")
    lost.conn.connection_lost()
    assert lost.conn.close_reason is None

    broken = peer(broker, clock, level=level)
    broken.connect("broken")
    broken.send_raw(b"\x00\x00")  # packet type 0 is reserved
    assert broken.conn.closing and broken.conn.close_reason == ReasonCode.MALFORMED_PACKET

    sleepy = peer(broker, clock, level=level)
    sleepy.connect("sleepy", keep_alive=2)
    sleepy.conn.handle_timeout(START + 3)
    assert sleepy.conn.close_reason == ReasonCode.KEEP_ALIVE_TIMEOUT

    stopped = peer(broker, clock, level=level)
    stopped.connect("stopped")
    stopped.conn.disconnect(ReasonCode.SERVER_SHUTTING_DOWN)
    stopped.conn.disconnect(ReasonCode.ADMINISTRATIVE_ACTION)  # once closing, the first reason stays
    assert stopped.conn.close_reason == ReasonCode.SERVER_SHUTTING_DOWN


def test_keep_alive_zero_from_a_v311_client_sets_no_deadline(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock, level=4)
    client.connect("forever", keep_alive=0)
    assert client.conn.next_deadline() is None
    client.conn.handle_timeout(START + 10**6)
    assert not client.conn.closing


def test_a_keep_alive_above_the_server_maximum_is_lowered_in_connack_and_enforced(
    broker: Broker, clock: FakeClock
) -> None:
    client = peer(broker, clock, settings=MQTTSettings(max_keepalive=30))
    connack = client.connect("capped", keep_alive=600)
    assert connack.properties.server_keep_alive == 30
    assert client.conn.next_deadline() == START + 45


def test_a_connection_that_never_sends_connect_is_closed_at_the_connect_deadline(
    broker: Broker, clock: FakeClock
) -> None:
    client = peer(broker, clock, settings=MQTTSettings(connect_timeout=5.0))
    assert client.conn.next_deadline() == START + 5
    client.conn.handle_timeout(START + 4.9)
    assert not client.conn.closing
    clock.advance(2)
    client.send_raw(encode(Connect("late", protocol_level=5), 5)[:3])  # a trickle does not extend it
    assert client.conn.next_deadline() == START + 5
    client.conn.handle_timeout(START + 5)
    assert client.conn.closing
    assert client.conn.data_to_send() == b""
    assert client.output_signals == 1  # the owner is told to close the transport


# -- output outside receive_data, and flow control --------------------------------------------


def test_on_output_fires_once_output_caused_by_another_connection_waits_never_inside_receive_data(
    broker: Broker, clock: FakeClock
) -> None:
    subscriber = peer(broker, clock)
    subscriber.connect("sub")
    subscriber.subscribe("news", qos=0)
    publisher = peer(broker, clock)
    publisher.connect("pub")
    publisher.subscribe("news", qos=0)  # the publisher hears its own message too
    assert (subscriber.output_signals, publisher.output_signals) == (0, 0)

    publisher.send(Publish("news", b"one"))
    assert subscriber.output_signals == 1
    assert publisher.output_signals == 0  # its copy was produced inside its own receive_data
    assert [p.payload for p in publisher.received()] == [b"one"]
    publisher.send(Publish("news", b"two"))
    assert subscriber.output_signals == 1  # its owner was told already: "one" is still waiting
    assert [p.payload for p in subscriber.received()] == [b"one", b"two"]
    publisher.send(Publish("news", b"three"))
    assert subscriber.output_signals == 2  # collected since: told again
    assert [p.payload for p in subscriber.received()] == [b"three"]

    subscriber.send(PingReq())  # its own answer is collected by the owner after receive_data
    assert subscriber.output_signals == 2
    assert subscriber.received() == [PingResp()]


def test_an_unwritable_connection_holds_qos1_and_qos0_and_releases_them_in_order(
    broker: Broker, clock: FakeClock
) -> None:
    subscriber = peer(broker, clock, level=4)
    subscriber.connect("slow")
    subscriber.subscribe("feed", qos=1)
    publisher = peer(broker, clock, level=4)
    publisher.connect("fast")
    session = subscriber.conn.session

    subscriber.conn.set_writable(False)
    publisher.send(Publish("feed", b"m1", qos=1, packet_id=1))
    publisher.send(Publish("feed", b"held", qos=0))
    publisher.send(Publish("feed", b"m2", qos=1, packet_id=2))
    assert subscriber.conn.data_to_send() == b""
    assert subscriber.output_signals == 0
    assert [d.message.payload for _, d in session.queue] == [b"m1", b"held", b"m2"]
    assert session.counters.slow_consumer_qos0 == 0

    subscriber.conn.set_writable(True)
    released = subscriber.received()
    assert [(p.payload, p.qos) for p in released] == [(b"m1", 1), (b"held", 0), (b"m2", 1)]
    assert subscriber.output_signals >= 1
    assert not session.queue and len(session.inflight) == 2


# -- remote errors are answered, never raised ---------------------------------------------------


class ChallengeOnce:
    """An enhanced-auth method that asks one question and accepts any answer."""

    def start(self, data: bytes | None) -> AuthStep:
        return AuthStep("continue", b"challenge")

    def step(self, data: bytes | None) -> AuthStep:
        return AuthStep("success", username="u")


def test_a_bad_packet_during_enhanced_auth_is_refused_with_a_connack_code_connack_can_carry(
    broker: Broker, clock: FakeClock
) -> None:
    client = peer(broker, clock, settings=MQTTSettings(auth_methods={"X-TEST": ChallengeOnce}))
    client.send(Connect("a", protocol_level=5, properties=Properties(authentication_method="X-TEST")))
    [challenge] = client.received()
    assert isinstance(challenge, Auth) and challenge.reason_code == ReasonCode.CONTINUE_AUTHENTICATION
    # PUBLISH "a" with Topic Alias 0: Topic Alias invalid (0x94), a code CONNACK cannot carry.
    client.send_raw(b"\x30\x07\x00\x01a\x03\x23\x00\x00")
    assert client.received() == [ConnAck(False, ReasonCode.PROTOCOL_ERROR)]
    assert client.conn.closing


def test_a_huge_reason_string_is_cut_so_the_disconnect_can_still_be_encoded(broker: Broker, clock: FakeClock) -> None:
    client = peer(broker, clock)
    client.connect("big")
    topic = ("+" + "\x01" * 20000).encode()  # its repr in the error detail is over 80 kB
    body = len(topic).to_bytes(2, "big") + topic + b"\x00"
    client.send_raw(b"\x30" + encode_varint(len(body)) + body)
    [disconnect] = client.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == ReasonCode.TOPIC_NAME_INVALID
    assert disconnect.properties.reason_string
    assert client.conn.closing


def test_the_disconnect_leaves_out_a_reason_string_that_would_exceed_the_clients_maximum_packet_size(
    broker: Broker, clock: FakeClock
) -> None:
    client = peer(broker, clock)
    client.connect("tiny", properties=Properties(maximum_packet_size=16))
    client.send(Publish("a/+/wildcard/in/a/topic/name/is/not/allowed", b""))
    data = client.conn.data_to_send()
    assert len(data) <= 16
    client._decoder.feed(data)
    assert client._decoder.next_packet() == Disconnect(ReasonCode.TOPIC_NAME_INVALID)


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


TEMPLATES = [
    encode(Publish("a/b", b"x", qos=1, packet_id=1), 5),
    encode(Publish("a/b", b"x", qos=2, packet_id=9, properties=Properties(topic_alias=1, content_type="t")), 5),
    encode(Subscribe(2, (SubscriptionRequest("a/+", 1),)), 5),
    encode(PubRel(3), 5),
    encode(PingReq(), 5),
    encode(Disconnect(0, Properties(session_expiry_interval=5)), 5),
    encode(Auth(ReasonCode.RE_AUTHENTICATE, Properties(authentication_method="X")), 5),
]


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, or a valid packet with a few bytes overwritten."""
    if draw(st.booleans()):
        return draw(st.binary(min_size=1, max_size=80))
    packet = bytearray(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(1, 4))):
        packet[draw(st.integers(0, len(packet) - 1))] = draw(st.integers(0, 255))
    return bytes(packet)


@settings(max_examples=300, deadline=None)
@given(level=st.sampled_from([4, 5]), chunks=st.lists(hostile_bytes(), min_size=1, max_size=4))
def test_hostile_bytes_after_connect_are_answered_or_closed_never_raised(level: int, chunks: list[bytes]) -> None:
    clock = FakeClock()
    broker = Broker(MemoryStore(), clock=clock)  # fresh per example: no retained messages left over
    broker.start()
    errors = ErrorRecords()
    logger = logging.getLogger("rosettamq")
    logger.addHandler(errors)
    try:
        watcher = peer(broker, clock)
        watcher.connect("watcher")
        watcher.subscribe("#", qos=1)
        client = peer(broker, clock, level=level, settings=MQTTSettings(max_packet_size=4096))
        client.connect("fuzz", will=Will("wills/fuzz", b"x"))
        for chunk in chunks:
            client.send_raw(chunk)  # must never raise
        out = client.received()  # and every byte written is a whole, valid packet
        if client.conn.closing and out and isinstance(out[-1], Disconnect):
            assert out[-1].reason_code >= 0x80 and level == 5
        client.conn.connection_lost()
        watcher.received()
        assert errors.records == []
    finally:
        logger.removeHandler(errors)


def test_a_partial_packet_does_not_count_as_keep_alive_traffic(broker: Broker, clock: FakeClock) -> None:
    peer = Peer(broker, clock, 4)
    peer.connect(keep_alive=10)
    clock.advance(9)
    peer.send_raw(b"\x30\x7f")  # the start of a PUBLISH that never completes
    clock.advance(6)  # 15 s since the last whole packet
    peer.conn.handle_timeout()
    assert peer.conn.closing


def test_a_whole_packet_moves_the_keep_alive_deadline(broker: Broker, clock: FakeClock) -> None:
    peer = Peer(broker, clock, 4)
    peer.connect(keep_alive=10)
    clock.advance(9)
    peer.send(PingReq())
    clock.advance(6)
    peer.conn.handle_timeout()
    assert not peer.conn.closing
    assert peer.conn.next_deadline() == START + 9 + 15


def test_a_subscription_identifier_in_a_client_publish_is_a_protocol_error(broker: Broker, clock: FakeClock) -> None:
    peer = Peer(broker, clock, 5)
    peer.connect()
    peer.send(Publish("a/b", b"x", properties=Properties(subscription_identifiers=(3,))))
    (disconnect,) = peer.received()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == ReasonCode.PROTOCOL_ERROR
    assert peer.conn.closing


def test_a_v311_keep_alive_above_the_server_maximum_is_refused_with_identifier_rejected(
    broker: Broker, clock: FakeClock
) -> None:
    peer = Peer(broker, clock, 4, MQTTSettings(max_keepalive=60))
    assert peer.connect(keep_alive=61).reason_code == ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    assert peer.conn.closing


class RefuseAll:
    def authenticate(self, credentials: Any) -> bool:
        return False


@pytest.mark.parametrize(
    ("username", "reason"),
    [(None, ReasonCode.NOT_AUTHORIZED), ("bob", ReasonCode.BAD_USER_NAME_OR_PASSWORD)],
)
def test_a_refused_login_says_not_authorized_without_credentials_and_bad_credentials_with_them(
    broker: Broker, clock: FakeClock, username: str | None, reason: ReasonCode
) -> None:
    peer = Peer(broker, clock, 5, MQTTSettings(authenticator=RefuseAll()))
    password = None if username is None else b"wrong"
    assert peer.connect(username=username, password=password).reason_code == reason
