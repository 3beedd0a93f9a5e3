"""Transport-neutral descriptions of the CoAP requests and responses LwM2M exchanges.

The LwM2M modules never touch aiocoap: they produce a `CoapRequest` for the
wiring to send to a device (``aiocoap.Message(code=Code[request.method],
uri_path=request.path, uri_query=request.query, ...)``) and read a
`CoapResponse` built from what came back (``CoapResponse(code_text(int(msg.code)),
msg.opt.content_format, msg.payload, msg.opt.observe, msg.opt.location_path)``).

Codes are written ``"2.05"``; `code_name` gives EMQX's ``codeMsg`` for each
(``"content"``, ``"not_found"``...).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CoapRequest", "CoapResponse", "code_text", "code_number", "code_name",
           "is_success", "CODE_NAMES"]

CODE_NAMES = {
    "0.01": "get", "0.02": "post", "0.03": "put", "0.04": "delete",
    "2.01": "created", "2.02": "deleted", "2.03": "valid", "2.04": "changed",
    "2.05": "content", "2.31": "continue",
    "4.00": "bad_request", "4.01": "unauthorized", "4.02": "bad_option",
    "4.03": "forbidden", "4.04": "not_found", "4.05": "method_not_allowed",
    "4.06": "not_acceptable", "4.08": "request_entity_incomplete",
    "4.09": "conflict", "4.12": "precondition_failed",
    "4.13": "request_entity_too_large", "4.15": "unsupported_content_format",
    "5.00": "internal_server_error", "5.01": "not_implemented", "5.02": "bad_gateway",
    "5.03": "service_unavailable", "5.04": "gateway_timeout",
    "5.05": "proxying_not_supported",
}


def code_text(number: int) -> str:
    """``69`` (class 2 << 5 | 5) -> ``"2.05"``."""
    return f"{number >> 5}.{number & 0x1F:02d}"


def code_number(text: str) -> int:
    """``"2.05"`` -> ``69``."""
    klass, _, detail = text.partition(".")
    return int(klass) << 5 | int(detail)


def code_name(text: str) -> str:
    """EMQX's ``codeMsg`` for a code (``"4.04"`` -> ``"not_found"``)."""
    return CODE_NAMES.get(text, text)


def is_success(text: str) -> bool:
    return text.startswith("2.")


@dataclass(frozen=True, slots=True)
class CoapRequest:
    """A request to send to a device.

    `path` includes the device's alternate path prefix; `observe` is 0 to
    register an observation and 1 to cancel it (None: no Observe option).
    """

    method: str                      # "GET" | "POST" | "PUT" | "DELETE" | "FETCH" | "iPATCH"
    path: tuple[str, ...]
    query: tuple[str, ...] = ()
    content_format: int | None = None
    accept: int | None = None
    payload: bytes = b""
    observe: int | None = None
    confirmable: bool = True


@dataclass(frozen=True, slots=True)
class CoapResponse:
    """What a device answered (or what the server answers a device)."""

    code: str                        # "2.05"
    content_format: int | None = None
    payload: bytes = b""
    observe: int | None = None       # the Observe sequence number of a notification
    location_path: tuple[str, ...] = ()
