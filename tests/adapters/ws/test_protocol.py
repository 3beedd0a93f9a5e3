"""Bytes-only tests of the WebSocket policy in adapters/ws/protocol.py: no sockets, no event loop.

Upgrade requests come from websockets' own Sans-I/O `ClientProtocol`, so they
are exactly what a real client sends; frames are serialized with `Frame`.
"""

from __future__ import annotations

import pytest
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Origin, Subprotocol
from websockets.uri import parse_uri

from adapters.mqtt.errors import ReasonCode
from adapters.peer import format_peer
from adapters.ws.protocol import (
    client_address, close_code, handshake_response, new_protocol, request_end,
)
from adapters.ws.settings import WSSettings


def upgrade_request(path: str = "/mqtt", subprotocols: tuple[str, ...] = ("mqtt",), origin: str | None = None) -> Request:
    client = ClientProtocol(
        parse_uri(f"ws://gateway.test{path}"),
        subprotocols=[Subprotocol(s) for s in subprotocols] or None,
        origin=Origin(origin) if origin else None,
    )
    return client.connect()


def answer(request: Request, settings: WSSettings = WSSettings()) -> tuple[ServerProtocol, int, str | None]:
    """Run the handshake; return the server protocol, the status and the negotiated subprotocol."""
    server = new_protocol(settings)
    server.receive_data(request.serialize())
    [received] = server.events_received()
    response = handshake_response(server, received, settings)
    server.send_response(response)
    return server, response.status_code, response.headers.get("Sec-WebSocket-Protocol")


# -- path and subprotocol ----------------------------------------------------------


def test_an_upgrade_on_the_mqtt_path_offering_mqtt_is_accepted_with_mqtt() -> None:
    server, status, subprotocol = answer(upgrade_request())
    assert (status, subprotocol) == (101, "mqtt")
    assert server.state is State.OPEN


def test_an_mqtt_3_1_client_offering_only_mqttv3_1_gets_mqttv3_1() -> None:
    assert answer(upgrade_request(subprotocols=("mqttv3.1",)))[1:] == (101, "mqttv3.1")


def test_a_client_offering_both_gets_mqtt() -> None:
    assert answer(upgrade_request(subprotocols=("mqttv3.1", "mqtt")))[1:] == (101, "mqtt")


def test_a_query_string_does_not_change_the_path() -> None:
    assert answer(upgrade_request("/mqtt?token=abc"))[1] == 101


def test_the_path_comes_from_the_settings() -> None:
    settings = WSSettings(path="/ws")
    assert answer(upgrade_request("/ws"), settings)[1] == 101
    assert answer(upgrade_request("/mqtt"), settings)[1] == 404


@pytest.mark.parametrize("path", ["/", "/mqtt/", "/mqttx", "/other"])
def test_any_other_path_is_answered_404_and_the_connection_ends(path: str) -> None:
    server, status, _ = answer(upgrade_request(path))
    assert status == 404
    assert server.close_expected()  # the server sends EOF after the response
    assert server.data_to_send()[-1] == b""


def test_a_client_offering_no_subprotocol_is_refused_with_400() -> None:
    server, status, _ = answer(upgrade_request(subprotocols=()))
    assert status == 400
    assert "missing subprotocol" in str(server.handshake_exc)


def test_a_client_offering_only_unknown_subprotocols_is_refused_with_400() -> None:
    server, status, _ = answer(upgrade_request(subprotocols=("chat", "mqttv5")))
    assert status == 400
    assert "invalid subprotocol" in str(server.handshake_exc)


# -- origin ---------------------------------------------------------------------------


def test_without_an_allow_list_any_origin_is_accepted() -> None:
    assert answer(upgrade_request(origin="https://evil.example"))[1] == 101


def test_with_an_allow_list_a_listed_origin_is_accepted_and_others_get_403() -> None:
    settings = WSSettings(allowed_origins=("https://App.Example.com",))
    assert answer(upgrade_request(origin="https://app.example.com"), settings)[1] == 101
    assert answer(upgrade_request(origin="https://evil.example"), settings)[1] == 403
    assert answer(upgrade_request(origin="http://app.example.com"), settings)[1] == 403


def test_with_an_allow_list_a_request_without_origin_is_accepted() -> None:
    settings = WSSettings(allowed_origins=("https://app.example.com",))
    assert answer(upgrade_request(origin=None), settings)[1] == 101


# -- frame size ------------------------------------------------------------------------


def open_server(max_frame_size: int) -> ServerProtocol:
    server, status, _ = answer(upgrade_request(), WSSettings(max_frame_size=max_frame_size))
    assert status == 101
    server.data_to_send()
    return server


def test_a_frame_larger_than_the_limit_closes_with_1009() -> None:
    server = open_server(max_frame_size=100)
    server.receive_data(Frame(Opcode.BINARY, b"x" * 101).serialize(mask=True))
    close_frame = server.data_to_send()[0]
    assert Close.parse(close_frame[2:4]).code == CloseCode.MESSAGE_TOO_BIG
    assert server.events_received() == []


def test_a_long_message_in_small_fragments_streams_through_frame_by_frame() -> None:
    server = open_server(max_frame_size=100)
    frames = [Frame(Opcode.BINARY, b"a" * 100, fin=False)]
    frames += [Frame(Opcode.CONT, b"b" * 100, fin=False) for _ in range(5)]
    frames.append(Frame(Opcode.CONT, b"c", fin=True))
    server.receive_data(b"".join(frame.serialize(mask=True) for frame in frames))
    events = server.events_received()
    assert [len(event.data) for event in events] == [100] * 6 + [1]
    assert server.state is State.OPEN


# -- client address ----------------------------------------------------------------------


def test_the_socket_peer_is_formatted_like_the_mqtt_listener_does() -> None:
    assert format_peer(("127.0.0.1", 5000)) == "127.0.0.1:5000"
    assert format_peer(("::1", 5000, 0, 0)) == "[::1]:5000"


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted() -> None:
    headers = Headers({"X-Forwarded-For": "203.0.113.7"})
    assert client_address(headers, "127.0.0.1:5000", trust_proxy=False) == "127.0.0.1:5000"
    assert client_address(headers, "127.0.0.1:5000", trust_proxy=True) == "203.0.113.7"


def test_a_trusted_proxy_chain_gives_the_last_hop_because_earlier_ones_come_from_the_client() -> None:
    headers = Headers([("X-Forwarded-For", "10.9.9.9, 198.51.100.1"), ("X-Forwarded-For", "203.0.113.7")])
    assert client_address(headers, "127.0.0.1:5000", trust_proxy=True) == "203.0.113.7"


@pytest.mark.parametrize(("value", "expected"), [
    ("203.0.113.7:4711", "203.0.113.7"),
    ("2001:db8::1", "2001:db8::1"),
    ("[2001:db8::1]:4711", "2001:db8::1"),
    (" 203.0.113.7 ", "203.0.113.7"),
])
def test_forwarded_addresses_are_parsed_with_or_without_a_port(value: str, expected: str) -> None:
    assert client_address(Headers({"X-Forwarded-For": value}), "p", trust_proxy=True) == expected


@pytest.mark.parametrize("value", ["unknown", "", "300.1.1.1", "_hidden"])
def test_a_forwarded_value_that_is_not_an_address_keeps_the_socket_peer(value: str) -> None:
    assert client_address(Headers({"X-Forwarded-For": value}), "127.0.0.1:5000", trust_proxy=True) == "127.0.0.1:5000"


def test_a_trusted_proxy_without_the_header_keeps_the_socket_peer() -> None:
    assert client_address(Headers(), "127.0.0.1:5000", trust_proxy=True) == "127.0.0.1:5000"


# -- close codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "code"), [
    (None, CloseCode.NORMAL_CLOSURE),
    (ReasonCode.KEEP_ALIVE_TIMEOUT, CloseCode.NORMAL_CLOSURE),
    (ReasonCode.SESSION_TAKEN_OVER, CloseCode.NORMAL_CLOSURE),
    (ReasonCode.NOT_AUTHORIZED, CloseCode.NORMAL_CLOSURE),
    (ReasonCode.SERVER_SHUTTING_DOWN, CloseCode.GOING_AWAY),
    (ReasonCode.MALFORMED_PACKET, CloseCode.PROTOCOL_ERROR),
    (ReasonCode.PROTOCOL_ERROR, CloseCode.PROTOCOL_ERROR),
    (ReasonCode.PACKET_TOO_LARGE, CloseCode.PROTOCOL_ERROR),
    (ReasonCode.TOPIC_ALIAS_INVALID, CloseCode.PROTOCOL_ERROR),
    (ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR, CloseCode.INTERNAL_ERROR),
])
def test_why_mqtt_ended_maps_to_one_websocket_close_code(reason: ReasonCode | None, code: CloseCode) -> None:
    assert close_code(reason)[0] == code


def test_a_protocol_error_close_names_the_mqtt_reason() -> None:
    assert close_code(ReasonCode.MALFORMED_PACKET) == (CloseCode.PROTOCOL_ERROR, "MQTT malformed packet")


@pytest.mark.parametrize(("tail", "data", "end"), [
    (b"", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x82\x80", 27),
    (b"", b"GET / HTTP/1.1\r\nHost: x\r\n", None),
    (b"x\r\n", b"\r\n\x82", 2),  # the blank line split between two reads
    (b"\r\n\r", b"\n", 1),
])
def test_the_upgrade_request_ends_after_its_first_blank_line(tail: bytes, data: bytes, end: int | None) -> None:
    assert request_end(tail, data) == end
