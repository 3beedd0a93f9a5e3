"""A normal client of each protocol, round-tripping once within a deadline (1 s by default).

- mqtt, ws: connect, subscribe, publish QoS 1, receive it back (our codec over a
  socket; websockets' client for MQTT over WebSocket on /mqtt, subprotocol mqtt).
- amqp: pika connects, declares a queue, publishes to it and gets the message.
- coap: POST /ps/... with retain=true, then GET reads the value back.
- lwm2m: Register (POST /rd?ep=...) answered 2.01 with a location (returned).
- http: GET /api/v1/health says ready (a stalled listener makes it 503).

Each raises `ProbeFailed` saying what went wrong; nothing sleeps.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import time
from typing import Callable

from adapters.mqtt.codec import MQTTDecoder, encode
from adapters.mqtt.packets import ConnAck, Connect, Packet, PubAck, Publish, SubAck, Subscribe, SubscriptionRequest
from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from fuzz.seeds.coap import datagram, register

HOST = "127.0.0.1"
_nonces = itertools.count(1)


class ProbeFailed(AssertionError):
    """A normal client did not get its round trip."""


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ProbeFailed("no round trip within the deadline")
    return left


def mqtt_round_trip(send: Callable[[bytes], None], receive: Callable[[float], bytes], deadline: float,
                    name: str) -> None:
    """CONNECT, SUBSCRIBE, PUBLISH QoS 1 to ourselves, and wait for the message to come back."""
    nonce = next(_nonces)
    topic, payload = f"fuzz-probe/{name}/{nonce}", f"probe {nonce}".encode()
    decoder = MQTTDecoder()
    decoder.protocol_level = 4
    send(encode(Connect(f"fuzz-probe-{name}", keep_alive=10), 4)
         + encode(Subscribe(1, (SubscriptionRequest(topic, 1),)), 4)
         + encode(Publish(topic, payload, qos=1, packet_id=2), 4))
    seen: list[Packet] = []
    while True:
        packet = decoder.next_packet()
        if packet is None:
            data = receive(_left(deadline))
            if not data:
                raise ProbeFailed(f"{name}: closed by the gateway after {seen}")
            decoder.feed(data)
            continue
        seen.append(packet)
        if isinstance(packet, Publish) and packet.payload == payload:
            return
        if isinstance(packet, ConnAck) and packet.reason_code != 0:
            raise ProbeFailed(f"{name}: CONNACK refused {packet!r}")
        if not isinstance(packet, (ConnAck, SubAck, PubAck, Publish)):
            raise ProbeFailed(f"{name}: unexpected {packet!r}")


def probe_mqtt(ports: dict[str, int], timeout: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((HOST, ports["mqtt"]), timeout=timeout) as sock:
            def receive(left: float) -> bytes:
                sock.settimeout(left)
                return sock.recv(65536)
            mqtt_round_trip(sock.sendall, receive, deadline, "mqtt")
    except OSError as exc:
        raise ProbeFailed(f"mqtt: {exc!r}") from None


def probe_ws(ports: dict[str, int], timeout: float = 1.0) -> None:
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    deadline = time.monotonic() + timeout
    try:
        with connect(f"ws://{HOST}:{ports['ws']}/mqtt", subprotocols=["mqtt"],  # type: ignore[list-item]
                     open_timeout=timeout, close_timeout=timeout, proxy=None, compression=None) as ws:
            def receive(left: float) -> bytes:
                data = ws.recv(timeout=left)
                return data if isinstance(data, bytes) else data.encode()
            mqtt_round_trip(ws.send, receive, deadline, "ws")
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise ProbeFailed(f"ws: {exc!r}") from None


def probe_amqp(ports: dict[str, int], timeout: float = 1.0) -> None:
    import pika
    import pika.exceptions

    deadline = time.monotonic() + timeout
    params = pika.ConnectionParameters(HOST, ports["amqp"], socket_timeout=timeout, stack_timeout=timeout,
                                       blocked_connection_timeout=timeout, connection_attempts=1, heartbeat=0)
    body = f"probe {next(_nonces)}".encode()
    try:
        connection = pika.BlockingConnection(params)
        try:
            channel = connection.channel()
            queue = channel.queue_declare("", exclusive=True).method.queue
            channel.basic_publish("", queue, body)
            while True:
                _left(deadline)
                method, _, got = channel.basic_get(queue, auto_ack=True)
                if method is not None:
                    if got != body:
                        raise ProbeFailed(f"amqp: got {got!r}, sent {body!r}")
                    return
        finally:
            if connection.is_open:
                connection.close()
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise ProbeFailed(f"amqp: {exc!r}") from None


def coap_ask(sock: socket.socket, port: int, data: bytes, deadline: float) -> Message:
    """Send one CON request and return its response (piggybacked or separate), skipping stray datagrams."""
    request = Message.decode(data)
    sock.sendto(data, (HOST, port))
    while True:
        sock.settimeout(_left(deadline))
        try:
            answer = Message.decode(sock.recvfrom(65536)[0])
        except socket.timeout:
            raise ProbeFailed(f"coap: no answer to {request.code} {request.opt.uri_path}") from None
        if answer.token == request.token and answer.code.is_response():
            if answer.mtype is Type.CON:  # a separate response wants its ACK
                ack = Message(code=Code.EMPTY, mtype=Type.ACK, mid=answer.mid)
                sock.sendto(ack.encode(), (HOST, port))
            return answer


def probe_coap(ports: dict[str, int], timeout: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    nonce = next(_nonces)
    value = f"probe {nonce}".encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        token = nonce.to_bytes(4, "big")
        post = datagram(Code.POST, "/ps/fuzz-probe/coap", query=("retain=true",), payload=value,
                        mid=nonce & 0xFFFF, token=token)
        answer = coap_ask(sock, ports["coap"], post, deadline)
        if answer.code != Code.CHANGED:
            raise ProbeFailed(f"coap: POST answered {answer.code} {answer.payload!r}")
        get = datagram(Code.GET, "/ps/fuzz-probe/coap", mid=(nonce + 1) & 0xFFFF, token=token + b"g")
        answer = coap_ask(sock, ports["coap"], get, deadline)
        if answer.code != Code.CONTENT or answer.payload != value:
            raise ProbeFailed(f"coap: GET answered {answer.code} {answer.payload!r}, expected {value!r}")


def probe_lwm2m(ports: dict[str, int], timeout: float = 1.0, endpoint: str = "fz-ep") -> str:
    """Register `endpoint`; its location path ("rd/...")."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        answer = coap_ask(sock, ports["coap"], register(endpoint, mid=next(_nonces) & 0xFFFF), deadline)
    if answer.code != Code.CREATED or not answer.opt.location_path:
        raise ProbeFailed(f"lwm2m: Register answered {answer.code} {answer.payload!r}")
    return "/".join(answer.opt.location_path)


def probe_http(ports: dict[str, int], timeout: float = 1.0) -> None:
    connection = http.client.HTTPConnection(HOST, ports["http"], timeout=timeout)
    try:
        connection.request("GET", "/api/v1/health")
        response = connection.getresponse()
        body = response.read()
    except OSError as exc:
        raise ProbeFailed(f"http: {exc!r}") from None
    finally:
        connection.close()
    if response.status != 200 or not json.loads(body).get("ready"):
        raise ProbeFailed(f"http: health answered {response.status} {body[:300]!r}")


PROBES: dict[str, Callable[[dict[str, int], float], object]] = {
    "mqtt": probe_mqtt, "ws": probe_ws, "amqp": probe_amqp, "coap": probe_coap, "lwm2m": probe_lwm2m,
    "http": probe_http,
}
