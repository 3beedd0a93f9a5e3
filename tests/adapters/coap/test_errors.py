"""Every adapter error maps to its CoAP response code in one place."""

from __future__ import annotations

import pytest

from adapters.coap.errors import (
    BadCriticalOption, BadOption, BadTopic, CoAPCode, ErrorResponse, Forbidden, MethodNotAllowed, NotFound,
    Overloaded,
    TooLarge, Unauthorized, error_response,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadTopic("t"), "4.00"), (BadOption("o"), "4.00"), (BadCriticalOption("c"), "4.02"),
        (Unauthorized("u"), "4.01"), (Forbidden("f"), "4.03"), (NotFound("n"), "4.04"), (MethodNotAllowed("m"), "4.05"),
        (TooLarge(10), "4.13"), (Overloaded("busy"), "5.03"), (RuntimeError("bug"), "5.00"),
    ],
)
def test_each_error_has_its_response_code(error: Exception, code: str) -> None:
    assert str(error_response(error).code) == code


def test_too_large_tells_the_limit_in_size1_and_overload_the_retry_time_in_max_age() -> None:
    assert error_response(TooLarge(1024)) == ErrorResponse(CoAPCode.REQUEST_ENTITY_TOO_LARGE,
                                                           "payload larger than 1024 bytes", size1=1024)
    assert error_response(Overloaded("busy", retry_after=30)).max_age == 30


def test_a_local_error_does_not_leak_its_text() -> None:
    assert error_response(KeyError("secret detail")).diagnostic == "internal error"


# -- datagrams that do not decode (reject_datagram) -------------------------------------------

from adapters.coap.errors import reject_datagram  # noqa: E402


def test_a_con_request_with_a_malformed_option_value_gets_4_02_with_its_token() -> None:
    assert reject_datagram(bytes.fromhex("4201beef7778b27073"), True) == bytes.fromhex("6282beef7778")


def test_any_other_undecodable_con_message_gets_rst_with_its_message_id() -> None:
    assert reject_datagram(bytes.fromhex("4f01beef"), False) == bytes.fromhex("7000beef")  # token length 15
    assert reject_datagram(bytes.fromhex("4145bef077b27073"), True) == bytes.fromhex("7000bef0")  # a CON response


def test_non_ack_rst_short_and_foreign_version_datagrams_get_nothing() -> None:
    for data in (b"", b"\x40\x01", bytes.fromhex("5101beef"), bytes.fromhex("6000beef"),
                 bytes.fromhex("7000beef"), bytes.fromhex("8001beef"), bytes.fromhex("0001beef")):
        assert reject_datagram(data, True) is None
