"""core/redact.py: secrets masked in URLs, queries, CoAP Uri-Query, free text and headers."""

from __future__ import annotations

import logging

from core.redact import MASK, RedactFilter, redact_headers, redact_params, redact_query, redact_text, redact_url


def test_secret_parameters_lose_their_values_and_keep_their_names() -> None:
    assert redact_url("/api/v1/events?access_token=abc123") == f"/api/v1/events?access_token={MASK}"
    assert redact_query("u=alice&p=hunter2&qos=1") == f"u=alice&p={MASK}&qos=1"
    assert redact_query("clientid=c1;token=zz;t=yy") == f"clientid=c1;token={MASK};t={MASK}"
    assert redact_query("PASSWORD=x&Pass=y&pwd=z") == f"PASSWORD={MASK}&Pass={MASK}&pwd={MASK}"


def test_percent_encoded_names_are_caught_too() -> None:
    # aiohttp decodes access%5Ftoken to access_token: it is the same credential.
    assert redact_url("/mqtt?access%5Ftoken=s3cret") == f"/mqtt?access%5Ftoken={MASK}"
    assert "s3cret" not in redact_url("/x?%70=s3cret")


def test_other_parameters_paths_and_fragments_are_untouched() -> None:
    assert redact_url("/ps/sensors/t?qos=1&retain=true") == "/ps/sensors/t?qos=1&retain=true"
    assert redact_url("/p=password/x") == "/p=password/x"  # the path is not a query
    assert redact_url("/x?topic=a&token=v#frag") == f"/x?topic=a&token={MASK}#frag"
    assert redact_url("/x?token") == "/x?token"


def test_userinfo_passwords_are_masked() -> None:
    assert redact_url("mqtt://bridge:pw0rd@broker:1883/x?y=1") == f"mqtt://bridge:{MASK}@broker:1883/x?y=1"
    assert redact_text('connect to amqp://u:p4ss@host failed') == f"connect to amqp://u:{MASK}@host failed"


def test_coap_uri_query_options() -> None:
    assert redact_params(["u=alice", "p=secret", "c=dev1", "t=tok", "retain"]) == [
        "u=alice", f"p={MASK}", "c=dev1", f"t={MASK}", "retain"]


def test_free_text_quoting_a_request_line() -> None:
    text = 'Invalid URL: b"GET /api/v1/stats?access_token=abc&x=1 HTTP/1.1"'
    assert "abc" not in redact_text(text) and "x=1" in redact_text(text)


def test_credential_headers_are_never_shown() -> None:
    headers = {"Authorization": "Bearer abc", "Cookie": "s=1", "Accept": "text/html"}
    assert redact_headers(headers) == {"Authorization": MASK, "Cookie": MASK, "Accept": "text/html"}


def test_a_library_loggers_request_lines_are_rewritten() -> None:
    def filtered(msg: str, *args: object) -> str:
        record = logging.LogRecord("websockets.server", logging.DEBUG, __file__, 1, msg, args, None)
        assert RedactFilter().filter(record)
        return record.getMessage()

    assert filtered("< %s %s %s", "GET", "/mqtt?access_token=abc", "HTTP/1.1") == f"< GET /mqtt?access_token={MASK} HTTP/1.1"
    assert filtered("< %s: %s", "Authorization", "Bearer abc") == f"< Authorization: {MASK}"
    assert filtered("< %s: %s", "Host", "example") == "< Host: example"
