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
