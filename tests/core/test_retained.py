"""The retained store: set/replace/clear, wildcard lookups, the `$` rule and expiry."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.message import Message
from core.retained import RetainedStore
from core.topics import topic_matches


def retained(topic: str, payload: bytes = b"x", expiry: float | None = None) -> Message:
    return Message(topic=topic, payload=payload, retain=True, expiry=expiry)


def topics(messages: list[Message]) -> list[str]:
    return sorted(message.topic for message in messages)


def store_with(*topic_names: str) -> RetainedStore:
    store = RetainedStore()
    for topic in topic_names:
        store.set(retained(topic))
    return store


def test_set_stores_and_get_returns_the_message_as_given() -> None:
    store = RetainedStore()
    message = retained("a/b", b"1")
    assert store.set(message) is True
    assert store.get("a/b") is message
    assert store.get("a") is None
    assert store.get("a/b/c") is None
    assert len(store) == 1


def test_set_replaces_the_previous_message_of_the_topic() -> None:
    store = RetainedStore()
    store.set(retained("a/b", b"1"))
    newer = retained("a/b", b"2")
    assert store.set(newer) is True
    assert store.get("a/b") is newer
    assert len(store) == 1


def test_empty_payload_clears_the_retained_message() -> None:
    store = store_with("a/b", "a/b/c")
    assert store.set(retained("a/b", b"")) is True
    assert store.get("a/b") is None
    assert store.get("a/b/c") is not None
    assert len(store) == 1


def test_empty_payload_for_an_unknown_topic_changes_nothing() -> None:
    store = store_with("a/b")
    assert store.set(retained("a/c", b"")) is False
    assert store.set(retained("a", b"")) is False
    assert len(store) == 1


def test_delete_reports_whether_there_was_a_message_and_prunes_levels() -> None:
    store = store_with("a/b/c")
    assert store.delete("a/b") is False
    assert store.delete("a/b/c/d") is False
    assert store.delete("a/b/c") is True
    assert store.delete("a/b/c") is False
    assert len(store) == 0
    assert store._root.children == {}


def test_match_follows_literal_plus_and_hash_levels() -> None:
    store = store_with(
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player2",
        "sport/badminton",
        "sport",
        "finance",
        "/finance",
    )
    assert topics(store.match("sport/tennis/player1")) == ["sport/tennis/player1"]
    assert topics(store.match("sport/tennis/+")) == ["sport/tennis/player1", "sport/tennis/player2"]
    assert topics(store.match("sport/tennis/player1/#")) == [
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
    ]
    assert topics(store.match("sport/#")) == [
        "sport",
        "sport/badminton",
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player2",
    ]
    assert topics(store.match("+")) == ["finance", "sport"]
    assert topics(store.match("/+")) == ["/finance"]
    assert topics(store.match("+/+")) == ["/finance", "sport/badminton"]
    assert topics(store.match("+/tennis/#")) == [
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player2",
    ]
    assert store.match("nothing/#") == []
    assert store.match("sport/tennis") == []


def test_root_wildcards_skip_dollar_topics() -> None:
    store = store_with("$SYS/broker/uptime", "$SYS", "a/$x", "a")
    assert topics(store.match("#")) == ["a", "a/$x"]
    assert topics(store.match("+")) == ["a"]
    assert topics(store.match("+/broker/uptime")) == []
    assert topics(store.match("$SYS/#")) == ["$SYS", "$SYS/broker/uptime"]
    assert topics(store.match("$SYS/+/uptime")) == ["$SYS/broker/uptime"]
    assert topics(store.match("a/+")) == ["a/$x"]


def test_expired_messages_are_absent_and_pruned_on_get() -> None:
    store = RetainedStore()
    store.set(retained("a/b", expiry=100.0))
    assert store.get("a/b", now=99.0) is not None
    assert store.get("a/b", now=100.0) is None
    assert len(store) == 0
    assert store._root.children == {}


def test_expired_messages_are_left_out_of_matches_and_pruned() -> None:
    store = RetainedStore()
    store.set(retained("a/old", expiry=100.0))
    store.set(retained("a/new", expiry=200.0))
    store.set(retained("a/forever"))
    assert topics(store.match("a/#", now=150.0)) == ["a/forever", "a/new"]
    assert len(store) == 2
    assert topics(store.match("a/+", now=250.0)) == ["a/forever"]
    assert len(store) == 1
    assert store.match("a/new", now=250.0) == []


def test_prune_expired_sweeps_the_whole_store() -> None:
    store = RetainedStore()
    store.set(retained("a", expiry=100.0))
    store.set(retained("b/c", expiry=100.0))
    store.set(retained("d"))
    assert store.prune_expired(now=100.0) == 2
    assert topics(list(store)) == ["d"]
    assert len(store) == 1


def test_iteration_yields_every_live_message_from_a_snapshot() -> None:
    store = store_with("a", "a/b", "$SYS/x", "/")
    store.set(retained("gone", expiry=1.0))  # long past in wall-clock time
    assert topics(list(store)) == ["$SYS/x", "/", "a", "a/b"]
    for message in store:
        store.delete(message.topic)
    assert len(store) == 1  # the expired one, until something prunes it
    assert store.prune_expired() == 1
    assert store._root.children == {}


LEVELS = ["a", "b", "", "$SYS"]
topic_names = st.lists(st.sampled_from(LEVELS), min_size=1, max_size=4).map("/".join).filter(bool)


@st.composite
def topic_filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.sampled_from(LEVELS + ["+"]), min_size=0, max_size=4))
    if draw(st.booleans()) or not levels:
        levels.append("#")
    return "/".join(levels)


@settings(max_examples=300)
@given(stored=st.sets(topic_names, min_size=1, max_size=12), topic_filter=topic_filters())
def test_match_agrees_with_topic_matches(stored: set[str], topic_filter: str) -> None:
    store = store_with(*stored)
    expected = sorted(topic for topic in stored if topic_matches(topic_filter, topic))
    assert topics(store.match(topic_filter)) == expected
