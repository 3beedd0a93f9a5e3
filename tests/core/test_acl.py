"""The ACL file and the Authorizer: Mosquitto's format and decision order, protocol-free."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.acl import AclFileError, Authorizer, filter_covers, parse_acl
from core.broker import Broker
from core.message import Message
from core.stores.memory import MemoryStore
from core.subscriptions import Delivery, SubscriptionOptions
from core.principal import SYSTEM
from core.session_loading import reload

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "acl.conf"

RULES = """\
# anonymous clients
topic read public/#

user alice
topic readwrite sensors/alice/#
topic deny sensors/alice/private/#
topic read #
topic deny secret/#

user bob
topic write sensors/bob/temp
topic read sensors/+/temp
topic secret/#

pattern write devices/%c/up/#
pattern read devices/%c/down/#
pattern readwrite users/%u/#
"""


def authorizer(text: str = RULES) -> Authorizer:
    return Authorizer(rules=parse_acl(text))


def test_without_an_acl_file_everything_is_allowed_and_no_client_needs_checks() -> None:
    acl = Authorizer()
    assert acl.for_client("c", "alice") is None
    assert acl.can_publish("c", None, "any/topic") and acl.can_subscribe("c", None, "#") and acl.can_read("c", "x", "a")


def test_a_user_may_publish_and_read_only_what_their_section_grants() -> None:
    acl = authorizer()
    assert acl.can_publish("c1", "alice", "sensors/alice/temp")
    assert not acl.can_publish("c1", "alice", "sensors/bob/temp")
    assert acl.can_publish("c2", "bob", "sensors/bob/temp")
    assert not acl.can_read("c2", "bob", "sensors/bob/humidity")
    assert acl.can_read("c2", "bob", "sensors/carol/temp")
    assert not acl.can_publish("c2", "bob", "sensors/carol/temp")


def test_a_rule_without_an_access_word_grants_read_and_write() -> None:
    acl = authorizer()
    assert acl.can_publish("c", "bob", "secret/plans") and acl.can_read("c", "bob", "secret/plans")


def test_a_deny_wins_over_an_earlier_or_broader_allow_of_the_same_section() -> None:
    acl = authorizer()
    assert not acl.can_publish("c", "alice", "sensors/alice/private/diary")
    assert not acl.can_read("c", "alice", "secret/x")
    assert acl.can_read("c", "alice", "anything/else")


def test_rules_before_any_user_line_are_for_anonymous_clients_only() -> None:
    acl = authorizer()
    assert acl.can_read("c", None, "public/news")
    assert not acl.can_publish("c", None, "public/news")
    assert not acl.can_read("c", "bob", "public/news")


def test_an_unknown_user_gets_only_the_patterns() -> None:
    acl = authorizer()
    assert acl.can_publish("dev1", "mallory", "devices/dev1/up/t")
    assert acl.can_read("dev1", "mallory", "users/mallory/inbox")
    assert not acl.can_publish("dev1", "mallory", "devices/dev2/up/t")
    assert not acl.can_read("dev1", "mallory", "sensors/alice/temp")


def test_patterns_substitute_the_client_id_and_the_username() -> None:
    acl = authorizer()
    assert acl.can_publish("dev7", None, "devices/dev7/up/battery")
    assert not acl.can_publish("dev7", None, "devices/dev7/down/cmd")
    assert acl.can_read("dev7", None, "devices/dev7/down/cmd")
    assert acl.can_publish("dev7", "alice", "users/alice/x")
    assert not acl.can_publish("dev7", "alice", "users/bob/x")


def test_a_pattern_with_a_username_never_applies_to_an_anonymous_client() -> None:
    acl = authorizer("pattern readwrite users/%u/#\n")
    assert not acl.can_publish("c", None, "users//x")
    assert not acl.can_publish("c", None, "users/%u/x")


@pytest.mark.parametrize("username", ["#", "+", "a/b", "evil/#"])
def test_a_username_with_a_wildcard_or_a_slash_gets_nothing_from_a_pattern(username: str) -> None:
    acl = authorizer("user a\ntopic read nothing\npattern readwrite users/%u/#\n")
    access = acl.for_client("c", username)
    assert access is not None
    assert not access.can_publish("users/a/b/x")
    assert not access.can_read("users/x")
    assert not access.can_subscribe(f"users/{username}/#" if "#" not in username else "users/#")


@pytest.mark.parametrize("client_id", ["+", "#", "a/b"])
def test_a_client_id_with_a_wildcard_or_a_slash_gets_nothing_from_a_client_id_pattern(client_id: str) -> None:
    acl = authorizer("pattern readwrite devices/%c/#\npattern read shared/#\n")
    assert not acl.can_publish(client_id, None, "devices/a/b/up")
    assert acl.can_read(client_id, None, "shared/news")  # a pattern without %c still holds


def test_a_deny_pattern_that_cannot_be_placed_safely_denies_every_pattern_grant() -> None:
    acl = authorizer("pattern deny devices/%c/admin/#\npattern readwrite devices/#\n")
    assert acl.can_publish("dev1", None, "devices/dev1/up")
    assert not acl.can_publish("dev1", None, "devices/dev1/admin/reset")
    assert not acl.can_publish("a/b", None, "devices/a/b/up")


def test_substitution_is_one_pass_so_a_username_holding_percent_c_stays_literal() -> None:
    acl = authorizer("pattern readwrite users/%u/#\n")
    assert acl.can_publish("dev1", "x%c", "users/x%c/t")
    assert not acl.can_publish("dev1", "x%c", "users/xdev1/t")


def test_an_acl_file_without_rules_denies_everything(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "acl"
    path.write_text("# nothing yet\n")
    with caplog.at_level(logging.WARNING, "rosettamq.acl"):
        acl = Authorizer(path)
    assert not acl.can_publish("c", "alice", "a") and not acl.can_read("c", None, "a")
    assert "no rules" in caplog.text


def test_a_hash_rule_does_not_reach_dollar_topics() -> None:
    acl = authorizer("user ops\ntopic readwrite #\n")
    assert acl.can_publish("c", "ops", "a/b")
    assert not acl.can_read("c", "ops", "$SYS/uptime")
    assert not acl.can_subscribe("c", "ops", "$SYS/#")


@pytest.mark.parametrize(
    ("rule", "wanted", "covered"),
    [
        ("#", "a/b", True),
        ("#", "#", True),
        ("a/#", "a", True),
        ("a/#", "a/+/c", True),
        ("a/+", "a/b", True),
        ("a/+", "a/+", True),
        ("a/+", "a/#", False),
        ("a/b", "a/+", False),
        ("a/+/c", "a/b/#", False),
        ("+/b", "a/b", True),
        ("a/b", "a/b/c", False),
        ("#", "$SYS/x", False),
        ("$SYS/#", "$SYS/x", True),
    ],
)
def test_a_rule_covers_a_filter_only_when_it_matches_every_topic_the_filter_matches(
    rule: str, wanted: str, covered: bool
) -> None:
    assert filter_covers(rule, wanted) is covered


def test_a_subscription_needs_a_read_rule_covering_the_whole_filter() -> None:
    acl = authorizer()
    assert acl.can_subscribe("c", "bob", "sensors/+/temp")
    assert acl.can_subscribe("c", "bob", "sensors/alice/temp")
    assert not acl.can_subscribe("c", "bob", "sensors/#")
    assert not acl.can_subscribe("c", "bob", "sensors/bob/temp/#")


def test_a_subscription_wholly_inside_a_deny_is_refused_and_one_overlapping_it_is_filtered_per_message() -> None:
    acl = authorizer()
    assert not acl.can_subscribe("c", "alice", "secret/#")
    assert not acl.can_subscribe("c", "alice", "secret/x")
    assert acl.can_subscribe("c", "alice", "#")
    assert not acl.can_read("c", "alice", "secret/x")


def test_a_shared_subscription_is_judged_by_its_inner_filter() -> None:
    acl = authorizer()
    assert acl.can_subscribe("c", "bob", "$share/g/sensors/+/temp")
    assert not acl.can_subscribe("c", "bob", "$share/g/sensors/#")


def test_denials_are_counted_by_kind() -> None:
    acl = authorizer()
    acl.can_publish("c", "bob", "x")
    acl.can_subscribe("c", "bob", "x")
    acl.can_read("c", "bob", "x")
    acl.can_read("c", "bob", "sensors/a/temp")
    assert (acl.publish_denied, acl.subscribe_denied, acl.read_denied) == (1, 1, 1)


def test_a_client_view_caches_decisions_and_sees_a_reload_at_its_next_check(tmp_path: Path) -> None:
    path = tmp_path / "acl"
    path.write_text("user bob\ntopic read a/#\n")
    acl = Authorizer(path)
    access = acl.for_client("c", "bob")
    assert access is not None and access.can_read("a/1") and not access.can_read("b/1")
    path.write_text("user bob\ntopic read b/#\n")
    assert acl.reload()
    assert not access.can_read("a/1") and access.can_read("b/1")


def test_a_broken_file_on_reload_keeps_the_old_rules_and_logs_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "acl"
    path.write_text("user bob\ntopic read a/#\n")
    acl = Authorizer(path)
    path.write_text("user bob\ntopic sideways a/#\n")
    with caplog.at_level(logging.ERROR, "rosettamq.acl"):
        assert not acl.reload()
    assert acl.can_read("c", "bob", "a/1")
    assert f"{path}:2" in caplog.text and "sideways" in caplog.text


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("user\n", 1, "needs a username"),
        ("topic\n", 1, "needs a topic filter"),
        ("topic read a/#/b\n", 1, "'#' must be the last level"),
        ("# ok\nuser a\nallow a/b\n", 3, "unknown directive"),
        ("topic maybe a/b\n", 1, "unknown access"),
    ],
)
def test_a_malformed_acl_file_names_the_line(text: str, line: int, why: str) -> None:
    with pytest.raises(AclFileError) as caught:
        parse_acl(text, "acl.conf")
    assert caught.value.lineno == line and why in str(caught.value)


def test_a_lone_word_after_topic_is_the_filter_with_readwrite_as_in_mosquitto() -> None:
    acl = authorizer("topic read\n")
    assert acl.can_publish("c", None, "read") and acl.can_read("c", None, "read")


def test_the_example_acl_file_parses() -> None:
    rules = parse_acl(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    assert len(rules) > 0
    assert rules.client_ids.globs_for("dashboard") == ("dashboard-*",)


def _subscribed(broker: Broker, client_id: str, username: str, topic_filter: str):  # type: ignore[no-untyped-def]
    session, _ = broker.mqtt_sessions.open(client_id, clean_start=True, expiry_interval=60, username=username)
    session.subscribe(topic_filter, SubscriptionOptions(qos=1))
    return session


def test_a_session_drops_deliveries_its_client_may_not_read_and_counts_them() -> None:
    broker = Broker(MemoryStore(), authorizer=authorizer())
    alice = _subscribed(broker, "a1", "alice", "#")
    broker.publish(SYSTEM, Message("secret/x", b"1", qos=1))
    broker.publish(SYSTEM, Message("weather/today", b"2", qos=1))
    reload(alice)  # offline, its queue is in the store
    queued = [delivery.message.topic for _, delivery in alice.queue]
    assert queued == ["weather/today"]
    assert alice.counters.acl_denied == 1


def test_a_will_is_checked_against_the_rules_when_it_is_sent() -> None:
    broker = Broker(MemoryStore(), authorizer=authorizer())
    watcher = _subscribed(broker, "w", "alice", "#")
    registry = broker.mqtt_sessions
    session, _ = registry.open("dev1", clean_start=True, expiry_interval=0, username="bob")
    registry.set_will(session, Message("sensors/bob/temp", b"gone", qos=1))
    other, _ = registry.open("dev2", clean_start=True, expiry_interval=0, username="bob")
    registry.set_will(other, Message("sensors/alice/temp", b"forged", qos=1))
    registry.disconnected(session, publish_will=True)
    registry.disconnected(other, publish_will=True)
    reload(watcher)
    assert [d.message.payload for _, d in watcher.queue] == [b"gone"]
    assert registry.wills_denied == 1


def test_deliveries_to_a_session_without_an_acl_cost_no_check() -> None:
    broker = Broker(MemoryStore())
    session = _subscribed(broker, "c", "u", "#")
    assert session.access is None
    session.deliver(Delivery(Message("secret/x", b"", qos=1), 1, False))
    assert session.queued == 1


# -- property: rules found through the trie decide as a scan of every rule would ---------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from core.topics import topic_matches  # noqa: E402
from tests.core.test_trie import topic_filters, topic_names  # noqa: E402

ACCESS = ["read", "write", "readwrite", "deny"]


def _scan(rules: list[tuple[str, str]], topic: str, wanted: str) -> bool:
    """The reference: deny rules first (Mosquitto 2.x), then the first rule granting the access."""
    bits = {"read": 1, "write": 2, "readwrite": 3, "deny": 0}
    ordered = [r for r in rules if r[0] == "deny"] + [r for r in rules if r[0] != "deny"]
    for access, topic_filter in ordered:
        if topic_matches(topic_filter, topic):
            if access == "deny":
                return False
            if bits[access] & bits[wanted]:
                return True
    return False


@settings(max_examples=300)
@given(rules=st.lists(st.tuples(st.sampled_from(ACCESS), topic_filters()), max_size=10),
       topics=st.lists(topic_names, min_size=1, max_size=6))
def test_decisions_through_the_trie_equal_a_scan_of_every_rule(rules: list[tuple[str, str]],
                                                               topics: list[str]) -> None:
    text = "user alice\n" + "".join(f"topic {access} {topic_filter}\n" for access, topic_filter in rules)
    access = Authorizer(rules=parse_acl(text)).for_client("c1", "alice")
    assert access is not None
    for topic in topics:
        assert access.can_publish(topic) is _scan(rules, topic, "write"), (rules, topic)
        assert access.can_read(topic) is _scan(rules, topic, "read"), (rules, topic)


# -- clientid rules (core/acl_client_ids.py) ---------------------------------------------------


@pytest.mark.parametrize("line", ["clientid", "clientid a b", "pattern clientid", "pattern clientid  "])
def test_a_clientid_line_without_one_pattern_names_its_line(line: str) -> None:
    with pytest.raises(AclFileError, match=r":2: .*clientid"):
        parse_acl(f"topic read #\n{line}\n")


def test_a_user_name_holding_a_glob_character_gets_nothing_from_a_percent_u_pattern() -> None:
    rules = parse_acl("pattern clientid %u-*\npattern clientid shared-?\n")
    access = Authorizer(rules=rules).for_client("x", "a*")
    assert access is not None
    assert not access.may_use_client_id("a*-1") and not access.may_use_client_id("anything-1")
    assert access.may_use_client_id("shared-1")  # the pattern without %u still applies
    named = Authorizer(rules=rules).for_client("x", "ann")
    assert named is not None and named.may_use_client_id("ann-1") and not named.may_use_client_id("ann")
