"""Valid AMQP 0-9-1 inputs built with pamqp: the handshake, then one flow of methods and content.

Each seed starts with the protocol header, connection.start-ok (PLAIN or
AMQPLAIN), tune-ok, connection.open and channel.open (kept intact by most
mutations, so the rest reaches the channel's handlers), then frames of one
flow: declares and binds with argument tables of every field type,
basic.publish with a content header carrying every property and a body,
consume, get, acks, confirms, transactions, flow, close. Server-only methods
and heartbeats on a channel are there too.
"""

from __future__ import annotations

import datetime
import decimal
import random
import struct

from pamqp import body, commands as c, frame, header
from pamqp.base import Frame

from fuzz.mutate import Seed, bad_length

ARGS = {
    "x-message-ttl": 60000, "x-max-length": 10, "x-dead-letter-exchange": "amq.topic", "x-overflow": "drop-head",
    "b": True, "f": 1.5, "d": decimal.Decimal("1.25"), "n": None, "l": [1, "two", {"three": 3}],
    "t": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc), "big": 2**40, "neg": -7,
}
PROPERTIES = c.Basic.Properties(
    content_type="text/plain", content_encoding="utf-8", headers={"x-retain": True, **ARGS}, delivery_mode=2,
    priority=5, correlation_id="corr", reply_to="fz.reply", expiration="60000", message_id="m1",
    timestamp=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc), message_type="t", user_id="guest",
    app_id="fuzz",
)


def method(value: Frame, channel: int = 1) -> bytes:
    return frame.marshal(value, channel)


def content(payload: bytes, properties: c.Basic.Properties = PROPERTIES, channel: int = 1) -> tuple[bytes, ...]:
    """A content header and its body frame(s)."""
    head = frame.marshal(header.ContentHeader(0, len(payload), properties), channel)
    return (head, frame.marshal(body.ContentBody(payload), channel)) if payload else (head,)


def handshake(mechanism: str = "PLAIN") -> tuple[bytes, ...]:
    response = "\0guest\0guest" if mechanism == "PLAIN" else (
        b"\x05LOGINS\x00\x00\x00\x05guest\x08PASSWORDS\x00\x00\x00\x05guest").decode()
    return (
        frame.marshal(header.ProtocolHeader(), 0),
        method(c.Connection.StartOk(client_properties={"product": "fuzz", "capabilities": {"publisher_confirms": True}},
                                    mechanism=mechanism, response=response, locale="en_US"), 0),
        method(c.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=0), 0),
        method(c.Connection.Open(virtual_host="/"), 0),
        method(c.Channel.Open(), 1),
    )


def flows() -> list[tuple[bytes, ...]]:
    """What follows the handshake, one flow per tuple."""
    q, ex = "fz.q", "fz.ex"
    publish = method(c.Basic.Publish(exchange="amq.topic", routing_key="fz.amqp.a"))
    return [
        (method(c.Queue.Declare(queue=q, auto_delete=True, arguments=ARGS)),
         method(c.Queue.Bind(queue=q, exchange="amq.topic", routing_key="fz.#"))),
        (method(c.Exchange.Declare(exchange=ex, exchange_type="topic", auto_delete=True, arguments=ARGS)),
         method(c.Exchange.Bind(destination=ex, source="amq.topic", routing_key="fz.*")),
         method(c.Exchange.Unbind(destination=ex, source="amq.topic", routing_key="fz.*")),
         method(c.Exchange.Delete(exchange=ex))),
        (publish, *content(b"hello amqp")),
        (method(c.Basic.Publish(exchange="", routing_key=q, mandatory=True)), *content(b"", c.Basic.Properties())),
        (method(c.Confirm.Select()), publish, *content(b"confirmed" * 50)),
        (method(c.Tx.Select()), publish, *content(b"tx"), method(c.Tx.Commit()), method(c.Tx.Rollback())),
        (method(c.Queue.Declare(queue="", exclusive=True)), method(c.Basic.Qos(prefetch_count=10)),
         method(c.Basic.Consume(queue="", consumer_tag="fz-ctag", arguments={"x-priority": 1})),
         method(c.Basic.Cancel(consumer_tag="fz-ctag"))),
        (method(c.Basic.Get(queue=q)), method(c.Basic.Ack(delivery_tag=1)), method(c.Basic.Nack(delivery_tag=2)),
         method(c.Basic.Reject(delivery_tag=3)), method(c.Basic.Recover(requeue=True))),
        (method(c.Queue.Purge(queue=q)), method(c.Queue.Unbind(queue=q, exchange="amq.topic", routing_key="fz.#")),
         method(c.Queue.Delete(queue=q, if_unused=True))),
        (method(c.Channel.Flow(active=False)), method(c.Channel.Close(200, "bye", 0, 0)),
         method(c.Channel.CloseOk())),
        (method(c.Connection.Close(200, "bye", 0, 0), 0), method(c.Connection.CloseOk(), 0)),
        (method(c.Channel.Open(), 2), method(c.Basic.Publish(exchange="amq.topic", routing_key="fz.b"), 2),
         *content(b"x" * 200_000, channel=2)),  # a body split by frame_max is the peer's job: one frame too large
        (b"\x08\x00\x01\x00\x00\x00\x00\xce", b"\x08\x00\x00\x00\x00\x00\x00\xce"),  # heartbeats, channel 1 and 0
        (method(c.Connection.Start(), 0), method(c.Basic.Deliver(consumer_tag="x", delivery_tag=1, exchange="", routing_key="k")),
         method(c.Connection.UpdateSecret(new_secret="s", reason="r"), 0)),
        (publish, *content(b"split", channel=1)[:1], publish),  # a method where a body was due
    ]


def seeds() -> list[Seed]:
    out = [Seed(handshake()[:n]) for n in range(1, 6)]
    out.append(Seed(handshake("AMQPLAIN")))
    for flow in flows():
        out.append(Seed(handshake() + flow, keep=5))
    return out


def length_field(chunk: bytes, rng: random.Random, huge: bool) -> bytes:
    """Rewrite a frame's size (offset 3), a content header's body size, or a 4-byte table length."""
    if len(chunk) < 8 or chunk.startswith(b"AMQP"):
        return chunk
    roll = rng.random()
    if chunk[0] == 2 and len(chunk) >= 19 and roll < 0.4:  # content header: class, weight, body size (8)
        size = struct.unpack_from(">Q", chunk, 11)[0]
        return chunk[:11] + struct.pack(">Q", bad_length(rng, huge, size, 2**64 - 1)) + chunk[19:]
    if roll < 0.8 or len(chunk) < 12:
        size = struct.unpack_from(">I", chunk, 3)[0]
        return chunk[:3] + struct.pack(">I", bad_length(rng, huge, size, 2**32 - 1)) + chunk[7:]
    at = rng.randrange(7, len(chunk) - 4)
    size = struct.unpack_from(">I", chunk, at)[0]
    return chunk[:at] + struct.pack(">I", bad_length(rng, huge, size, 2**32 - 1)) + chunk[at + 4:]
