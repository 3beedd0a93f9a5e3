"""Valid MQTT 3.1, 3.1.1 and 5.0 inputs: every packet type, MQTT 5 with properties.

Each seed is a CONNECT (kept intact by most mutations) followed by packets a
client sends after it, and also the server-to-client packet types a client
must never send. Built with the gateway's own encoder (adapters.mqtt.codec),
which writes what the specification says; the mutations do the rest.
"""

from __future__ import annotations

import random

from adapters.mqtt.codec import encode, encode_varint
from adapters.mqtt.packets import (
    Auth, ConnAck, Connect, Disconnect, Packet, PingReq, PingResp, PubAck, PubComp, PubRec, PubRel, Publish,
    SubAck, Subscribe, SubscriptionRequest, UnsubAck, Unsubscribe, Will,
)
from adapters.mqtt.properties import Properties

from fuzz.mutate import Seed, bad_length

MAX_VARINT = 268_435_455

USER = (("fuzz", "yes"), ("k", "v"), ("k", "v2"))
PUBLISH_PROPS = Properties(
    payload_format_indicator=1, message_expiry_interval=60, content_type="text/plain", response_topic="fz/reply",
    correlation_data=b"\x01\x02", user_properties=USER, topic_alias=1,
)
CONNECT_PROPS = Properties(
    session_expiry_interval=30, receive_maximum=10, maximum_packet_size=65536, topic_alias_maximum=5,
    request_response_information=1, request_problem_information=1, user_properties=USER,
)
WILL_PROPS = Properties(
    will_delay_interval=1, payload_format_indicator=1, message_expiry_interval=10, content_type="text/plain",
    response_topic="fz/will/reply", correlation_data=b"w", user_properties=USER,
)
REASON = Properties(reason_string="fuzz", user_properties=USER)


def connects(level: int) -> list[Connect]:
    """CONNECTs of one level: plain, with a will, with credentials, and (v5) with every property."""
    name = "MQIsdp" if level == 3 else "MQTT"
    v5 = level == 5
    return [
        Connect("fz-plain", name, level),
        Connect("fz-will", name, level, clean_start=False, keep_alive=5, username="fuzz", password=b"pw",
                will=Will("fz/will", b"gone", qos=1, retain=True, properties=WILL_PROPS if v5 else Properties()),
                properties=CONNECT_PROPS if v5 else Properties()),
        Connect("" if level != 3 else "fz-empty", name, level, keep_alive=0),
    ]


def session_packets(level: int) -> list[tuple[Packet, ...]]:
    """What a client sends after CONNECT, one flow per tuple (every client-to-server packet type)."""
    v5 = level == 5
    props = PUBLISH_PROPS if v5 else Properties()
    subs = (
        SubscriptionRequest("fz/+/x", 1),
        SubscriptionRequest("fz/#", 2, no_local=v5, retain_as_published=v5, retain_handling=2 if v5 else 0),
        SubscriptionRequest("$share/g/fz/s", 0),
    )
    flows: list[tuple[Packet, ...]] = [
        (Publish("fz/a", b"zero"),),
        (Publish("fz/a/b", b"one", qos=1, packet_id=1, properties=props),),
        (Publish("fz/r", b"retained", qos=1, retain=True, packet_id=2),),
        (Publish("fz/q2", b"two", qos=2, packet_id=3, properties=props), PubRel(3)),
        (Publish("fz/dup", b"d", qos=1, dup=True, packet_id=4),),
        (Subscribe(5, subs, Properties(subscription_identifiers=(7,), user_properties=USER) if v5 else Properties()),
         Publish("fz/a/x", b"back", qos=1, packet_id=6)),
        (Unsubscribe(8, ("fz/#", "fz/+/x"), Properties(user_properties=USER) if v5 else Properties()),),
        (PubAck(9), PubRec(10), PubComp(11), PubRel(12)),
        (PingReq(), PingReq()),
        (Disconnect(0x04 if v5 else 0, REASON if v5 else Properties()),),
        # server-to-client packet types: a client sending them breaks the protocol
        (ConnAck(False, 0), SubAck(1, (0,)), UnsubAck(1, (0,) if v5 else ()), PingResp()),
    ]
    if v5:
        flows.append((Publish("", b"alias", qos=0, properties=Properties(topic_alias=1)),))  # alias unknown yet
        flows.append((Publish("fz/set", b"a", properties=Properties(topic_alias=2)),
                      Publish("", b"b", properties=Properties(topic_alias=2))))
        flows.append((Auth(0x19, Properties(authentication_method="SCRAM-SHA-256", authentication_data=b"n,,n=a,r=b")),))
    return flows


def seeds() -> list[Seed]:
    """Every level's CONNECTs, each followed by every flow; and a v5 enhanced-auth CONNECT."""
    out: list[Seed] = []
    for level in (3, 4, 5):
        for connect in connects(level):
            out.append(Seed((encode(connect, level),)))
            for flow in session_packets(level):
                out.append(Seed((encode(connect, level), *(encode(p, level) for p in flow)), keep=1))
    scram = Connect("fz-scram", protocol_level=5, properties=Properties(
        authentication_method="SCRAM-SHA-256", authentication_data=b"n,,n=fuzz,r=abcdefgh"))
    out.append(Seed((encode(scram, 5), encode(Auth(0x18, Properties(
        authentication_method="SCRAM-SHA-256", authentication_data=b"c=biws,r=abcdefgh,p=AAAA")), 5))))
    return out


def length_field(chunk: bytes, rng: random.Random, huge: bool) -> bytes:
    """Rewrite the remaining length (or a 2-byte string length inside the packet)."""
    if len(chunk) < 2:
        return chunk
    if rng.random() < 0.3 and len(chunk) > 4:
        at = rng.randrange(2, len(chunk) - 1)
        value = bad_length(rng, huge, int.from_bytes(chunk[at:at + 2], "big"), 0xFFFF)
        return chunk[:at] + value.to_bytes(2, "big") + chunk[at + 2:]
    end = 1
    while end < min(len(chunk), 5) and chunk[end] & 0x80:
        end += 1
    current = len(chunk) - end - 1
    if huge and rng.random() < 0.2:
        return chunk[:1] + b"\xff\xff\xff\xff\x7f" + chunk[end + 1:]  # a five-byte varint [MQTT-1.5.5-1]
    return chunk[:1] + encode_varint(bad_length(rng, huge, current, MAX_VARINT)) + chunk[end + 1:]
