"""The pure CoAP limits: new identities against the shared rate limiter, the login backoff as 4.29."""

from __future__ import annotations

import pytest

from core.limits import RateLimiter
from core.login_backoff import LoginBackoff

from adapters.coap.connections import ConnectionRegistry
from adapters.coap.errors import CoAPCode, Overloaded, TooManyRequests, error_response
from adapters.coap.limits import CoAPLimits


def test_only_new_identities_take_a_token_of_their_address() -> None:
    limits = CoAPLimits(RateLimiter(0.5, burst=2))
    limits.admit("a", "10.0.0.1:1000", 0.0)
    limits.admit("b", "10.0.0.1:1001", 0.0)
    limits.admit("a", "10.0.0.1:1000", 0.1)  # known: free
    with pytest.raises(TooManyRequests) as refused:
        limits.admit("c", "10.0.0.1:1002", 0.2)
    assert error_response(refused.value).code is CoAPCode.TOO_MANY_REQUESTS
    assert error_response(refused.value).max_age == 2  # one token every 2 s
    limits.admit("d", "10.0.0.2:1000", 0.2)  # another address has its own bucket
    limits.admit("c", "10.0.0.1:1002", 2.5)  # refilled
    assert limits.refused_rate == 1


def test_an_identity_unseen_for_longer_than_remember_is_new_again() -> None:
    limits = CoAPLimits(RateLimiter(0.1, burst=1), remember=5.0)
    limits.admit("a", "h:1", 0.0)
    limits.admit("a", "h:1", 4.0)  # known: no token needed (there is none left)
    with pytest.raises(TooManyRequests):
        limits.admit("a", "h:1", 9.5)  # 5.5 s quiet: new again, and the bucket is not refilled yet
    limits.admit("a", "h:1", 10.5)  # refilled
    limits.admit("a", "h:1", 11.0)  # known again
    assert limits.refused_rate == 1


def test_the_identity_table_is_bounded() -> None:
    limits = CoAPLimits(RateLimiter(1000.0), max_identities=3)
    for n in range(10):
        limits.admit(n, "h:1", n / 1000)
    assert len(limits._seen) == 3


def test_held_logins_are_refused_with_max_age_rounded_up() -> None:
    backoff = LoginBackoff(free_failures=1, base_delay=1.5)
    limits = CoAPLimits(login_backoff=backoff)
    limits.check_login("h:1", 0.0)
    limits.login_failed("h:1", 0.0)
    limits.check_login("h:1", 0.0)  # one free failure
    limits.login_failed("h:1", 0.0)  # held 1.5 s
    with pytest.raises(TooManyRequests) as held:
        limits.check_login("h:2", 0.1)  # another port of the same host
    assert held.value.retry_after == 2
    limits.check_login("h:1", 1.5)
    assert (limits.login_failures, limits.refused_login_backoff) == (2, 1)


def test_a_user_name_guessed_from_many_hosts_is_held_too() -> None:
    limits = CoAPLimits(login_backoff=LoginBackoff(free_failures=1, base_delay=1.0))
    limits.login_failed("10.0.0.1:1", 0.0, "alice")
    limits.login_failed("10.0.0.2:1", 0.0, "alice")
    with pytest.raises(TooManyRequests):
        limits.check_login("10.0.0.3:1", 0.1, "alice")
    limits.check_login("10.0.0.3:1", 0.1, "bob")


def test_without_limiters_everything_passes() -> None:
    limits = CoAPLimits()
    for n in range(100):
        limits.admit(n, "h:1", 0.0)
        limits.check_login("h:1", 0.0)
        limits.login_failed("h:1", 0.0)
    assert (limits.refused_rate, limits.refused_login_backoff, limits.login_failures) == (0, 0, 100)


def test_the_connection_limit_refuses_new_clientids_only() -> None:
    registry = ConnectionRegistry(60.0, max_connections=1)
    registry.open("a", None, 0.0)
    registry.open("a", None, 1.0)  # a replacement
    with pytest.raises(Overloaded) as refused:
        registry.open("b", None, 1.0)
    assert error_response(refused.value).max_age == 30
    assert (len(registry), registry.refused) == (1, 1)
