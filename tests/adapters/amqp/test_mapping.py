"""AMQP <-> core mapping, both ways: addresses (reversible escaping) and every mapped property."""

from __future__ import annotations

import datetime

import pytest
from pamqp.commands import Basic

from adapters.amqp.mapping import (
    ADAPTED, amqp_from_message, binding_key_to_filter, filter_to_binding_key, header_text, message_from_amqp,
    routing_key_fits, routing_key_to_topic, topic_key_matches, topic_to_routing_key,
)
from core.message import Message, Origin

NOW = 1_700_000_000.0
ORIGIN = Origin("amqp", "backend", "alice")


@pytest.mark.parametrize("topic, key", [
    ("a/b/c", "a.b.c"),
    ("sensors/v1.2/temp", "sensors.v1%2E2.temp"),
    ("100%/x", "100%25.x"),
    ("a//b", "a..b"),
    ("%2E/.", "%252E.%2E"),
])
def test_topics_and_routing_keys_convert_both_ways_exactly(topic: str, key: str) -> None:
    assert topic_to_routing_key(topic) == key
    assert routing_key_to_topic(key) == topic


@pytest.mark.parametrize("key", ["", "a.+", "#", "a.#.b"])
def test_routing_keys_that_are_no_topic_name_do_not_convert(key: str) -> None:
    assert routing_key_to_topic(key) is None


@pytest.mark.parametrize("binding, topic_filter, exact", [
    ("a.*.c", "a/+/c", True),
    ("a.#", "a/#", True),
    ("#", "#", True),
    ("*.v1%2E2", "+/v1.2", True),
    ("a.#.c", "a/#", False),
    ("a.b+c.d", "a/+/d", False),
])
def test_binding_keys_become_mqtt_filters(binding: str, topic_filter: str, exact: bool) -> None:
    assert binding_key_to_filter(binding) == (topic_filter, exact)
    if exact:
        assert filter_to_binding_key(topic_filter) == binding


def test_the_empty_binding_key_matches_no_topic() -> None:
    assert binding_key_to_filter("") is None


@pytest.mark.parametrize("pattern, key, expected", [
    ("a.*.c", "a.b.c", True), ("a.*.c", "a.c", False), ("a.#.c", "a.c", True), ("a.#.c", "a.x.y.c", True),
    ("#", "anything.at.all", True), ("a.#", "a", True), ("*", "a.b", False), ("a.b", "a.b", True),
])
def test_amqp_topic_matching_follows_rabbitmq(pattern: str, key: str, expected: bool) -> None:
    assert topic_key_matches(pattern, key) is expected


def test_an_amqp_publish_maps_every_property_onto_the_core_message() -> None:
    properties = Basic.Properties(
        content_type="application/json", correlation_id="req-7", reply_to="rpc.replies%2Ev1",
        headers={"site": "north", "x-retain": True, "count": 3, "flag": False, "raw": b"\xc3\xa9",
                 "when": datetime.datetime(2024, 1, 2, 3, 4, 5), "list": ["a", 1], "x-origin-client-id": "forged"},
        expiration="1500", delivery_mode=2,
    )
    message = message_from_amqp("home.kitchen.temp", properties, b"21.5", origin=ORIGIN, now=NOW)
    assert message is not None
    assert message.topic == "home/kitchen/temp"
    assert message.payload == b"21.5"
    assert message.qos == 1 and message.retain is True
    assert message.content_type == "application/json"
    assert message.correlation_data == b"req-7"
    assert message.response_topic == "rpc/replies.v1"
    assert message.user_properties == (
        ("site", "north"), ("count", "3"), ("flag", "false"), ("raw", "é"), ("when", "2024-01-02T03:04:05"),
        ("list", "a"), ("list", "1"),
    )
    assert message.expiry == NOW + 1.5
    assert message.origin == ORIGIN


def test_a_transient_publish_without_properties_is_qos_0_and_not_retained() -> None:
    message = message_from_amqp("a", Basic.Properties(), b"", origin=ORIGIN, now=NOW)
    assert message is not None
    assert (message.qos, message.retain, message.content_type, message.correlation_data) == (0, False, None, None)
    assert (message.response_topic, message.user_properties, message.expiry) == (None, (), None)


def test_an_invalid_expiration_is_refused() -> None:
    with pytest.raises(ValueError):
        message_from_amqp("a", Basic.Properties(expiration="soon"), b"", origin=ORIGIN, now=NOW)


def test_a_core_message_maps_every_property_onto_amqp() -> None:
    message = Message(
        topic="devices/d1/v1.0/out", payload=b"{}", qos=2, retain=True, content_type="application/json",
        correlation_data=b"abc", response_topic="devices/d1/in", user_properties=(("k", "v"), ("k", "w"), ("z", "1")),
        expiry=NOW + 2.0001, origin=Origin("mqtt", "sensor-1", None),
    )
    key, properties = amqp_from_message(message, qos=1, retain=True, now=NOW, origin_header=True)
    assert key == "devices.d1.v1%2E0.out"
    assert properties.content_type == "application/json"
    assert properties.correlation_id == "abc"
    assert properties.reply_to == "devices.d1.in"
    assert properties.headers == {"k": ["v", "w"], "z": "1", "x-retain": True, "x-origin-client-id": "sensor-1"}
    assert properties.expiration == "2001"
    assert properties.delivery_mode == 2


def test_a_qos_0_message_is_transient_and_carries_no_empty_headers() -> None:
    _, properties = amqp_from_message(Message("t", b"x"), qos=0, retain=False, now=NOW)
    assert properties.delivery_mode == 1
    assert properties.headers is None and properties.expiration is None and properties.reply_to is None


def test_properties_survive_a_round_trip_through_the_core() -> None:
    properties = Basic.Properties(content_type="text/plain", correlation_id="c1", reply_to="r.s",
                                  headers={"a": "1", "b": ["x", "y"]}, expiration="5000", delivery_mode=2)
    message = message_from_amqp("a.b", properties, b"p", origin=ORIGIN, now=NOW)
    assert message is not None
    key, back = amqp_from_message(message, qos=message.qos, retain=message.retain, now=NOW)
    assert key == "a.b"
    for name in ("content_type", "correlation_id", "reply_to", "headers", "expiration", "delivery_mode"):
        assert getattr(back, name) == getattr(properties, name), name


def test_header_values_become_text_one_way() -> None:
    assert header_text({"n": 1, "s": b"x"}) == '{"n":1,"s":"x"}'
    assert header_text(None) == ""
    assert header_text(True) == "true"


from hypothesis import given, strategies as st  # noqa: E402

from core.topics import parse_shared_filter, topic_matches  # noqa: E402



@given(st.lists(st.text(alphabet=st.sampled_from("ab.%2E5$"), max_size=6), min_size=1, max_size=5))
def test_any_topic_survives_the_routing_key_round_trip(levels: list[str]) -> None:
    topic = "/".join(levels)
    if not topic:
        return
    assert routing_key_to_topic(topic_to_routing_key(topic)) == topic


@given(st.lists(st.sampled_from(["a", "b", "*", "#", "a+", "%2E", "x%25", "$share", ""]), min_size=1, max_size=5),
       st.lists(st.sampled_from(["a", "b", "c", "%2E", "x%25"]), min_size=1, max_size=5))
def test_the_filter_of_a_binding_key_never_misses_what_the_binding_matches(words: list[str], rk: list[str]) -> None:
    key, routing_key = ".".join(words), ".".join(rk)
    found = binding_key_to_filter(key)
    if found is None:
        return
    try:
        parse_shared_filter(found.topic_filter)
    except ValueError:
        return  # refused by the core: the bind is a 406, tested end to end
    topic = routing_key_to_topic(routing_key)
    assert topic is not None
    if topic_key_matches(key, routing_key):
        assert topic_matches(found.topic_filter, topic)  # a wider filter is fine, a narrower one is not
    if found.exact:
        assert topic_key_matches(key, routing_key) == topic_matches(found.topic_filter, topic)


def test_what_a_short_string_cannot_carry_is_left_out_and_counted() -> None:
    """Found by the fuzzer: an MQTT 5 or admin API publish with a 300-byte content type, correlation
    data, response topic or user property name failed every AMQP delivery (pamqp refused to encode)."""
    before = {kind: getattr(ADAPTED, kind) for kind in ADAPTED.__slots__}
    long = "é" * 128  # 256 bytes of UTF-8
    message = Message("t", b"x", content_type=long, correlation_data=long.encode(), response_topic=long,
                      user_properties=((long, "v"), ("kept", "v")))
    _, properties = amqp_from_message(message, qos=0, retain=False, now=NOW)
    assert (properties.content_type, properties.correlation_id, properties.reply_to) == (None, None, None)
    assert properties.headers == {"kept": "v"}
    properties.marshal()  # encodable
    assert {kind: getattr(ADAPTED, kind) - n for kind, n in before.items()} == {
        "content_type": 1, "correlation_id": 1, "reply_to": 1, "header_names": 1, "long_topics": 0}


@pytest.mark.parametrize("topic, fits", [
    ("a" * 255, True), ("a" * 256, False), ("." * 85, True), ("." * 86, False), ("é" * 127, True), ("é" * 128, False),
])
def test_a_topic_fits_amqp_when_its_routing_key_fits_a_short_string(topic: str, fits: bool) -> None:
    assert routing_key_fits(topic) is fits
    assert fits == (len(topic_to_routing_key(topic).encode()) <= 255)
