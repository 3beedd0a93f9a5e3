"""Queue and exchange rules of the ACL file: RabbitMQ's configure, write and read permissions.

In a section of the ACL file (core/acl_file.py), next to its ``topic`` rules::

    user bob
    queue all %u-.*
    queue read alice-inbox
    exchange write amq\\.topic
    exchange read amq\\.topic

(bob may configure, write and read every queue named ``bob-...``, read alice's inbox, and
publish to and bind from amq.topic.) The rest of a line is the pattern: no comments after it.

``queue|exchange ACCESS PATTERN``. ACCESS: ``configure`` (declare, delete, purge), ``write``
(publish into it; bind a queue: write on the queue), ``read`` (get, consume; bind: read on the
exchange), ``readwrite`` or ``all``. PATTERN: a Python regular expression that must match the
whole name (``re.fullmatch``; RabbitMQ searches its patterns, so there ``^...$`` means what a
bare pattern means here); ``%u`` stands for the user's name, matched literally, and a rule using
it grants nothing to anonymous clients. Rules before the first ``user`` line are the anonymous
clients'. There are no deny rules: what no rule grants is refused.

A user with rules of a kind is judged by them alone for that kind; one without any keeps the
default of adapters/amqp/permissions.py (what it declared, the built-in exchanges).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

READ, WRITE, CONFIGURE = 1, 2, 4  # permission bits; READ and WRITE are also the topic rules' (core.acl)
RESOURCE_KINDS = ("queue", "exchange")
RESOURCE_WORDS = {"configure": CONFIGURE, "write": WRITE, "read": READ, "readwrite": READ | WRITE,
                  "all": CONFIGURE | WRITE | READ}
CACHE_SIZE = 1024  # decisions kept per client; the cache restarts when full


@dataclass(frozen=True, slots=True)
class ResourceRule:
    """One ``queue`` or ``exchange`` line: permission bits on the names a pattern matches."""

    kind: str
    access: int
    pattern: str
    lineno: int = 0

    @property
    def uses_username(self) -> bool:
        return "%u" in self.pattern


def parse_resource_rule(kind: str, rest: str, lineno: int = 0) -> ResourceRule:
    """``ACCESS PATTERN`` after ``queue`` or ``exchange``; raises ValueError saying what is wrong."""
    word, _, pattern = rest.strip().partition(" ")
    pattern = pattern.strip()
    if word not in RESOURCE_WORDS:
        raise ValueError(f"unknown access {word!r} for {kind}; expected configure, write, read, readwrite or all")
    if not pattern:
        raise ValueError(f"'{kind} {word}' needs a name pattern (a regular expression)")
    try:
        re.compile(pattern.replace("%u", "user"))
    except re.error as exc:
        raise ValueError(f"{kind} pattern {pattern!r} is not a regular expression: {exc}") from None
    return ResourceRule(kind, RESOURCE_WORDS[word], pattern, lineno)


class ResourceAccess:
    """One user's queue and exchange rules, compiled for its name, with cached decisions."""

    __slots__ = ("_rules", "_kinds", "_cache")

    def __init__(self, rules: tuple[ResourceRule, ...], username: str | None) -> None:
        self._kinds = frozenset(rule.kind for rule in rules)
        compiled = []
        for rule in rules:
            if rule.uses_username and username is None:
                continue
            text = rule.pattern.replace("%u", re.escape(username or ""))
            compiled.append((rule.kind, rule.access, re.compile(text)))
        self._rules = tuple(compiled)
        self._cache: dict[tuple[str, str, int], bool] = {}

    def decide(self, kind: str, name: str, permission: int) -> bool | None:
        """Whether a rule grants `permission` (any of its bits) on `name`; None: no rules of `kind`."""
        if kind not in self._kinds:
            return None
        key = (kind, name, permission)
        allowed = self._cache.get(key)
        if allowed is None:
            allowed = any(k == kind and access & permission and pattern.fullmatch(name)
                          for k, access, pattern in self._rules)
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = allowed
        return allowed


NO_RESOURCE_RULES = ResourceAccess((), None)
