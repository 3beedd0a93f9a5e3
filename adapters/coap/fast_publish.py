"""The CoAP publish fast path's wire side: bytes -> a plain publish request, or None; responses -> bytes.

No I/O. `parse_publish` recognises the common publish, a POST or PUT on ``/ps/{topic}``
that nothing but the pub/sub resource would act on, straight from the datagram (RFC 7252
section 3), without aiocoap's message objects. It answers None, meaning "let aiocoap have it",
for anything else or anything in doubt:

- not version 1, not CON or NON, not POST (0.02) or PUT (0.03), a token over 8 bytes;
- a malformed header, option or payload marker (aiocoap answers those as today);
- an option other than Uri-Path (11), Content-Format (12), Uri-Query (15), the ones the
  resource accepts and ignores (Uri-Host 3, Uri-Port 7, Accept 17: libcoap sends Uri-Port)
  or an elective option nothing in aiocoap or the resource reads: Observe (6), Size2 (28),
  Size1 (60), Echo (252), No-Response (258) and Request-Tag (292) are read, so they go to
  aiocoap, and so does every other critical option (Block1, Block2, OSCORE, If-Match, ...);
- a Uri-Path not starting with the mount or naming nothing below it, or a path, query or other
  string option (Uri-Host, Location-Path, Location-Query) that is not UTF-8;
- a Content-Format given twice or longer than 2 bytes, an empty payload after the marker.

`response` encodes a piggybacked ACK (CON) or a NON response the way aiocoap encodes
today's: the token, Max-Age (14) and Size1 (60) when set, the diagnostic payload.
`RecentExchanges` is the message-id deduplication (RFC 7252 4.5) of the requests taken.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

from adapters.coap.errors import ErrorResponse

__all__ = ["FastRequest", "RecentExchanges", "error_bytes", "parse_publish", "response"]

CON, NON, ACK = 0, 1, 2
POST, PUT = 2, 3
METHODS = {POST: "POST", PUT: "PUT"}
URI_HOST, URI_PATH, CONTENT_FORMAT, URI_QUERY = 3, 11, 12, 15
IGNORED_CRITICAL = frozenset({7, 17})  # Uri-Port, Accept: accepted and ignored (pubsub.PROCESSED_CRITICAL)
TEXT_IGNORED = frozenset({URI_HOST, 8, 20})  # ignored, but aiocoap refuses them when not UTF-8 (+ Location-*)
MAX_AGE, SIZE1 = 14, 60
# Elective options aiocoap or the resource act on in a request: such a request is not "common".
READ_ELECTIVE = frozenset({6, 28, 60, 252, 258, 292})


class FastRequest:
    """A publish as the fast path takes it: what `plan_request` and the response need."""

    __slots__ = ("confirmable", "method", "mid", "token", "path", "query", "content_format", "payload")

    def __init__(self, confirmable: bool, method: str, mid: int, token: bytes, path: list[str],
                 query: list[str], content_format: int | None, payload: bytes) -> None:
        self.confirmable = confirmable
        self.method = method
        self.mid = mid
        self.token = token
        self.path = path  # the Uri-Path segments below the mount
        self.query = query
        self.content_format = content_format
        self.payload = payload


def parse_publish(data: bytes, mount: str) -> FastRequest | None:
    """The publish `data` carries, or None when aiocoap must handle the datagram (see the module)."""
    size = len(data)
    if size < 4:
        return None
    first = data[0]
    if first >> 6 != 1:
        return None
    mtype = (first >> 4) & 3
    if mtype > NON:
        return None
    method = METHODS.get(data[1])
    if method is None:
        return None
    tkl = first & 0x0F
    position = 4 + tkl
    if tkl > 8 or position > size:
        return None
    path: list[str] = []
    query: list[str] = []
    content_format: int | None = None
    seen_format = False
    number = 0
    try:
        while position < size:
            byte = data[position]
            if byte == 0xFF:
                position += 1
                if position == size:
                    return None  # a payload marker before an empty payload is a format error
                break
            position += 1
            delta, length = byte >> 4, byte & 0x0F
            if delta >= 13:
                if delta == 15:
                    return None
                if delta == 13:
                    delta = data[position] + 13
                    position += 1
                else:
                    delta = (data[position] << 8 | data[position + 1]) + 269
                    position += 2
            if length >= 13:
                if length == 15:
                    return None
                if length == 13:
                    length = data[position] + 13
                    position += 1
                else:
                    length = (data[position] << 8 | data[position + 1]) + 269
                    position += 2
            number += delta
            end = position + length
            if end > size:
                return None
            if number == URI_PATH:
                path.append(data[position:end].decode("utf-8"))
            elif number == URI_QUERY:
                query.append(data[position:end].decode("utf-8"))
            elif number == CONTENT_FORMAT:
                if seen_format or length > 2:
                    return None
                seen_format = True
                content_format = int.from_bytes(data[position:end], "big")
            elif number in TEXT_IGNORED:
                data[position:end].decode("utf-8")
            elif number & 1 and number not in IGNORED_CRITICAL or number in READ_ELECTIVE:
                return None
            position = end
    except (IndexError, UnicodeDecodeError):
        return None
    if len(path) < 2 or path[0] != mount or path == [mount, ""]:
        return None  # no topic: aiocoap's site answers (4.04 for the mount itself, 4.00 for "ps/")
    del path[0]
    return FastRequest(mtype == CON, method, data[2] << 8 | data[3], data[4:4 + tkl], path, query, content_format,
                       data[position:])


def _uint(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _option(delta: int, value: bytes) -> bytes:
    """One option header and value (deltas and lengths below 269, all this module sends)."""
    length = len(value)
    head = bytearray(1)
    nibbles = 0
    for part in (delta, length):
        nibbles <<= 4
        if part < 13:
            nibbles |= part
        else:
            nibbles |= 13
            head.append(part - 13)
    head[0] = nibbles
    return bytes(head) + value


def response(confirmable: bool, mid: int, token: bytes, code: int, payload: bytes = b"",
             max_age: int | None = None, size1: int | None = None) -> bytes:
    """A response to a request with this token: a piggybacked ACK with the request's `mid` (CON), or a
    NON with the fresh `mid` the caller allocated."""
    out = bytes((0x40 | (ACK if confirmable else NON) << 4 | len(token), code, mid >> 8, mid & 0xFF)) + token
    last = 0
    if max_age is not None:
        out += _option(MAX_AGE - last, _uint(max_age))
        last = MAX_AGE
    if size1 is not None:
        out += _option(SIZE1 - last, _uint(size1))
    if payload:
        out += b"\xff" + payload
    return out


def error_bytes(confirmable: bool, mid: int, token: bytes, error: ErrorResponse) -> bytes:
    """`response` for an `errors.ErrorResponse` (what `exchange.error_message` builds for aiocoap)."""
    return response(confirmable, mid, token, int(error.code), error.diagnostic.encode("utf-8"), error.max_age,
                    error.size1)


PENDING = b""  # a request taken whose response is not ready yet (or a NON: nothing to repeat)


class RecentExchanges:
    """(peer, message id) of the requests taken in the last `lifetime` seconds (EXCHANGE_LIFETIME) and
    the response to repeat for a duplicate CON; at most `capacity`, the oldest forgotten first.

    The bound keeps memory flat under a flood (aiocoap's own table is unbounded, with a timer per
    entry): 100,000 entries cover a CON's whole retransmission span (MAX_TRANSMIT_SPAN, 45 s) up to
    about 2,000 publishes/s, and five seconds at 20,000/s; a retransmission arriving after its entry
    was forgotten is taken as new (published again: at least once, as for QoS 1)."""

    def __init__(self, lifetime: float = 247.0, capacity: int = 100_000) -> None:
        self.lifetime = lifetime
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> bytes | None:
        """The stored response (PENDING when none yet), or None for a request not seen."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def add(self, key: Hashable, now: float, answer: bytes = PENDING) -> None:
        """Remember a request taken now (and forget what expired or overflows)."""
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            if len(entries) < self.capacity and entries[oldest][0] > now:
                break
            del entries[oldest]
        entries[key] = (now + self.lifetime, answer)

    def answer(self, key: Hashable, answer: bytes) -> None:
        """The response a duplicate of a request still remembered gets."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], answer)
