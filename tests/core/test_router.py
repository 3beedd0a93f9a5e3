"""Router fan-out: merged overlapping subscriptions, no-local, shared groups, retained, shared deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.message import Message, Origin
from core.router import Router
from core.subscriptions import Delivery, EncodeCache, SubscriptionOptions


@dataclass(eq=False)
class Recorder:
    """A subscriber that records what it is given."""

    client_id: str
    online: bool = True
    got: list[Delivery] = field(default_factory=list)
    caches: list[int] = field(default_factory=list)

    @property
    def is_online(self) -> bool:
        return self.online

    def is_origin_of(self, message: Message) -> bool:
        return message.origin.client_id == self.client_id

    def deliver(self, delivery: Delivery, cache: EncodeCache) -> None:
        self.got.append(delivery)
        self.caches.append(id(cache))


def msg(topic: str = "a/b", qos: int = 1, retain: bool = False, origin: str = "pub") -> Message:
    return Message(topic, b"x", qos, retain, origin=Origin("mqtt", origin))  # type: ignore[arg-type]


def test_delivered_qos_is_the_minimum_of_published_and_subscribed() -> None:
    router, low, high = Router(), Recorder("low"), Recorder("high")
    router.subscribe(low, "a/b", SubscriptionOptions(qos=0))
    router.subscribe(high, "a/+", SubscriptionOptions(qos=2))
    assert router.publish(msg(qos=1)) == 2
    assert [d.qos for d in low.got] == [0]
    assert [d.qos for d in high.got] == [1]


def test_overlapping_subscriptions_deliver_once_with_the_highest_qos_and_every_identifier() -> None:
    router, sub = Router(), Recorder("s")
    router.subscribe(sub, "a/b", SubscriptionOptions(qos=0, subscription_id=1))
    router.subscribe(sub, "a/#", SubscriptionOptions(qos=2, subscription_id=2))
    assert router.publish(msg(qos=2)) == 1
    (delivery,) = sub.got
    assert delivery.qos == 2
    assert sorted(delivery.subscription_ids) == [1, 2]


def test_no_local_drops_only_the_subscription_that_asked_for_it() -> None:
    router, sub = Router(), Recorder("pub")
    router.subscribe(sub, "a/b", SubscriptionOptions(qos=1, no_local=True, subscription_id=1))
    router.subscribe(sub, "a/#", SubscriptionOptions(qos=0, subscription_id=2))
    router.publish(msg(qos=1))
    (delivery,) = sub.got
    assert delivery.subscription_ids == (2,) and delivery.qos == 0


def test_no_local_alone_keeps_a_clients_own_message_from_it() -> None:
    router, own, other = Router(), Recorder("pub"), Recorder("other")
    for s in (own, other):
        router.subscribe(s, "a/b", SubscriptionOptions(qos=1, no_local=True))
    assert router.publish(msg()) == 1
    assert own.got == [] and len(other.got) == 1


def test_subscribers_with_equal_options_share_one_delivery_and_one_encode_cache() -> None:
    router = Router()
    subs = [Recorder(f"s{i}") for i in range(5)]
    for s in subs:
        router.subscribe(s, "a/b", SubscriptionOptions(qos=1))
    router.publish(msg())
    assert len({id(s.got[0]) for s in subs}) == 1
    assert len({s.caches[0] for s in subs}) == 1


def test_options_the_router_keeps_already_and_equal_new_ones_share_one_delivery() -> None:
    router = Router()
    first, equal = SubscriptionOptions(qos=1), SubscriptionOptions(qos=1)
    subs = [Recorder(f"s{i}") for i in range(4)]
    for s, options in zip(subs, (first, equal, first, equal)):
        router.subscribe(s, "a/b", options)
    other = Recorder("other")
    router.subscribe(other, "a/b", SubscriptionOptions(qos=0))
    router.publish(msg(qos=1))
    assert len({id(s.got[0]) for s in subs}) == 1
    assert other.got[0].qos == 0 and subs[0].got[0].qos == 1


def test_options_with_a_subscription_identifier_are_not_kept_forever() -> None:
    router = Router()
    subs = [Recorder(f"s{i}") for i in range(3)]
    for i, s in enumerate(subs):
        router.subscribe(s, "a/b", SubscriptionOptions(qos=1, subscription_id=i + 1))
        router.unsubscribe(s, "a/b")
    assert router._options == {} and router._options_by_id == {}
    for s in subs:  # equal options with one identifier still share one delivery
        router.subscribe(s, "a/b", SubscriptionOptions(qos=1, subscription_id=7))
    router.publish(msg(qos=1))
    assert len({id(s.got[0]) for s in subs}) == 1 and subs[0].got[0].subscription_ids == (7,)


def test_live_delivery_keeps_the_retain_flag_only_with_retain_as_published() -> None:
    router, plain, rap = Router(), Recorder("plain"), Recorder("rap")
    router.subscribe(plain, "a/b", SubscriptionOptions(qos=1))
    router.subscribe(rap, "a/b", SubscriptionOptions(qos=1, retain_as_published=True))
    router.publish(msg(retain=True))
    assert plain.got[0].retain is False and rap.got[0].retain is True


def test_a_shared_group_gets_each_message_once_round_robin_over_online_members() -> None:
    router = Router()
    members = [Recorder(f"m{i}") for i in range(3)]
    members[1].online = False
    for m in members:
        router.subscribe(m, "$share/g/a/#", SubscriptionOptions(qos=1))
    for _ in range(6):
        assert router.publish(msg()) == 1
    assert [len(m.got) for m in members] == [3, 0, 3]


def test_an_offline_only_group_still_gets_the_message_queued_on_one_member() -> None:
    router = Router()
    members = [Recorder(f"m{i}", online=False) for i in range(2)]
    for m in members:
        router.subscribe(m, "$share/g/a/b", SubscriptionOptions(qos=1))
    router.publish(msg())
    assert sum(len(m.got) for m in members) == 1


def test_retained_messages_are_stored_cleared_and_announced_to_listeners() -> None:
    router, seen = Router(), []
    router.retained_listeners.append(lambda m, cleared: seen.append((m.topic, cleared)))
    router.publish(msg(retain=True))
    assert [m.topic for m in router.retained_for("a/#")] == ["a/b"]
    router.publish(Message("a/b", b"", 0, True))
    assert router.retained_for("a/#") == []
    assert seen == [("a/b", False), ("a/b", True)]


def test_shared_subscriptions_get_no_retained_messages() -> None:
    router = Router()
    router.publish(msg(retain=True))
    assert router.retained_for("$share/g/a/#") == []


def test_a_publish_nobody_wants_is_counted() -> None:
    router = Router()
    assert router.publish(msg()) == 0
    assert router.dropped_no_subscribers == 1


# -- property: the per-topic match cache never serves a stale answer --------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from core.topics import topic_matches  # noqa: E402
from tests.core.test_trie import topic_filters, topic_names  # noqa: E402

_operations = st.lists(st.one_of(
    st.tuples(st.just("sub"), st.integers(0, 3), topic_filters(), st.integers(0, 2)),
    st.tuples(st.just("unsub"), st.integers(0, 3), topic_filters()),
    st.tuples(st.just("pub"), topic_names),
), max_size=40)


@settings(max_examples=200)
@given(operations=_operations)
def test_deliveries_follow_every_subscription_change_between_publishes(operations: list[tuple]) -> None:  # type: ignore[type-arg]
    router = Router()
    subscribers = [Recorder(f"c{n}") for n in range(4)]
    subscribed: dict[tuple[int, str], int] = {}  # (subscriber, filter) -> QoS
    for operation in operations:
        if operation[0] == "sub":
            _, who, topic_filter, qos = operation
            router.subscribe(subscribers[who], topic_filter, SubscriptionOptions(qos=qos))
            subscribed[(who, topic_filter)] = qos
        elif operation[0] == "unsub":
            _, who, topic_filter = operation
            router.unsubscribe(subscribers[who], topic_filter)
            subscribed.pop((who, topic_filter), None)
        else:
            topic = operation[1]
            for s in subscribers:
                s.got.clear()
            router.publish(Message(topic, b"x", 2, origin=Origin("mqtt", "pub")))
            for who, s in enumerate(subscribers):
                wanted = [qos for (w, f), qos in subscribed.items() if w == who and topic_matches(f, topic)]
                assert [d.qos for d in s.got] == ([max(wanted)] if wanted else []), (operation, subscribed)


def test_an_exact_subscription_change_forgets_only_its_own_topics_matches() -> None:
    """A device subscribing to (or leaving) its own topic keeps every other topic's kept matches;
    its own topic's are recomputed, and a wildcard change recomputes them all."""
    router, watcher, device = Router(), Recorder("watcher"), Recorder("device")
    router.subscribe(watcher, "devices/#", SubscriptionOptions(qos=0))
    router.publish(msg("devices/other/cmd"))
    router.publish(msg("devices/d1/cmd"))
    kept = router._matches["devices/other/cmd"]
    router.subscribe(device, "devices/d1/cmd", SubscriptionOptions(qos=1))
    assert router._matches.get("devices/other/cmd") is kept
    assert router.publish(msg("devices/d1/cmd")) == 2
    assert [d.qos for d in device.got] == [1]
    assert router.unsubscribe(device, "devices/d1/cmd")
    assert router._matches.get("devices/other/cmd") is kept
    assert router.publish(msg("devices/d1/cmd")) == 1
    assert len(device.got) == 1
    router.subscribe(device, "devices/+/cmd", SubscriptionOptions(qos=2))
    assert "devices/other/cmd" not in router._matches
    assert router.publish(msg("devices/other/cmd")) == 2
