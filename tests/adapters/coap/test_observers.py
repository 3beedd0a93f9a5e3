"""Observers as core subscribers: keys, subscriptions, bounded queues, sequence numbers."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.coap.errors import BadTopic, Overloaded
from adapters.coap.observers import Observer, ObserverRegistry, identity_key
from core.message import Message, Origin
from core.router import Router

KEY = (identity_key("dev1", None, "127.0.0.1:5000"), b"\x01")


class FakeLink:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


def registry(**kwargs: Any) -> ObserverRegistry:
    return ObserverRegistry(Router(), ("ps",), **kwargs)


def drain(observer: Observer, now: float = 0.0) -> list[bytes]:
    taken = []
    while (notification := observer.take(now)) is not None:
        taken.append(notification.payload)
    return taken


def test_identity_is_the_clientid_and_username_when_given_else_the_address() -> None:
    assert identity_key("dev1", "u", "1.2.3.4:5") == ("client", "dev1", "u")
    assert identity_key(None, "u", "1.2.3.4:5") == ("address", "1.2.3.4:5")


def test_a_registration_subscribes_once_and_a_publish_queues_one_notification() -> None:
    observers = registry()
    observer, new = observers.register(KEY, "a/+", 1, "dev1")
    assert new and observers.router.subscription_count() == 1
    link = FakeLink()
    observer.attach(link)
    observers.router.publish(Message("a/b", b"v", qos=1))
    assert link.wakes == 1
    notification = observer.take(0.0)
    assert notification is not None
    assert (notification.payload, notification.location, notification.confirmable) == (b"v", ("ps", "a", "b"), True)


def test_the_same_key_and_filter_finds_the_same_observer_and_keeps_one_subscription() -> None:
    observers = registry()
    observer, _ = observers.register(KEY, "a", 1, "dev1")
    again, new = observers.register(KEY, "a", 0, "dev1")
    assert again is observer and not new and observer.qos == 0
    assert observers.router.subscription_count() == 1


def test_the_same_key_for_another_filter_replaces_the_observer() -> None:
    observers = registry()
    removed = []
    observers.on_remove.append(removed.append)
    old, _ = observers.register(KEY, "a", 1, "dev1")
    new, is_new = observers.register(KEY, "b", 1, "dev1")
    assert is_new and new is not old and removed == [old] and old.closed
    assert [f for f, *_ in observers.router.subscriptions()] == ["b"]


def test_attaching_a_new_exchange_returns_the_one_it_replaces() -> None:
    observer, _ = registry().register(KEY, "a", 1, None)
    first, second = FakeLink(), FakeLink()
    assert observer.attach(first) is None
    assert observer.attach(second) is first
    assert observer.is_online


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    observers = registry(queue_limit=3)
    observer, _ = observers.register(KEY, "q", 1, None)
    for i in range(5):
        observers.router.publish(Message("q", b"%d" % i, qos=1))
    assert (observer.dropped, observers.dropped, len(observer)) == (2, 2, 3)
    assert drain(observer) == [b"2", b"3", b"4"]


def test_a_requeued_notification_goes_first_unless_the_queue_is_full() -> None:
    observers = registry(queue_limit=2)
    observer, _ = observers.register(KEY, "q", 1, None)
    observers.router.publish(Message("q", b"new", qos=1))
    unacked = observer.take(0.0)
    observers.router.publish(Message("q", b"newer", qos=1))
    assert unacked is not None
    link = FakeLink()
    observer.attach(link)
    observer.requeue(unacked)
    assert link.wakes == 1  # whoever sends now learns there is something to send
    assert drain(observer) == [b"new", b"newer"]
    observers.router.publish(Message("q", b"a", qos=1))
    observers.router.publish(Message("q", b"b", qos=1))
    observer.requeue(unacked)
    assert drain(observer) == [b"a", b"b"] and observer.dropped == 1


def test_expired_messages_are_skipped_and_counted() -> None:
    observers = registry()
    observer, _ = observers.register(KEY, "e", 1, None)
    observers.router.publish(Message("e", b"stale", expiry=10.0))
    observers.router.publish(Message("e", b"fresh", expiry=100.0))
    assert drain(observer, now=50.0) == [b"fresh"]
    assert observers.expired == 1


def test_sequence_numbers_increase_across_observers_and_wrap_at_24_bits() -> None:
    observers = registry()
    numbers = [observers.next_sequence() for _ in range(3)]
    assert numbers == [1, 2, 3]
    observers._sequence = 0xFFFFFF
    assert observers.next_sequence() == 0


def test_the_observer_limit_is_an_overload() -> None:
    observers = registry(max_observers=1)
    observers.register(KEY, "a", 0, None)
    with pytest.raises(Overloaded):
        observers.register((KEY[0], b"\x02"), "b", 0, None)


def test_a_bad_shared_filter_is_a_bad_topic() -> None:
    with pytest.raises(BadTopic):
        registry().register(KEY, "$share//a", 0, None)


def test_removing_unsubscribes_and_tells_the_listeners_once() -> None:
    observers = registry()
    removed = []
    observers.on_remove.append(removed.append)
    observer, _ = observers.register(KEY, "a", 0, None)
    assert observers.remove(observer) and not observers.remove(observer)
    assert removed == [observer] and observers.router.subscription_count() == 0 and len(observers) == 0


def test_retained_messages_become_notifications_at_the_observers_qos() -> None:
    observers = registry()
    observers.router.publish(Message("r/a", b"1", qos=1, retain=True))
    observers.router.publish(Message("r/b", b"2", qos=0, retain=True))
    observer, _ = observers.register(KEY, "r/+", 1, None)
    got = sorted((n.topic, n.confirmable) for n in observers.retained(observer))
    assert got == [("r/a", True), ("r/b", False)]
    assert observers.answers_with_retained("r/a") and not observers.answers_with_retained("r/+")


def test_an_observer_knows_the_messages_its_client_published() -> None:
    observer, _ = registry().register(KEY, "a", 0, "dev1")
    assert observer.is_origin_of(Message("a", origin=Origin("coap", "dev1")))
    assert not observer.is_origin_of(Message("a", origin=Origin("mqtt", "dev1")))
    anonymous, _ = registry().register(KEY, "a", 0, None)
    assert not anonymous.is_origin_of(Message("a", origin=Origin("coap", "")))
