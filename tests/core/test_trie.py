"""The subscription trie: matching, `$` rules, add/remove/prune, replace semantics and shared groups."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.topics import InvalidTopic, topic_matches
from core.trie import SubscriptionTrie
from tests.core.test_topics import MATCHING, NOT_MATCHING

Trie = SubscriptionTrie[str, int]


def keys(pairs: list[tuple[str, int]]) -> list[str]:
    return sorted(key for key, _ in pairs)


def is_empty(trie: SubscriptionTrie[str, int]) -> bool:
    return trie._root.is_bare() and trie._dollar_root.is_bare() and not trie._exact


@pytest.mark.parametrize(("topic_filter", "topic"), MATCHING)
def test_trie_matches_what_the_spec_matches(topic_filter: str, topic: str) -> None:
    trie: Trie = SubscriptionTrie()
    trie.add(topic_filter, "s", 1)
    assert trie.match(topic) == [("s", 1)]


@pytest.mark.parametrize(("topic_filter", "topic"), NOT_MATCHING)
def test_trie_does_not_match_what_the_spec_does_not(topic_filter: str, topic: str) -> None:
    trie: Trie = SubscriptionTrie()
    trie.add(topic_filter, "s", 1)
    assert trie.match(topic) == []


def test_match_collects_every_matching_filter_of_every_subscriber() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("sport/tennis/player1", "exact", 1)
    trie.add("sport/tennis/+", "plus", 2)
    trie.add("sport/#", "hash", 3)
    trie.add("#", "everything", 4)
    trie.add("+/+/+", "three", 5)
    trie.add("sport/tennis/player2", "other", 6)
    trie.add("sport/#", "exact", 7)
    assert sorted(trie.match("sport/tennis/player1")) == [
        ("everything", 4),
        ("exact", 1),
        ("exact", 7),
        ("hash", 3),
        ("plus", 2),
        ("three", 5),
    ]


def test_hash_matches_parent_level() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("sport/tennis/player1/#", "s", 1)
    assert keys(trie.match("sport/tennis/player1")) == ["s"]
    assert trie.match("sport/tennis") == []


def test_dollar_topics_are_not_matched_by_root_wildcards() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("#", "hash", 1)
    trie.add("+/monitor/Clients", "plus", 2)
    trie.add("$SYS/#", "sys", 3)
    trie.add("$SYS/monitor/+", "monitor", 4)
    assert keys(trie.match("$SYS/monitor/Clients")) == ["monitor", "sys"]
    assert keys(trie.match("$SYS")) == ["sys"]
    assert keys(trie.match("a/monitor/Clients")) == ["hash", "plus"]


def test_dollar_below_the_first_level_is_an_ordinary_character() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("+/$x", "plus", 1)
    trie.add("a/#", "hash", 2)
    assert keys(trie.match("a/$x")) == ["hash", "plus"]


def test_empty_levels_are_levels_like_any_other() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("/+", "leading", 1)
    trie.add("+/+", "two", 2)
    trie.add("+", "one", 3)
    trie.add("a//b", "middle", 4)
    assert keys(trie.match("/finance")) == ["leading", "two"]
    assert keys(trie.match("finance")) == ["one"]
    assert keys(trie.match("a//b")) == ["middle"]


def test_add_reports_new_and_replaced_subscriptions() -> None:
    trie: Trie = SubscriptionTrie()
    assert trie.add("a/b", "s", 1) is True
    assert trie.add("a/b", "s", 2) is False
    assert trie.add("a/b", "t", 3) is True
    assert trie.add("a/+", "s", 4) is True
    assert trie.add("a/b", "s", 5, share_group="g") is True
    assert trie.add("a/b", "s", 6, share_group="g") is False
    assert len(trie) == 4
    assert sorted(trie.match("a/b")) == [("s", 2), ("s", 4), ("t", 3)]


def test_add_rejects_invalid_filters_and_share_groups() -> None:
    trie: Trie = SubscriptionTrie()
    with pytest.raises(InvalidTopic):
        trie.add("a/#/b", "s", 1)
    with pytest.raises(InvalidTopic):
        trie.add("", "s", 1)
    with pytest.raises(InvalidTopic):
        trie.add("a", "s", 1, share_group="g/h")
    with pytest.raises(InvalidTopic):
        trie.add("a", "s", 1, share_group="")
    assert len(trie) == 0
    assert is_empty(trie)


def test_remove_reports_whether_the_subscription_existed() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("a/b", "s", 1)
    assert trie.remove("a/b", "t") is False
    assert trie.remove("a/c", "s") is False
    assert trie.remove("a/b/c", "s") is False
    assert trie.remove("a/#", "s") is False
    assert trie.remove("a/b", "s", share_group="g") is False
    assert trie.remove("", "s") is False
    assert trie.remove("a/b", "s") is True
    assert trie.remove("a/b", "s") is False
    assert len(trie) == 0


def test_removing_everything_prunes_the_trie_back_to_bare_roots() -> None:
    filters = ["a/b/c", "a/+/c", "a/#", "#", "+", "+/+", "/", "//x", "$SYS/#", "$SYS/a/+", "a/b"]
    trie: Trie = SubscriptionTrie()
    for index, topic_filter in enumerate(filters):
        trie.add(topic_filter, "s", index)
        trie.add(topic_filter, "t", index)
        trie.add(topic_filter, "s", index, share_group="g")
    assert len(trie) == 3 * len(filters)
    for topic_filter in filters:
        assert trie.remove(topic_filter, "s")
        assert trie.remove(topic_filter, "t")
        assert trie.remove(topic_filter, "s", share_group="g")
    assert len(trie) == 0
    assert trie._root.children is None and trie._root.plus_child is None
    assert trie._dollar_root.children is None
    assert is_empty(trie)
    assert trie.match("a/b/c") == []


def test_removing_a_leaf_keeps_the_branches_others_still_use() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("a/b/c/+", "deep", 1)  # (wildcard filters live on nodes: filters without are in a table)
    trie.add("a/b/#", "shallow", 2)
    assert trie.remove("a/b/c/+", "deep")
    root_children = trie._root.children
    assert root_children is not None
    node_b = root_children["a"].children["b"]  # type: ignore[index]
    assert node_b.children is None
    assert keys(trie.match("a/b/c/d")) == ["shallow"]


def test_a_filter_without_wildcards_makes_no_node_and_its_subscribers_come_first_on_its_topic() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("devices/d1/cmd", "exact", 1)
    assert trie._root.is_bare() and trie._exact == {"devices/d1/cmd": {"exact": 1}}
    trie.add("devices/d1/cmd/#", "below", 2)  # also matches devices/d1/cmd, on the topic's own node
    trie.add("devices/+/cmd", "plus", 3)
    trie.add("devices/#", "above", 4)
    assert [key for key, _ in trie.match("devices/d1/cmd")] == ["above", "exact", "below", "plus"]
    assert trie.match("devices/d2/cmd") == [("above", 4), ("plus", 3)]
    assert ("devices/d1/cmd", None, "exact", 1) in list(trie.subscriptions())
    assert trie.add("devices/d1/cmd", "exact", 5) is False  # replaced, not added
    assert trie.match("devices/d1/cmd")[1] == ("exact", 5)
    assert len(trie) == 4
    assert trie.remove("devices/d1/cmd", "exact") and not trie.remove("devices/d1/cmd", "exact")
    assert trie._exact == {} and len(trie) == 3
    assert trie.match("x/y") == [] and not trie.remove("x/y", "exact")


def test_shared_subscriptions_are_kept_apart_per_group_and_filter() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("sport/+", "s1", 1, share_group="g1")
    trie.add("sport/+", "s2", 2, share_group="g1")
    trie.add("sport/#", "s3", 3, share_group="g1")
    trie.add("sport/+", "s4", 4, share_group="g2")
    trie.add("sport/+", "s1", 5)
    assert trie.match("sport/tennis") == [("s1", 5)]
    shared = dict(trie.match_shared("sport/tennis"))
    assert shared == {
        ("g1", "sport/+"): {"s1": 1, "s2": 2},
        ("g1", "sport/#"): {"s3": 3},
        ("g2", "sport/+"): {"s4": 4},
    }
    assert dict(trie.match_shared("sport")) == {("g1", "sport/#"): {"s3": 3}}


def test_shared_subscriptions_follow_the_dollar_rule() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("#", "s1", 1, share_group="g")
    trie.add("$SYS/#", "s2", 2, share_group="g")
    assert dict(trie.match_shared("$SYS/x")) == {("g", "$SYS/#"): {"s2": 2}}
    assert dict(trie.match_shared("x")) == {("g", "#"): {"s1": 1}}


def test_match_all_returns_normal_and_shared_in_one_walk() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("a/+", "s", 1)
    trie.add("a/#", "t", 2, share_group="g")
    normal, shared = trie.match_all("a/b")
    assert normal == [("s", 1)]
    assert shared == [(("g", "a/#"), {"t": 2})]


def test_removing_the_last_member_drops_the_share_group() -> None:
    trie: Trie = SubscriptionTrie()
    trie.add("a", "s1", 1, share_group="g")
    trie.add("a", "s2", 2, share_group="g")
    assert trie.remove("a", "s1", share_group="g")
    assert dict(trie.match_shared("a")) == {("g", "a"): {"s2": 2}}
    assert trie.remove("a", "s2", share_group="g")
    assert trie.match_shared("a") == []
    assert is_empty(trie)


def test_subscriptions_lists_every_subscription_with_its_filter_and_group() -> None:
    entries = {
        ("a/b", None, "s", 1),
        ("a/#", None, "s", 2),
        ("#", None, "t", 3),
        ("+/x/+", None, "t", 4),
        ("$SYS/#", None, "u", 5),
        ("/", None, "u", 6),
        ("a/+", "g", "s", 7),
        ("a/#", "g", "t", 8),
    }
    trie: Trie = SubscriptionTrie()
    for topic_filter, group, key, value in entries:
        trie.add(topic_filter, key, value, share_group=group)
    assert set(trie.subscriptions()) == entries
    assert len(trie) == len(entries)


def test_subscriptions_is_a_snapshot_safe_to_remove_from() -> None:
    trie: Trie = SubscriptionTrie()
    for index in range(5):
        trie.add(f"a/{index}", "s", index)
    for topic_filter, group, key, _ in trie.subscriptions():
        trie.remove(topic_filter, key, share_group=group)
    assert len(trie) == 0
    assert is_empty(trie)


# -- property: the trie agrees with the reference matcher ----------------------

LEVELS = ["a", "b", "", "$SYS", "$x"]
FILTER_LEVELS = LEVELS + ["+"]

topic_names = st.lists(st.sampled_from(LEVELS), min_size=1, max_size=4).map("/".join).filter(bool)


@st.composite
def topic_filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.sampled_from(FILTER_LEVELS), min_size=0, max_size=4))
    if draw(st.booleans()) or not levels:
        levels.append("#")
    topic_filter = "/".join(levels)
    return topic_filter or "#"


@settings(max_examples=300)
@given(
    filters=st.lists(topic_filters(), min_size=1, max_size=12),
    topics=st.lists(topic_names, min_size=1, max_size=8),
)
def test_trie_match_agrees_with_topic_matches(filters: list[str], topics: list[str]) -> None:
    trie: SubscriptionTrie[int, str] = SubscriptionTrie()
    for index, topic_filter in enumerate(filters):
        trie.add(topic_filter, index, topic_filter)
        trie.add(topic_filter, index, topic_filter, share_group="g")
    for topic in topics:
        expected = sorted(index for index, f in enumerate(filters) if topic_matches(f, topic))
        assert sorted(index for index, _ in trie.match(topic)) == expected
        assert sorted(index for index, _ in trie.match_all(topic)[0]) == expected
        shared_filters = sorted(f for (_, f), _members in trie.match_shared(topic))
        assert shared_filters == sorted({f for f in filters if topic_matches(f, topic)})


@settings(max_examples=200)
@given(
    filters=st.lists(topic_filters(), min_size=1, max_size=12),
    removed=st.sets(st.integers(min_value=0, max_value=11)),
    topic=topic_names,
)
def test_trie_stays_consistent_after_removals(filters: list[str], removed: set[int], topic: str) -> None:
    trie: SubscriptionTrie[int, str] = SubscriptionTrie()
    for index, topic_filter in enumerate(filters):
        trie.add(topic_filter, index, topic_filter)
    for index in removed:
        if index < len(filters):
            assert trie.remove(filters[index], index)
    kept = [index for index in range(len(filters)) if index not in removed]
    assert len(trie) == len(kept)
    expected = sorted(index for index in kept if topic_matches(filters[index], topic))
    assert sorted(index for index, _ in trie.match(topic)) == expected
    for index in kept:
        trie.remove(filters[index], index)
    assert is_empty(trie)
