"""Mosquitto's ACL file format: its rules, their parsing (`parse_acl`), and a user's rules in a trie.

The file (``[auth] acl_file``), one directive per line; lines starting with
``#`` and blank lines are ignored::

    # Rules before any `user` line are for anonymous clients (no username).
    topic read public/#

    user alice
    topic readwrite sensors/alice/#
    topic deny sensors/alice/private/#
    topic sensors/shared/#              # no access word: readwrite

    # Patterns hold for every client: %u is its username, %c its client id.
    pattern write devices/%c/up/#
    pattern read devices/%c/down/#

``queue`` and ``exchange`` lines give AMQP permissions on queues and exchanges
(RabbitMQ's configure / write / read, with regular expressions): core/acl_resources.py.
``clientid`` lines (and ``pattern clientid``) name the client ids a user may connect with:
core/acl_client_ids.py.

Access words: ``read`` (receive messages, subscribe), ``write`` (publish),
``readwrite``, ``deny`` (nothing, and it overrides allows). Topics are MQTT
filters (``+``, ``#``); other protocols' addresses are translated to MQTT
topics before they are checked. A `user` line starts that user's section up
to the next `user` line; `pattern` lines hold for everyone wherever they are.

Deciding what a client may do with these rules: core/acl.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from core.acl_client_ids import NO_CLIENT_ID_RULES, ClientIdRules, parse_client_id_rule
from core.acl_resources import READ, RESOURCE_KINDS, WRITE, ResourceRule, parse_resource_rule
from core.filter_index import FilterIndex
from core.topics import InvalidTopic, validate_topic_filter

log = logging.getLogger("rosettamq.acl")

DENY = 0
ACCESS_WORDS = {"read": READ, "write": WRITE, "readwrite": READ | WRITE, "deny": DENY}


class AclFileError(ValueError):
    """A malformed ACL file; the message names the file and line."""

    def __init__(self, message: str, path: str | None = None, lineno: int = 0) -> None:
        where = (path or "<acl file>") + (f":{lineno}" if lineno else "")
        super().__init__(f"{where}: {message}")
        self.lineno = lineno


@dataclass(frozen=True, slots=True)
class Rule:
    """One `topic` or `pattern` line: an access (DENY, or READ/WRITE bits) on a topic filter."""

    access: int
    topic_filter: str
    lineno: int = 0

    @property
    def uses_username(self) -> bool:
        return "%u" in self.topic_filter

    @property
    def uses_client_id(self) -> bool:
        return "%c" in self.topic_filter


def _deny_first(rules: list[Rule]) -> tuple[Rule, ...]:
    """Deny rules are consulted before allows (as Mosquitto 2.x puts them at the front)."""
    return tuple([r for r in rules if r.access == DENY] + [r for r in rules if r.access != DENY])


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A parsed ACL file: anonymous rules, rules per user, patterns; each deny-first."""

    anonymous: tuple[Rule, ...] = ()
    users: Mapping[str, tuple[Rule, ...]] = field(default_factory=lambda: MappingProxyType({}))
    patterns: tuple[Rule, ...] = ()
    resources: Mapping[str | None, tuple[ResourceRule, ...]] = field(default_factory=lambda: MappingProxyType({}))
    client_ids: ClientIdRules = NO_CLIENT_ID_RULES
    _own_indexes: dict[str | None, "RuleIndex"] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        """The number of topic rules (queue and exchange rules: `resources`)."""
        return len(self.anonymous) + sum(map(len, self.users.values())) + len(self.patterns)

    def own_rules(self, username: str | None) -> tuple[Rule, ...]:
        return self.anonymous if username is None else self.users.get(username, ())

    def own_index(self, username: str | None) -> "RuleIndex":
        """The user's own rules in a trie, built once per user and rule set (shared by its clients)."""
        index = self._own_indexes.get(username)
        if index is None:
            index = self._own_indexes[username] = RuleIndex(self.own_rules(username))
        return index


class RuleIndex:
    """Rules indexed by topic filter (`core.filter_index`): deciding costs a trie walk, not a scan."""

    __slots__ = ("rules", "_index")

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._index: FilterIndex[Rule] = FilterIndex()
        for rule in rules:
            try:
                self._index.add(rule.topic_filter, rule)
            except InvalidTopic:  # a substituted pattern no filter can hold: it grants nothing
                if rule.access == DENY:
                    self._index.add("#", rule)  # and a deny we cannot place denies everything

    def decide(self, topic: str, access: int) -> bool | None:
        """False when a deny rule matches `topic`, True when a rule granting `access` does, else
        None (these rules do not decide). Deny wins wherever it is in the file, as in Mosquitto."""
        allowed = None
        for rule in self._index.match(topic):
            if rule.access == DENY:
                return False
            if rule.access & access:
                allowed = True
        return allowed


NO_RULES = RuleIndex(())


def parse_acl(text: str, path: str | None = None) -> RuleSet:
    """Parse ACL file text (format in the module docstring); raises AclFileError."""
    anonymous: list[Rule] = []
    users: dict[str, list[Rule]] = {}
    patterns: list[Rule] = []
    resources: dict[str | None, list[ResourceRule]] = {}
    client_ids: dict[str | None, list[str]] = {}
    client_id_patterns: list[str] = []
    section: list[Rule] = anonymous
    section_user: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        if keyword == "user":
            if not rest:
                raise AclFileError("'user' needs a username", path, lineno)
            section = users.setdefault(rest, [])
            section_user = rest
        elif keyword == "clientid" or (keyword == "pattern" and rest.split(" ", 1)[0] == "clientid"):
            try:
                if keyword == "clientid":
                    client_ids.setdefault(section_user, []).append(parse_client_id_rule(rest))
                else:
                    client_id_patterns.append(parse_client_id_rule(rest[len("clientid"):]))
            except ValueError as exc:
                raise AclFileError(str(exc), path, lineno) from None
        elif keyword in ("topic", "pattern"):
            rule = _parse_rule(keyword, rest, path, lineno)
            if keyword == "pattern":
                if not (rule.uses_username or rule.uses_client_id):
                    log.warning("acl %s:%d: pattern %r uses neither %%u nor %%c", path, lineno, rule.topic_filter)
                patterns.append(rule)
            else:
                section.append(rule)
        elif keyword in RESOURCE_KINDS:
            try:
                resources.setdefault(section_user, []).append(parse_resource_rule(keyword, rest, lineno))
            except ValueError as exc:
                raise AclFileError(str(exc), path, lineno) from None
        else:
            raise AclFileError(f"unknown directive {keyword!r}; expected user, topic, pattern, clientid, queue "
                               "or exchange", path, lineno)
    return RuleSet(
        _deny_first(anonymous),
        MappingProxyType({name: _deny_first(rules) for name, rules in users.items()}),
        _deny_first(patterns),
        MappingProxyType({name: tuple(rules) for name, rules in resources.items()}),
        ClientIdRules(MappingProxyType({name: tuple(globs) for name, globs in client_ids.items()}),
                      tuple(client_id_patterns)),
    )


def _parse_rule(keyword: str, rest: str, path: str | None, lineno: int) -> Rule:
    """`[read|write|readwrite|deny] FILTER`; a lone word is the filter, with readwrite (as Mosquitto)."""
    if not rest:
        raise AclFileError(f"'{keyword}' needs a topic filter", path, lineno)
    word, _, topic_filter = rest.partition(" ")
    topic_filter = topic_filter.strip()
    if not topic_filter:
        access, topic_filter = READ | WRITE, word
    elif word in ACCESS_WORDS:
        access = ACCESS_WORDS[word]
    else:
        raise AclFileError(f"unknown access {word!r}; expected read, write, readwrite or deny", path, lineno)
    try:
        validate_topic_filter(topic_filter)
    except InvalidTopic as exc:
        raise AclFileError(str(exc), path, lineno) from None
    return Rule(access, topic_filter, lineno)
