"""`queue` and `exchange` lines of the ACL file: RabbitMQ-style permissions, parsed and decided."""

from __future__ import annotations

import pytest

from core.acl import AclFileError, Authorizer, parse_acl
from core.acl_resources import CONFIGURE, READ, WRITE

RULES = """\
queue read public-.*

user alice
topic readwrite #
queue all %u-.*
exchange write amq\\.topic

user bob
queue read alice-inbox
queue readwrite shared\\..+
queue configure %u-scratch
"""


def access(username: str | None, text: str = RULES):  # type: ignore[no-untyped-def]
    found = Authorizer(rules=parse_acl(text)).for_client("c", username)
    assert found is not None
    return found


def test_a_user_with_queue_rules_gets_exactly_what_they_grant() -> None:
    bob = access("bob")
    assert bob.resource_access("queue", "alice-inbox", READ) is True
    assert bob.resource_access("queue", "alice-inbox", WRITE) is False
    assert bob.resource_access("queue", "alice-inbox", CONFIGURE) is False
    assert bob.resource_access("queue", "shared.jobs", WRITE) is True
    assert bob.resource_access("queue", "bob-scratch", CONFIGURE) is True
    assert bob.resource_access("queue", "bob-scratch", READ) is False


def test_a_pattern_must_match_the_whole_name() -> None:
    bob = access("bob")
    assert bob.resource_access("queue", "alice-inbox-2", READ) is False
    assert bob.resource_access("queue", "x-alice-inbox", READ) is False
    assert bob.resource_access("queue", "shared.", READ) is False


def test_percent_u_is_the_username_matched_literally() -> None:
    assert access("alice").resource_access("queue", "alice-orders", CONFIGURE) is True
    assert access("alice").resource_access("queue", "bob-orders", CONFIGURE) is False
    dotted = access("a.b", "user a.b\nqueue all %u-.*\n")
    assert dotted.resource_access("queue", "a.b-q", READ) is True
    assert dotted.resource_access("queue", "axb-q", READ) is False  # the dot is no wildcard


def test_no_rules_of_a_kind_leave_the_default_to_the_adapter() -> None:
    assert access("bob").resource_access("exchange", "amq.topic", WRITE) is None
    assert access("carol").resource_access("queue", "anything", READ) is None


def test_rules_before_any_user_line_are_the_anonymous_clients_and_percent_u_grants_them_nothing() -> None:
    anonymous = access(None, "queue read public-.*\nqueue all %u-.*\n")
    assert anonymous.resource_access("queue", "public-feed", READ) is True
    assert anonymous.resource_access("queue", "-x", READ) is False
    assert access("alice").resource_access("queue", "public-feed", READ) is False  # alice has her own rules


def test_any_of_several_permissions_is_asked_as_their_bits() -> None:
    bob = access("bob")
    assert bob.resource_access("queue", "alice-inbox", CONFIGURE | WRITE | READ) is True
    assert bob.resource_access("queue", "nobody", CONFIGURE | WRITE | READ) is False


def test_a_reloaded_file_changes_the_decision_of_a_client_already_connected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "acl"
    path.write_text("user bob\nqueue read a\n")
    acl = Authorizer(path)
    bob = acl.for_client("c", "bob")
    assert bob is not None and bob.resource_access("queue", "a", READ) is True
    path.write_text("user bob\nqueue read b\n")
    assert acl.reload()
    assert bob.resource_access("queue", "a", READ) is False


def test_topic_rules_are_counted_apart_from_queue_and_exchange_rules() -> None:
    rules = parse_acl(RULES)
    assert len(rules) == 1
    assert sum(map(len, rules.resources.values())) == 6


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("queue maybe x\n", "unknown access 'maybe' for queue"),
        ("exchange read\n", "needs a name pattern"),
        ("queue read (unclosed\n", "not a regular expression"),
        ("exchange\n", "unknown access ''"),
    ],
)
def test_a_malformed_queue_or_exchange_line_names_the_line(text: str, why: str) -> None:
    with pytest.raises(AclFileError) as caught:
        parse_acl("user bob\n" + text, "acl.conf")
    assert caught.value.lineno == 2 and why in str(caught.value) and "acl.conf:2" in str(caught.value)
