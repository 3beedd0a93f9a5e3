"""Queues: ready messages, consumers, TTL, max-length and overflow, priorities, expiry and dead-letter hooks.

A queue knows nothing of frames or channels: consumers reach it through the
`ConsumerSink` protocol (is there room? take this message) and it reports
dead letters and its next deadline through callbacks the vhost sets. Times
are wall-clock seconds (`time.time()`), like core message expiry.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Any, Callable, Iterator, Protocol

from adapters.amqp.content import Content
from adapters.amqp.errors import precondition_failed
from adapters.amqp.frames import encode_shortstr
from adapters.amqp.priority import MAX_SUPPORTED, PriorityReady

_sequence = itertools.count(1)


class Entry:
    """A message in one queue: its content, whether it was delivered before, when it expires."""

    __slots__ = ("content", "redelivered", "expires_at", "seq")

    def __init__(self, content: Content, expires_at: float | None, redelivered: bool = False,
                 seq: int | None = None) -> None:
        self.content = content
        self.redelivered = redelivered
        self.expires_at = expires_at
        self.seq = next(_sequence) if seq is None else seq


def advance_sequence(past: int) -> None:
    """After recovery: new entries must not reuse a recovered entry's number."""
    global _sequence
    current = next(_sequence)
    _sequence = itertools.count(max(current, past + 1))


class ConsumerSink(Protocol):
    """What a queue needs from the channel that owns a consumer."""

    def consumer_ready(self, consumer: "Consumer") -> bool: ...

    def deliver(self, consumer: "Consumer", queue: "Queue", entry: Entry) -> None: ...


class Consumer:
    __slots__ = ("tag", "tag_field", "queue", "sink", "no_ack", "exclusive", "prefetch", "unacked", "arguments",
                 "priority")

    def __init__(self, tag: str, queue: "Queue", sink: ConsumerSink, *, no_ack: bool, exclusive: bool,
                 prefetch: int, arguments: dict[str, Any] | None = None) -> None:
        self.tag = tag
        self.tag_field = encode_shortstr(tag)  # as basic.deliver carries it
        self.queue = queue
        self.sink = sink
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.prefetch = prefetch  # 0: unlimited
        self.unacked = 0
        self.arguments = arguments or {}
        priority = self.arguments.get("x-priority", 0)  # RabbitMQ's consumer priority (basic.consume argument)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise precondition_failed(f"x-priority must be an integer, not {priority!r}")
        self.priority = priority


def _int_arg(arguments: dict[str, Any], name: str, minimum: int) -> int | None:
    value = arguments.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise precondition_failed(f"invalid arg '{name}' for queue: {value!r}")
    return value


def _str_arg(arguments: dict[str, Any], name: str) -> str | None:
    value = arguments.get(name)
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise precondition_failed(f"invalid arg '{name}' for queue: {value!r}")
    return value


class Queue:
    """One AMQP queue (classic semantics whatever x-queue-type says)."""

    def __init__(self, name: str, *, durable: bool = False, exclusive_owner: object | None = None,
                 auto_delete: bool = False, arguments: dict[str, Any] | None = None, now: float = 0.0) -> None:
        arguments = dict(arguments or {})
        self.name = name
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments = arguments
        ttl = _int_arg(arguments, "x-message-ttl", 0)
        expires = _int_arg(arguments, "x-expires", 1)
        self.ttl = None if ttl is None else ttl / 1000.0
        self.expires = None if expires is None else expires / 1000.0
        self.max_length = _int_arg(arguments, "x-max-length", 0)
        overflow = _str_arg(arguments, "x-overflow")
        if overflow not in (None, "drop-head", "reject-publish", "reject-publish-dlx"):
            raise precondition_failed(f"invalid arg 'x-overflow' for queue: {overflow!r}")
        # RabbitMQ's overflow modes: drop-head (the default) drops the oldest, reject-publish refuses
        # the new message (basic.nack with confirms), reject-publish-dlx also dead-letters it.
        self.reject_publish = overflow in ("reject-publish", "reject-publish-dlx")
        self.reject_dead_letters = overflow == "reject-publish-dlx"
        max_priority = _int_arg(arguments, "x-max-priority", 0)
        if max_priority is not None and max_priority > MAX_SUPPORTED:
            raise precondition_failed(f"invalid arg 'x-max-priority' for queue: {max_priority} is above "
                                      f"the maximum supported priority {MAX_SUPPORTED}")
        self.dead_letter_exchange = _str_arg(arguments, "x-dead-letter-exchange")
        self.dead_letter_routing_key = _str_arg(arguments, "x-dead-letter-routing-key")
        # x-single-active-consumer (RabbitMQ 3.8): one consumer at a time gets the messages, the one
        # registered first; when it goes, the next in line takes over (what it left unacked included).
        self.single_active = arguments.get("x-single-active-consumer") is True
        queue_type = _str_arg(arguments, "x-queue-type")
        if queue_type not in (None, "classic", "quorum", "stream"):
            raise precondition_failed(f"invalid x-queue-type {queue_type!r}")
        # x-max-priority: highest priority first (priority.py); without it a plain FIFO deque
        self.ready: deque[Entry] | PriorityReady = PriorityReady(max_priority) if max_priority else deque()
        self.consumers: list[Consumer] = []
        self.had_consumer = False
        self.deleted = False
        self.last_used = now
        self._cursor = 0
        self._level_cursors: dict[int, int] = {}  # with consumer priorities: a round-robin cursor per level
        self._dispatching = False
        self._again = False
        self.scheduled_at: float | None = None
        self.publish_total = 0  # messages enqueued, and handed to consumers or basic.get, ever (admin API)
        self.deliver_total = 0
        self.owner: object = None  # the Principal that declared it (dead letters pass the door as it)
        # Set by the vhost:
        self.on_dead_letter: Callable[[Queue, Entry, str], None] = lambda queue, entry, reason: None
        self.on_deadline: Callable[[Queue, float], None] = lambda queue, deadline: None
        self.on_removed: Callable[[Queue, Entry], None] = lambda queue, entry: None
        self.on_stored: Callable[[Queue, Entry], None] = lambda queue, entry: None

    # -- declaration ---------------------------------------------------------------

    def equivalent(self, durable: bool, auto_delete: bool, arguments: dict[str, Any]) -> str | None:
        """Why a redeclaration differs (RabbitMQ's 'inequivalent arg'), or None if it matches."""
        if durable != self.durable:
            return "durable"
        if auto_delete != self.auto_delete:
            return "auto_delete"
        for key in ("x-message-ttl", "x-expires", "x-max-length", "x-dead-letter-exchange",
                    "x-dead-letter-routing-key", "x-overflow", "x-single-active-consumer", "x-max-priority"):
            if arguments.get(key) != self.arguments.get(key):
                return key
        return None

    @property
    def message_count(self) -> int:
        return len(self.ready)

    # -- messages in ------------------------------------------------------------------

    def enqueue(self, content: Content, now: float, expiration: float | None = None,
                default_max_length: int | None = None) -> bool:
        """Add a published message; `expiration` is its per-message TTL in seconds;
        `default_max_length` bounds a queue without an x-max-length of its own. False: refused."""
        ttl = self.ttl
        if expiration is not None and (ttl is None or expiration < ttl):
            ttl = expiration
        entry = Entry(content, None if ttl is None else now + ttl)
        limit = self.max_length if self.max_length is not None else default_max_length
        if self.reject_publish and limit is not None and len(self.ready) >= limit:
            if self.reject_dead_letters:
                self.on_dead_letter(self, entry, "maxlen")  # never stored: nothing to remove
            return False
        self.ready.append(entry)
        self.publish_total += 1
        self.on_stored(self, entry)
        if limit is not None:
            while len(self.ready) > limit:
                self._drop(self.ready.popleft(), "maxlen")
        self.dispatch(now)
        self.expire(now)
        return True

    def requeue(self, entries: list[Entry], now: float) -> None:
        """Put delivered, unacknowledged messages back at the head, oldest first, marked redelivered."""
        for entry in sorted(entries, key=lambda e: e.seq, reverse=True):
            entry.redelivered = True
            self.ready.appendleft(entry)
        self.dispatch(now)
        self._schedule()

    def settle(self, entry: Entry) -> None:
        """A delivered message is done with (acknowledged, or sent to a no-ack consumer)."""
        self.on_removed(self, entry)

    def reject(self, entry: Entry) -> None:
        """basic.reject / basic.nack without requeue: dead-letter it (reason 'rejected') or drop it."""
        self._drop(entry, "rejected")

    def purge(self) -> int:
        count = len(self.ready)
        for entry in self.ready:
            self.on_removed(self, entry)
        self.ready.clear()
        return count

    # -- messages out -----------------------------------------------------------------

    def dispatch(self, now: float) -> None:
        """Hand ready messages to consumers with room, round-robin, until none has room."""
        if self._dispatching:
            self._again = True
            return
        self._dispatching = True
        try:
            while True:
                self._again = False
                self._dispatch_once(now)
                if not self._again:
                    break
        finally:
            self._dispatching = False

    def _dispatch_once(self, now: float) -> None:
        ready, consumers = self.ready, self.consumers
        while ready and consumers:
            entry = ready[0]
            if entry.expires_at is not None and entry.expires_at < now:  # expiration "0": a ready consumer
                self._drop(ready.popleft(), "expired")  # still gets it, as in RabbitMQ
                continue
            consumer = self._next_consumer()
            if consumer is None:
                return
            ready.popleft()
            self.deliver_total += 1
            consumer.sink.deliver(consumer, self, entry)

    def _next_consumer(self) -> Consumer | None:
        consumers = self.consumers
        if self.single_active:  # the active one, or nobody while it has no room
            active = consumers[0] if consumers else None
            return active if active is not None and active.sink.consumer_ready(active) else None
        if self._level_cursors:
            return self._next_by_priority()
        count = len(consumers)
        start = self._cursor
        for step in range(count):
            consumer = consumers[(start + step) % count]
            if consumer.sink.consumer_ready(consumer):
                self._cursor = (start + step + 1) % count
                return consumer
        return None

    def _next_by_priority(self) -> Consumer | None:
        """Consumer priorities (x-priority), as RabbitMQ: the highest level with room gets the
        message, round-robin within a level; a lower level only while every higher one is full."""
        for level in sorted(self._level_cursors, reverse=True):
            group = [consumer for consumer in self.consumers if consumer.priority == level]
            start = self._level_cursors[level] % len(group)
            for step in range(len(group)):
                consumer = group[(start + step) % len(group)]
                if consumer.sink.consumer_ready(consumer):
                    self._level_cursors[level] = start + step + 1
                    return consumer
        return None

    def _levels_changed(self) -> None:
        levels = {consumer.priority for consumer in self.consumers}
        if levels <= {0}:
            self._level_cursors = {}  # no priorities: plain round-robin
        else:
            self._level_cursors = {level: self._level_cursors.get(level, 0) for level in levels}

    def get(self, now: float) -> Entry | None:
        """basic.get: the head message, skipping expired ones."""
        self.last_used = now
        self.expire(now)
        entry = self.ready.popleft() if self.ready else None
        self.deliver_total += entry is not None
        self._schedule()
        return entry

    # -- consumers ----------------------------------------------------------------------

    def add_consumer(self, consumer: Consumer, now: float) -> None:
        self.consumers.append(consumer)
        if consumer.priority or self._level_cursors:
            self._levels_changed()
        self.had_consumer = True
        self.last_used = now
        self.dispatch(now)

    def remove_consumer(self, consumer: Consumer, now: float) -> None:
        if consumer in self.consumers:
            index = self.consumers.index(consumer)
            self.consumers.remove(consumer)
            if index < self._cursor:
                self._cursor -= 1
            if self._cursor >= len(self.consumers):
                self._cursor = 0
            if self._level_cursors:
                self._levels_changed()
        self.last_used = now
        self._schedule()

    @property
    def has_exclusive_consumer(self) -> bool:
        return any(consumer.exclusive for consumer in self.consumers)

    # -- time ---------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = []
        if self.ready and self.ready[0].expires_at is not None:
            deadlines.append(self.ready[0].expires_at)
        if self.expires is not None and not self.consumers:
            deadlines.append(self.last_used + self.expires)
        return min(deadlines) if deadlines else None

    def unused_since_expiry(self, now: float) -> bool:
        """x-expires: no consumers and no basic.get or redeclaration for that long."""
        return self.expires is not None and not self.consumers and now >= self.last_used + self.expires

    def expire(self, now: float) -> None:
        """Drop (or dead-letter) expired messages at the head, as RabbitMQ does."""
        ready = self.ready
        while ready and ready[0].expires_at is not None and ready[0].expires_at <= now:
            self._drop(ready.popleft(), "expired")
        self._schedule()

    def _schedule(self) -> None:
        deadline = self.next_deadline()
        if deadline is not None and (self.scheduled_at is None or deadline < self.scheduled_at):
            self.scheduled_at = deadline
            self.on_deadline(self, deadline)

    def _drop(self, entry: Entry, reason: str) -> None:
        self.on_removed(self, entry)
        self.on_dead_letter(self, entry, reason)


class Deadlines:
    """Queues waiting for a time (a message's expiry, x-expires), earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Queue]] = []
        self._tie = itertools.count()

    def add(self, queue: Queue, deadline: float) -> bool:
        """Wait for `deadline`; True when it is now the earliest."""
        earlier = not self._heap or deadline < self._heap[0][0]
        heapq.heappush(self._heap, (deadline, next(self._tie), queue))
        return earlier

    def earliest(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> Iterator[Queue]:
        """The queues whose time came by `now` and that still exist (taken off the heap one by one)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            queue = heapq.heappop(heap)[2]
            if not queue.deleted:
                queue.scheduled_at = None
                yield queue
