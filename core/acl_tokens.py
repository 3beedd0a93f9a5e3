"""Access rules carried by an access token, in the formats tokens already use (no I/O).

- EMQX's JWT ACL, in the claim ``acl`` (`[auth.jwt] acl_claim`), either format:

  * the list (EMQX 5.5+): ``[{"permission": "allow", "action": "publish", "topic":
    "t/${clientid}"}, ...]``; ``action`` is ``publish``, ``subscribe`` or ``all``; the first
    rule that matches decides, and an operation no rule matches is decided by the ACL file
    for the token's username (everything, without an ACL file), as EMQX goes on to its
    other authorizers. ``eq t/#`` matches that filter literally. A rule with ``qos`` or
    ``retain`` conditions cannot be checked per topic here: such an allow grants nothing
    and such a deny denies the whole topic;
  * the object (EMQX 4): ``{"pub": [...], "sub": [...], "all": [...]}``, allow-lists: what
    they do not name is denied.

  Placeholders ``${username}`` / ``%u`` and ``${clientid}`` / ``%c``; a value holding ``+``,
  ``#`` or ``/`` makes an allow using it grant nothing and a deny using it deny everything
  (as core/acl.py does for its patterns).
- RabbitMQ's OAuth 2.0 scopes (claim ``scope``, a space-separated string or a list):
  ``rabbitmq.configure:*/*``, ``rabbitmq.write:*/orders-*``, ``rabbitmq.read:*/*``
  (`[auth.jwt] resource_server_id`, default ``rabbitmq``) become the queue and exchange
  permissions of core/acl_resources.py (``*`` matches any characters). Only the vhost
  pattern ``*`` is supported (a scope naming one vhost grants nothing: it is never widened
  to the others); a routing-key part is ignored, topics on ``amq.topic`` stay under the
  topic rules. ``rabbitmq.tag:administrator`` / ``rabbitmq.tag:monitoring`` are the admin
  and monitor roles.

A token without topic rules keeps the ACL file's topic rules for its username, one without
scopes the ACL file's queue and exchange rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.acl import DANGEROUS, Authorizer, ClientAccess, filter_covers
from core.acl_resources import CONFIGURE, READ, WRITE, ResourceAccess, ResourceRule
from core.filter_index import FilterIndex
from core.topics import InvalidTopic, validate_topic_filter

ALLOW, DENY = True, False
_ACTIONS = {"publish": WRITE, "subscribe": READ, "all": READ | WRITE}
_OLD_KEYS = {"pub": WRITE, "sub": READ, "all": READ | WRITE}
_SCOPE_WORDS = {"configure": CONFIGURE, "write": WRITE, "read": READ}
_TAG_ROLES = {"administrator": "admin", "monitoring": "monitor"}
_PLACEHOLDER = re.compile(r"\$\{(username|clientid)\}|%[uc]")


class TokenRulesError(ValueError):
    """A rules claim of a shape neither EMQX nor RabbitMQ defines; the token is refused."""


@dataclass(frozen=True, slots=True)
class TopicRule:
    """One rule: allow or deny `access` (READ, WRITE bits) on `topic` (a filter, or literal if `exact`)."""

    allow: bool
    access: int
    topic: str
    exact: bool = False
    conditional: bool = False  # has qos / retain conditions this gateway cannot check per topic


@dataclass(frozen=True, slots=True)
class TokenRules:
    """What one token allows: topic rules (None: the ACL file's), queue/exchange rules (None: the file's)."""

    topics: tuple[TopicRule, ...] | None = None
    allow_list: bool = False  # EMQX 4 format: no match is a denial, not the ACL file's decision
    resources: tuple[ResourceRule, ...] | None = None

    @property
    def empty(self) -> bool:
        return self.topics is None and self.resources is None


def parse_acl_claim(value: Any) -> tuple[tuple[TopicRule, ...], bool]:
    """Topic rules of an EMQX ``acl`` claim and whether they are an allow-list; raises TokenRulesError."""
    if isinstance(value, dict):
        rules: list[TopicRule] = []
        for key, topics in value.items():
            if key not in _OLD_KEYS or not isinstance(topics, list):
                raise TokenRulesError(f"acl claim: expected pub, sub or all lists, got {key!r}")
            rules.extend(_rule(True, _OLD_KEYS[key], topic, False) for topic in topics)
        return tuple(rules), True
    if isinstance(value, list):
        rules = []
        for item in value:
            if not isinstance(item, dict):
                raise TokenRulesError("acl claim: each rule must be an object")
            permission, action = item.get("permission"), item.get("action")
            if permission not in ("allow", "deny") or action not in _ACTIONS:
                raise TokenRulesError(f"acl claim: rule {item!r} needs permission allow|deny and "
                                      "action publish|subscribe|all")
            conditional = "qos" in item or "retain" in item
            rules.append(_rule(permission == "allow", _ACTIONS[action], item.get("topic"), conditional))
        return tuple(rules), False
    raise TokenRulesError("acl claim: expected a list of rules or an object of pub/sub/all lists")


def _rule(allow: bool, access: int, topic: Any, conditional: bool) -> TopicRule:
    if not isinstance(topic, str) or not topic:
        raise TokenRulesError(f"acl claim: a topic must be a non-empty string, got {topic!r}")
    exact = topic.startswith("eq ")
    text = topic[3:] if exact else topic
    try:
        validate_topic_filter(_PLACEHOLDER.sub("x", text))
    except InvalidTopic as exc:
        raise TokenRulesError(f"acl claim: topic {topic!r}: {exc}") from None
    return TopicRule(allow, access, text, exact, conditional)


def parse_scopes(value: Any, resource_server_id: str) -> tuple[tuple[ResourceRule, ...] | None, frozenset[str]]:
    """Queue and exchange rules (None: the token has no permission scopes) and roles from RabbitMQ scopes."""
    words = value.split() if isinstance(value, str) else [v for v in value if isinstance(v, str)] \
        if isinstance(value, list) else []
    prefix = resource_server_id + "."
    rules: list[ResourceRule] = []
    roles: set[str] = set()
    seen = False
    for word in words:
        if not word.startswith(prefix):
            continue
        permission, _, target = word[len(prefix):].partition(":")
        if permission == "tag":
            if target in _TAG_ROLES:
                roles.add(_TAG_ROLES[target])
            continue
        if permission not in _SCOPE_WORDS:
            continue
        seen = True
        vhost, _, rest = target.partition("/")
        name = rest.split("/", 1)[0]
        if vhost != "*" or not name:
            continue  # one vhost's scope never grants in the others (only `*` is supported)
        pattern = ".*".join(re.escape(part) for part in name.split("*"))
        for kind in ("queue", "exchange"):
            rules.append(ResourceRule(kind, _SCOPE_WORDS[permission], pattern))
    return (tuple(rules) if seen else None), frozenset(roles)


class TokenAccess(ClientAccess):
    """A client's view of its token's rules: a `ClientAccess` (what sessions, connections and
    principals hold) whose token rules decide first, then the ACL file's (`_file`)."""

    __slots__ = ("_topics", "_index", "_allow_list", "_file", "_token_resources")

    def __init__(self, authorizer: Authorizer, rules: TokenRules, client_id: str, username: str | None) -> None:
        super().__init__(authorizer, client_id, username)
        self._topics = None if rules.topics is None else tuple(
            self._substitute(rule) for rule in rules.topics)
        self._index: FilterIndex[tuple[int, TopicRule]] = FilterIndex()  # publish/read: the trie finds the rules
        for position, rule in enumerate(self._topics or ()):
            if rule is None:
                continue
            try:
                self._index.add(rule.topic, (position, rule))  # an `eq` rule matches itself, as a filter too
            except InvalidTopic:  # a substituted topic no filter can hold: an allow grants nothing
                if not rule.allow:
                    self._index.add("#", (position, rule))
        self._allow_list = rules.allow_list
        self._file: ClientAccess | None = authorizer.for_client(client_id, username)
        self._token_resources = None if rules.resources is None else ResourceAccess(rules.resources, username)

    def _substitute(self, rule: TopicRule) -> TopicRule | None:
        """The rule for this client (None: an allow its values would widen, which grants nothing)."""
        values = {"username": self.username or "", "clientid": self.client_id}
        used = [m.group(1) or ("username" if m.group() == "%u" else "clientid")
                for m in _PLACEHOLDER.finditer(rule.topic)]
        if any(DANGEROUS.search(values[name]) or (name == "username" and self.username is None) for name in used):
            return None if rule.allow else TopicRule(DENY, rule.access, "#")
        topic = _PLACEHOLDER.sub(lambda m: values[m.group(1) or ("username" if m.group() == "%u" else "clientid")],
                                 rule.topic)
        return TopicRule(rule.allow, rule.access, topic, rule.exact, rule.conditional)

    def _first(self, access: int, rules: Any) -> bool | None:
        """The first rule (in the token's order) granting or denying `access`; None: no rule decides."""
        for rule in rules:
            if rule is None or not rule.access & access:
                continue
            if rule.conditional:
                if rule.allow:
                    continue  # cannot tell QoS / retain here: grants nothing
                return False
            return rule.allow
        return False if self._allow_list else None

    def _topic(self, topic: str, access: int) -> bool | None:
        if self._topics is None:
            return None
        matching = sorted(self._index.match(topic), key=lambda found: found[0])
        return self._first(access, (rule for _, rule in matching if not rule.exact or rule.topic == topic))

    def can_publish(self, topic: str) -> bool:
        decided = self._topic(topic, WRITE)
        if decided is None:
            return self._file is None or self._file.can_publish(topic)
        if not decided:
            self._authorizer.publish_denied += 1
        return decided

    def can_read(self, topic: str) -> bool:
        decided = self._topic(topic, READ)
        if decided is None:
            return self._file is None or self._file.can_read(topic)
        if not decided:
            self._authorizer.read_denied += 1
        return decided

    def can_subscribe(self, topic_filter: str) -> bool:
        if self._topics is None:
            return self._file is None or self._file.can_subscribe(topic_filter)
        decided = self._first(READ, (r for r in self._topics if r is not None and (
            topic_filter == r.topic if r.exact else filter_covers(r.topic, topic_filter))))
        if decided is None:
            return self._file is None or self._file.can_subscribe(topic_filter)
        if not decided:
            self._authorizer.subscribe_denied += 1
        return decided

    def resource_access(self, kind: str, name: str, permission: int) -> bool | None:
        if self._token_resources is None:
            return None if self._file is None else self._file.resource_access(kind, name, permission)
        return bool(self._token_resources.decide(kind, name, permission))

    def may_use_client_id(self, client_id: str) -> bool:
        return self._file is None or self._file.may_use_client_id(client_id)


def access_for(authorizer: Authorizer, client_id: str, username: str | None,
               rules: TokenRules | None) -> ClientAccess | None:
    """The ACL view of a login: its token's rules over the ACL file's, or the file's alone (None: no ACL)."""
    if rules is None or rules.empty:
        return authorizer.for_client(client_id, username)
    return TokenAccess(authorizer, rules, client_id, username)
