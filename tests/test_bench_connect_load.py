"""The connect + subscribe load generator of `bench` (bench/connect_load.py) really completes each
client's CONNECT/CONNACK and SUBSCRIBE/SUBACK, and fails loudly rather than count what it did not do."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from bench.connect_load import ConnectLoadError, connect_subscribe, handshakes
from tests.conftest import RunningGateway

TIMEOUT = 10.0


def test_every_client_connects_subscribes_and_leaves(gateway: RunningGateway) -> None:
    seconds = connect_subscribe("127.0.0.1", gateway.mqtt_port, handshakes(300), 50, TIMEOUT)
    assert seconds > 0
    tracker = gateway.gateway.mqtt_connections
    assert gateway.call(lambda: tracker.opened) == 300
    deadline = time.monotonic() + TIMEOUT
    while gateway.call(lambda: len(tracker.connections)) and time.monotonic() < deadline:
        time.sleep(0.01)  # polling the gateway's count of open connections, not a fixed wait
    assert gateway.call(lambda: len(tracker.connections)) == 0
    assert gateway.call(lambda: dict(tracker.closed)) == {("mqtt", "client"): 300}  # each left on its own


def test_a_refused_connection_is_an_error_not_a_client_counted() -> None:
    with socket.socket() as placeholder:  # a free port with nothing listening on it
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    with pytest.raises(ConnectLoadError):
        connect_subscribe("127.0.0.1", port, handshakes(3), 2, TIMEOUT)


def test_a_broker_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the TCP handshakes; nobody ever reads the CONNECT
        with pytest.raises(ConnectLoadError, match="unanswered"):
            connect_subscribe("127.0.0.1", silent.getsockname()[1], handshakes(2), 2, 0.3)


@pytest.mark.parametrize("answers, refused", [
    ([b"\x20\x02\x00\x05"], "CONNACK"),  # not authorized
    ([b"\x20\x02\x00\x00", b"\x90\x03\x00\x01\x80"], "SUBACK"),  # connected, then the subscription refused
])
def test_a_refusal_is_an_error(answers: list[bytes], refused: str) -> None:
    with socket.socket() as broker:
        broker.bind(("127.0.0.1", 0))
        broker.listen(8)
        broker.settimeout(TIMEOUT)

        def answer() -> None:
            conn, _ = broker.accept()
            with conn:
                for data in answers:
                    conn.recv(100)  # the CONNECT, then the SUBSCRIBE
                    conn.sendall(data)
                conn.recv(100)  # until the client closes

        thread = threading.Thread(target=answer)
        thread.start()
        try:
            with pytest.raises(ConnectLoadError, match=refused):
                connect_subscribe("127.0.0.1", broker.getsockname()[1], handshakes(1), 1, TIMEOUT)
        finally:
            thread.join(TIMEOUT)


def test_a_connection_reset_mid_handshake_is_an_error() -> None:
    with socket.socket() as broker:
        broker.bind(("127.0.0.1", 0))
        broker.listen(8)
        broker.settimeout(TIMEOUT)

        def reset() -> None:
            conn, _ = broker.accept()
            conn.recv(100)  # the CONNECT
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # linger 0: an RST, not a FIN

        thread = threading.Thread(target=reset)
        thread.start()
        try:
            with pytest.raises(ConnectLoadError, match="client 0"):
                connect_subscribe("127.0.0.1", broker.getsockname()[1], handshakes(1), 1, TIMEOUT)
        finally:
            thread.join(TIMEOUT)


def test_the_floor_server_answers_every_client_and_does_nothing_else() -> None:
    """bench/floor_server.py, the connect row's floor: a CONNACK and a SUBACK per client, whatever the
    reads packets arrive in, and no more (it is no broker)."""
    from bench.brokers import start_floor

    floor = start_floor()
    try:
        assert connect_subscribe("127.0.0.1", floor.port, handshakes(200), 50, TIMEOUT) > 0
        connect, subscribe = handshakes(1)[0]
        publish = b"\x30\x05\x00\x01t" + b"xy"  # a PUBLISH: no answer
        with socket.create_connection(("127.0.0.1", floor.port), timeout=TIMEOUT) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(connect[:3])  # a CONNECT in two writes, the rest behind its second half
            sock.sendall(connect[3:] + publish + subscribe)
            expected = b"\x20\x02\x00\x00" + b"\x90\x03" + subscribe[2:4] + b"\x01"
            received = b""
            while len(received) < len(expected):
                chunk = sock.recv(64)
                assert chunk, "the floor server closed the connection"
                received += chunk
            assert received == expected
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(64) == b""  # nothing more, and it closes when the client does
    finally:
        floor.stop()
