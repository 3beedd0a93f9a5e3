"""Topic access control for every protocol: one `Authorizer`, deciding by a Mosquitto ACL file.

The file format and its parsing: core/acl_file.py. In short: ``user`` sections of ``topic``
lines, ``pattern`` lines for every client (``%u``, ``%c``), and ``queue``, ``exchange`` and
``clientid`` lines.

How a decision is made (as Mosquitto 2.x):

1. No ACL file configured: everything is allowed (`Authorizer(None)`).
2. The client's own section (its username's, or the anonymous rules for a
   client without one): a matching ``deny`` refuses; else the first matching
   rule with the access asked for allows.
3. The same over the patterns, after substituting ``%u`` and ``%c``. A
   username or client id containing ``+``, ``#`` or ``/`` would widen a
   pattern (``%u`` = ``#``) or reach into another client's subtree
   (``a/b`` inside ``users/a/...``), so for such a client the patterns that
   use that value grant nothing. A pattern with ``%u`` never applies to a
   client without a username.
4. Nothing allowed it: denied. An ACL file with no rules denies everything.

Publishing needs ``write`` on the topic. Receiving a message needs ``read``
on its topic, checked per delivery (`ClientAccess.can_read`), so a ``#``
subscription never leaks ``secret/x`` to a client denied ``secret/#``.
Subscribing to a filter needs a ``read`` rule whose filter covers it
(``sensors/#`` covers ``sensors/+/t``; ``sensors/+`` does not cover
``sensors/#``), and is refused when a ``deny`` rule covers it wholly; a deny
that covers only part of it is enforced per delivery.

Decisions are cached per client (`ClientAccess`); `Authorizer.reload()`
swaps in a freshly parsed file at once, or keeps the old rules when the new
file is broken, and every cache notices the new rules at its next use.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from core.acl_client_ids import client_id_allowed
from core.acl_file import DENY, NO_RULES, AclFileError, Rule, RuleIndex, RuleSet, parse_acl
from core.acl_resources import NO_RESOURCE_RULES, READ, WRITE, ResourceAccess
from core.topics import SHARE_PREFIX

log = logging.getLogger("rosettamq.acl")

DANGEROUS = re.compile(r"[+#/]")  # what a substituted value must not contain
_SUBSTITUTION = re.compile(r"%[uc]")
CACHE_SIZE = 1024  # decisions kept per client and kind; the cache restarts when full


def filter_covers(rule_filter: str, topic_filter: str) -> bool:
    """True if every topic `topic_filter` matches is also matched by `rule_filter`."""
    if topic_filter.startswith("$") and rule_filter[:1] in ("+", "#"):
        return False  # a root wildcard never matches `$` topics [MQTT-4.7.2-1]
    wanted = topic_filter.split("/")
    depth = len(wanted)
    for index, level in enumerate(rule_filter.split("/")):
        if level == "#":
            return True
        if index >= depth:
            return False
        asked = wanted[index]
        if asked == "#":
            return False  # only a `#` covers a `#`
        if level != "+" and level != asked:
            return False  # a literal covers only itself (not `+`)
    return len(rule_filter.split("/")) == depth


def _substitute(rule: Rule, client_id: str, username: str | None) -> Rule:
    values = {"%c": client_id, "%u": username or ""}
    return Rule(rule.access, _SUBSTITUTION.sub(lambda m: values[m.group()], rule.topic_filter), rule.lineno)


def _bare(topic_filter: str) -> str:
    """The filter of a shared subscription (`$share/group/filter` -> `filter`)."""
    if topic_filter.startswith(SHARE_PREFIX):
        return topic_filter[len(SHARE_PREFIX):].partition("/")[2]
    return topic_filter


class Authorizer:
    """The ACL every adapter asks: who may publish, subscribe and receive what.

    Hot paths hold a `ClientAccess` per client (`for_client`): it caches
    decisions and is None when there is no ACL file, so checks then cost one
    `is None` test. Denials are counted here for metrics.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, rules: RuleSet | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.rules: RuleSet | None = rules
        if self.path is not None and rules is None:
            self.rules = self._load()  # a broken file fails the start
            self._log_loaded("loaded")
        self.publish_denied = 0
        self.subscribe_denied = 0
        self.read_denied = 0

    @property
    def enabled(self) -> bool:
        return self.rules is not None

    def for_client(self, client_id: str, username: str | None) -> "ClientAccess | None":
        """The access object of one client, or None when everything is allowed."""
        return None if self.rules is None else ClientAccess(self, client_id, username)

    def can_publish(self, client_id: str, username: str | None, topic: str) -> bool:
        access = self.for_client(client_id, username)
        return access is None or access.can_publish(topic)

    def can_subscribe(self, client_id: str, username: str | None, topic_filter: str) -> bool:
        access = self.for_client(client_id, username)
        return access is None or access.can_subscribe(topic_filter)

    def can_read(self, client_id: str, username: str | None, topic: str) -> bool:
        access = self.for_client(client_id, username)
        return access is None or access.can_read(topic)

    def reload(self) -> bool:
        """Re-read the file; on any error log it, keep the current rules and return False."""
        if self.path is None:
            return True  # no ACL file: nothing to reload, everything stays allowed
        try:
            fresh = self._load()
        except (OSError, UnicodeDecodeError, AclFileError) as exc:
            log.error("acl file reload failed, keeping %d rules: %s", len(self.rules or ()), exc)
            return False
        self.rules = fresh  # one reference swap; each ClientAccess notices it at its next check
        self._log_loaded("reloaded")
        return True

    def _load(self) -> RuleSet:
        assert self.path is not None
        return parse_acl(self.path.read_text(encoding="utf-8"), str(self.path))

    def _log_loaded(self, what: str) -> None:
        rules = self.rules or RuleSet()
        log.info("acl file %s path=%s rules=%d users=%d patterns=%d queue_exchange_rules=%d clientid_rules=%d",
                 what, self.path, len(rules), len(rules.users), len(rules.patterns),
                 sum(map(len, rules.resources.values())), len(rules.client_ids))
        if not len(rules):
            log.warning("acl file %s has no rules: every publish and subscription is denied", self.path)


class ClientAccess:
    """One client's (client id, username) view of the current rules, with cached decisions."""

    __slots__ = ("_authorizer", "client_id", "username", "_rules", "_own", "_patterns",
                 "_read", "_write", "_reads_all", "_writes_all", "_resources")

    def __init__(self, authorizer: Authorizer, client_id: str, username: str | None) -> None:
        self._authorizer = authorizer
        self.client_id = client_id
        self.username = username
        self._rules: RuleSet | None = None
        self._own = self._patterns = NO_RULES
        self._read: dict[str, bool] = {}
        self._write: dict[str, bool] = {}
        self._reads_all = self._writes_all = False
        self._resources = NO_RESOURCE_RULES

    def resource_access(self, kind: str, name: str, permission: int) -> bool | None:
        """Whether this user's `queue` / `exchange` rules (core/acl_resources.py) grant `permission`
        on the `kind` named `name`; None when it has no rules of that kind."""
        if self._authorizer.rules is not self._rules:
            self._resolve()
        return self._resources.decide(kind, name, permission)

    def may_use_client_id(self, client_id: str) -> bool:
        """Whether the file's ``clientid`` rules (core/acl_client_ids.py) let this user connect as `client_id`."""
        rules = self._authorizer.rules
        return rules is None or client_id_allowed(rules.client_ids.globs_for(self.username), client_id)

    def can_publish(self, topic: str) -> bool:
        if self._authorizer.rules is not self._rules:
            self._resolve()
        if self._writes_all and topic[:1] != "$":
            return True
        allowed = self._cached(self._write, topic, WRITE)
        if not allowed:
            self._authorizer.publish_denied += 1
        return allowed

    def can_read(self, topic: str) -> bool:
        """May this client receive a message published to `topic` (checked per delivery)."""
        if self._authorizer.rules is not self._rules:
            self._resolve()
        if self._reads_all and topic[:1] != "$":  # `#` matches no `$` topic
            return True
        allowed = self._cached(self._read, topic, READ)
        if not allowed:
            self._authorizer.read_denied += 1
        return allowed

    def can_subscribe(self, topic_filter: str) -> bool:
        """A read rule covers the filter and no deny covers it wholly (shared: the inner filter)."""
        if self._authorizer.rules is not self._rules:
            self._resolve()
        topic_filter = _bare(topic_filter)
        for rules in (self._own.rules, self._patterns.rules):
            for rule in rules:
                if filter_covers(rule.topic_filter, topic_filter):
                    if rule.access == DENY:
                        self._authorizer.subscribe_denied += 1
                        return False
                    if rule.access & READ:
                        return True
        self._authorizer.subscribe_denied += 1
        return False

    def _cached(self, cache: dict[str, bool], topic: str, access: int) -> bool:
        allowed = cache.get(topic)
        if allowed is None:
            allowed = self._decide(topic, access)
            if len(cache) >= CACHE_SIZE:
                cache.clear()
            cache[topic] = allowed
        return allowed

    def _decide(self, topic: str, access: int) -> bool:
        decided = self._own.decide(topic, access)
        if decided is None:
            decided = self._patterns.decide(topic, access)
        return bool(decided)

    def _resolve(self) -> None:
        """Pick this client's rules from the current rule set; forget cached decisions."""
        self._rules = self._authorizer.rules
        rules = RuleSet() if self._rules is None else self._rules  # (a file of queue rules only has len 0)
        self._own = rules.own_index(self.username)
        self._resources = ResourceAccess(rules.resources.get(self.username, ()), self.username)
        patterns = []
        for rule in rules.patterns:
            if rule.uses_username and self.username is None:
                continue
            unsafe = (rule.uses_username and DANGEROUS.search(self.username or "")) or (
                rule.uses_client_id and DANGEROUS.search(self.client_id)
            )
            if unsafe:
                if rule.access != DENY:
                    log.info("acl pattern %r grants nothing to client_id=%r username=%r (contains + # or /)",
                             rule.topic_filter, self.client_id, self.username)
                    continue
                rule = Rule(DENY, "#", rule.lineno)  # a deny we cannot place safely denies everything
            patterns.append(_substitute(rule, self.client_id, self.username))
        self._patterns = RuleIndex(tuple(patterns))
        self._read.clear()
        self._write.clear()
        everything = self._own.rules + self._patterns.rules
        no_deny = all(rule.access != DENY for rule in everything)
        self._reads_all = no_deny and any(r.topic_filter == "#" and r.access & READ for r in everything)
        self._writes_all = no_deny and any(r.topic_filter == "#" and r.access & WRITE for r in everything)
