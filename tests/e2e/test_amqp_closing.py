"""The closing handshake over real sockets (issue 22; amqplib's case is in test_amqp_amqplib.py).

A client's connection.close: every frame before it is processed, close-ok is
sent, what follows is read and dropped, and the client closes the socket (no
reset, no TIME_WAIT on the server). Our own connection.close (an error, or
320 at shutdown): frames are dropped until close-ok, then the server closes.
"""

from __future__ import annotations

import socket
import threading

import pika
from pamqp import body as pamqp_body, commands as c, frame as pamqp_frame, header as pamqp_header

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import TIMEOUT, amqp_config, amqp_gateway, connect, unique
from tests.e2e.test_amqp_wire import RawClient

__all__ = ["amqp_gateway"]

CLOSE = c.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)


def publishes(queue: str, first: int, count: int) -> bytes:
    return b"".join(
        pamqp_frame.marshal(f, 1)
        for i in range(first, first + count)
        for f in (c.Basic.Publish(exchange="", routing_key=queue),
                  pamqp_header.ContentHeader(0, len(str(i)), c.Basic.Properties()), pamqp_body.ContentBody(str(i).encode())))


def drain(gateway: RunningGateway, queue: str) -> list[int]:
    with connect(gateway) as conn:
        ch = conn.channel()
        bodies = []
        while (got := ch.basic_get(queue, auto_ack=True))[0] is not None:
            bodies.append(int(got[2]))
        ch.queue_delete(queue)
    return bodies


def still_open(sock: socket.socket) -> bool:
    """True if the server has neither closed nor reset the socket (and sent nothing more) by now."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b"x"  # b"": closed; any byte: the server spoke after close-ok
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)
        sock.settimeout(TIMEOUT)


def test_pika_publishes_before_its_close_are_all_routed(amqp_gateway: RunningGateway) -> None:
    queue = unique("pika-close")
    conn = connect(amqp_gateway)
    ch = conn.channel()
    ch.queue_declare(queue)
    for i in range(5000):
        ch.basic_publish("", queue, str(i).encode())
    conn.close()  # pika writes the close behind the 5,000 publishes and waits for close-ok
    assert conn.is_closed
    assert drain(amqp_gateway, queue) == list(range(5000))


def test_after_close_ok_the_server_reads_on_and_lets_the_client_close_the_socket(
        amqp_gateway: RunningGateway) -> None:
    queue = unique("raw-close")
    client = RawClient(amqp_gateway)
    client.handshake()
    client.send(1, c.Queue.Declare(queue=queue))
    assert isinstance(client.method(), c.Queue.DeclareOk)
    # 600 publishes, the close, 400 publishes: in one stream, as a client's buffers flush them.
    client.sock.sendall(publishes(queue, 0, 600) + pamqp_frame.marshal(CLOSE, 0) + publishes(queue, 600, 400))
    assert isinstance(client.method(), c.Connection.CloseOk)
    assert still_open(client.sock)  # the server leaves the close to us
    for start in range(1000, 21_000, 1000):  # more than the socket buffers hold: read, or we would block
        client.sock.sendall(publishes(queue, start, 1000))
    client.sock.shutdown(socket.SHUT_WR)
    assert client.sock.recv(1) == b""  # its FIN after ours: no reset (a reset raises here)
    client.close()
    assert drain(amqp_gateway, queue) == list(range(600))


def test_after_an_error_close_the_server_drops_frames_until_close_ok() -> None:
    gateway = RunningGateway(amqp_config())
    try:
        queue = unique("err-close")
        client = RawClient(gateway)
        client.handshake()
        client.send(1, c.Queue.Declare(queue=queue))
        assert isinstance(client.method(), c.Queue.DeclareOk)
        client.send(1, c.Basic.Consume(queue=queue, consumer_tag="t"), c.Basic.Consume(queue=queue, consumer_tag="t"))
        assert isinstance(client.method(), c.Basic.ConsumeOk)
        close = client.method()
        assert isinstance(close, c.Connection.Close) and close.reply_code == 530
        client.sock.sendall(publishes(queue, 0, 10))  # dropped: the connection is closing
        assert still_open(client.sock)
        client.send(0, c.Connection.CloseOk())
        assert client.sock.recv(1) == b""  # the server closes on our close-ok
        client.close()
        assert drain(gateway, queue) == []
    finally:
        gateway.stop()


def test_shutdown_sends_320_and_closes_on_close_ok() -> None:
    gateway = RunningGateway(amqp_config())
    stopping: threading.Thread | None = None
    try:
        client = RawClient(gateway)
        client.handshake()
        pika_conn = connect(gateway)
        stopping = threading.Thread(target=gateway.stop)
        stopping.start()
        close = client.method()
        assert isinstance(close, c.Connection.Close) and close.reply_code == 320
        assert still_open(client.sock)  # waiting for our close-ok
        client.sock.sendall(publishes("anywhere", 0, 10))  # dropped unread
        assert still_open(client.sock)
        client.send(0, c.Connection.CloseOk())
        assert client.sock.recv(1) == b""
        client.close()
        # pika answers the 320 itself: it learns why, and the gateway stops without waiting it out.
        try:
            pika_conn.process_data_events(time_limit=TIMEOUT)
        except pika.exceptions.ConnectionClosedByBroker as exc:
            assert exc.reply_code == 320
        else:
            raise AssertionError("pika was not told 320")
        stopping.join(TIMEOUT)
        assert not stopping.is_alive()
    finally:
        if stopping is None:
            gateway.stop()
