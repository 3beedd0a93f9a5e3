"""Valid CoAP datagrams (built with aiocoap's codec) and LwM2M registration interface requests.

CoAP: every method on the pub/sub resources (/ps), observe, block-wise,
/.well-known/core, /mqtt/connection, each option aiocoap knows (and an unknown
critical and elective one), empty CON/ACK/RST, and responses a client should
never send (the issue's CON 4.04 among them). LwM2M: Register
(POST /rd?ep=..&lt=..&lwm2m=1.1 with a link-format body), Update (POST and PUT
to the location a real registration got), De-register, and odd versions and
bindings. Each chunk is one datagram; message ids and tokens are fixed, so a
seed reproduces a run.
"""

from __future__ import annotations

import random
import warnings
from typing import Iterable

from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type
from aiocoap.optiontypes import BlockOption, OpaqueOption

from fuzz.mutate import Seed, bad_length

LINKS = b'</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</3303/0>,</3303/1>,</5/0>;ver=1.1,</6>'


def datagram(code: Code, path: str = "", *, query: Iterable[str] = (), payload: bytes = b"", mtype: Type = Type.CON,
             mid: int = 0x1234, token: bytes = b"\x7a", **options: object) -> bytes:
    """One CoAP message; `options` are aiocoap option attributes (observe=0, block2=...)."""
    message = Message(code=code, payload=payload)
    if path:
        message.opt.uri_path = tuple(path.strip("/").split("/"))
    message.opt.uri_query = tuple(query)
    for name, value in options.items():
        setattr(message.opt, name, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        message.mtype, message.mid, message.token = mtype, mid, token
    return message.encode()


def with_raw_options(code: Code, path: str, raw: Iterable[tuple[int, bytes]], mtype: Type = Type.CON) -> bytes:
    """A request carrying options by number with opaque values (ones aiocoap has no attribute for)."""
    message = Message(code=code)
    message.opt.uri_path = tuple(path.strip("/").split("/"))
    for number, value in raw:
        message.opt.add_option(OpaqueOption(number, value))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        message.mtype, message.mid, message.token = mtype, 0x2345, b"\x01\x02\x03\x04\x05\x06\x07\x08"
    return message.encode()


def coap_seeds() -> list[Seed]:
    every = [(1, b"\x01\x02"), (3, b"fuzz.example"), (4, b"\xee"), (5, b""), (7, b"\x16\x33"), (8, b"loc"),
             (9, b"\x09\x01"), (14, b"\x3c"), (16, b"\x05"), (17, b"\x00"), (19, b"\x0a"), (20, b"q=1"),
             (21, b""), (28, b"\x00"), (31, b"\x02"), (35, b"coap://127.0.0.1/ps/x"), (39, b"coap"), (60, b"\x10"),
             (252, b"\x01" * 8), (258, b"\x02"), (292, b"\x01"), (548, b"h"), (0x0101, b"?"), (0x0102, b"e")]
    single = [
        datagram(Code.GET, "/ps/fz/a", accept=0),
        datagram(Code.POST, "/ps/fz/a", query=("retain=true", "qos=1", "c=fz-coap", "expiry=60"),
                 payload=b"21.5", content_format=0),
        datagram(Code.POST, "/ps/fz/b", query=("q=2", "r=1"), payload=b"\x00\xff", mtype=Type.NON, content_format=42),
        datagram(Code.PUT, "/ps/fz/c", payload=b"{}", content_format=50),
        datagram(Code.DELETE, "/ps/fz/a", query=("retain=true",)),
        datagram(Code.GET, "/ps/fz/%23", observe=0, token=b"\x0b\x0b"),
        datagram(Code.GET, "/ps/fz/+/x", observe=1, token=b"\x0b\x0b"),
        datagram(Code.GET, "/.well-known/core", block2=BlockOption.BlockwiseTuple(0, False, 0)),
        datagram(Code.GET, "/ps/fz/a", block2=BlockOption.BlockwiseTuple(1, False, 2)),
        datagram(Code.POST, "/ps/fz/big", payload=b"A" * 64, size1=1000,
                 block1=BlockOption.BlockwiseTuple(0, True, 2)),
        datagram(Code.POST, "/mqtt/connection", query=("clientid=fz-c", "username=u", "password=p")),
        datagram(Code.PUT, "/mqtt/connection", query=("clientid=fz-c", "token=abc")),
        datagram(Code.DELETE, "/mqtt/connection", query=("clientid=fz-c", "token=abc")),
        datagram(Code.FETCH, "/ps/fz/a"), datagram(Code.PATCH, "/ps/fz/a"), datagram(Code.iPATCH, "/ps/fz/a"),
        datagram(Code.GET, "/ps/fz/a", etag=b"\x01\x02", max_age=5, uri_host="127.0.0.1", uri_port=5683),
        with_raw_options(Code.GET, "/ps/fz/a", every[:12]),
        with_raw_options(Code.GET, "/ps/fz/a", every[12:]),
        with_raw_options(Code.POST, "/ps/fz/a", [(0x0101, b"x")], Type.NON),
        datagram(Code.EMPTY, mid=0x4001, token=b""),  # CoAP ping: RST
        datagram(Code.EMPTY, mid=0x4002, token=b"", mtype=Type.ACK),
        datagram(Code.EMPTY, mid=0x4003, token=b"", mtype=Type.RST),
        bytes.fromhex("4284cf361234"),  # issue 14: a CON 4.04 response with a token nobody asked for
        datagram(Code.CONTENT, mtype=Type.CON, payload=b"v", observe=3),
        datagram(Code.CONTENT, mtype=Type.NON, payload=b"v"),
        datagram(Code.CONTENT, mtype=Type.ACK, payload=b"v"),
        bytes.fromhex("4001abcdb27073ff"),  # payload marker with no payload: a format error
    ]
    out = [Seed((d,)) for d in single]
    out.append(Seed((datagram(Code.GET, "/ps/fz/o", observe=0, token=b"\x0c"),
                     datagram(Code.EMPTY, mid=0x1234, token=b"", mtype=Type.RST))))
    out.append(Seed((datagram(Code.POST, "/ps/fz/blk", payload=b"B" * 32, block1=BlockOption.BlockwiseTuple(0, True, 1)),
                     datagram(Code.POST, "/ps/fz/blk", payload=b"C", mid=0x1235,
                              block1=BlockOption.BlockwiseTuple(1, False, 1)))))
    return out


def register(ep: str = "fz-ep", *, lt: str = "300", version: str = "1.1", binding: str = "U",
             body: bytes = LINKS, mid: int = 0x5001) -> bytes:
    query = [f"ep={ep}", f"lt={lt}", f"lwm2m={version}", f"b={binding}"]
    return datagram(Code.POST, "/rd", query=query, payload=body, content_format=40, mid=mid)


def lwm2m_seeds(location: str) -> list[Seed]:
    """Registration interface requests; `location` is the path ("rd/abc") a real Register was given."""
    update = [
        datagram(Code.POST, location, query=("lt=120", "b=U"), payload=LINKS, content_format=40, mid=0x5002),
        datagram(Code.POST, location, mid=0x5003),
        datagram(Code.PUT, location, query=("sms=123",), mid=0x5004),
        datagram(Code.POST, location, query=("lt=abc",), payload=b"</9999/0>", content_format=40, mid=0x5005),
    ]
    out = [Seed((register(),)), Seed((register("fz-ep2", version="1.0", binding="UQ"),)),
           Seed((register("fz-ep3", version="1.2", lt="0", body=b""),)), Seed((register("fz-ep4", version="9.9"),)),
           Seed((datagram(Code.POST, "/rd", query=("lt=60",), payload=LINKS, content_format=40),)),
           Seed((datagram(Code.POST, "/rd", query=("ep=fz-ep5",), payload=LINKS, content_format=11543),)),
           Seed((datagram(Code.POST, "/bs", query=("ep=fz-ep",)),)),
           Seed((datagram(Code.POST, "/dp", payload=b"[]", content_format=110),)),
           Seed((datagram(Code.DELETE, location, mid=0x5006),))]
    out += [Seed((u,)) for u in update]
    out.append(Seed((register("fz-ep6", mid=0x5007), datagram(Code.DELETE, "/rd/none", mid=0x5008))))
    return out


def length_field(chunk: bytes, rng: random.Random, huge: bool) -> bytes:
    """Corrupt the token length nibble, or the first option's length (with 13/14 extended forms)."""
    if len(chunk) < 4:
        return chunk
    tkl = chunk[0] & 0x0F
    if rng.random() < 0.4:
        value = rng.choice((9, 15)) if huge else bad_length(rng, False, tkl, 15)
        return bytes([(chunk[0] & 0xF0) | value]) + chunk[1:]
    at = 4 + tkl
    if at >= len(chunk) or chunk[at] == 0xFF:
        return chunk + bytes([0xB0 | (14 if huge else 13), 0xFF if huge else 200])  # a Uri-Path longer than the datagram
    delta = chunk[at] & 0xF0
    if huge:
        return chunk[:at] + bytes([delta | 14, 0xFF, 0xFF]) + chunk[at + 1:]  # 65,804 bytes claimed
    n = bad_length(rng, False, chunk[at] & 0x0F, 12)
    return chunk[:at] + bytes([delta | n]) + chunk[at + 1:]
