"""CoAP adapter errors, and the one place that maps each to a response code.

Remote errors are the client's fault (a bad topic, a bad query parameter, a
wrong password, a payload too large); they are answered and the listener
carries on. A local error is our bug: it is answered 5.00 and logged. The
response carries the error's text as a diagnostic payload (RFC 7252 5.5.2).

| error                 | code                           | extra option        |
|-----------------------|--------------------------------|---------------------|
| BadTopic, BadOption,  | 4.00 Bad Request               |                     |
| BadBlock              |                                |                     |
| BadCriticalOption     | 4.02 Bad Option                |                     |
| Unauthorized          | 4.01 Unauthorized              |                     |
| Forbidden             | 4.03 Forbidden (topic ACL)     |                     |
| NotFound              | 4.04 Not Found                 |                     |
| MethodNotAllowed      | 4.05 Method Not Allowed        |                     |
| TooLarge              | 4.13 Request Entity Too Large  | Size1 = the limit   |
| TooManyRequests       | 4.29 Too Many Requests (8516)  | Max-Age = retry in  |
| Overloaded            | 5.03 Service Unavailable       | Max-Age = retry in  |
| anything else         | 5.00 Internal Server Error     |                     |

A datagram that does not decode at all never reaches a resource; `reject_datagram`
says what to send back (RFC 7252 4.2, 4.3, 5.4.1, 5.4.3), from its fixed header alone:

| the undecodable datagram                                 | answer                      |
|----------------------------------------------------------|-----------------------------|
| not version 1, shorter than 4 bytes, or an ACK/RST        | nothing (silently ignored)  |
| CON request whose option values are malformed             | ACK 4.02 Bad Option, token  |
| any other CON (bad header, token, options or a response)  | RST with its message id     |
| NON                                                       | nothing                     |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "BadBlock", "BadCriticalOption", "BadOption", "BadTopic", "CoAPCode", "CoAPError", "ErrorResponse", "Forbidden",
    "MethodNotAllowed",
    "NotFound", "Overloaded", "TooLarge", "TooManyRequests", "Unauthorized", "error_response",
    "publish_refusal", "reject_datagram",
]


class CoAPCode(IntEnum):
    """The response codes this adapter sends (class << 5 | detail)."""

    CREATED = 0x41  # 2.01
    DELETED = 0x42  # 2.02
    CHANGED = 0x44  # 2.04
    CONTENT = 0x45  # 2.05
    BAD_REQUEST = 0x80  # 4.00
    UNAUTHORIZED = 0x81  # 4.01
    BAD_OPTION = 0x82  # 4.02
    FORBIDDEN = 0x83  # 4.03
    NOT_FOUND = 0x84  # 4.04
    METHOD_NOT_ALLOWED = 0x85  # 4.05
    REQUEST_ENTITY_TOO_LARGE = 0x8D  # 4.13
    TOO_MANY_REQUESTS = 0x9D  # 4.29 (RFC 8516)
    INTERNAL_SERVER_ERROR = 0xA0  # 5.00
    SERVICE_UNAVAILABLE = 0xA3  # 5.03

    def __str__(self) -> str:
        return f"{self >> 5}.{self & 0x1F:02d}"


class CoAPError(Exception):
    """A request the adapter refuses; the subclass says which response code."""

    code = CoAPCode.BAD_REQUEST


class BadTopic(CoAPError):
    """The path is not a valid topic name (publish, read) or topic filter (observe)."""


class BadOption(CoAPError):
    """A query parameter or option has a value the adapter cannot use."""


class BadBlock(CoAPError):
    """A block-wise transfer that breaks RFC 7959 (a non-final block shorter than its size, ...)."""


class BadCriticalOption(CoAPError):
    """A critical option the adapter does not process (RFC 7252 5.4.1)."""

    code = CoAPCode.BAD_OPTION


class Unauthorized(CoAPError):
    code = CoAPCode.UNAUTHORIZED


class Forbidden(CoAPError):
    """The topic ACL does not let this client publish, read or subscribe there."""

    code = CoAPCode.FORBIDDEN


class NotFound(CoAPError):
    code = CoAPCode.NOT_FOUND


class MethodNotAllowed(CoAPError):
    code = CoAPCode.METHOD_NOT_ALLOWED


class TooLarge(CoAPError):
    """A request body over the configured limit; `limit` goes out as Size1."""

    code = CoAPCode.REQUEST_ENTITY_TOO_LARGE

    def __init__(self, limit: int) -> None:
        super().__init__(f"payload larger than {limit} bytes")
        self.limit = limit


class Overloaded(CoAPError):
    """Too much in progress; `retry_after` seconds go out as Max-Age."""

    code = CoAPCode.SERVICE_UNAVAILABLE

    def __init__(self, why: str, retry_after: int = 1) -> None:
        super().__init__(why)
        self.retry_after = retry_after


class TooManyRequests(CoAPError):
    """This source address must slow down (rate limit, login backoff); `retry_after` seconds go out as Max-Age."""

    code = CoAPCode.TOO_MANY_REQUESTS

    def __init__(self, why: str, retry_after: int = 1) -> None:
        super().__init__(why)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """What to answer for an error: code, diagnostic text, and Size1 / Max-Age when they apply."""

    code: CoAPCode
    diagnostic: str
    size1: int | None = None
    max_age: int | None = None


def publish_refusal(status: int, topic: str, why: str) -> CoAPError:
    """The error for a publish or clear the core's door refused (core.door.PublishStatus: 2 denied
    by the topic ACL: 4.03; 3 invalid for the core: 4.00)."""
    if status == 2:
        return Forbidden(f"not allowed to publish to {topic!r}")
    return BadTopic(f"message refused: {why}")


def error_response(exc: BaseException) -> ErrorResponse:
    """The response for any exception raised while handling a request."""
    if isinstance(exc, TooLarge):
        return ErrorResponse(exc.code, str(exc), size1=exc.limit)
    if isinstance(exc, (Overloaded, TooManyRequests)):
        return ErrorResponse(exc.code, str(exc), max_age=exc.retry_after)
    if isinstance(exc, CoAPError):
        return ErrorResponse(exc.code, str(exc))
    return ErrorResponse(CoAPCode.INTERNAL_SERVER_ERROR, "internal error")


_CON, _NON, _ACK, _RST = 0, 1, 2, 3


def reject_datagram(data: bytes, bad_option_value: bool) -> bytes | None:
    """The datagram to answer an undecodable one with, or None to ignore it.

    `bad_option_value`: the header and token parsed, but an option value was malformed
    (invalid UTF-8 in a string option, say), which RFC 7252 5.4.3 treats as an unrecognized
    option: in a CON request (code 0.01-0.31) every such option here is critical enough to
    refuse with 4.02; anything else unreadable in a CON message is rejected with RST.
    """
    if len(data) < 4 or data[0] >> 6 != 1:
        return None
    mtype, tkl, code = (data[0] >> 4) & 0x3, data[0] & 0xF, data[1]
    if mtype != _CON:
        return None
    mid = data[2:4]
    token = data[4:4 + tkl]
    if bad_option_value and 1 <= code <= 31 and tkl <= 8 and len(token) == tkl:
        return bytes([0x40 | (_ACK << 4) | tkl, CoAPCode.BAD_OPTION]) + mid + token
    return bytes([0x40 | (_RST << 4), 0]) + mid
