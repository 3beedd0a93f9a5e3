"""Topic name and filter syntax, shared filters and the reference matcher (MQTT 5.0 sections 4.7, 4.8.2)."""

from __future__ import annotations

import pytest

from core.topics import (
    InvalidTopic,
    is_wildcard,
    parse_shared_filter,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)

VALID_NAMES = [
    "sport/tennis/player1",
    "sport",
    "/",
    "/finance",
    "sport/",
    "//",
    " ",
    "$SYS/broker/clients",
    "ACCOUNTS",
    "accounts",
    "a/b c/d",
    "température/°C",
    "x" * 65535,
    "€" * 21845,  # 65535 bytes of 3-byte characters
]

INVALID_NAMES = [
    "",
    "sport/tennis/+",
    "sport/#",
    "#",
    "+",
    "sport+",
    "a\x00b",
    "x" * 65536,
    "€" * 21846,
    "bad\ud800surrogate",
]

VALID_FILTERS = [
    "sport/tennis/player1/#",
    "sport/#",
    "#",
    "+",
    "+/tennis/#",
    "sport/+/player1",
    "+/+",
    "/+",
    "+/",
    "sport/+",
    "$SYS/#",
    "$SYS/monitor/+",
    "a//b",
    "/",
    "sport",
]

INVALID_FILTERS = [
    "",
    "sport/tennis#",
    "sport/tennis/#/ranking",
    "#/",
    "##",
    "sport+",
    "sport/+tennis",
    "++",
    "a/b\x00",
    "x" * 65536,
]


@pytest.mark.parametrize("topic", VALID_NAMES)
def test_valid_topic_names_are_accepted(topic: str) -> None:
    validate_topic_name(topic)


@pytest.mark.parametrize("topic", INVALID_NAMES)
def test_invalid_topic_names_are_rejected(topic: str) -> None:
    with pytest.raises(InvalidTopic):
        validate_topic_name(topic)


@pytest.mark.parametrize("topic_filter", VALID_FILTERS)
def test_valid_topic_filters_are_accepted(topic_filter: str) -> None:
    validate_topic_filter(topic_filter)


@pytest.mark.parametrize("topic_filter", INVALID_FILTERS)
def test_invalid_topic_filters_are_rejected(topic_filter: str) -> None:
    with pytest.raises(InvalidTopic):
        validate_topic_filter(topic_filter)


def test_invalid_topic_is_a_value_error_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="'#' must be the last level"):
        validate_topic_filter("a/#/b")
    with pytest.raises(ValueError, match="wildcards"):
        validate_topic_name("a/+")


@pytest.mark.parametrize(
    ("topic_filter", "expected"),
    [
        ("$share/consumer1/sport/tennis/+", ("consumer1", "sport/tennis/+")),
        ("$share/consumer2/sport/tennis/+", ("consumer2", "sport/tennis/+")),
        ("$share/consumer1//finance", ("consumer1", "/finance")),
        ("$share/g/#", ("g", "#")),
        ("$share/g/$SYS/#", ("g", "$SYS/#")),
        ("sport/tennis/+", (None, "sport/tennis/+")),
        ("$SYS/#", (None, "$SYS/#")),
        ("$share", (None, "$share")),
        ("$shared/g/x", (None, "$shared/g/x")),
    ],
)
def test_shared_filters_split_into_group_and_filter(
    topic_filter: str, expected: tuple[str | None, str]
) -> None:
    assert parse_shared_filter(topic_filter) == expected


@pytest.mark.parametrize(
    "topic_filter",
    [
        "$share/group",
        "$share/group/",
        "$share//x",
        "$share/",
        "$share/gr+oup/x",
        "$share/+/x",
        "$share/gr#/x",
        "$share/g/a/#/b",
        "$share/g/a+",
        "sport/tennis#",
        "",
    ],
)
def test_malformed_shared_filters_are_rejected(topic_filter: str) -> None:
    with pytest.raises(InvalidTopic):
        parse_shared_filter(topic_filter)


MATCHING = [
    ("sport/tennis/player1/#", "sport/tennis/player1"),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking"),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"),
    ("sport/#", "sport"),
    ("#", "sport/tennis"),
    ("#", "/"),
    ("sport/tennis/+", "sport/tennis/player1"),
    ("sport/tennis/+", "sport/tennis/player2"),
    ("sport/+", "sport/"),
    ("+/+", "/finance"),
    ("/+", "/finance"),
    ("+", "sport"),
    ("+/tennis/#", "sport/tennis/player1"),
    ("$SYS/#", "$SYS/monitor/Clients"),
    ("$SYS/#", "$SYS"),
    ("$SYS/monitor/+", "$SYS/monitor/Clients"),
    ("a//b", "a//b"),
    ("a/+/b", "a//b"),
    ("+/$x", "a/$x"),
]

NOT_MATCHING = [
    ("sport/tennis/+", "sport/tennis/player1/ranking"),
    ("sport/+", "sport"),
    ("+", "/finance"),
    ("/+", "finance"),
    ("sport/tennis/player1", "sport/tennis/player1/ranking"),
    ("sport/tennis/player1/#", "sport/tennis"),
    ("#", "$SYS/monitor/Clients"),
    ("#", "$SYS"),
    ("+/monitor/Clients", "$SYS/monitor/Clients"),
    ("+", "$SYS"),
    ("ACCOUNTS", "accounts"),
    ("a/b", "a/b/"),
]


@pytest.mark.parametrize(("topic_filter", "topic"), MATCHING)
def test_filter_matches_topic(topic_filter: str, topic: str) -> None:
    assert topic_matches(topic_filter, topic)


@pytest.mark.parametrize(("topic_filter", "topic"), NOT_MATCHING)
def test_filter_does_not_match_topic(topic_filter: str, topic: str) -> None:
    assert not topic_matches(topic_filter, topic)


def test_hash_matches_parent_level() -> None:
    assert topic_matches("a/#", "a")
    assert not topic_matches("a/b/#", "a")


def test_plus_matches_an_empty_level() -> None:
    assert topic_matches("a/+/c", "a//c")
    assert topic_matches("+/x", "/x")


def test_is_wildcard_detects_plus_and_hash() -> None:
    assert is_wildcard("a/+/b")
    assert is_wildcard("#")
    assert not is_wildcard("a/b")
    assert not is_wildcard("$SYS/x")


def test_a_filter_parsed_again_gives_the_same_answer_and_an_invalid_one_is_refused_every_time() -> None:
    for _ in range(3):
        assert parse_shared_filter("$share/g/a/+") == ("g", "a/+")
        assert parse_shared_filter("a/#") == (None, "a/#")
        validate_topic_filter("$share/g/a/+")  # a valid shared filter is a valid filter
        with pytest.raises(InvalidTopic):
            parse_shared_filter("a/#/b")
        with pytest.raises(InvalidTopic):
            validate_topic_filter("a/b#")
        with pytest.raises(InvalidTopic):
            parse_shared_filter("$share/g+/a")


def test_the_kept_filters_restart_when_full_and_answers_stay_right() -> None:
    from core import topics

    for i in range(topics.PARSED_KEPT + 10):
        assert parse_shared_filter(f"devices/d{i}/cmd") == (None, f"devices/d{i}/cmd")
    assert len(topics._PARSED) <= topics.PARSED_KEPT
    assert parse_shared_filter("devices/d0/cmd") == (None, "devices/d0/cmd")
    with pytest.raises(InvalidTopic):
        parse_shared_filter("devices/+x")


def test_long_filters_are_parsed_every_time_not_kept() -> None:
    from core import topics

    long_filter = "a/" + "x" * topics.PARSED_MAX_CHARS
    assert parse_shared_filter(long_filter) == (None, long_filter)
    assert long_filter not in topics._PARSED
    validate_topic_filter(long_filter)
    with pytest.raises(InvalidTopic):
        parse_shared_filter(long_filter + "#")

