"""A PUBLISH's topic field is encoded and checked once per topic (adapters/mqtt/encoder.py):
the cached bytes are the ones encoding the topic anew gives, what MQTT cannot carry is refused
every time, and the cache stays bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.mqtt import encoder
from adapters.mqtt.codec import encode_publish_parts
from adapters.mqtt.errors import LocalProtocolError

topics = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=80)


@given(topics, st.binary(max_size=300), st.sampled_from([0, 1, 2]), st.sampled_from([3, 4, 5]))
def test_a_cached_topic_encodes_as_a_fresh_one(topic: str, payload: bytes, qos: int, level: int) -> None:
    fresh = encode_publish_parts(topic.encode(), payload, qos, False, False, b"\x00", level)  # bytes: not cached
    first = encode_publish_parts(topic, payload, qos, False, False, b"\x00", level)
    again = encode_publish_parts(topic, payload, qos, False, False, b"\x00", level)
    assert first == again == fresh


def test_a_topic_mqtt_cannot_carry_is_refused_each_time() -> None:
    for _ in range(2):
        with pytest.raises(LocalProtocolError):
            encode_publish_parts("a\x00b", b"", 0, False, False, b"", 4)
        with pytest.raises(LocalProtocolError):
            encode_publish_parts("x" * 70_000, b"", 0, False, False, b"", 4)
    assert "a\x00b" not in encoder._TOPIC_FIELDS


def test_the_cache_of_topic_fields_stays_bounded() -> None:
    for n in range(encoder.TOPIC_FIELDS_KEPT + 10):
        encode_publish_parts(f"bound/{n}", b"", 0, False, False, b"", 4)
    assert 0 < len(encoder._TOPIC_FIELDS) <= encoder.TOPIC_FIELDS_KEPT
