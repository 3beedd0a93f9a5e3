"""The fast path's codec (adapters/coap/fast_publish.py) against aiocoap's: what it takes, aiocoap reads the same."""

from __future__ import annotations

import random
import warnings

import pytest
from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type
from aiocoap.optiontypes import OpaqueOption

from adapters.coap.errors import ErrorResponse, TooLarge, TooManyRequests, error_response
from adapters.coap.exchange import error_message
from adapters.coap.fast_publish import PENDING, RecentExchanges, error_bytes, parse_publish, response

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # a codec test sets mid, token and type itself


def encoded(code: Code = Code.POST, path: tuple[str, ...] = ("ps", "a", "b"), mtype: Type = Type.CON,
            token: bytes = b"\x01\x02", mid: int = 0x1234, payload: bytes = b"v", **options: object) -> bytes:
    with warnings.catch_warnings():  # aiocoap deprecates setting these; a codec test must
        warnings.simplefilter("ignore", DeprecationWarning)
        message = Message(code=code, mtype=mtype, mid=mid, token=token, payload=payload, uri_path=path, **options)
    return message.encode()


def test_a_publish_is_read_as_aiocoap_reads_it() -> None:
    data = encoded(uri_query=("qos=1", "c=dev"), content_format=50, payload=b'{"t": 1}')
    request = parse_publish(data, "ps")
    assert request is not None
    assert (request.confirmable, request.method, request.mid, request.token) == (True, "POST", 0x1234, b"\x01\x02")
    assert (request.path, request.query, request.content_format, request.payload) == (
        ["a", "b"], ["qos=1", "c=dev"], 50, b'{"t": 1}')


def test_long_options_use_the_extended_delta_and_length_forms() -> None:
    level = "x" * 300  # length 14 form (2 bytes)
    query = "c=" + "y" * 20  # length 13 form (1 byte)
    message = Message(code=Code.PUT, mtype=Type.NON, mid=7, token=b"", payload=b"p", uri_path=("ps", level),
                      uri_query=(query,))
    message.opt.add_option(OpaqueOption(3000, b"e"))  # an elective option past a delta of 269
    request = parse_publish(message.encode(), "ps")
    assert request is not None
    assert (request.confirmable, request.method, request.path, request.query) == (False, "PUT", [level], [query])


@pytest.mark.parametrize("data", [
    encoded(code=Code.GET),
    encoded(code=Code.DELETE),
    encoded(mtype=Type.ACK),
    encoded(path=("rd",)),
    encoded(path=("ps",)),
    encoded(path=("ps", "")),
    encoded(observe=0),
    encoded(block1=(0, True, 2)),
    encoded(size1=100),
    encoded(no_response=26),
    encoded(if_match=[b"x"]),
    encoded(payload=b"") + b"\xff",  # a payload marker and nothing after it
    bytes([0x49]) + encoded()[1:],  # token length 9
    bytes([0x81]) + encoded()[1:],  # version 2
    encoded()[:3],
    encoded(path=("ps", "a"))[:-3],  # cut inside an option
], ids=["GET", "DELETE", "ACK", "rd", "mount", "mount/", "observe", "block1", "size1", "no-response", "if-match",
        "marker", "token9", "version2", "short", "cut"])
def test_anything_else_is_left_to_aiocoap(data: bytes) -> None:
    assert parse_publish(data, "ps") is None


def test_random_datagrams_never_raise_and_what_is_taken_aiocoap_decodes_the_same() -> None:
    rng = random.Random(17)
    base = encoded(uri_query=("r=1",), content_format=0)
    taken = 0
    for _ in range(20_000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(data))
            data[position] = rng.getrandbits(8)
        if rng.random() < 0.2:
            data = data[:rng.randrange(len(data) + 1)]
        request = parse_publish(bytes(data), "ps")
        if request is None:
            continue
        taken += 1
        message = Message.decode(bytes(data))
        assert (message.mid, message.token, message.payload) == (request.mid, request.token, request.payload)
        assert list(message.opt.uri_path[1:]) == request.path and list(message.opt.uri_query) == request.query
        assert message.opt.content_format == request.content_format
    assert taken > 100


@pytest.mark.parametrize("confirmable", [True, False])
def test_responses_are_encoded_as_aiocoap_encodes_them(confirmable: bool) -> None:
    mtype = Type.ACK if confirmable else Type.NON
    plain = Message(code=Code.CHANGED, mtype=mtype, mid=0xBEEF, token=b"\x09" * 8)
    assert response(confirmable, 0xBEEF, b"\x09" * 8, int(Code.CHANGED)) == plain.encode()
    for error in (TooLarge(1024), TooManyRequests("slow down", 300), ValueError("bug")):
        expected = error_message(error_response(error))
        expected.mtype, expected.mid, expected.token = mtype, 5, b"\x01"
        assert error_bytes(confirmable, 5, b"\x01", error_response(error)) == expected.encode()
    odd = ErrorResponse(error_response(TooLarge(1)).code, "x", size1=70_000, max_age=0)
    expected = error_message(odd)
    expected.mtype, expected.mid, expected.token = mtype, 5, b""
    assert error_bytes(confirmable, 5, b"", odd) == expected.encode()


def test_recent_exchanges_remember_for_the_lifetime_and_at_most_their_capacity() -> None:
    recent = RecentExchanges(lifetime=10.0, capacity=3)
    recent.add("a", 0.0)
    assert recent.get("a") == PENDING and recent.get("b") is None
    recent.answer("a", b"2.04")
    assert recent.get("a") == b"2.04"
    recent.add("b", 1.0)
    recent.add("c", 2.0)
    recent.add("d", 3.0)  # over capacity: the oldest goes
    assert recent.get("a") is None and recent.get("b") == PENDING
    recent.add("e", 11.5)  # b (until 11) expired; c (until 12) not yet
    assert (recent.get("b"), recent.get("c")) == (None, PENDING)
    assert len(recent) == 3
    recent.answer("zz", b"x")  # forgotten: nothing to answer
    assert recent.get("zz") is None
