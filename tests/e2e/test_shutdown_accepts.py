"""Connections the event loop accepts after shutdown began are dropped, not served.

A listening socket's backlog can still hold a connection when the gateway starts to stop;
the loop may hand it to the listener after every open connection got its DISCONNECT. If it
were served, a client (a bridge of another gateway, say) would log in to a gateway that is
going away and, once the process is gone, hold a connection nobody reads. These tests
start the shutdown of the connections only (the listening sockets stay open) and connect.
"""

from __future__ import annotations

import socket

from adapters.mqtt.packets import Connect
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.wire_client import WireClient


def test_an_mqtt_connection_accepted_after_shutdown_began_is_closed_before_any_connack() -> None:
    gateway = RunningGateway(make_config())
    try:
        gateway.call(lambda: gateway.gateway.mqtt_connections.shutdown())
        with WireClient(gateway.mqtt_port, level=5) as late:
            late.send(Connect(client_id="late", protocol_level=5))
            assert late.closed_by_server()
            assert late.decoder.next_packet() is None  # no CONNACK: it never logged in
        assert gateway.call(lambda: len(gateway.gateway.mqtt_connections)) == 0
    finally:
        gateway.stop()


def test_an_amqp_connection_accepted_after_shutdown_began_is_closed_before_connection_start() -> None:
    gateway = RunningGateway(make_config(amqp={"enabled": True, "listen": f"{LOOPBACK}:0"}))
    try:
        amqp = gateway.gateway.amqp
        assert amqp is not None
        gateway.call(amqp.shutdown)
        late = socket.create_connection((LOOPBACK, gateway.gateway.ports["amqp"]), timeout=5)
        try:
            late.sendall(b"AMQP\x00\x00\x09\x01")
            received = b""
            try:
                while chunk := late.recv(4096):
                    received += chunk
            except ConnectionResetError:
                pass
            assert received == b""  # no connection.start: closed as soon as accepted
        finally:
            late.close()
        assert gateway.call(lambda: len(amqp)) == 0
    finally:
        gateway.stop()
