"""One AMQP channel: content assembly, consumers, unacknowledged deliveries, flow, confirms, tx.

The channel is a `ConsumerSink` for the queues it consumes from: a queue asks
`consumer_ready` (prefetch, flow, transport writable) and calls `deliver`.
Method handlers live in methods.py; this module holds the state they share.
Errors are raised as `AMQPError`; the connection closes the channel or itself.
"""

from __future__ import annotations

import enum
import secrets
from collections import deque
from typing import TYPE_CHECKING, Any

from pamqp import base, commands

from adapters.amqp import errors
from adapters.amqp.frames import BodyFrame, HeaderFrame, encode_deliver, encode_get_ok
from adapters.amqp.queues import Consumer, Entry, Queue

if TYPE_CHECKING:
    from adapters.amqp.connection import AMQPConnection


class ChannelState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"  # we sent channel.close; waiting for close-ok
    CLOSED = "closed"


class Unacked:
    __slots__ = ("tag", "consumer", "queue", "entry")

    def __init__(self, tag: int, consumer: Consumer | None, queue: Queue, entry: Entry) -> None:
        self.tag = tag
        self.consumer = consumer
        self.queue = queue
        self.entry = entry


class Channel:
    """State of one open channel of a connection."""

    def __init__(self, conn: "AMQPConnection", number: int) -> None:
        self.conn = conn
        self.number = number
        self.state = ChannelState.OPEN
        self.consumers: dict[str, Consumer] = {}
        self.unacked: dict[int, Unacked] = {}
        self.next_tag = 1
        self.prefetch = 0  # for consumers started later (basic.qos global=false)
        self.global_prefetch = 0  # for the whole channel (global=true)
        self.flow_active = True
        self.confirm = False
        self.publish_seq = 0
        self.confirmed_to = 0  # highest publish seq acknowledged on the wire
        self.confirm_asked = 0  # highest publish seq acknowledged or waiting for the store
        self.durable_seq = 0  # highest publish seq of a persistent message (its ack waits for the store)
        self.syncing = 0  # acks waiting for the store's `sync`
        self.rejected: deque[int] = deque()  # publish seqs a queue refused (x-overflow reject-publish): nacked
        self.tx = False
        self.tx_actions: list[tuple[Any, ...]] = []
        self.last_queue = ""
        self.reply_key: str | None = None  # the amq.rabbitmq.reply-to consumer's key (reply_to.py)
        self._publish: commands.Basic.Publish | None = None
        self._properties: commands.Basic.Properties | None = None
        self._header: bytes | None = None
        self._body_size = 0
        self._body: list[bytes] = []
        self._received = 0

    # -- frames from the connection -------------------------------------------------------

    @property
    def in_content(self) -> bool:
        return self._publish is not None

    def start_content(self, method: commands.Basic.Publish) -> None:
        self._publish = method
        self._properties = None

    def content_header(self, frame: HeaderFrame) -> None:
        if self._publish is None or self._properties is not None:
            raise errors.unexpected_frame(f"content header on channel {self.number} without basic.publish")
        if frame.body_size > self.conn.settings.max_message_size:
            raise errors.precondition_failed(
                f"message size {frame.body_size} is larger than configured max size "
                f"{self.conn.settings.max_message_size}")
        self._properties = frame.properties
        self._header = frame.raw or None
        self._body_size = frame.body_size
        self._body, self._received = [], 0
        if frame.body_size == 0:
            self._content_complete()

    def content_body(self, frame: BodyFrame) -> None:
        if self._properties is None:
            raise errors.unexpected_frame(f"content body on channel {self.number} without a content header")
        self._body.append(frame.data)
        self._received += len(frame.data)
        if self._received > self._body_size:
            raise errors.unexpected_frame(f"content body exceeds the declared {self._body_size} octets")
        if self._received == self._body_size:
            self._content_complete()

    def _content_complete(self) -> None:
        from adapters.amqp.methods import complete_publish

        method, properties = self._publish, self._properties
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._publish = self._properties = None
        self._body = []
        assert method is not None and properties is not None
        complete_publish(self, method, properties, body, self._header)

    # -- output ---------------------------------------------------------------------------

    def send(self, method: base.Frame) -> None:
        self.conn.send_method(self.number, method)

    def flush_confirms(self) -> None:
        """Acknowledge every publish so far in one basic.ack (multiple) per receive batch; a publish
        a queue refused (x-overflow reject-publish) gets its own basic.nack, in sequence.

        Nothing acknowledged is lost: a batch holding a persistent message (delivery_mode 2,
        wherever it went: a durable queue, an MQTT persistent session through amq.topic) is
        acknowledged from the store's `sync` callback, once the store has committed everything
        written so far; with nothing to commit that is at once. Later batches queue behind it, so
        acks stay in order. Transient messages alone never wait. An ack still waiting when the
        channel or connection closes is never sent: the publisher knows them unconfirmed.
        """
        if not self.confirm or self.publish_seq <= self.confirm_asked:
            return
        earlier, upto = self.confirm_asked, self.publish_seq
        self.confirm_asked = upto
        if self.durable_seq > earlier or self.syncing:
            self.syncing += 1
            self.conn.broker.core.store.sync(lambda: self._confirm(upto, synced=True))
        else:
            self._confirm(upto)

    def _confirm(self, upto: int, synced: bool = False) -> None:
        if synced:
            self.syncing -= 1
        if upto <= self.confirmed_to or self.state is not ChannelState.OPEN or self.conn.closing:
            return
        start, self.confirmed_to = self.confirmed_to, upto
        rejected = self.rejected
        while rejected and rejected[0] <= upto:  # each refused publish is nacked alone, in order
            seq = rejected.popleft()
            if seq - 1 > start:
                self.send(commands.Basic.Ack(delivery_tag=seq - 1, multiple=seq - 1 - start > 1))
            self.send(commands.Basic.Nack(delivery_tag=seq, multiple=False, requeue=False))
            start = seq
        if upto > start:
            self.send(commands.Basic.Ack(delivery_tag=upto, multiple=upto - start > 1))

    # -- ConsumerSink -----------------------------------------------------------------------

    def consumer_ready(self, consumer: Consumer) -> bool:
        if not self.flow_active or self.state is not ChannelState.OPEN or not self.conn.writable:
            return False
        if consumer.no_ack:
            return True
        if consumer.prefetch and consumer.unacked >= consumer.prefetch:
            return False
        return not (self.global_prefetch and len(self.unacked) >= self.global_prefetch)

    def deliver(self, consumer: Consumer, queue: Queue, entry: Entry) -> None:
        tag = self.next_tag
        self.next_tag = tag + 1
        if consumer.no_ack:
            queue.settle(entry)
        else:
            self.unacked[tag] = Unacked(tag, consumer, queue, entry)
            consumer.unacked += 1
            if not entry.redelivered:
                self.conn.vhost.message_delivered(queue, entry)
        content = entry.content
        conn = self.conn
        conn.send_bytes(
            encode_deliver(self.number, consumer.tag_field, tag, entry.redelivered, content.address())
            + content.frames(self.number, conn.frame_max)
        )

    def deliver_get(self, queue: Queue, entry: Entry, no_ack: bool) -> None:
        tag = self.next_tag
        self.next_tag = tag + 1
        if no_ack:
            queue.settle(entry)
        else:
            self.unacked[tag] = Unacked(tag, None, queue, entry)
            if not entry.redelivered:
                self.conn.vhost.message_delivered(queue, entry)
        content = entry.content
        self.conn.send_bytes(
            encode_get_ok(self.number, tag, entry.redelivered, content.exchange, content.routing_key,
                          queue.message_count)
            + content.frames(self.number, self.conn.frame_max)
        )

    def cancelled_by_server(self, consumer: Consumer) -> None:
        """The queue went away: forget the consumer and tell clients that can hear it."""
        if self.consumers.pop(consumer.tag, None) is None:
            return
        if self.state is ChannelState.OPEN and self.conn.capability("consumer_cancel_notify"):
            self.send(commands.Basic.Cancel(consumer_tag=consumer.tag, nowait=True))

    # -- consumers and acknowledgements -------------------------------------------------------

    def new_consumer_tag(self) -> str:
        return "amq.ctag-" + secrets.token_urlsafe(16)

    def take_unacked(self, tag: int, multiple: bool) -> list[Unacked]:
        """Remove and return the deliveries an ack/nack/reject names (406 for an unknown tag)."""
        unacked = self.unacked
        if multiple:
            tags = [t for t in unacked if t <= tag] if tag else list(unacked)
            if tag and not tags and tag not in unacked:
                raise errors.precondition_failed(f"unknown delivery tag {tag}")
        else:
            if tag not in unacked:
                raise errors.precondition_failed(f"unknown delivery tag {tag}")
            tags = [tag]
        taken = [unacked.pop(t) for t in tags]
        for item in taken:
            if item.consumer is not None:
                item.consumer.unacked -= 1
        return taken

    def restore_unacked(self, item: Unacked) -> None:
        """tx.rollback: an acknowledgement taken back."""
        self.unacked[item.tag] = item
        if item.consumer is not None:
            item.consumer.unacked += 1

    def settle(self, items: list[Unacked], outcome: str) -> None:
        """Apply an acknowledgement: 'ack' settles, 'requeue' puts back, 'reject' dead-letters."""
        now = self.conn.vhost_clock()
        by_queue: dict[Queue, list[Entry]] = {}
        for item in items:
            if item.queue.deleted:
                item.queue.on_removed(item.queue, item.entry)
                continue
            if outcome == "ack":
                item.queue.settle(item.entry)
            elif outcome == "requeue":
                by_queue.setdefault(item.queue, []).append(item.entry)
            else:
                item.queue.reject(item.entry)
        for queue, entries in by_queue.items():
            queue.requeue(entries, now)
        self.pump()

    def pump(self) -> None:
        """Offer messages again to this channel's consumers (after acks, qos, flow or writability)."""
        if self.state is not ChannelState.OPEN:
            return
        now = self.conn.vhost_clock()
        for queue in {consumer.queue for consumer in self.consumers.values()}:
            if not queue.deleted:
                queue.dispatch(now)

    def cancel(self, tag: str) -> Consumer | None:
        consumer = self.consumers.pop(tag, None)
        if consumer is not None:
            if consumer.queue.name == self.reply_key:
                self.conn.vhost.replies.forget(self)
            consumer.queue.remove_consumer(consumer, self.conn.vhost_clock())
            self.conn.vhost.consumer_gone(consumer.queue)
        return consumer

    def teardown(self) -> None:
        """Closed by either side or with the connection: cancel consumers, requeue the unacknowledged."""
        if self.state is ChannelState.CLOSED:
            return
        self.state = ChannelState.CLOSED
        self._publish = self._properties = None
        for tag in list(self.consumers):
            self.cancel(tag)
        items = list(self.unacked.values())
        self.unacked.clear()
        self.settle(items, "requeue")
