"""Flow control across nodes, the pure parts (gateway/cluster/flow.py): holds on the publisher's
node, holds, parking and releases on the subscriber's node."""

from __future__ import annotations

from typing import Callable

from core.message import Message, Origin
from gateway.cluster.flow import HOLD_TTL, PARK_LIMIT, RENEW, HeldTopics, HoldReports

ORIGIN = Origin("mqtt", "pub")


class Receiver:
    """A subscriber's outbox as a producer sees it: congested or not, and who waits on it."""

    def __init__(self) -> None:
        self.congested = True
        self.waiters: list[Callable[[], None]] = []

    def when_drained(self, callback: Callable[[], None]) -> None:
        if self.congested:
            self.waiters.append(callback)
        else:
            callback()

    def drain(self) -> None:
        self.congested = False
        waiters, self.waiters = self.waiters, []
        for callback in waiters:
            callback()


def message(n: int, topic: str = "t") -> Message:
    return Message(topic, str(n).encode(), 1, origin=ORIGIN)


class Node:
    """The subscriber's node: what it routed, and what it told the publisher's node."""

    def __init__(self) -> None:
        self.routed: list[int] = []
        self.sent: list[tuple[str, bool, str]] = []
        self.behind: dict[int, Receiver] = {}  # message number -> the receiver it left behind
        self.reports = HoldReports(self.publish, lambda *args: self.sent.append(args))

    def publish(self, msg: Message) -> tuple[Receiver, ...]:
        n = int(msg.payload)
        self.routed.append(n)
        receiver = self.behind.get(n)
        return (receiver,) if receiver is not None else ()


def test_a_hold_makes_the_topic_congested_until_every_node_releases_it() -> None:
    held = HeldTopics()
    assert held.get("t", 0.0) is None
    held.hold("t", "b/1", 0.0)
    held.hold("t", "c/2", 0.1)
    hold = held.get("t", 0.2)
    assert hold is not None and hold.congested
    opened: list[str] = []
    hold.when_drained(lambda: opened.append("go"))
    held.release("t", "b/1")
    assert opened == [] and hold.congested
    held.release("t", "c/2")
    assert opened == ["go"] and not hold.congested and held.get("t", 0.3) is None


def test_a_hold_neither_renewed_nor_released_expires_and_frees_its_producers() -> None:
    held = HeldTopics()
    held.hold("t", "b/1", 0.0)
    hold = held.get("t", 0.0)
    assert hold is not None
    opened: list[str] = []
    hold.when_drained(lambda: opened.append("go"))
    assert held.get("t", HOLD_TTL - 0.1) is hold
    assert held.get("t", HOLD_TTL + 0.1) is None
    assert opened == ["go"] and len(held) == 0


def test_the_subscribers_node_holds_parks_in_order_and_releases_once_drained() -> None:
    node = Node()
    receiver = node.behind[1] = Receiver()
    for n in range(5):
        node.reports.receive("a/1", message(n), 0.0)
    assert node.routed == [0, 1]  # 1 left the receiver behind: 2..4 wait behind the hold
    assert node.sent == [("a/1", True, "t")]
    node.reports.receive("a/1", message(5, "other"), 0.0)
    assert node.routed == [0, 1, 5]  # another topic is not held
    receiver.drain()
    assert node.routed == [0, 1, 5, 2, 3, 4]
    assert node.sent == [("a/1", True, "t"), ("a/1", False, "t")] and len(node.reports) == 0
    assert node.reports.parked == 3


def test_a_parked_message_that_leaves_a_receiver_behind_again_keeps_the_rest_parked() -> None:
    node = Node()
    first = node.behind[0] = Receiver()
    second = node.behind[2] = Receiver()
    for n in range(5):
        node.reports.receive("a/1", message(n), 0.0)
    first.drain()
    assert node.routed == [0, 1, 2] and node.sent == [("a/1", True, "t")]  # still held: no release
    second.drain()
    assert node.routed == [0, 1, 2, 3, 4] and node.sent[-1] == ("a/1", False, "t")


def test_a_standing_hold_is_sent_again_while_the_origin_goes_on_sending() -> None:
    node = Node()
    node.behind[0] = Receiver()
    node.reports.receive("a/1", message(0), 0.0)
    node.reports.receive("a/1", message(1), RENEW / 2)
    node.reports.receive("a/1", message(2), RENEW + 0.1)
    assert node.sent == [("a/1", True, "t"), ("a/1", True, "t")]


def test_past_the_parking_limit_the_parked_messages_go_to_the_outbox_in_order_and_the_hold_ends() -> None:
    node = Node()
    stalled = node.behind[0] = Receiver()
    for n in range(PARK_LIMIT + 3):
        node.reports.receive("a/1", message(n), 0.0)
    # The outbox's bound and policy apply to them, in order; the publisher is no longer held.
    assert node.routed == list(range(PARK_LIMIT + 3)) and node.reports.parked == PARK_LIMIT
    assert node.sent == [("a/1", True, "t"), ("a/1", False, "t")] and len(node.reports) == 0
    stalled.drain()  # (what it waited on is gone: nothing more is sent)
    assert node.sent == [("a/1", True, "t"), ("a/1", False, "t")]


# -- any interleaving ---------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TOPICS = ("t", "u")
ORIGINS = ("a/1", "c/2")


class Outbox(Receiver):
    """A receiver shared by every topic and origin, as one subscriber's outbox is."""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(("receive", "batch", "drain")), st.integers(0, 3), st.booleans()),
                max_size=60))
def test_any_interleaving_keeps_each_origins_topic_in_order_and_delivers_everything_once(steps) -> None:
    """Messages arrive from two origins on two topics, alone or three in one envelope
    (`receive_all`); some leave one of two outboxes behind; outboxes drain at random moments. Per (origin, topic) the routed order is the arrival order,
    every message is routed exactly once once all drained, and every hold is released."""
    outboxes = [Outbox(), Outbox()]
    for box in outboxes:
        box.congested = False
    routed: list[tuple[str, str, int]] = []
    sent: list[tuple[str, bool, str]] = []
    behind_of: dict[int, Outbox] = {}

    def publish(msg: Message) -> tuple[Outbox, ...]:
        n = int(msg.payload)
        routed.append((msg.origin.client_id, msg.topic, n))
        box = behind_of.get(n)
        if box is None:
            return ()
        box.congested = True
        return (box,)

    reports = HoldReports(publish, lambda *args: sent.append(args))
    arrived: list[tuple[str, str, int]] = []
    for number, (action, which, flag) in enumerate(steps):
        if action == "receive":
            origin, topic = ORIGINS[which % 2], TOPICS[which // 2]
            if flag:
                behind_of[number] = outboxes[which % 2]
            arrived.append((origin, topic, number))
            reports.receive(origin, Message(topic, str(number).encode(), 1, origin=Origin("mqtt", origin)), 0.0)
        elif action == "batch":  # both topics; the middle one may leave an outbox behind
            origin, batch = ORIGINS[which % 2], []
            for k in range(3):
                n, topic = 1000 + 3 * number + k, TOPICS[(which // 2 + k) % 2]
                if flag and k == 1:
                    behind_of[n] = outboxes[which % 2]
                arrived.append((origin, topic, n))
                batch.append(Message(topic, str(n).encode(), 1, origin=Origin("mqtt", origin)))
            reports.receive_all(origin, batch, 0.0)
        elif outboxes[which % 2].congested:
            outboxes[which % 2].drain()
    for _ in range(len(steps) + 1):  # the clients read on: a parked message routed by a drain may
        for box in outboxes:          # leave an outbox behind again, until none is
            box.drain()
    assert sorted(routed) == sorted(arrived)  # each exactly once
    for origin in ORIGINS:
        for topic in TOPICS:
            assert [n for o, t, n in routed if (o, t) == (origin, topic)] == \
                [n for o, t, n in arrived if (o, t) == (origin, topic)]
    holds = [(o, t) for o, hold, t in sent if hold]
    releases = [(o, t) for o, hold, t in sent if not hold]
    assert sorted(set(holds)) == sorted(set(releases)) and len(reports) == 0
