"""Flow control across nodes: subscribers that are behind on one node hold the publisher on another. Pure.

On one node, a producer whose messages push a reading subscriber's outbox past high water
pauses until it drains, for a short deadline at most (core/flow.py). Across the cluster the
publisher's node cannot see that outbox, and without word from it a fast publisher on node A
would overflow a subscriber's outbox on node B (its overflow policy then drops QoS 1 messages
that A already acknowledged). So the subscriber's node tells the publisher's:

- node B (`HoldReports`): when a message from origin A leaves a subscriber's outbox past high
  water, B sends A one *hold* for that topic, and one *release* once every such outbox has
  drained. What A sent before it heard the hold is parked on B, in order, and routed when the
  outboxes drained (up to `PARK_LIMIT` messages: past that, for a subscriber that stopped reading
  altogether, they go to its outbox in order, its bound and overflow policy apply, and the
  hold ends, as on one node a subscriber that makes no progress holds no one). A hold still
  standing while A goes on sending is sent again every `RENEW` seconds;
- node A (`HeldTopics`): a hold makes the topic's `RemoteHold` congested, and the door hands it
  to the producing adapter with every later publish on that topic; the producer waits on it as
  on a local congested subscriber, for the same short deadline at most. A hold that is neither
  renewed nor released within `HOLD_TTL` (a lost message, a node that died) is forgotten.

The NATS layer (gateway/cluster/nats_fabric.py) carries the holds and releases.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from core.message import Message

HOLD_TTL = 3.0  # seconds a hold lasts unless renewed or released
RENEW = 1.0  # seconds after which a hold still standing is sent again
PARK_LIMIT = 10_000  # messages of one (origin, topic) parked behind a hold; past it they go to the outbox


def routed_behind(publish_remote: Callable[[Message], Any], message: Message) -> tuple[Any, ...]:
    """`HoldReports`' `publish` for a door (core/door.py `publish_remote`): route a remote message,
    answer the receivers it left past high water."""
    return publish_remote(message).hold_on  # type: ignore[no-any-return]


class RemoteHold:
    """The nodes whose subscribers of one topic are behind, as a receiver a producer waits on."""

    __slots__ = ("topic", "nodes", "renewed", "_waiters")

    def __init__(self, topic: str, now: float) -> None:
        self.topic = topic
        self.nodes: set[str] = set()
        self.renewed = now
        self._waiters: list[Callable[[], None]] = []

    @property
    def congested(self) -> bool:
        return bool(self.nodes)

    def when_drained(self, callback: Callable[[], None]) -> None:
        if self.nodes:
            self._waiters.append(callback)
        else:
            callback()

    def release(self, node: str | None = None) -> None:
        """`node`'s subscribers caught up (None: every node's); producers go on when none is behind."""
        if node is None:
            self.nodes.clear()
        else:
            self.nodes.discard(node)
        if not self.nodes:
            waiters, self._waiters = self._waiters, []
            for callback in waiters:
                callback()


class HeldTopics:
    """The publisher's side: the topics other nodes asked this node to hold, by topic."""

    def __init__(self) -> None:
        self._holds: dict[str, RemoteHold] = {}
        self.holds_received = 0

    def __len__(self) -> int:
        return len(self._holds)

    def hold(self, topic: str, node: str, now: float) -> None:
        held = self._holds.get(topic)
        if held is None:
            held = self._holds[topic] = RemoteHold(topic, now)
        held.nodes.add(node)
        held.renewed = now
        self.holds_received += 1

    def release(self, topic: str, node: str) -> None:
        held = self._holds.get(topic)
        if held is not None:
            held.release(node)
            if not held.nodes:
                del self._holds[topic]

    def get(self, topic: str, now: float) -> RemoteHold | None:
        """The hold on `topic` a producer should wait on, or None (an expired one is forgotten)."""
        held = self._holds.get(topic)
        if held is not None and now - held.renewed > HOLD_TTL:
            del self._holds[topic]
            held.release()
            return None
        return held


class _Hold:
    """One (origin, topic) this node asked to hold: the receivers behind, and the messages parked."""

    __slots__ = ("behind", "sent", "parked")

    def __init__(self, now: float) -> None:
        self.behind: set[Any] = set()
        self.sent = now  # when the hold was last sent
        self.parked: deque[Message] = deque()


class HoldReports:
    """The subscribers' side: remote messages in, holds and releases out.

    `publish(message)` routes a remote message here and answers the receivers it left behind;
    `send(origin, hold, topic)` carries a hold (True) or a release (False) to `origin`.
    While a hold stands, later messages of its (origin, topic), sent before the origin heard
    of it, are parked in order (at most `PARK_LIMIT`) and routed once the receivers drained,
    so a subscriber keeping up slower than a publisher on another node loses none of them.
    """

    def __init__(self, publish: Callable[[Message], tuple[Any, ...]], send: Callable[[str, bool, str], None]) -> None:
        self._publish = publish
        self._send = send
        self._holds: dict[tuple[str, str], _Hold] = {}
        self.holds_sent = 0
        self.parked = 0  # messages that waited behind a hold

    def __len__(self) -> int:
        return len(self._holds)

    def receive(self, origin: str, message: Message, now: float) -> None:
        key = (origin, message.topic)
        hold: _Hold | None = self._holds.get(key)
        if hold is not None:
            if len(hold.parked) < PARK_LIMIT:
                hold.parked.append(message)
                self.parked += 1
                if now - hold.sent >= RENEW:  # the origin goes on sending: it lost the hold, or it expired
                    self._hold(key, hold, now)
                return
            # Full: a subscriber that does not keep up at all. What waited goes to the outboxes in order,
            # where their bound and policy apply, and the hold ends: a stalled subscriber holds no one.
            parked = hold.parked
            while parked:
                self._publish(parked.popleft())
            del self._holds[key]
            self._send(origin, False, message.topic)
            hold = None
        behind = self._publish(message)
        if behind:
            self._left_behind(key, hold, behind, now)

    def receive_all(self, origin: str, messages: list[Message], now: float) -> None:
        """`receive` for each message of one envelope, in order: while no hold stands (the usual
        case), a message costs one call."""
        publish = self._publish
        for message in messages:
            if self._holds:
                self.receive(origin, message, now)
                continue
            behind = publish(message)
            if behind:
                self._left_behind((origin, message.topic), None, behind, now)

    def _left_behind(self, key: tuple[str, str], hold: _Hold | None, behind: tuple[Any, ...], now: float) -> None:
        """A message of `key` left `behind` past high water: hold its origin until they drain."""
        if hold is None:
            hold = self._holds[key] = _Hold(now)
            self._hold(key, hold, now)
        self._wait_on(key, hold, behind)
        if not hold.behind:  # they caught up meanwhile: nothing to wait on
            self._drained(key, None, hold)

    def _hold(self, key: tuple[str, str], hold: _Hold, now: float) -> None:
        hold.sent = now
        self.holds_sent += 1
        self._send(key[0], True, key[1])

    def _wait_on(self, key: tuple[str, str], hold: _Hold, behind: tuple[Any, ...]) -> None:
        for receiver in behind:
            if receiver not in hold.behind and receiver.congested:
                hold.behind.add(receiver)
                receiver.when_drained(lambda receiver=receiver: self._drained(key, receiver, hold))

    def _drained(self, key: tuple[str, str], receiver: Any, hold: _Hold | None = None) -> None:
        if hold is None:
            hold = self._holds.get(key)
        if hold is None or self._holds.get(key) is not hold:
            return  # (a hold that ended at the parking limit)
        hold.behind.discard(receiver)
        parked = hold.parked
        while not hold.behind and parked:
            behind = self._publish(parked.popleft())
            if behind:
                self._wait_on(key, hold, behind)
        if not hold.behind:
            del self._holds[key]
            self._send(key[0], False, key[1])
