"""Content-Format numbers <-> content types: one table, both directions."""

from __future__ import annotations

import pytest

from adapters.coap.contentformat import CONTENT_FORMATS, content_format_for, content_type_for


@pytest.mark.parametrize("number", sorted(CONTENT_FORMATS))
def test_every_registered_format_maps_to_its_type_and_back(number: int) -> None:
    assert content_format_for(content_type_for(number)) == number


@pytest.mark.parametrize(
    ("number", "content_type"),
    [
        (0, "text/plain;charset=utf-8"), (40, "application/link-format"), (41, "application/xml"),
        (42, "application/octet-stream"), (47, "application/exi"), (50, "application/json"),
        (60, "application/cbor"), (110, "application/senml+json"), (112, "application/senml+cbor"),
        (11542, "application/vnd.oma.lwm2m+tlv"), (11543, "application/vnd.oma.lwm2m+json"),
    ],
)
def test_the_formats_the_issue_names_have_their_iana_types(number: int, content_type: str) -> None:
    assert content_type_for(number) == content_type


@pytest.mark.parametrize("spelling", ["text/plain", "TEXT/PLAIN; charset=UTF-8", " text/plain ;charset = utf-8 "])
def test_text_plain_is_format_0_however_it_is_spelled(spelling: str) -> None:
    assert content_format_for(spelling) == 0


def test_an_unregistered_format_survives_a_trip_through_a_content_type() -> None:
    assert content_type_for(65000) == "application/x-coap-cf-65000"
    assert content_format_for("application/x-coap-cf-65000") == 65000


@pytest.mark.parametrize("content_type", [None, "", "application/x-unknown", "application/x-coap-cf-99999999"])
def test_types_coap_has_no_number_for_get_no_content_format(content_type: str | None) -> None:
    assert content_format_for(content_type) is None


def test_no_content_format_option_means_no_content_type() -> None:
    assert content_type_for(None) is None


def test_every_content_format_number_survives_coap_to_mqtt5_and_back_as_aiocoap_hands_it() -> None:
    """Issue 26: 0..65535, given as aiocoap's ContentFormat (the experimental 65000 included)."""
    from aiocoap.numbers.contentformat import ContentFormat

    lost = [n for n in range(65536) if content_format_for(content_type_for(ContentFormat(n))) != n]
    assert lost == []
    assert content_type_for(ContentFormat(65000)) == "application/x-coap-cf-65000"
