"""Topics as NATS subjects, reversibly. Pure.

A topic level may hold anything MQTT allows (``.``, ``*``, ``>``, spaces, any UTF-8) or be
empty; a NATS subject token may not. Each level becomes one token: the characters
``A-Z a-z 0-9 - _`` stay, every other byte of the level's UTF-8 is written ``%XX``, and an
empty level is ``%`` alone (no escape is a lone ``%``, so it cannot be confused):

| topic                | subject (after the cluster's prefix, ``rmq.t.``) |
|----------------------|---------------------------------------------------|
| ``sensors/t1``        | ``sensors.t1``                                    |
| ``a.b/c d``           | ``a%2Eb.c%20d``                                   |
| ``x//y`` (empty level)| ``x.%.y``                                         |
| ``café``              | ``caf%C3%A9``                                     |

Filters: ``+`` is ``*``; ``#`` is ``>``, and since MQTT's ``a/#`` also matches ``a`` itself,
a filter ending in ``/#`` needs the parent's subject too (`filter_subjects` gives both).
"""

from __future__ import annotations

import string

SAFE = frozenset(string.ascii_letters + string.digits + "-_")
TOPICS = "t"  # messages: PREFIX.t.<levels>
RETAINED = "r"  # retained messages (a JetStream stream, one per subject): PREFIX.r.<levels>
CONTROL = "ctl"  # heartbeats and other node-to-node traffic: PREFIX.ctl.<kind>


def flow_subject(prefix: str, origin: str) -> str:
    """Where a node's run (`origin`: "node/hex", as envelopes name it) hears holds and releases;
    the run's hex part is a safe token whatever the node's name."""
    return f"{prefix}.{CONTROL}.flow.{origin.rpartition('/')[2]}"


def encode_level(level: str) -> str:
    if not level:
        return "%"
    if all(c in SAFE for c in level):
        return level
    return "".join(c if c in SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in level)


def decode_level(token: str) -> str:
    if token == "%":
        return ""
    if "%" not in token:
        return token
    out = bytearray()
    i = 0
    while i < len(token):
        c = token[i]
        if c == "%":
            out.append(int(token[i + 1:i + 3], 16))
            i += 3
        else:
            out += c.encode("ascii")
            i += 1
    return out.decode("utf-8")


def topic_subject(prefix: str, space: str, topic: str) -> str:
    """The subject of `topic` in a space (TOPICS or RETAINED) of the cluster `prefix`."""
    return f"{prefix}.{space}." + ".".join(encode_level(level) for level in topic.split("/"))


def subject_topic(prefix: str, space: str, subject: str) -> str:
    head = f"{prefix}.{space}."
    if not subject.startswith(head):
        raise ValueError(f"subject {subject!r} is not under {head!r}")
    return "/".join(decode_level(token) for token in subject[len(head):].split("."))


def filter_subjects(prefix: str, space: str, topic_filter: str) -> list[str]:
    """The NATS subjects that together match what the MQTT `topic_filter` matches."""
    levels = topic_filter.split("/")
    tokens = ["*" if level == "+" else ">" if level == "#" else encode_level(level) for level in levels]
    head = f"{prefix}.{space}."
    subjects = [head + ".".join(tokens)]
    if levels[-1] == "#" and len(levels) > 1:
        subjects.append(head + ".".join(tokens[:-1]))  # "a/#" matches "a" too
    return subjects


def queue_group(share_group: str, topic_filter: str) -> str:
    """The NATS queue group of an MQTT share group on a filter (one member cluster-wide gets each message)."""
    return "share." + encode_level(share_group) + "." + ".".join(
        "%2B" if level == "+" else "%23" if level == "#" else encode_level(level) for level in topic_filter.split("/"))
