"""The WebSocket listener over real loopback sockets: framing, handshake refusals, close codes,
pings, client address, shutdown and backpressure.

A real gateway runs with only MQTT/TCP and MQTT/WebSocket on OS-chosen ports;
clients are websockets' own client sending our codec's bytes in frames the
test chooses (`WSClient`), or its Sans-I/O `ClientProtocol` on a raw socket
where the test must control pongs.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, Iterator

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import (
    ConnAck,
    Connect,
    Disconnect,
    PingReq,
    PingResp,
    PubAck,
    Publish,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    Will,
)
from tests.adapters.ws.ws_client import HOST, TIMEOUT, WSClient
from tests.conftest import RunningGateway, make_config
from tests.wire_client import WireClient

StartGateway = Callable[..., RunningGateway]


@pytest.fixture
def start_gateway() -> Iterator[StartGateway]:
    """Start a gateway with [ws] on 127.0.0.1:0 plus any overrides: start_gateway(ws={...}, mqtt={...})."""
    running: list[RunningGateway] = []

    def start(**sections: dict[str, Any]) -> RunningGateway:
        sections["ws"] = {"enabled": True, "listen": f"{HOST}:0", **sections.get("ws", {})}
        gateway = RunningGateway(make_config(**sections))
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


@pytest.fixture
def ws_port(start_gateway: StartGateway) -> int:
    return start_gateway().gateway.ports["ws"]


def connected(port: int, client_id: str, level: int = 4, **options: Any) -> WSClient:
    client = WSClient(port, level=level, **options)
    client.send(Connect(client_id, protocol_level=level))
    connack = client.recv()
    assert isinstance(connack, ConnAck) and connack.reason_code == 0
    return client


def subscribe(client: WSClient, topic_filter: str, qos: int = 1) -> None:
    client.send(Subscribe(1, (SubscriptionRequest(topic_filter, qos),)))
    assert client.recv() == SubAck(1, (qos,))


def peers(gateway: RunningGateway) -> dict[str, tuple[str, str]]:
    """client id -> (listener, peer address) of every MQTT connection, read on the gateway's loop."""
    return gateway.call(lambda: {c.client_id: (c.listener, c.peer) for c in gateway.gateway.mqtt_connections.connections})


# -- framing: MQTT packets are a byte stream across frames ---------------------------------


def test_a_connect_split_across_three_messages_is_answered_with_one_connack(ws_port: int) -> None:
    with WSClient(ws_port) as client:
        data = client.encode(Connect("split", protocol_level=4))
        for part in (data[:1], data[1:3], data[3:]):
            client.send_bytes(part)
        assert client.recv() == ConnAck(False, 0)


def test_a_subscribe_fragmented_inside_one_message_is_answered_with_a_suback(ws_port: int) -> None:
    with connected(ws_port, "fragments") as client:
        data = client.encode(Subscribe(7, (SubscriptionRequest("frag/#", 1),)))
        client.send_fragments([data[:2], data[2:5], data[5:]])
        assert client.recv() == SubAck(7, (1,))


@pytest.mark.parametrize("cut", [1, -1, +2], ids=["after-first-byte", "before-last-connect-byte", "inside-subscribe"])
def test_a_packet_straddling_two_frames_next_to_another_packet_is_decoded(ws_port: int, cut: int) -> None:
    with WSClient(ws_port) as client:
        connect = client.encode(Connect("straddle", protocol_level=4))
        data = connect + client.encode(Subscribe(3, (SubscriptionRequest("s/#", 0),)))
        at = cut if cut == 1 else len(connect) + cut
        client.send_bytes(data[:at])
        client.send_bytes(data[at:])
        assert client.recv() == ConnAck(False, 0)
        assert client.recv() == SubAck(3, (0,))


def test_several_packets_in_one_frame_are_each_answered(ws_port: int) -> None:
    with WSClient(ws_port) as client:
        client.send(
            Connect("packed", protocol_level=4),
            Subscribe(1, (SubscriptionRequest("packed/#", 1),)),
            Publish("packed/a", b"one", qos=1, packet_id=2),
            PingReq(),
        )
        assert client.recv() == ConnAck(False, 0)
        assert client.recv() == SubAck(1, (1,))
        rest = [client.recv() for _ in range(3)]
        assert PubAck(2) in rest and PingResp() in rest
        [echo] = [p for p in rest if isinstance(p, Publish)]
        assert (echo.topic, echo.payload, echo.qos) == ("packed/a", b"one", 1)


# -- handshake refusals ------------------------------------------------------------------------


def refused_status(port: int, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        WSClient(port, **options)
    return refused.value.response.status_code


def test_another_path_gets_http_404(ws_port: int) -> None:
    assert refused_status(ws_port, path="/") == 404
    assert refused_status(ws_port, path="/mqtt/extra") == 404


def test_a_client_offering_no_subprotocol_is_refused_with_400(ws_port: int) -> None:
    assert refused_status(ws_port, subprotocols=()) == 400


def test_a_client_offering_an_unknown_subprotocol_is_refused_with_400(ws_port: int) -> None:
    assert refused_status(ws_port, subprotocols=("chat",)) == 400


# Found by the fuzzer (python -m fuzz): bytes after a refused upgrade were parsed as frames while
# websockets was still connecting; our answer then tripped an assertion in a transport callback.
OTHER_PATH_UPGRADE = (
    b"GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
)
NO_SUBPROTOCOL_THEN_A_FRAME = bytes.fromhex(
    "474554202f6d71747420485454502f312e310d0a486f73743a203132372e302e302e310d0a557067726164653a20776562736f636b65"
    "740d0a436f6e6e656374696f6e3a20557067726164650d0a5365632d576562536f636b65742d4b65793a206447686c49484e68625842"
    "735a5342756232356a5a513d3d0d0a5365632d576562536f636b65742d56657273696f6e3a2031330d0a5365632d576562536f636b67"
    "742d50726f746f636f6c3a206d7174740d0a0d0a82973bcf51ca2bda51ce769e059e3ecd51f63bcf59ac41e221a65aa63f8282dacf23"
    "e01acf82827a366d2fba36"
)


@pytest.mark.parametrize(("data", "status"), [(OTHER_PATH_UPGRADE * 18, 404), (NO_SUBPROTOCOL_THEN_A_FRAME, 400)],
                         ids=["request-repeated-after-404", "frame-after-400"])
def test_bytes_after_a_refused_upgrade_are_discarded_without_an_error(
    ws_port: int, data: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_connection((HOST, ws_port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    with connected(ws_port, "after-refusals"):
        pass


def test_an_mqtt_3_1_client_negotiates_mqttv3_1_and_connects(ws_port: int) -> None:
    with WSClient(ws_port, level=3, subprotocols=("mqttv3.1",)) as client:
        assert client.ws.subprotocol == "mqttv3.1"
        client.send(Connect("old-timer", protocol_name="MQIsdp", protocol_level=3))
        assert client.recv() == ConnAck(False, 0)


def test_the_origin_allow_list_refuses_an_unlisted_origin_with_403(start_gateway: StartGateway) -> None:
    port = start_gateway(ws={"allowed_origins": ["http://dash.example:8080"]}).gateway.ports["ws"]
    assert refused_status(port, origin="http://evil.example") == 403
    with connected(port, "listed", origin="http://dash.example:8080"):
        pass
    with connected(port, "no-origin"):  # not a browser
        pass


def test_the_websocket_path_comes_from_the_config(start_gateway: StartGateway) -> None:
    port = start_gateway(ws={"path": "/gateway/ws"}).gateway.ports["ws"]
    assert refused_status(port, path="/mqtt") == 404
    with connected(port, "custom-path", path="/gateway/ws"):
        pass


# -- client address ---------------------------------------------------------------------------


def test_x_forwarded_for_is_ignored_when_the_proxy_is_not_trusted(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    with connected(gateway.gateway.ports["ws"], "direct", headers={"X-Forwarded-For": "203.0.113.7"}) as client:
        local_port = client.ws.local_address[1]
        assert peers(gateway)["direct"] == ("ws", f"127.0.0.1:{local_port}")


def test_x_forwarded_for_names_the_client_when_the_proxy_is_trusted(start_gateway: StartGateway) -> None:
    gateway = start_gateway(ws={"trust_proxy": True})
    headers = {"X-Forwarded-For": "10.0.0.9, 203.0.113.7"}
    with connected(gateway.gateway.ports["ws"], "proxied", headers=headers):
        assert peers(gateway)["proxied"] == ("ws", "203.0.113.7")


# -- close codes -------------------------------------------------------------------------------------


def test_an_mqtt_disconnect_ends_with_websocket_close_1000(ws_port: int) -> None:
    client = connected(ws_port, "polite")
    client.send(Disconnect())
    assert client.close_frame().code == CloseCode.NORMAL_CLOSURE


def test_an_mqtt_protocol_error_ends_with_websocket_close_1002(ws_port: int) -> None:
    client = connected(ws_port, "broken")
    client.send_bytes(b"\x00\x00")  # packet type 0 is reserved
    assert client.close_frame().code == CloseCode.PROTOCOL_ERROR


def test_a_text_frame_ends_with_websocket_close_1003(ws_port: int) -> None:
    client = connected(ws_port, "texty")
    client.send_bytes("PINGREQ")
    closed = client.close_frame()
    assert closed.code == CloseCode.UNSUPPORTED_DATA
    assert "binary" in closed.reason


def test_a_frame_larger_than_the_mqtt_maximum_packet_size_ends_with_close_1009(start_gateway: StartGateway) -> None:
    port = start_gateway(mqtt={"max_packet_size": 1024}).gateway.ports["ws"]
    client = connected(port, "big")
    client.send_bytes(client.encode(Publish("big", b"x" * 1100)))
    assert client.close_frame().code == CloseCode.MESSAGE_TOO_BIG


def test_a_refused_connect_gets_its_connack_then_close_1000(ws_port: int) -> None:
    client = WSClient(ws_port, level=4)
    client.send(Connect("", protocol_level=4, clean_start=False))  # 3.1.1: an empty id needs a clean session
    connack = client.recv()
    assert isinstance(connack, ConnAck) and connack.reason_code == ReasonCode.CLIENT_IDENTIFIER_NOT_VALID
    assert client.close_frame().code == CloseCode.NORMAL_CLOSURE


# -- MQTT semantics follow the WebSocket's end -----------------------------------------------------


def test_closing_the_websocket_without_disconnect_publishes_the_will(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    with WireClient(gateway.mqtt_port, level=4) as watcher:
        watcher.connect("watcher")
        watcher.send(Subscribe(1, (SubscriptionRequest("wills/#", 1),)))
        assert watcher.recv() == SubAck(1, (1,))
        client = WSClient(gateway.gateway.ports["ws"])
        client.send(Connect("mortal", protocol_level=4, will=Will("wills/mortal", b"gone", qos=1)))
        assert client.recv() == ConnAck(False, 0)
        client.close()  # WebSocket close 1000, no MQTT DISCONNECT: an abnormal end for MQTT
        will = watcher.recv()
        assert isinstance(will, Publish) and (will.topic, will.payload) == ("wills/mortal", b"gone")


def test_a_disconnect_before_the_websocket_close_publishes_no_will(start_gateway: StartGateway) -> None:
    gateway = start_gateway()
    with WireClient(gateway.mqtt_port, level=4) as watcher:
        watcher.connect("watcher")
        watcher.send(Subscribe(1, (SubscriptionRequest("wills/#", 0),)))
        assert watcher.recv() == SubAck(1, (0,))
        client = WSClient(gateway.gateway.ports["ws"])
        client.send(Connect("tidy", protocol_level=4, will=Will("wills/tidy", b"gone")), Disconnect())
        assert client.recv() == ConnAck(False, 0)
        assert client.close_frame().code == CloseCode.NORMAL_CLOSURE
        watcher.send(Publish("wills/marker", b"after"))
        marker = watcher.recv()  # the first thing the watcher gets is its own marker: no will came
        assert isinstance(marker, Publish) and marker.topic == "wills/marker"


# -- pings --------------------------------------------------------------------------------------------


def test_a_client_ping_is_answered_with_a_pong(ws_port: int) -> None:
    with connected(ws_port, "pinger") as client:
        assert client.ws.ping(b"hello").wait(TIMEOUT)


class RawWebSocket:
    """websockets' Sans-I/O client on a blocking socket; `answer_pings` decides whether pongs go out."""

    def __init__(self, port: int, *, answer_pings: bool) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.protocol = ClientProtocol(parse_uri(f"ws://{HOST}:{port}/mqtt"), subprotocols=[Subprotocol("mqtt")])
        self.answer_pings = answer_pings
        self.protocol.send_request(self.protocol.connect())
        self._flush(force=True)
        [response] = self.events()
        assert isinstance(response, Response) and response.status_code == 101

    def _flush(self, force: bool = False) -> None:
        for data in self.protocol.data_to_send():
            if data and (force or self.answer_pings):
                self.sock.sendall(data)

    def events(self) -> list[Any]:
        """The next batch of events (the protocol's own answers are sent only if allowed)."""
        while True:
            data = self.sock.recv(65536)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self._flush()
            events = self.protocol.events_received()
            if events or not data:
                return events

    def close(self) -> None:
        self.sock.close()


def test_the_server_pings_and_closes_a_peer_that_stops_answering_with_1011(start_gateway: StartGateway) -> None:
    port = start_gateway(ws={"ping_interval": 1}).gateway.ports["ws"]
    raw = RawWebSocket(port, answer_pings=False)
    try:
        seen: list[Frame] = []
        while not any(f.opcode is Opcode.CLOSE for f in seen):
            batch = raw.events()
            assert batch, "the server closed the TCP connection without a close frame"
            seen += batch
        assert seen[0].opcode is Opcode.PING
        assert raw.protocol.close_rcvd is not None and raw.protocol.close_rcvd.code == CloseCode.INTERNAL_ERROR
    finally:
        raw.close()


def test_a_peer_that_answers_pings_stays_open(start_gateway: StartGateway) -> None:
    port = start_gateway(ws={"ping_interval": 1}).gateway.ports["ws"]
    raw = RawWebSocket(port, answer_pings=True)
    try:
        pings = 0
        while pings < 3:  # three intervals: two would have closed a silent peer
            for frame in raw.events():
                assert frame.opcode is Opcode.PING, f"unexpected {frame}"
                pings += 1
    finally:
        raw.close()


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)  # polling interval of a condition with a deadline


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server ended the connection (EOF, or a reset if it was never accepted)."""
    with sock:
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True


# -- shutdown ---------------------------------------------------------------------------------------


def test_shutdown_sends_disconnect_0x8b_then_close_1001_and_drops_unfinished_handshakes() -> None:
    gateway = RunningGateway(make_config(ws={"enabled": True, "listen": f"{HOST}:0"}))
    try:
        port = gateway.gateway.ports["ws"]
        client = connected(port, "v5", level=5)
        idle = socket.create_connection((HOST, port), timeout=TIMEOUT)  # never sends its upgrade request
        # Wait until the gateway has accepted it: CPython 3.11 leaks a connection whose accept
        # races the listener's close, which is not what this test is about.
        handshakes = gateway.gateway.ws_listeners[0].handshakes
        wait_until(lambda: gateway.call(lambda: len(handshakes.pending)) == 1)
    finally:
        gateway.stop()
    disconnect = client.recv()
    assert isinstance(disconnect, Disconnect) and disconnect.reason_code == ReasonCode.SERVER_SHUTTING_DOWN
    assert client.close_frame().code == CloseCode.GOING_AWAY
    assert closed_by_server(idle)  # by the shutdown, well before the 10 s handshake timeout


# -- backpressure -------------------------------------------------------------------------------------


def test_a_slow_websocket_reader_holds_qos1_in_the_session_queue_then_gets_everything_in_order(
    start_gateway: StartGateway,
) -> None:
    gateway = start_gateway(mqtt={"max_inflight": 65535, "max_queued_messages": 1000})
    count, payload = 300, b"p" * 32768  # ~10 MB: more than the socket buffers can hide
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, set before connecting
    sock.connect((HOST, gateway.gateway.ports["ws"]))
    slow = connected(gateway.gateway.ports["ws"], "slow", sock=sock, max_queue=1)  # reads at most one message ahead
    subscribe(slow, "bulk/#", qos=1)

    with WireClient(gateway.mqtt_port, level=4) as publisher:
        publisher.connect("publisher")
        for i in range(count):
            publisher.send(Publish(f"bulk/{i}", payload, qos=1, packet_id=i + 1))
            assert publisher.recv() == PubAck(i + 1)  # the publisher is never held up by the slow reader

    def state() -> tuple[bool, int, int]:
        [conn] = [c for c in gateway.gateway.mqtt_connections.connections if c.client_id == "slow"]
        return conn.can_send(), len(conn.session.queue), len(conn.session.inflight)

    writable, queued, inflight = gateway.call(state)
    assert not writable, "the WebSocket transport never reported a full buffer"
    assert queued > 0 and queued + inflight == count  # held in the session, not in a socket buffer

    for i in range(count):
        message = slow.recv(timeout=10)
        assert isinstance(message, Publish) and message.topic == f"bulk/{i}" and message.payload == payload
        slow.send(PubAck(message.packet_id))  # type: ignore[arg-type]
    wait_until(lambda: gateway.call(state) == (True, 0, 0))
    slow.close()
