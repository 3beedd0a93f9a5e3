"""Registration requests: query and link-format parsing, as real clients send them."""

from __future__ import annotations

import pytest

from adapters.lwm2m.errors import ContentError, RegistrationError, UnsupportedVersion
from adapters.lwm2m.link_format import Link, parse_link_format, split_links
from adapters.lwm2m.registration import (ObjectLink, normalize_version, parse_query,
                                         parse_register, parse_update)

OBJECTS_11 = b'</1/0>,</3/0>,</3303/0>;ver=1.1,</>;rt="oma.lwm2m";ct=11543'


def test_link_format_splits_on_commas_outside_targets_and_quotes() -> None:
    text = '</a,b>;title="x, y";ct=0, </c>'
    assert split_links(text) == ['</a,b>;title="x, y";ct=0', "</c>"]
    assert parse_link_format(text) == [
        Link("/a,b", (("title", "x, y"), ("ct", "0"))), Link("/c")]


def test_link_params_may_be_bare_quoted_or_plain() -> None:
    (link,) = parse_link_format('</3/0/7>;dim=8;obs;rt="oma.lwm2m"')
    assert link.param("dim") == "8" and link.param("rt") == "oma.lwm2m"
    assert link.has("obs") and link.param("obs") is None and link.param("x") is None


@pytest.mark.parametrize("text", ["</a", '</a>;t="x', "a,b", "</a>x"])
def test_malformed_link_format_is_a_content_error(text: str) -> None:
    with pytest.raises(ContentError):
        parse_link_format(text)


def test_register_of_an_lwm2m_1_1_client_reads_every_field() -> None:
    request = parse_register(("ep=node-1", "lt=300", "lwm2m=1.1", "b=U", "sms=+331234"),
                             OBJECTS_11, 40)
    assert (request.endpoint, request.lifetime, request.version) == ("node-1", 300, "1.1")
    assert (request.binding, request.queue_mode, request.sms) == ("U", False, "+331234")
    assert request.alternate_path == "/" and request.content_formats == (11543,)
    assert request.objects == (ObjectLink((1, 0)), ObjectLink((3, 0)),
                               ObjectLink((3303, 0), (("ver", "1.1"),)))
    assert [str(link) for link in request.objects] == ["/1/0", "/3/0", "/3303/0"]
    assert request.params == (("ep", "node-1"), ("lt", "300"), ("lwm2m", "1.1"),
                              ("b", "U"), ("sms", "+331234"))


def test_register_like_lwm2m_node_lib_without_content_format_is_accepted() -> None:
    # lwm2m-node-lib: query built as one string, lwm2m=1.0, no Content-Format option.
    request = parse_register("ep=TestClient&lt=85671&lwm2m=1.0&b=U", b"</1/0>,</3/0>", None)
    assert (request.endpoint, request.lifetime, request.version) == ("TestClient", 85671, "1.0")
    assert [str(o) for o in request.objects] == ["/1/0", "/3/0"]


def test_register_like_emqx_tests_with_version_1_and_text_plain() -> None:
    request = parse_register("ep=urn:oma:lwm2m:oma:3&lt=345&lwm2m=1",
                             b"</1>, </2>, </3>, </4>, </5>", 0)
    assert request.version == "1.0" and request.endpoint == "urn:oma:lwm2m:oma:3"
    assert [o.path for o in request.objects] == [(1,), (2,), (3,), (4,), (5,)]


def test_alternate_path_is_found_wherever_its_link_is_and_stripped() -> None:
    payload = b'</lwm2m/1/0>,</lwm2m>;rt="oma.lwm2m";ct=11543,</lwm2m/2/0>,</3/0>'
    request = parse_register("ep=a", payload)
    assert request.alternate_path == "/lwm2m"
    assert [o.path for o in request.objects] == [(1, 0), (2, 0), (3, 0)]


def test_the_1_1_content_format_list_is_read() -> None:
    request = parse_register("ep=a&lwm2m=1.1",
                             b'</>;rt="oma.lwm2m";ct="60 110 112 11542 11543",</1/0>')
    assert request.content_formats == (60, 110, 112, 11542, 11543)


def test_links_that_are_not_object_paths_are_ignored() -> None:
    request = parse_register("ep=a", b"</1/0>,</rd/foo>,</>,</3/0>;obs")
    assert [o.path for o in request.objects] == [(1, 0), (3, 0)]


def test_an_empty_object_list_is_tolerated() -> None:
    assert parse_register("ep=a", b"").objects == ()


@pytest.mark.parametrize("query, queue_mode, binding", [
    ("ep=a&b=UQ", True, "UQ"), ("ep=a&b=UQS", True, "UQS"), ("ep=a&b=U&Q", True, "U"),
    ("ep=a&lwm2m=1.1&Q", True, "U"), ("ep=a&b=u", False, "U"), ("ep=a&b=N", False, "N"),
])
def test_queue_mode_is_a_q_in_the_binding_or_the_q_flag(query: str, queue_mode: bool,
                                                        binding: str) -> None:
    request = parse_register(query, b"")
    assert (request.queue_mode, request.binding) == (queue_mode, binding)


@pytest.mark.parametrize("text, version", [
    (None, "1.0"), ("1", "1.0"), ("1.0", "1.0"), ("1.0.2", "1.0"), ("1.1", "1.1"),
    ("1.2", "1.2"), (" 1.1 ", "1.1"),
])
def test_versions_normalize_to_major_and_minor(text: str | None, version: str) -> None:
    assert normalize_version(text) == version


@pytest.mark.parametrize("query, code", [
    ("lt=60", "4.00"),                  # no endpoint name
    ("ep=", "4.00"),
    ("ep=a/b", "4.00"), ("ep=a+b", "4.00"), ("ep=a#", "4.00"), ("ep=a%00\x00", "4.00"),
    ("ep=a&lwm2m=8.3", "4.12"), ("ep=a&lwm2m=2.0", "4.12"), ("ep=a&lwm2m=one", "4.00"),
    ("ep=a&lt=soon", "4.00"), ("ep=a&lt=-5", "4.00"), ("ep=a&b=X", "4.00"),
])
def test_invalid_registers_are_refused_with_the_right_code(query: str, code: str) -> None:
    with pytest.raises(RegistrationError) as caught:
        parse_register(query, b"</1/0>")
    assert caught.value.code == code


def test_unsupported_version_is_its_own_error_type() -> None:
    with pytest.raises(UnsupportedVersion):
        parse_register("ep=a&lwm2m=1.9", b"")


@pytest.mark.parametrize("payload", [b"\xff\xfe", b"</1/0"])
def test_an_unreadable_object_list_is_a_bad_request(payload: bytes) -> None:
    with pytest.raises(RegistrationError) as caught:
        parse_register("ep=a", payload)
    assert caught.value.code == "4.00"


def test_query_items_without_a_value_are_flags() -> None:
    assert parse_query("ep=a&&Q&x=") == [("ep", "a"), ("Q", None), ("x", "")]


def test_an_empty_update_changes_nothing() -> None:
    update = parse_update((), b"")
    assert (update.lifetime, update.binding, update.queue_flag, update.objects) == (
        None, None, False, None)


def test_an_update_carries_lifetime_binding_and_a_new_object_list() -> None:
    update = parse_update("lt=60&b=UQ&sms=123", b"</1/0>,</3303/1>")
    assert (update.lifetime, update.binding, update.sms) == (60, "UQ", "123")
    assert [o.path for o in update.objects] == [(1, 0), (3303, 1)]
    assert update.params == (("lt", "60"), ("b", "UQ"), ("sms", "123"))
