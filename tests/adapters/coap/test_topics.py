"""URI paths <-> topics under the /ps mount point."""

from __future__ import annotations

import pytest

from adapters.coap.errors import BadTopic
from adapters.coap.topics import filter_from_path, href_for_topic, path_for_topic, topic_from_path


def test_segments_are_topic_levels() -> None:
    assert topic_from_path(["sensors", "t1"]) == "sensors/t1"


def test_empty_segments_are_empty_levels() -> None:
    assert topic_from_path(["a", "", "b", ""]) == "a//b/"


def test_segments_are_percent_decoded_once_more() -> None:
    assert topic_from_path(["caf%C3%A9", "a%20b"]) == "café/a b"
    assert filter_from_path(["a", "%23"]) == "a/#"


def test_wildcards_make_filters_but_not_topic_names() -> None:
    assert filter_from_path(["a", "+", "#"]) == "a/+/#"
    for path in (["a", "+"], ["a", "#"], ["a", "%23"]):
        with pytest.raises(BadTopic):
            topic_from_path(path)


@pytest.mark.parametrize("path", [[], ["a", "#", "b"], ["a+"], ["x#"], ["%FF"], ["a\x00"]])
def test_malformed_paths_are_bad_topics(path: list[str]) -> None:
    with pytest.raises(BadTopic):
        filter_from_path(path)


def test_a_topic_goes_back_to_path_segments_under_the_mount() -> None:
    assert path_for_topic(("ps",), "a//b") == ("ps", "a", "", "b")


def test_hrefs_percent_encode_what_a_uri_path_cannot_hold() -> None:
    assert href_for_topic(("ps",), "a b/c?d/é") == "/ps/a%20b/c%3Fd/%C3%A9"
    assert href_for_topic((), "sensors/t1") == "/sensors/t1"
