"""Query parameters: EMQX's names and short forms, checked strictly."""

from __future__ import annotations

import pytest

from adapters.coap.errors import BadOption
from adapters.coap.query import Query, parse_query


def test_no_query_gives_nothing_set() -> None:
    assert parse_query(()) == Query()


def test_long_and_short_names_mean_the_same() -> None:
    long = parse_query(["clientid=c1", "username=u", "password=p", "token=t", "qos=2", "retain=true", "expiry=60"])
    short = parse_query(["c=c1", "u=u", "p=p", "t=t", "q=2", "r=1", "expiry=60"])
    assert long == short == Query("c1", "u", b"p", "t", 2, True, 60)


def test_names_are_case_insensitive_and_values_are_kept_as_given() -> None:
    assert parse_query(["ClientID=Dev=1"]) == Query(client_id="Dev=1")


def test_an_empty_password_is_a_password_but_empty_ids_are_absent() -> None:
    assert parse_query(["c=", "u=", "t=", "p="]) == Query(password=b"")


@pytest.mark.parametrize("value, expected", [("true", True), ("1", True), ("on", True), ("FALSE", False), ("0", False)])
def test_retain_accepts_the_usual_spellings(value: str, expected: bool) -> None:
    assert parse_query([f"retain={value}"]).retain is expected


@pytest.mark.parametrize(
    "parts",
    [
        ["qos=3"], ["qos=-1"], ["qos=one"], ["retain=maybe"], ["expiry=0"], ["expiry=-5"], ["expiry=1.5"],
        ["expiry=4294967296"], ["colour=red"], ["qos"], ["c=a", "clientid=b"], ["r=1", "retain=1"],
    ],
    ids=lambda parts: "&".join(parts),
)
def test_bad_parameters_are_a_bad_option(parts: list[str]) -> None:
    with pytest.raises(BadOption):
        parse_query(parts)
