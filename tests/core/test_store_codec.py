"""The stored form of a Message: every field round-trips; bad bytes and unstorable extras are refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.message import Message, Origin
from core.stores.codec import CodecError, decode_message, decode_value, encode_message, encode_value

text = st.text(max_size=20)
simple = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4).map(tuple) | st.dictionaries(text, children, max_size=4),
    max_leaves=10,
)
messages = st.builds(
    Message,
    topic=text,
    payload=st.binary(max_size=100),
    qos=st.sampled_from([0, 1, 2]),
    retain=st.booleans(),
    content_type=st.none() | text,
    correlation_data=st.none() | st.binary(max_size=20),
    response_topic=st.none() | text,
    user_properties=st.lists(st.tuples(text, text), max_size=4).map(tuple),
    expiry=st.none() | st.floats(min_value=0, max_value=4e9),
    payload_format_utf8=st.booleans(),
    origin=st.builds(Origin, text, text, st.none() | text),
    extra=st.dictionaries(text, simple, max_size=3),
)


@given(messages)
def test_every_message_field_survives_encoding(message: Message) -> None:
    decoded = decode_message(encode_message(message))
    assert decoded == message
    assert dict(decoded.extra) == dict(message.extra)


@given(simple)
def test_simple_values_round_trip_with_lists_as_tuples(value: object) -> None:
    assert decode_value(encode_value(value)) == value


def test_a_message_without_extra_gets_the_shared_empty_extra_back() -> None:
    decoded = decode_message(encode_message(Message("t", b"p")))
    assert dict(decoded.extra) == {}
    with pytest.raises(TypeError):
        decoded.extra["x"] = 1  # type: ignore[index]  # read-only, like any Message's extra


def test_an_extra_value_that_is_not_simple_is_refused_when_encoding() -> None:
    with pytest.raises(TypeError, match="object"):
        encode_message(Message("t", extra={"handle": object()}))


@pytest.mark.parametrize("data", [b"", b"\x02" + bytes(20), encode_message(Message("t", b"payload"))[:-3]])
def test_bytes_that_are_no_stored_message_raise_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_message(data)


@given(st.lists(messages, min_size=1, max_size=4), st.binary(max_size=8))
def test_messages_read_in_place_from_a_larger_buffer_match_their_own_bytes(batch: list[Message], pad: bytes) -> None:
    parts = [encode_message(m) for m in batch]
    data, spans = pad, []
    for part in parts:
        spans.append((len(data), len(data) + len(part)))
        data += part
    data += pad
    for message, (start, end) in zip(batch, spans):
        decoded = decode_message(data, start, end)
        assert decoded == message and dict(decoded.extra) == dict(message.extra)


def test_producers_whose_origin_bytes_join_the_same_are_told_apart() -> None:
    first = Message("t", b"p", origin=Origin("mqtt", "ab", None))
    second = Message("t", b"p", origin=Origin("mqt", "tab", None))  # the same bytes, split differently
    third = Message("t", b"p", origin=Origin("mqtt", "a", "b"))
    for message in (first, second, third, first):
        assert decode_message(encode_message(message)).origin == message.origin


@pytest.mark.parametrize("cut", [1, 3])
def test_a_message_cut_short_inside_a_larger_buffer_raises_codec_error(cut: int) -> None:
    data = encode_message(Message("t", b"payload")) + encode_message(Message("u", b"next"))
    size = len(encode_message(Message("t", b"payload")))
    with pytest.raises(CodecError):
        decode_message(data, 0, size - cut)
