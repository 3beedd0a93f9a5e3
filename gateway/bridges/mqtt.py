"""A bridge to an upstream MQTT broker, with paho-mqtt on the gateway's event loop.

paho-mqtt (the Eclipse client) does the protocol; this module only gives it the event loop
through paho's documented external-loop hooks (`loop_read` when the socket is readable,
`loop_write` when paho asks to write, `loop_misc` every second for keep-alive). paho's own
`connect()` blocks (TCP connect and TLS handshake), so it runs in a worker thread; the socket
is handed to the loop once it returns. A fresh client per connection: what was in flight is
sent again from our queue, never from paho's.

Out: each queued message is published upstream as `remote_prefix + topic` with its QoS (at most
`qos`), retain flag and MQTT 5 properties (content type, correlation data, response topic with
the prefix, user properties plus the via marker, message expiry, payload format); the PUBACK
(or PUBCOMP) acknowledges it in the queue, a PUBACK reason code >= 0x80 drops it as refused.
In: the ``in`` filters are subscribed upstream under the prefix (MQTT 5: no-local), and each
message is published locally with the prefix stripped; its PUBACK is sent (manual ack) once the
gateway's store holds what the local publish queued.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from core.broker import Broker
from core.filter_index import FilterIndex
from core.message import Message
from core.stores.base import Store

from gateway.bridges.base import Bridge, UpstreamError
from gateway.bridges.marks import EchoFilter
from gateway.bridges.queue import Entry
from gateway.bridges.settings import MQTTBridgeSettings

log = logging.getLogger("rosettamq.bridge")

CONNACK_TIMEOUT = 10.0  # seconds from the TCP connection to the CONNACK
SOCKET_TIMEOUT = 10.0  # seconds for the TCP connect and the TLS handshake (in the worker thread)


class MQTTBridge(Bridge):
    """`[[bridge.mqtt]]`: see the module docstring."""

    kind = "mqtt"
    settings: MQTTBridgeSettings

    def __init__(self, settings: MQTTBridgeSettings, broker: Broker, node: str, store: Store | None) -> None:
        super().__init__(settings, broker, node, store)
        self.client: paho.Client | None = None
        self._pending: dict[int, int] = {}  # paho message id -> queue seq
        self._connack: asyncio.Future[None] | None = None
        self._connecting: asyncio.Future[Any] | None = None
        self._attached = False  # the socket is watched by the event loop
        self._tick: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        overlap = settings.version == 3 and bool(settings.in_) and bool(settings.out)
        self.echo = EchoFilter() if overlap else None  # MQTT 3.1.1 has no no-local
        self._out = FilterIndex.of(settings.out)

    # -- connect / disconnect ---------------------------------------------------------------------

    async def connect(self) -> None:
        settings = self.settings
        loop = self._loop = asyncio.get_running_loop()
        client = self.client = self._new_client()
        self._connack = loop.create_future()
        properties = None
        if settings.version == 5:
            properties = Properties(PacketTypes.CONNECT)
            if not settings.clean_start and settings.session_expiry:
                properties.SessionExpiryInterval = settings.session_expiry
        parts = settings.parts
        port = parts.port or (8883 if settings.secure else 1883)
        call = functools.partial(client.connect, parts.hostname, port, settings.keepalive,
                                 **({"clean_start": settings.clean_start, "properties": properties}
                                    if settings.version == 5 else {}))
        self._connecting = loop.run_in_executor(None, call)
        await asyncio.shield(self._connecting)  # a stop while connecting waits for the thread in disconnect()
        self._connecting = None
        self._attach(client)
        await asyncio.wait_for(self._connack, CONNACK_TIMEOUT)
        if settings.in_:
            self._subscribe(client)

    def _new_client(self) -> paho.Client:
        settings = self.settings
        v5 = settings.version == 5
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                             clean_session=None if v5 else settings.clean_start,
                             protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
                             reconnect_on_failure=False, manual_ack=True)
        client.connect_timeout = SOCKET_TIMEOUT
        client.max_inflight_messages_set(settings.inflight)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.secure:
            client.tls_set_context(settings.tls.context())
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    def _attach(self, client: paho.Client) -> None:
        """The worker thread's connect returned: the event loop watches the socket from now on."""
        loop, sock = self._loop, client.socket()
        assert loop is not None
        if sock is None:
            raise UpstreamError("the upstream closed the connection during connect")
        self._attached = True
        loop.add_reader(sock, self._readable)
        if client.want_write():  # the CONNECT packet, queued by the thread
            loop.add_writer(sock, self._writable)
        self._tick = loop.call_later(1.0, self._misc)

    def _subscribe(self, client: paho.Client) -> None:
        settings = self.settings
        qos = settings.qos
        topics: list[tuple[str, Any]] = []
        for topic_filter in settings.in_:
            remote = settings.remote_prefix + topic_filter
            if settings.version == 5:
                topics.append((remote, SubscribeOptions(qos=qos, noLocal=True, retainAsPublished=True)))
            else:
                topics.append((remote, qos))
        client.subscribe(topics)

    async def disconnect(self) -> None:
        client, self.client = self.client, None
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        if self._connecting is not None:  # stopped while the worker thread connects: let it finish
            try:
                await self._connecting
            except Exception:  # noqa: BLE001 - it failed: nothing to close
                pass
            self._connecting = None
        self._pending.clear()
        if client is None:
            return
        sock = client.socket()
        if sock is not None and self._attached and client.is_connected():
            client.disconnect()
            client.loop_write()  # best effort: the DISCONNECT, on a non-blocking socket
        self._detach(client.socket() or sock)
        if sock is not None:
            sock.close()

    def _detach(self, sock: Any) -> None:
        if self._attached and sock is not None and self._loop is not None:
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)
        self._attached = False

    # -- the socket on the event loop -------------------------------------------------------------

    def _readable(self) -> None:
        client = self.client
        if client is None:
            return
        client.loop_read()
        sock = client.socket()
        while sock is not None and getattr(sock, "pending", lambda: 0)():  # TLS: bytes already decrypted
            client.loop_read()
            sock = client.socket()

    def _writable(self) -> None:
        if self.client is not None:
            self.client.loop_write()

    def _misc(self) -> None:
        client = self.client
        if client is not None and self._loop is not None:
            client.loop_misc()
            self._tick = self._loop.call_later(1.0, self._misc)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if client is self.client:
            self._detach(sock)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if client is self.client and self._attached and self._loop is not None:
            self._loop.add_writer(sock, self._writable)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if client is self.client and self._attached and self._loop is not None:
            self._loop.remove_writer(sock)

    # -- paho's callbacks (on the event loop) -----------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        waiter = self._connack
        if client is not self.client or waiter is None or waiter.done():
            return
        if reason.is_failure:
            waiter.set_exception(UpstreamError(f"the upstream refused the connection: {reason} "
                                               f"(CONNACK {reason.value:#04x})"))
        else:
            waiter.set_result(None)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       properties: Any) -> None:
        if client is not self.client:
            return
        from_server = getattr(flags, "is_disconnect_packet_from_server", False)
        error = UpstreamError(f"the upstream disconnected the bridge: {reason}" if from_server
                              else "the upstream closed the connection")
        waiter = self._connack
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.connection_lost(error)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Any) -> None:
        refused = [f"{f} ({r})" for f, r in zip(self.settings.in_, reasons) if r.is_failure]
        if refused:
            log.warning("bridge %s: the upstream refused the subscriptions %s", self.name, ", ".join(refused))

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any) -> None:
        if client is not self.client:
            return
        seq = self._pending.pop(mid, None)
        if seq is None:
            return
        if reason.is_failure:
            self.refused(seq, f"PUBACK {reason} ({reason.value:#04x})")
        else:
            self.acked(seq)

    def _on_message(self, client: paho.Client, userdata: Any, incoming: paho.MQTTMessage) -> None:
        settings = self.settings
        topic = incoming.topic
        qos, mid = incoming.qos, incoming.mid
        ack = (lambda: client is self.client and client.ack(mid, qos)) if qos else None
        if not topic.startswith(settings.remote_prefix):
            if ack is not None:
                ack()  # not ours to bring in (the upstream sent a topic outside the prefix)
            return
        topic = topic[len(settings.remote_prefix):]
        payload = bytes(incoming.payload)
        if self.echo is not None and self._out.matches(topic) \
                and self.echo.is_echo(topic, payload):
            if ack is not None:
                ack()
            return
        if not topic:
            if ack is not None:
                ack()
            return
        message = message_from_paho(topic, payload, qos, bool(incoming.retain), incoming.properties,
                                    settings.remote_prefix)
        self.bring_in(message, ack)

    # -- out ----------------------------------------------------------------------------------

    async def send(self, entry: Entry) -> None:
        client = self.client
        if client is None:
            raise UpstreamError("not connected")
        message = self.outgoing(entry)
        settings = self.settings
        properties = paho_properties(message, settings.remote_prefix) if settings.version == 5 else None
        info = client.publish(settings.remote_prefix + message.topic, message.payload, message.qos, message.retain,
                              properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise UpstreamError(f"publish failed: {paho.error_string(info.rc)}")
        self._pending[info.mid] = entry.seq
        if self.echo is not None:
            self.echo.sent(message.topic, message.payload)


def paho_properties(message: Message, prefix: str) -> Properties:
    """A core message's MQTT 5 properties as paho's PUBLISH properties."""
    properties = Properties(PacketTypes.PUBLISH)
    if message.content_type is not None:
        properties.ContentType = message.content_type
    if message.correlation_data is not None:
        properties.CorrelationData = message.correlation_data
    if message.response_topic is not None:
        properties.ResponseTopic = prefix + message.response_topic
    if message.user_properties:
        properties.UserProperty = list(message.user_properties)
    if message.expiry is not None:
        properties.MessageExpiryInterval = message.remaining_expiry()
    if message.payload_format_utf8:
        properties.PayloadFormatIndicator = 1
    return properties


def message_from_paho(topic: str, payload: bytes, qos: int, retain: bool, properties: Any, prefix: str) -> Message:
    """An upstream PUBLISH as a core message (MQTT 5 properties kept; the prefix taken off its
    response topic)."""
    if properties is None:
        return Message(topic, payload, qos, retain)  # type: ignore[arg-type]
    response_topic = getattr(properties, "ResponseTopic", None)
    if response_topic is not None and prefix and response_topic.startswith(prefix):
        response_topic = response_topic[len(prefix):] or None
    expiry = getattr(properties, "MessageExpiryInterval", None)
    return Message(
        topic, payload, qos, retain,  # type: ignore[arg-type]
        content_type=getattr(properties, "ContentType", None),
        correlation_data=getattr(properties, "CorrelationData", None),
        response_topic=response_topic,
        user_properties=tuple((str(k), str(v)) for k, v in getattr(properties, "UserProperty", ()) or ()),
        expiry=None if expiry is None else time.time() + expiry,
        payload_format_utf8=getattr(properties, "PayloadFormatIndicator", 0) == 1,
    )
