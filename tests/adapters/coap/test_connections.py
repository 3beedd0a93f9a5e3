"""Connection mode: tokens, heartbeats and expiry, driven by explicit times."""

from __future__ import annotations

import itertools

from adapters.coap.connections import ConnectionRegistry


def connections() -> ConnectionRegistry:
    counter = itertools.count(1)
    return ConnectionRegistry(heartbeat=30, new_token=lambda: f"tok{next(counter)}")


def test_an_open_connection_is_found_by_clientid_and_token_until_its_deadline() -> None:
    registry = connections()
    connection = registry.open("dev", "alice", now=100)
    assert (connection.token, connection.expires_at) == ("tok1", 130)
    assert registry.check("dev", "tok1", now=129) is connection
    assert registry.check("dev", "tok1", now=130) is None
    assert registry.check("dev", "wrong", now=100) is None
    assert registry.check("other", "tok1", now=100) is None
    assert registry.check(None, None, now=100) is None


def test_a_heartbeat_moves_the_deadline() -> None:
    registry = connections()
    registry.open("dev", None, now=100)
    assert registry.keep_alive("dev", "tok1", now=120)
    assert registry.next_deadline() == 150
    assert not registry.keep_alive("dev", "nope", now=121)


def test_reopening_replaces_the_token() -> None:
    registry = connections()
    registry.open("dev", None, now=0)
    registry.open("dev", None, now=1)
    assert registry.check("dev", "tok1", now=2) is None and registry.check("dev", "tok2", now=2) is not None
    assert len(registry) == 1


def test_close_needs_the_token() -> None:
    registry = connections()
    registry.open("dev", None, now=0)
    assert not registry.close("dev", "tok9", now=1)
    assert registry.close("dev", "tok1", now=1)
    assert len(registry) == 0 and registry.next_deadline() is None


def test_expire_forgets_connections_past_their_deadline_only() -> None:
    registry = connections()
    registry.open("a", None, now=0)
    registry.open("b", None, now=10)
    assert registry.next_deadline() == 30
    assert registry.expire(now=35) == ["a"]
    assert registry.next_deadline() == 40 and len(registry) == 1
