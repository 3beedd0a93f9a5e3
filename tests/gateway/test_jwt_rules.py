"""Rules inside access tokens: EMQX's ACL claim (both formats) and RabbitMQ's scopes (core/acl_tokens.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.mqtt.oauthbearer import bearer_credentials
from core.acl import Authorizer
from core.acl_resources import CONFIGURE, READ, WRITE
from core.acl_tokens import TokenRules, TokenRulesError, access_for, parse_acl_claim, parse_scopes


def access(claim: object, client_id: str = "dev-1", username: str = "alice", acl_file: Path | None = None):  # type: ignore[no-untyped-def]
    topics, allow_list = parse_acl_claim(claim)
    return access_for(Authorizer(acl_file), client_id, username, TokenRules(topics, allow_list))


def test_the_first_matching_rule_decides_in_the_token_s_order() -> None:
    view = access([{"permission": "allow", "action": "publish", "topic": "t/1"},
                   {"permission": "deny", "action": "all", "topic": "t/#"}])
    assert view.can_publish("t/1") and not view.can_publish("t/2") and not view.can_read("t/1")


def test_placeholders_name_the_client_and_never_widen() -> None:
    rules = [{"permission": "allow", "action": "all", "topic": "dev/${clientid}/#"},
             {"permission": "allow", "action": "subscribe", "topic": "users/%u/inbox"},
             {"permission": "deny", "action": "all", "topic": "#"}]
    view = access(rules)
    assert view.can_publish("dev/dev-1/temp") and not view.can_publish("dev/dev-2/temp")
    assert view.can_subscribe("users/alice/inbox") and not view.can_subscribe("users/bob/inbox")
    widened = access(rules, client_id="#")
    assert not widened.can_publish("dev/anything/x")


def test_eq_matches_the_filter_literally() -> None:
    view = access([{"permission": "allow", "action": "subscribe", "topic": "eq t/+/x"},
                   {"permission": "deny", "action": "all", "topic": "#"}])
    assert view.can_subscribe("t/+/x") and not view.can_subscribe("t/1/x") and not view.can_read("t/1/x")


def test_no_matching_rule_leaves_the_decision_to_the_acl_file(tmp_path: Path) -> None:
    rules = [{"permission": "deny", "action": "publish", "topic": "secret/#"}]
    assert access(rules).can_publish("other")  # no ACL file: allowed, as without a token
    (tmp_path / "acl").write_text("user alice\ntopic read news/#\n")
    view = access(rules, acl_file=tmp_path / "acl")
    assert view.can_read("news/1") and not view.can_publish("other")


def test_the_old_format_is_an_allow_list() -> None:
    view = access({"pub": ["up/%c"], "sub": ["down/#"], "all": ["both"]})
    assert view.can_publish("up/dev-1") and not view.can_publish("down/x")
    assert view.can_subscribe("down/#") and view.can_read("both") and not view.can_read("elsewhere")


def test_qos_or_retain_conditions_grant_nothing_and_deny_everything() -> None:
    view = access([{"permission": "deny", "action": "publish", "topic": "t/2", "retain": True},
                   {"permission": "allow", "action": "publish", "topic": "t/#", "qos": [1]},
                   {"permission": "allow", "action": "publish", "topic": "t/3"},
                   {"permission": "deny", "action": "all", "topic": "#"}])
    assert not view.can_publish("t/2") and not view.can_publish("t/1") and view.can_publish("t/3")


@pytest.mark.parametrize("claim", [5, [{"permission": "maybe", "action": "publish", "topic": "t"}],
                                   [{"permission": "allow", "action": "publish", "topic": "a/#/b"}],
                                   {"publish": ["t"]}])
def test_a_malformed_rules_claim_is_an_error(claim: object) -> None:
    with pytest.raises(TokenRulesError):
        parse_acl_claim(claim)


def test_rabbitmq_scopes_become_queue_and_exchange_permissions() -> None:
    resources, roles = parse_scopes("openid rabbitmq.read:*/orders-* rabbitmq.configure:*/orders-* "
                                    "rabbitmq.write:prod/* rabbitmq.tag:monitoring other.read:*/*", "rabbitmq")
    view = access_for(Authorizer(None), "c", "worker", TokenRules(resources=resources))
    assert view.resource_access("queue", "orders-1", READ) and view.resource_access("queue", "orders-1", CONFIGURE)
    assert not view.resource_access("queue", "payroll", READ)
    assert not view.resource_access("exchange", "x", WRITE)  # a one-vhost scope is never widened
    assert roles == frozenset({"monitor"})
    assert parse_scopes("openid profile", "rabbitmq") == (None, frozenset())


@pytest.mark.parametrize("data, expected", [
    (b"n,a=alice,\x01auth=Bearer abc.def.ghi\x01\x01", ("alice", b"abc.def.ghi")),
    (b"n,,\x01host=gw\x01auth=bearer xyz\x01\x01", (None, b"xyz")),
    (b"eyJ.a.b", (None, b"eyJ.a.b")),
    (b"p=tls-unique,,\x01auth=Bearer t\x01\x01", None),
    (b"n,,\x01auth=Basic t\x01\x01", None),
    (None, None),
])
def test_oauthbearer_authentication_data(data: bytes | None, expected: object) -> None:
    assert bearer_credentials(data) == expected


def test_a_tokens_view_is_held_where_a_files_view_is(tmp_path: Path) -> None:
    """Sessions, connections and principals hold a ClientAccess; compiled, they check it is one."""
    from core.acl import ClientAccess
    from core.principal import Principal
    from core.router import Router
    from core.sessions import Session
    from core.stores.memory import MemoryStore

    view = access([{"permission": "allow", "action": "all", "topic": "a/#"},
                   {"permission": "deny", "action": "all", "topic": "#"}], "c", "u")
    assert isinstance(view, ClientAccess)
    session = Session("c", protocol="mqtt", router=Router(), store=MemoryStore())
    session.access = view
    principal = Principal("mqtt", "c", "u", access=view)
    assert principal.access is view and session.access.can_read("a/b") and not session.access.can_read("b")
