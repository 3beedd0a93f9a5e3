"""What each request on /ps asks of the core, and how messages become notifications."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.coap.errors import BadCriticalOption, BadTopic, MethodNotAllowed, TooLarge
from adapters.coap.pubsub import (
    Clear, Notification, Observe, Publish, Read, Unobserve, check_critical_options, notification_for,
    notification_of_delivery, plan_request,
)
from adapters.coap.query import Query
from core.message import Message, Origin
from core.subscriptions import Delivery

NOW = 1_000_000.0
ORIGIN = Origin("coap", "dev1", "alice")


def plan(method: str, path: str, query: Query = Query(), **kwargs: Any) -> Any:
    options: dict[str, Any] = {"payload": b"", "content_format": None, "confirmable": True, "observe": None,
                               "origin": ORIGIN, "max_payload": 100, "now": NOW}
    options.update(kwargs)
    return plan_request(method, path.split("/"), query, **options)


def test_post_and_put_publish_with_qos_1_for_con_and_0_for_non() -> None:
    for method in ("POST", "PUT"):
        assert plan(method, "a/b", payload=b"x").message == Message(
            "a/b", b"x", qos=1, origin=ORIGIN)
    assert plan("POST", "a", confirmable=False).message.qos == 0


def test_the_qos_retain_and_expiry_parameters_apply_to_the_message() -> None:
    message = plan("POST", "a", Query(qos=2, retain=True, expiry=30), confirmable=False).message
    assert (message.qos, message.retain, message.expiry) == (2, True, NOW + 30)


def test_the_content_format_becomes_the_content_type() -> None:
    message = plan("POST", "a", content_format=0, payload=b"hi").message
    assert (message.content_type, message.payload_format_utf8) == ("text/plain;charset=utf-8", True)
    assert plan("POST", "a", content_format=60).message.content_type == "application/cbor"


def test_a_payload_over_the_limit_is_too_large() -> None:
    assert isinstance(plan("POST", "a", payload=b"x" * 100), Publish)
    with pytest.raises(TooLarge):
        plan("POST", "a", payload=b"x" * 101)


def test_get_reads_observes_or_deregisters_by_the_observe_option() -> None:
    assert plan("GET", "a/b") == Read("a/b")
    assert plan("GET", "a/+/%23", observe=0) == Observe("a/+/#", 1)
    assert plan("GET", "a/+", observe=0, confirmable=False) == Observe("a/+", 0)
    assert plan("GET", "a", Query(qos=2), observe=0, confirmable=False) == Observe("a", 2)
    assert plan("GET", "a/+", observe=1) == Unobserve("a/+")


def test_a_read_of_a_wildcard_is_a_bad_topic() -> None:
    with pytest.raises(BadTopic, match="Observe"):
        plan("GET", "a/+")


def test_delete_clears_and_other_methods_are_not_allowed() -> None:
    assert plan("DELETE", "a/b") == Clear("a/b")
    for method in ("FETCH", "PATCH", "iPATCH"):
        with pytest.raises(MethodNotAllowed):
            plan(method, "a")


def test_a_notification_is_con_from_qos_1_and_carries_the_topic_as_location_path() -> None:
    message = Message("x/y", b"v", qos=1, content_type="application/json", expiry=NOW + 10.2)
    assert notification_for(message, 1, ("ps",)) == Notification(
        "x/y", b"v", 50, ("ps", "x", "y"), True, NOW + 10.2)
    assert notification_for(message, 0, ("ps",)).confirmable is False


def test_max_age_is_what_is_left_of_the_expiry_rounded_up() -> None:
    notification = notification_for(Message("t", expiry=NOW + 10.2), 0, ("ps",))
    assert notification.max_age(NOW) == 11
    assert notification.max_age(NOW + 20) == 1
    assert notification_for(Message("t"), 0, ("ps",)).max_age(NOW) is None


def test_a_fan_out_builds_one_notification_per_qos() -> None:
    message = Message("t", b"v", qos=2)
    cache: dict[Any, Any] = {}
    first = notification_of_delivery(Delivery(message, 1, False), ("ps",), cache)
    assert notification_of_delivery(Delivery(message, 1, False), ("ps",), cache) is first
    assert notification_of_delivery(Delivery(message, 0, False), ("ps",), cache) is not first


def test_unprocessed_critical_options_are_refused_and_elective_ones_ignored() -> None:
    check_critical_options([3, 6, 7, 11, 12, 14, 15, 17, 23, 27, 28, 60, 258, 292])
    for number in (1, 5, 9, 35, 39, 65001):  # If-Match, If-None-Match, OSCORE, Proxy-Uri, Proxy-Scheme, unknown
        with pytest.raises(BadCriticalOption):
            check_critical_options([11, number])
