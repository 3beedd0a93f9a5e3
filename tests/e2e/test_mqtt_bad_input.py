"""Bad input against the real gateway over loopback sockets.

Every case opens a healthy client first, sends the bad input on a second
connection, and checks three things: the offending connection ends with the
right answer (MQTT 5: DISCONNECT with the reason code, or CONNACK when the
CONNECT itself is refused; MQTT 3.1.1: a plain close), the healthy client
still receives messages, and a new client can still connect (the listener
survives). No ERROR record (no traceback) may be logged by the gateway.
"""

from __future__ import annotations

import itertools
import logging
import socket
from typing import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.mqtt.codec import encode, encode_varint
from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import (
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PingReq,
    PubAck,
    Publish,
    PubRel,
    Subscribe,
    SubscriptionRequest,
    Unsubscribe,
    Will,
)
from adapters.mqtt.properties import Properties
from tests.conftest import RunningGateway, make_config
from tests.wire_client import WireClient

MAX_PACKET_SIZE = 1024
_ids = itertools.count(1)


class ErrorRecords(logging.Handler):
    """Collects ERROR and CRITICAL records (the gateway's and asyncio's own)."""

    LOGGERS = ("rosettamq", "asyncio")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self) -> str:
        return "\n".join(f"{r.name}: {r.getMessage()} {r.exc_info!r}" for r in self.records)


@pytest.fixture
def error_log() -> Iterator[ErrorRecords]:
    handler = ErrorRecords()
    for name in ErrorRecords.LOGGERS:
        logging.getLogger(name).addHandler(handler)
    try:
        yield handler
        assert handler.records == [], handler.describe()
    finally:
        for name in ErrorRecords.LOGGERS:
            logging.getLogger(name).removeHandler(handler)


@pytest.fixture(scope="module")
def gw() -> Iterator[RunningGateway]:
    running = RunningGateway(make_config(mqtt={"max_packet_size": MAX_PACKET_SIZE}))
    try:
        yield running
    finally:
        running.stop()


class Healthy:
    """A well-behaved v5 subscriber connected before the bad client."""

    def __init__(self, gw: RunningGateway) -> None:
        n = next(_ids)
        self.gw = gw
        self.topic = f"healthy/{n}"
        self.client = WireClient(gw.mqtt_port, 5)
        assert self.client.connect(f"healthy-{n}").reason_code == ReasonCode.SUCCESS
        self.client.send(Subscribe(1, (SubscriptionRequest(f"{self.topic}/#", 1),)))
        self.client.recv()  # SUBACK

    def next_publish(self) -> Publish:
        packet = self.client.recv()
        assert isinstance(packet, Publish), packet
        if packet.qos:
            assert packet.packet_id is not None
            self.client.send(PubAck(packet.packet_id))
        return packet

    def assert_still_served(self) -> None:
        """A brand-new client connects and publishes; the healthy one receives it."""
        payload = f"still-here-{next(_ids)}".encode()
        with WireClient(self.gw.mqtt_port, 4) as fresh:
            assert fresh.connect(f"fresh-{next(_ids)}") == ConnAck(False, ReasonCode.SUCCESS)
            fresh.send(Publish(f"{self.topic}/check", payload, qos=1, packet_id=1))
            assert fresh.recv() == PubAck(1)
        received = self.next_publish()
        assert (received.topic, received.payload) == (f"{self.topic}/check", payload)
        self.client.send(PingReq())
        assert type(self.client.recv()).__name__ == "PingResp"


@pytest.fixture
def healthy(gw: RunningGateway, error_log: ErrorRecords) -> Iterator[Healthy]:
    client = Healthy(gw)
    try:
        yield client
    finally:
        client.client.close()


def drained(client: WireClient) -> list[Packet]:
    """Read until the server closes; every packet it sent before closing."""
    assert client.closed_by_server()
    packets = []
    while (packet := client.decoder.next_packet()) is not None:
        packets.append(packet)
    assert client.decoder.buffered == 0, "the server wrote a partial packet"
    return packets


def publish_bytes(topic: bytes, level: int, first: int = 0x30, packet_id: bytes = b"", payload: bytes = b"x") -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + packet_id + (b"\x00" if level == 5 else b"") + payload
    return bytes((first,)) + encode_varint(len(body)) + body


def connect_bytes(name: bytes, level: int, client_id: bytes = b"x") -> bytes:
    body = len(name).to_bytes(2, "big") + name + bytes((level, 0x02, 0, 60))
    body += (b"\x00" if level == 5 else b"") + len(client_id).to_bytes(2, "big") + client_id
    return b"\x10" + encode_varint(len(body)) + body


# -- bad packets from a connected client -------------------------------------------------------

AFTER_CONNECT: dict[str, tuple[Callable[[int], bytes], ReasonCode]] = {
    "remaining length with 5 continuation bytes": (
        lambda level: b"\x30\xff\xff\xff\xff\x01", ReasonCode.MALFORMED_PACKET),
    "SUBSCRIBE with reserved flags 0": (
        lambda level: b"\x80" + encode(Subscribe(1, (SubscriptionRequest("a"),)), level)[1:],
        ReasonCode.MALFORMED_PACKET),
    "PINGREQ with reserved flags 1": (lambda level: b"\xc1\x00", ReasonCode.MALFORMED_PACKET),
    "topic that is not UTF-8": (lambda level: publish_bytes(b"a/\xff\xfe", level), ReasonCode.MALFORMED_PACKET),
    "topic containing U+0000": (lambda level: publish_bytes(b"a/\x00/b", level), ReasonCode.MALFORMED_PACKET),
    "wildcard in a PUBLISH topic": (lambda level: publish_bytes(b"a/+/c", level), ReasonCode.TOPIC_NAME_INVALID),
    "PUBLISH with QoS 3": (
        lambda level: publish_bytes(b"a/b", level, first=0x36, packet_id=b"\x00\x01"), ReasonCode.MALFORMED_PACKET),
    "second CONNECT": (lambda level: encode(Connect("again", protocol_level=level), level), ReasonCode.PROTOCOL_ERROR),
    "packet over the server's maximum size": (
        lambda level: publish_bytes(b"big", level, payload=b"x" * (2 * MAX_PACKET_SIZE)), ReasonCode.PACKET_TOO_LARGE),
}


@pytest.mark.parametrize("case", sorted(AFTER_CONNECT))
def test_a_bad_packet_gets_a_v5_client_a_disconnect_with_its_reason_code_and_spares_everyone_else(
    gw: RunningGateway, healthy: Healthy, case: str
) -> None:
    make, code = AFTER_CONNECT[case]
    with WireClient(gw.mqtt_port, 5) as bad:
        assert bad.connect(f"bad-{next(_ids)}").reason_code == ReasonCode.SUCCESS
        bad.send_raw(make(5))
        packets = drained(bad)
    assert len(packets) == 1 and isinstance(packets[0], Disconnect), packets
    assert packets[0].reason_code == code
    healthy.assert_still_served()


@pytest.mark.parametrize("case", sorted(AFTER_CONNECT))
def test_a_bad_packet_closes_a_v311_client_without_an_answer_and_spares_everyone_else(
    gw: RunningGateway, healthy: Healthy, case: str
) -> None:
    make, _ = AFTER_CONNECT[case]
    with WireClient(gw.mqtt_port, 4) as bad:
        assert bad.connect(f"bad-{next(_ids)}") == ConnAck(False, ReasonCode.SUCCESS)
        bad.send_raw(make(4))
        assert drained(bad) == []
    healthy.assert_still_served()


def test_a_bad_packet_publishes_the_offenders_will(gw: RunningGateway, healthy: Healthy) -> None:
    with WireClient(gw.mqtt_port, 5) as bad:
        bad.connect(f"bad-{next(_ids)}", will=Will(f"{healthy.topic}/will", b"it broke"))
        bad.send_raw(publish_bytes(b"a/#", 5))
        assert [p.reason_code for p in drained(bad)] == [ReasonCode.TOPIC_NAME_INVALID]
    will = healthy.next_publish()
    assert (will.topic, will.payload) == (f"{healthy.topic}/will", b"it broke")
    healthy.assert_still_served()


def test_a_truncated_packet_followed_by_a_close_ends_the_connection_abnormally(
    gw: RunningGateway, healthy: Healthy
) -> None:
    whole = encode(Publish(f"{healthy.topic}/never", b"payload", qos=1, packet_id=1), 5)
    bad = WireClient(gw.mqtt_port, 5)
    bad.connect(f"bad-{next(_ids)}", will=Will(f"{healthy.topic}/will", b"cut off"))
    bad.send_raw(whole[: len(whole) // 2])
    bad.close()
    will = healthy.next_publish()  # the half PUBLISH was never delivered, the will was
    assert (will.topic, will.payload) == (f"{healthy.topic}/will", b"cut off")
    healthy.assert_still_served()


# -- bad input instead of a CONNECT ------------------------------------------------------------

BEFORE_CONNECT = {
    "PINGREQ before CONNECT": encode(PingReq(), 4),
    "PUBLISH before CONNECT": publish_bytes(b"a/b", 4),
    "an HTTP request": b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "a TLS client hello": bytes.fromhex("160301020001") + b"\x00" * 16,
    "CONNECT type byte then garbage": b"\x10\x0e\xde\xad\xbe\xef" + b"\x00" * 10,
    "reserved packet type 0": b"\x00\x00",
}


@pytest.mark.parametrize("case", sorted(BEFORE_CONNECT))
def test_anything_but_a_connect_first_is_closed_without_an_answer(
    gw: RunningGateway, healthy: Healthy, case: str
) -> None:
    with WireClient(gw.mqtt_port, 4) as bad:
        bad.send_raw(BEFORE_CONNECT[case])
        assert drained(bad) == []
    healthy.assert_still_served()


def test_a_v5_connect_with_a_wildcard_will_topic_is_refused_with_connack_0x90(
    gw: RunningGateway, healthy: Healthy
) -> None:
    with WireClient(gw.mqtt_port, 5) as bad:
        bad.send(Connect(f"bad-{next(_ids)}", protocol_level=5, will=Will(f"{healthy.topic}/+", b"x")))
        packets = drained(bad)
    assert len(packets) == 1 and isinstance(packets[0], ConnAck)
    assert packets[0].reason_code == ReasonCode.TOPIC_NAME_INVALID
    healthy.assert_still_served()


def test_a_v311_connect_with_a_wildcard_will_topic_is_closed_without_a_connack(
    gw: RunningGateway, healthy: Healthy
) -> None:
    with WireClient(gw.mqtt_port, 4) as bad:
        bad.send(Connect(f"bad-{next(_ids)}", protocol_level=4, will=Will(f"{healthy.topic}/#", b"x")))
        assert drained(bad) == []
    healthy.assert_still_served()


@pytest.mark.parametrize(
    ("name", "level", "answer"),
    [
        (b"MQTX", 4, b"\x20\x02\x00\x01"),  # v3 CONNACK, return code 1
        (b"MQTT", 6, b"\x20\x02\x00\x01"),
        (b"MQIsdp", 4, b"\x20\x02\x00\x01"),
        (b"MQTX", 5, b"\x20\x03\x00\x84\x00"),  # v5 CONNACK 0x84 for a client speaking level 5
    ],
    ids=["unknown name", "unknown level", "3.1 name with level 4", "unknown name at level 5"],
)
def test_an_unknown_protocol_is_refused_as_unsupported_and_closed(
    gw: RunningGateway, healthy: Healthy, name: bytes, level: int, answer: bytes
) -> None:
    with WireClient(gw.mqtt_port, 4) as bad:
        bad.send_raw(connect_bytes(name, level))
        received = b""
        while chunk := bad.sock.recv(64):
            received += chunk
    assert received == answer
    healthy.assert_still_served()


# -- fuzz ----------------------------------------------------------------------------------------

TEMPLATES = {
    level: [
        encode(Publish("fuzz/a", b"x", qos=1, packet_id=1), level),
        encode(Publish("fuzz/b", b"y" * 40, qos=2, packet_id=2), level),
        encode(Subscribe(3, (SubscriptionRequest("fuzz/+", 1),)), level),
        encode(Unsubscribe(4, ("fuzz/#",)), level),
        encode(PubRel(5), level),
        encode(PingReq(), level),
    ]
    for level in (4, 5)
}
TEMPLATES[5] += [
    encode(Publish("fuzz/c", b"z", properties=Properties(topic_alias=1, user_properties=(("k", "v"),))), 5),
    encode(Disconnect(0x04, Properties(reason_string="bye")), 5),
]


@st.composite
def hostile_chunks(draw: st.DrawFn, level: int) -> list[bytes]:
    chunks = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            chunks.append(draw(st.binary(min_size=1, max_size=96)))
        else:
            packet = bytearray(draw(st.sampled_from(TEMPLATES[level])))
            for _ in range(draw(st.integers(1, 3))):
                packet[draw(st.integers(0, len(packet) - 1))] = draw(st.integers(0, 255))
            chunks.append(bytes(packet))
    return chunks


@st.composite
def fuzz_cases(draw: st.DrawFn) -> tuple[int, list[bytes]]:
    level = draw(st.sampled_from([4, 5]))
    return level, draw(hostile_chunks(level))


def test_random_bytes_after_connect_never_disturb_the_gateway_or_a_healthy_client(error_log: ErrorRecords) -> None:
    running = RunningGateway(make_config(mqtt={"max_packet_size": MAX_PACKET_SIZE}))
    healthy = WireClient(running.mqtt_port, 5)
    try:
        assert healthy.connect("healthy").reason_code == ReasonCode.SUCCESS
        healthy.send(Subscribe(1, (SubscriptionRequest("healthy/#", 1),)))
        healthy.recv()
        counter = itertools.count(1)

        @settings(max_examples=100, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(fuzz_cases())
        def one_fuzz_connection(case: tuple[int, list[bytes]]) -> None:
            level, chunks = case
            n = next(counter)
            with WireClient(running.mqtt_port, level) as fuzz:
                assert fuzz.connect(f"fuzz-{n}").reason_code == ReasonCode.SUCCESS
                try:
                    for chunk in chunks:
                        fuzz.send_raw(chunk)
                    fuzz.sock.shutdown(socket.SHUT_WR)  # whatever state it is in, EOF ends it
                except OSError:
                    pass  # the gateway closed (and reset) it already
                packets = drained(fuzz)  # closed (no hang) and every byte a whole, valid packet
            disconnects = [p for p in packets if isinstance(p, Disconnect)]
            if disconnects:
                assert level == 5 and packets[-1] is disconnects[-1] and len(disconnects) == 1
                assert disconnects[0].reason_code >= 0x80
            # The healthy client, connected throughout, still gets its own messages.
            healthy.send(Publish("healthy/echo", str(n).encode(), qos=1, packet_id=n % 65535 + 1))
            seen: list[Packet] = []
            while not any(isinstance(p, Publish) and p.payload == str(n).encode() for p in seen):
                packet = healthy.recv()
                if isinstance(packet, Publish) and packet.packet_id is not None:
                    healthy.send(PubAck(packet.packet_id))
                seen.append(packet)

        one_fuzz_connection()
        assert next(counter) > 100
        # No connection or session leaked: only the healthy client is left.
        assert running.call(lambda: len(running.gateway.mqtt_connections)) == 1
        assert running.call(lambda: list(running.broker.mqtt_sessions.sessions)) == ["healthy"]
    finally:
        healthy.close()
        running.stop()
