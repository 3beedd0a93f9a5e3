"""Messages between cluster nodes (gateway/cluster/envelope.py): a batch comes back whole, in order,
with its node and numbers; bytes that are no envelope, or one cut short, are a ValueError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.message import Message, Origin
from core.stores.codec import encode_message
from gateway.cluster.envelope import decode_envelope, encode_batch, encode_envelope, node_header
from tests.core.test_store_codec import messages

# The usual message (no property, no extra), which the codec reads by its own fast path.
plain = st.builds(lambda topic, payload, qos, retain, origin: Message(topic, payload, qos, retain, origin=origin),
                  st.text(max_size=20), st.binary(max_size=100), st.sampled_from([0, 1, 2]), st.booleans(),
                  st.builds(Origin, st.just("mqtt"), st.text(max_size=10), st.none() | st.text(max_size=10)))
nodes = st.text(min_size=1, max_size=30).filter(lambda name: len(name.encode()) <= 255)


@given(nodes, st.integers(min_value=0, max_value=2**63), st.lists(plain | messages, max_size=6))
def test_a_batch_comes_back_whole_with_its_node_and_first_number(node: str, first: int, batch: list[Message]) -> None:
    envelope = decode_envelope(encode_batch(node_header(node), first, [encode_message(m) for m in batch]))
    assert envelope.node == node and envelope.seq == first
    assert envelope.messages == batch
    assert [dict(m.extra) for m in envelope.messages] == [dict(m.extra) for m in batch]


@given(st.lists(plain | messages, min_size=1, max_size=4), st.data())
def test_an_envelope_cut_short_anywhere_is_a_value_error(batch: list[Message], data: st.DataObject) -> None:
    whole = encode_batch(node_header("gw-a"), 1, [encode_message(m) for m in batch])
    cut = data.draw(st.integers(min_value=0, max_value=len(whole) - 1))
    with pytest.raises(ValueError):
        decode_envelope(whole[:cut])


def test_one_message_alone_is_an_envelope_of_one() -> None:
    message = Message("a/b", b"retained", 1, True)
    envelope = decode_envelope(encode_envelope(node_header("gw-b"), 7, message))
    assert (envelope.node, envelope.seq, envelope.messages) == ("gw-b", 7, [message])


@pytest.mark.parametrize("data", [b"", b"\x01\x00", b"\x09\x04gw-a" + bytes(12)])
def test_bytes_of_no_known_envelope_version_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="known version"):
        decode_envelope(data)
