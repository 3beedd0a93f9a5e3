"""A bridge to an existing RabbitMQ (or any AMQP 0-9-1 broker), with aio-pika.

Out: each queued message is published to `exchange` (declared as a durable topic exchange if
it does not exist; an existing one is used as it is) with the routing key of its topic ('/' ->
'.', as amq.topic does on our own listener) and the properties our own AMQP listener gives it
(adapters/amqp/mapping.py: content type, correlation id, reply-to, headers from user properties,
expiration, delivery mode 2 for QoS 1, x-retain). The channel is in confirm mode: a basic.ack
acknowledges the message in the queue, a basic.nack drops it as refused. Up to `inflight`
publishes await their confirms at once, in order.
In: `in_queue` (declared durable if missing: bind it yourself) is consumed with `prefetch`
unacknowledged messages at most; each is published locally as `in_prefix + topic of its routing
key`, with the same property mapping back, and acknowledged once the gateway's store holds what
that publish queued; one the gateway refuses (a routing key that is no topic) is rejected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from pamqp.commands import Basic

from core.broker import Broker
from core.message import Origin
from core.stores.base import Store
from adapters.amqp.mapping import amqp_from_message, message_from_amqp, routing_key_fits

from gateway.bridges.base import Bridge, UpstreamError
from gateway.bridges.queue import Entry
from gateway.bridges.settings import AMQPBridgeSettings

log = logging.getLogger("rosettamq.bridge")

CONNECT_TIMEOUT = 10.0


class _Demote(logging.Filter):
    """aiormq logs each failed connection and each broker-closed connection as an ERROR or a WARNING
    with a traceback; the bridge says the same in one line of its own, so these become DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if record.levelno >= logging.WARNING and ("creating transport" in text or "exited abnormally" in text):
            record.levelno, record.levelname, record.exc_info = logging.DEBUG, "DEBUG", None
            return logging.getLogger("aiormq.connection").isEnabledFor(logging.DEBUG)
        return True


logging.getLogger("aiormq.connection").addFilter(_Demote())


class AMQPBridge(Bridge):
    """`[[bridge.amqp]]`: see the module docstring."""

    kind = "amqp"
    settings: AMQPBridgeSettings

    def __init__(self, settings: AMQPBridgeSettings, broker: Broker, node: str, store: Store | None) -> None:
        super().__init__(settings, broker, node, store)
        self.connection: AbstractConnection | None = None
        self.channel: aiormq.abc.AbstractChannel | None = None  # confirm mode: our publishes
        self._publishes: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        settings = self.settings
        ssl_context = settings.tls.context() if settings.secure else None
        connection = self.connection = await aio_pika.connect(
            settings.url, timeout=CONNECT_TIMEOUT, ssl_context=ssl_context,
            client_properties={"connection_name": f"rosettamq bridge {self.name}"})
        connection.close_callbacks.add(self._closed)
        if settings.exchange:
            await self._ensure_exchange(connection, settings.exchange)
        channel = await connection.channel(publisher_confirms=True)
        channel.close_callbacks.add(self._closed)
        self.channel = await channel.get_underlay_channel()
        if settings.in_queue:
            await self._consume(connection, settings.in_queue)

    async def _ensure_exchange(self, connection: AbstractConnection, name: str) -> None:
        """Use the exchange as it exists upstream (any type), or declare a durable topic exchange."""
        probe = await connection.channel()
        try:
            await probe.get_exchange(name, ensure=True)  # passive: the broker closes the channel if missing
        except aiormq.exceptions.ChannelNotFoundEntity:
            declare = await connection.channel()
            await declare.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
            await declare.close()
            log.info("bridge %s: declared the topic exchange %s", self.name, name)
        else:
            await probe.close()

    async def _consume(self, connection: AbstractConnection, name: str) -> None:
        channel = await connection.channel()
        try:
            queue = await channel.get_queue(name, ensure=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            channel = await connection.channel()
            queue = await channel.declare_queue(name, durable=True)
            log.warning("bridge %s: declared the queue %s; bind it to what should come in", self.name, name)
        channel.close_callbacks.add(self._closed)
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        await queue.consume(self._on_message)

    def _closed(self, sender: Any, exc: BaseException | None = None) -> None:
        self.connection_lost(exc if isinstance(exc, BaseException) else None)

    async def disconnect(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        for task in list(self._publishes):
            task.cancel()
        if connection is not None and not connection.is_closed:
            connection.close_callbacks.discard(self._closed)
            await connection.close()

    # -- out ----------------------------------------------------------------------------------

    async def send(self, entry: Entry) -> None:
        if self.channel is None:
            raise UpstreamError("not connected")
        message = self.outgoing(entry)
        if not routing_key_fits(message.topic):
            self.refused(entry.seq, f"topic too long for a routing key: {message.topic[:64]}...")
            return
        routing_key, properties = amqp_from_message(message, message.qos, message.retain, now=time.time())
        # One task per publish awaits its confirm; they take the channel in creation order (FIFO).
        task = asyncio.create_task(self._publish(self.channel, entry.seq, routing_key, properties, message.payload))
        self._publishes.add(task)
        task.add_done_callback(self._publishes.discard)

    async def _publish(self, channel: aiormq.abc.AbstractChannel, seq: int, routing_key: str,
                       properties: Basic.Properties, body: bytes) -> None:
        try:
            await channel.basic_publish(body, exchange=self.settings.exchange, routing_key=routing_key,
                                        properties=properties)
        except aiormq.exceptions.DeliveryError as exc:
            self.refused(seq, f"the broker answered {type(exc.frame).__name__}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the channel or connection died: it is sent again
            self.connection_lost(exc)
        else:
            self.acked(seq)

    # -- in -----------------------------------------------------------------------------------

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        settings = self.settings
        routing_key = incoming.routing_key or ""
        message = message_from_amqp(routing_key, incoming.properties, incoming.body,
                                    origin=Origin("bridge", self.name), now=time.time())
        if message is None:
            self.refused_in += 1
            log.warning("bridge %s: routing key %r is no topic; rejected", self.name, routing_key)
            await incoming.reject(requeue=False)
            return
        if settings.in_prefix:
            message = message._replace(topic=settings.in_prefix + message.topic)
        done = asyncio.get_running_loop().create_future()
        result = self.bring_in(message, lambda: done.done() or done.set_result(None))
        await done
        try:
            if result.accepted:
                await incoming.ack()
            else:
                await incoming.reject(requeue=False)
        except (aiormq.exceptions.AMQPError, aio_pika.exceptions.AMQPException, ConnectionError) as exc:
            log.info("bridge %s: could not acknowledge an incoming message (it comes again): %s", self.name, exc)
