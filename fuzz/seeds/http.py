"""Valid requests to the admin HTTP API (gateway/http/admin.py; its OpenAPI at /api/v1/openapi.json).

Every route with its query parameters, and POST /api/v1/publish with each
documented body field. Two kinds of mutation: bytes of the whole request
(request line, headers, Content-Length, chunked framing) and JSON-aware
changes of the body (a value replaced by another type, a key dropped or added,
deep nesting), re-serialised with a correct Content-Length so they reach the
handler.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from fuzz.mutate import Case, Mutator, Seed, bad_length

PUBLISH_BODIES: tuple[dict[str, Any], ...] = (
    {"topic": "fz/http", "payload": "hello"},
    {"topic": "fz/http/r", "payload": "aGVsbG8=", "payload_encoding": "base64", "qos": 1, "retain": True},
    {"topic": "fz/http/p", "payload": "x", "qos": 2, "retain": False, "properties": {
        "content_type": "text/plain", "correlation_data": "c", "response_topic": "fz/reply",
        "user_properties": {"a": "1", "b": "2"}, "message_expiry_interval": 60}},
    {"topic": "fz/http/l", "payload": "", "properties": {"user_properties": [["a", "1"], ["a", "2"]]}},
)
GETS = (
    "/api/v1/health", "/api/v1/stats", "/api/v1/clients", "/api/v1/clients?protocol=mqtt",
    "/api/v1/subscriptions?protocol=amqp", "/api/v1/retained?topic=fz/%23", "/api/v1/amqp/exchanges",
    "/api/v1/amqp/queues", "/api/v1/amqp/bindings", "/api/v1/topics", "/api/v1/openapi.json", "/metrics",
    "/", "/dashboard/config.json", "/console/../../etc/passwd",
)
OTHERS = (
    ("DELETE", "/api/v1/retained?topic=fz/http/%23"), ("DELETE", "/api/v1/clients/fz-nobody?protocol=coap"),
    ("PUT", "/api/v1/publish"), ("OPTIONS", "/api/v1/health"), ("HEAD", "/metrics"),
)


def request(method: str, path: str, body: bytes | None = None, headers: tuple[str, ...] = ()) -> bytes:
    """An HTTP/1.1 request; `Connection: close` so the server ends the exchange."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def publish(body: Any) -> bytes:
    return request("POST", "/api/v1/publish", json.dumps(body).encode())


def seeds() -> list[Seed]:
    out = [Seed((publish(body),)) for body in PUBLISH_BODIES]
    out += [Seed((request("GET", path),)) for path in GETS]
    out += [Seed((request(method, path),)) for method, path in OTHERS]
    body = json.dumps(PUBLISH_BODIES[0]).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    out.append(Seed((request("POST", "/api/v1/publish", headers=(
        "Content-Type: application/json", "Transfer-Encoding: chunked")) + chunked,)))
    keep_alive = publish(PUBLISH_BODIES[0]).replace(b"Connection: close", b"Connection: keep-alive")
    out.append(Seed((keep_alive, request("GET", "/api/v1/health"))))  # two requests on one connection
    return out


CONTENT_LENGTH = re.compile(rb"(?i)content-length: *([^\r\n]*)")


def length_field(chunk: bytes, rng: random.Random, huge: bool) -> bytes:
    """Rewrite (or add) Content-Length: off by a little, huge, negative or not a number."""
    match = CONTENT_LENGTH.search(chunk)
    current = len(chunk) - chunk.find(b"\r\n\r\n") - 4 if b"\r\n\r\n" in chunk else 0
    value = str(bad_length(rng, huge, current, 2**63 - 1)).encode()
    if not huge and rng.random() < 0.2:
        value = rng.choice((b"-1", b"0x10", b"1e3", b"", b"12, 12", b" 5 "))
    if match is None:
        head, sep, rest = chunk.partition(b"\r\n")
        return head + sep + b"Content-Length: " + value + b"\r\n" + rest
    return chunk[:match.start(1)] + value + chunk[match.end(1):]


WEIRD: tuple[Any, ...] = (
    None, True, False, 0, -1, 2**64, 1.5e308, -0.0, "", "#", "+/+", "a/#/b", "\u0000", "\ud800", "é" * 70000,
    "$SYS/x", [], {}, [[1, 2]], {"a": None}, "A" * 5000,
)


def mutate_json(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """A copy of a JSON value with one node replaced, removed, added or deeply nested."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.15:
            del out[key]
        elif roll < 0.3:
            out[rng.choice(("topic", "payload", "qos", "retain", "properties", "payload_encoding", "zz"))] = \
                rng.choice(WEIRD)
        else:
            out[key] = mutate_json(value[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value and rng.random() < 0.7:
        out_list = list(value)
        at = rng.randrange(len(out_list))
        out_list[at] = mutate_json(out_list[at], rng, depth + 1)
        return out_list
    if rng.random() < 0.05:
        nested: Any = value
        for _ in range(rng.choice((10, 100, 2000))):
            nested = [nested]
        return nested
    return rng.choice(WEIRD)


@dataclass
class HTTPCases:
    """Admin API inputs: half byte mutations of whole requests, half JSON-aware body mutations."""

    rng: random.Random
    raw: Mutator = field(init=False)
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.raw = Mutator(self.rng, seeds(), length_field)
        self.counts = self.raw.counts

    def case(self) -> Case:
        if self.rng.random() < 0.5:
            return self.raw.case()
        self.counts["json"] = self.counts.get("json", 0) + 1
        body = mutate_json(self.rng.choice(PUBLISH_BODIES), self.rng)
        try:
            data = json.dumps(body).encode("utf-8", "surrogatepass")
        except (ValueError, RecursionError):
            data = b"[" * 5000
        return (request("POST", "/api/v1/publish", data),)
