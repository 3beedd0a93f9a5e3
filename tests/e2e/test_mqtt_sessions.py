"""Sessions over the wire: persistence, offline queueing, redelivery, exactly-once, takeover, keep-alive.

A real gateway on loopback; raw `WireClient`s where the test needs to see or
withhold individual packets, paho where a real client library should work.
"""

from __future__ import annotations

import itertools
import queue
import socket
import time
from typing import Any, Callable

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import (
    ConnAck,
    Disconnect,
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
from tests.wire_client import WireClient

_ids = itertools.count(1)


# -- helpers (shared with test_mqtt_wills) --------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `predicate` in 10 ms steps until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def persistent(level: int, expiry: int = 300) -> dict[str, Any]:
    """CONNECT fields asking for a session that outlives the connection, at `level`."""
    if level == 5:
        return {"clean_start": False, "properties": Properties(session_expiry_interval=expiry)}
    return {"clean_start": False}


def connect(port: int, client_id: str, level: int = 5, **fields: Any) -> tuple[WireClient, ConnAck]:
    client = WireClient(port, level)
    connack = client.connect(client_id, **fields)
    assert isinstance(connack, ConnAck) and connack.reason_code == 0, connack
    return client, connack


def subscribe(client: WireClient, topic_filter: str, qos: int, packet_id: int = 1) -> None:
    client.send(Subscribe(packet_id, (SubscriptionRequest(topic_filter, qos),)))
    suback = client.recv()
    assert isinstance(suback, SubAck) and suback.reason_codes == (qos,), suback


def publish(port: int, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
    """Publish from a throw-away client and return once the gateway has routed it."""
    with WireClient(port, 5) as pub:
        pub.connect(f"pub-{next(_ids)}")
        pub.send(Publish(topic, payload, qos, retain, packet_id=None if qos == 0 else 1))
        if qos == 0:
            pub.send(PingReq())  # answered after the PUBLISH was processed
            assert isinstance(pub.recv(), PingResp)
        elif qos == 1:
            assert isinstance(pub.recv(), PubAck)
        else:
            assert isinstance(pub.recv(), PubRec)
            pub.send(PubRel(1))
            assert isinstance(pub.recv(), PubComp)
        pub.send(Disconnect())


def disconnect(client: WireClient) -> None:
    """A normal DISCONNECT, returning once the gateway has closed the connection."""
    client.send(Disconnect())
    assert client.closed_by_server()
    client.close()


def session_of(gateway: Any, client_id: str) -> Any:
    return gateway.call(lambda: gateway.broker.mqtt_sessions.get(client_id))


def is_offline(gateway: Any, client_id: str) -> bool:
    def check() -> bool:
        session = gateway.broker.mqtt_sessions.get(client_id)
        return session is not None and session.sink is None

    return gateway.call(check)


def next_is_pingresp(client: WireClient) -> bool:
    """True if nothing is waiting before our PINGRESP (nothing was resent or delivered)."""
    client.send(PingReq())
    return isinstance(client.recv(), PingResp)


# -- persistent sessions (WireClient) ------------------------------------------------------


@pytest.mark.parametrize("level", [4, 5])
def test_a_persistent_session_is_present_on_reconnect_and_keeps_its_subscriptions(gateway: Any, level: int) -> None:
    port = gateway.mqtt_port
    client, connack = connect(port, "keeper", level, **persistent(level))
    assert connack.session_present is False
    subscribe(client, "keep/+", 1)
    disconnect(client)
    client, connack = connect(port, "keeper", level, **persistent(level))
    assert connack.session_present is True
    publish(port, "keep/a", b"still subscribed", qos=1)
    packet = client.recv()
    assert isinstance(packet, Publish) and packet.payload == b"still subscribed" and packet.qos == 1
    client.close()


@pytest.mark.parametrize("level", [4, 5])
def test_clean_start_discards_the_session_and_its_subscriptions(gateway: Any, level: int) -> None:
    port = gateway.mqtt_port
    client, _ = connect(port, "cleaner", level, **persistent(level))
    subscribe(client, "old/topic", 1)
    disconnect(client)
    publish(port, "old/topic", b"queued while away", qos=1)
    fresh_fields = {"clean_start": True}
    if level == 5:
        fresh_fields["properties"] = Properties(session_expiry_interval=300)
    client, connack = connect(port, "cleaner", level, **fresh_fields)
    assert connack.session_present is False
    publish(port, "old/topic", b"after clean start", qos=1)
    assert next_is_pingresp(client)  # neither the queued message nor the new one came
    assert gateway.call(lambda: gateway.broker.router.subscription_count()) == 0
    client.close()


def test_v311_clean_session_leaves_no_session_behind(gateway: Any) -> None:
    port = gateway.mqtt_port
    client, _ = connect(port, "v3-clean", 4, clean_start=True)
    subscribe(client, "x/y", 1)
    disconnect(client)
    assert session_of(gateway, "v3-clean") is None
    client, connack = connect(port, "v3-clean", 4, clean_start=False)
    assert connack.session_present is False
    client.close()


def test_a_v5_session_with_expiry_zero_ends_at_disconnect(gateway: Any) -> None:
    port = gateway.mqtt_port
    client, connack = connect(port, "brief", 5, clean_start=False)
    assert connack.session_present is False
    subscribe(client, "brief/t", 1)
    disconnect(client)
    publish(port, "brief/t", b"nobody home", qos=1)
    client, connack = connect(port, "brief", 5, clean_start=False)
    assert connack.session_present is False
    publish(port, "brief/t", b"not subscribed any more", qos=1)
    assert next_is_pingresp(client)
    client.close()


def test_a_v5_session_with_expiry_one_second_is_gone_after_it(gateway: Any) -> None:
    port = gateway.mqtt_port
    client, _ = connect(port, "short", 5, **persistent(5, expiry=1))
    subscribe(client, "short/t", 1)
    disconnect(client)
    gone_from = time.monotonic()
    assert session_of(gateway, "short") is not None  # kept for now
    assert wait_until(lambda: session_of(gateway, "short") is None, timeout=5)
    assert time.monotonic() - gone_from >= 0.9
    client, connack = connect(port, "short", 5, **persistent(5, expiry=1))
    assert connack.session_present is False
    client.close()


def test_a_v5_session_reconnected_within_its_expiry_is_present(gateway: Any) -> None:
    port = gateway.mqtt_port
    client, _ = connect(port, "quick", 5, **persistent(5, expiry=30))
    disconnect(client)
    client, connack = connect(port, "quick", 5, **persistent(5, expiry=30))
    assert connack.session_present is True
    client.close()


# -- offline queueing with paho ------------------------------------------------------------


class PahoClient:
    """A paho client whose events land in queues the test waits on."""

    def __init__(self, port: int, client_id: str, protocol: int) -> None:
        self.port = port
        self.protocol = protocol
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": protocol}
        if protocol == paho.MQTTv311:
            kwargs["clean_session"] = False
        self.client = paho.Client(CallbackAPIVersion.VERSION2, **kwargs)
        self.connacks: queue.Queue[bool] = queue.Queue()
        self.subacks: queue.Queue[Any] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes, int]] = queue.Queue()
        self.gone: queue.Queue[Any] = queue.Queue()
        self.client.on_connect = lambda c, u, flags, rc, props: self.connacks.put(flags.session_present)
        self.client.on_subscribe = lambda c, u, mid, codes, props: self.subacks.put(codes)
        self.client.on_message = lambda c, u, msg: self.messages.put((msg.topic, msg.payload, msg.qos))
        self.client.on_disconnect = lambda c, u, flags, rc, props: self.gone.put(rc)

    def start(self) -> bool:
        """Connect (without clean start), return session_present."""
        if self.protocol == paho.MQTTv5:
            props = paho.Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 300
            self.client.connect("127.0.0.1", self.port, keepalive=30, clean_start=False, properties=props)
        else:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        return self.connacks.get(timeout=5)

    def stop(self) -> None:
        self.client.disconnect()
        self.gone.get(timeout=5)
        self.client.loop_stop()


@pytest.mark.parametrize("protocol", [paho.MQTTv311, paho.MQTTv5], ids=["v311", "v5"])
def test_paho_gets_the_qos1_and_qos2_messages_sent_while_it_was_offline_in_order_and_no_qos0(
    gateway: Any, protocol: int
) -> None:
    # A QoS 1 subscription: paho reports QoS 2 messages only at PUBREL, so its callback
    # order equals the wire order only for QoS 1. The wire order of QoS 2 is checked below.
    port = gateway.mqtt_port
    client_id = f"paho-offline-{protocol}"
    sub = PahoClient(port, client_id, protocol)
    assert sub.start() is False
    sub.client.subscribe("off/#", qos=1)
    sub.subacks.get(timeout=5)
    sub.stop()
    assert wait_until(lambda: is_offline(gateway, client_id))
    publish(port, "off/1", b"one", qos=1)
    publish(port, "off/2", b"zero", qos=0)
    publish(port, "off/3", b"two", qos=2)
    publish(port, "off/4", b"three", qos=1)
    sub = PahoClient(port, client_id, protocol)
    assert sub.start() is True
    publish(port, "off/end", b"end", qos=1)
    received = [sub.messages.get(timeout=5) for _ in range(4)]
    assert received == [("off/1", b"one", 1), ("off/3", b"two", 1), ("off/4", b"three", 1), ("off/end", b"end", 1)]
    sub.stop()


@pytest.mark.parametrize("level", [4, 5])
def test_messages_queued_while_offline_go_out_on_reconnect_in_publish_order_with_their_qos(
    gateway: Any, level: int
) -> None:
    port = gateway.mqtt_port
    client_id = f"offline-wire-{level}"
    sub, _ = connect(port, client_id, level, **persistent(level))
    subscribe(sub, "offw/#", 2)
    disconnect(sub)
    sent = [(b"a", 2), (b"b", 1), (b"zero", 0), (b"c", 2), (b"d", 1), (b"e", 2)]
    for n, (payload, qos) in enumerate(sent):
        publish(port, f"offw/{n}", payload, qos=qos)
    assert session_of(gateway, client_id).queued == 5  # waiting in the store
    sub, connack = connect(port, client_id, level, **persistent(level))
    assert connack.session_present is True
    packets = [sub.recv() for _ in range(5)]
    assert [(p.payload, p.qos, p.dup) for p in packets] == [
        (b"a", 2, False), (b"b", 1, False), (b"c", 2, False), (b"d", 1, False), (b"e", 2, False)
    ]
    assert next_is_pingresp(sub)  # and the QoS 0 message was not kept
    sub.close()


# -- redelivery of unacknowledged messages -------------------------------------------------


@pytest.mark.parametrize("level", [4, 5])
def test_unacknowledged_messages_are_resent_with_dup_and_released_ones_get_pubrel(gateway: Any, level: int) -> None:
    port = gateway.mqtt_port
    sub, _ = connect(port, f"slow-{level}", level, **persistent(level))
    subscribe(sub, "re/#", 2)
    publish(port, "re/a", b"q1", qos=1)
    publish(port, "re/b", b"q2", qos=2)
    publish(port, "re/c", b"q2-received", qos=2)
    first = [sub.recv() for _ in range(3)]
    assert [(p.payload, p.qos, p.dup) for p in first] == [(b"q1", 1, False), (b"q2", 2, False), (b"q2-received", 2, False)]
    id_a, id_b, id_c = (p.packet_id for p in first)
    sub.send(PubRec(id_c))
    assert sub.recv() == PubRel(id_c)
    sub.close()  # no acknowledgements for the rest, no DISCONNECT

    sub, connack = connect(port, f"slow-{level}", level, **persistent(level))
    assert connack.session_present is True
    again = [sub.recv() for _ in range(3)]
    assert isinstance(again[0], Publish) and (again[0].packet_id, again[0].payload, again[0].dup) == (id_a, b"q1", True)
    assert isinstance(again[1], Publish) and (again[1].packet_id, again[1].payload, again[1].dup) == (id_b, b"q2", True)
    assert again[2] == PubRel(id_c)  # PUBREC was already sent: only the PUBREL is repeated
    sub.send(PubAck(id_a))
    sub.send(PubRec(id_b))
    assert sub.recv() == PubRel(id_b)
    sub.send(PubComp(id_b))
    sub.send(PubComp(id_c))
    disconnect(sub)

    sub, connack = connect(port, f"slow-{level}", level, **persistent(level))
    assert connack.session_present is True
    assert next_is_pingresp(sub)  # everything completed: nothing is resent
    assert session_of(gateway, f"slow-{level}").inflight == {}
    sub.close()


# -- inbound QoS 2: exactly once --------------------------------------------------------------


def test_a_resent_qos2_publish_is_delivered_once_and_pubrel_gets_pubcomp(gateway: Any) -> None:
    port = gateway.mqtt_port
    sub, _ = connect(port, "watcher", 5)
    subscribe(sub, "once/#", 0)
    pub, _ = connect(port, "sender", 5)
    pub.send(Publish("once/x", b"exactly once", 2, packet_id=7))
    assert pub.recv() == PubRec(7)
    pub.send(Publish("once/x", b"exactly once", 2, dup=True, packet_id=7))
    assert pub.recv() == PubRec(7)
    pub.send(PubRel(7))
    assert pub.recv() == PubComp(7)
    pub.send(Publish("once/end", b"marker", 1, packet_id=8))
    assert isinstance(pub.recv(), PubAck)
    assert [p.payload for p in (sub.recv(), sub.recv())] == [b"exactly once", b"marker"]
    # After PUBCOMP the id is free: the same id now carries a new message.
    pub.send(Publish("once/x", b"new message", 2, packet_id=7))
    assert pub.recv() == PubRec(7)
    assert sub.recv().payload == b"new message"
    pub.close()
    sub.close()


def test_a_qos2_publish_resent_after_reconnect_is_not_delivered_again(gateway: Any) -> None:
    port = gateway.mqtt_port
    sub, _ = connect(port, "watcher2", 5)
    subscribe(sub, "once2/#", 0)
    pub, _ = connect(port, "sender2", 5, **persistent(5))
    pub.send(Publish("once2/x", b"exactly once", 2, packet_id=9))
    assert pub.recv() == PubRec(9)
    pub.close()  # lost before PUBREL
    pub, connack = connect(port, "sender2", 5, **persistent(5))
    assert connack.session_present is True
    pub.send(Publish("once2/x", b"exactly once", 2, dup=True, packet_id=9))
    assert pub.recv() == PubRec(9)
    pub.send(PubRel(9))
    assert pub.recv() == PubComp(9)
    pub.send(Publish("once2/end", b"marker", 1, packet_id=10))
    assert isinstance(pub.recv(), PubAck)
    assert [p.payload for p in (sub.recv(), sub.recv())] == [b"exactly once", b"marker"]
    pub.close()
    sub.close()


# -- session takeover ---------------------------------------------------------------------------


def test_a_second_v5_connection_takes_over_with_disconnect_0x8e_and_keeps_the_session(gateway: Any) -> None:
    port = gateway.mqtt_port
    first, _ = connect(port, "twin", 5, **persistent(5))
    subscribe(first, "twin/t", 1)
    second, connack = connect(port, "twin", 5, **persistent(5))
    assert connack.session_present is True
    packet = first.recv()
    assert isinstance(packet, Disconnect) and packet.reason_code == ReasonCode.SESSION_TAKEN_OVER
    assert first.closed_by_server()
    publish(port, "twin/t", b"to the new one", qos=1)
    packet = second.recv()
    assert isinstance(packet, Publish) and packet.payload == b"to the new one"
    second.send(PubAck(packet.packet_id))
    assert next_is_pingresp(second)
    first.close()
    second.close()


def test_a_second_v311_connection_closes_the_first_and_keeps_the_session(gateway: Any) -> None:
    port = gateway.mqtt_port
    first, _ = connect(port, "twin3", 4, clean_start=False)
    subscribe(first, "twin3/t", 1)
    second, connack = connect(port, "twin3", 4, clean_start=False)
    assert connack.session_present is True
    with pytest.raises(ConnectionError):
        first.recv()  # closed, without a DISCONNECT (3.1.1 has none from the server)
    publish(port, "twin3/t", b"to the new one", qos=1)
    assert second.recv().payload == b"to the new one"
    first.close()
    second.close()


def test_a_takeover_with_clean_start_gets_a_fresh_session(gateway: Any) -> None:
    port = gateway.mqtt_port
    first, _ = connect(port, "twin-clean", 5, **persistent(5))
    subscribe(first, "twin-clean/t", 1)
    second, connack = connect(port, "twin-clean", 5, clean_start=True)
    assert connack.session_present is False
    assert first.recv().reason_code == ReasonCode.SESSION_TAKEN_OVER
    publish(port, "twin-clean/t", b"nobody", qos=1)
    assert next_is_pingresp(second)
    first.close()
    second.close()


# -- keep-alive ---------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [4, 5])
def test_a_silent_client_is_disconnected_after_one_and_a_half_keep_alives_and_its_will_published(
    gateway: Any, level: int
) -> None:
    port = gateway.mqtt_port
    watcher, _ = connect(port, f"ka-watch-{level}", 5)
    subscribe(watcher, "ka/will", 1)
    will = Will("ka/will", b"timed out", qos=1)
    silent, _ = connect(port, f"ka-silent-{level}", level, keep_alive=1, will=will)
    started = time.monotonic()
    silent.sock.settimeout(3)
    if level == 5:
        packet = silent.recv()
        assert isinstance(packet, Disconnect) and packet.reason_code == ReasonCode.KEEP_ALIVE_TIMEOUT
    assert silent.closed_by_server()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0, elapsed
    packet = watcher.recv()
    assert isinstance(packet, Publish) and packet.payload == b"timed out" and packet.qos == 1
    silent.close()
    watcher.close()


def test_a_client_that_pings_every_half_second_stays_connected_past_three_seconds(gateway: Any) -> None:
    port = gateway.mqtt_port
    client, _ = connect(port, "pinger", 5, keep_alive=1)
    started = time.monotonic()
    while time.monotonic() - started < 3.2:
        client.send(PingReq())
        assert isinstance(client.recv(), PingResp)
        client.sock.settimeout(0.5)  # the pause between pings: the server must stay silent and open
        with pytest.raises(socket.timeout):
            client.recv()
        client.sock.settimeout(5)
    assert session_of(gateway, "pinger").is_online
    client.close()


# -- restart ----------------------------------------------------------------------------------------
