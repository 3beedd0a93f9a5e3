"""Connection admission, per-address rate limits and login backoff, driven by a hand-moved clock."""

from __future__ import annotations

import pytest

from core.limits import ConnectionGate, RateLimiter, Refusal, address_key
from core.login_backoff import LoginBackoff


@pytest.mark.parametrize(
    ("peer", "key"),
    [("10.0.0.1:5000", "10.0.0.1"), ("[::1]:5000", "::/64"), ("::1", "::/64"), ("10.0.0.1", "10.0.0.1"), ("", ""),
     ("[2001:db8:1:2:aaaa::1]:5000", "2001:db8:1:2::/64"), ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
     ("[::ffff:192.0.2.7]:5000", "192.0.2.7"), ("[fe80::1%lo]:5000", "fe80::/64")],
)
def test_limits_count_by_host_without_the_port_and_ipv6_by_its_64(peer: str, key: str) -> None:
    """An IPv6 host owns a whole /64: rotating addresses inside it must not escape a rate limit."""
    assert address_key(peer) == key


def test_two_addresses_of_one_ipv6_64_share_a_rate_limit() -> None:
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.allow(address_key("[2001:db8::1]:1"), 0.0)
    assert not limiter.allow(address_key("[2001:db8::2]:1"), 0.0)
    assert limiter.allow(address_key("[2001:db8:0:1::1]:1"), 0.0)  # the next /64 is someone else


def test_a_gate_refuses_connections_beyond_its_maximum_until_one_closes() -> None:
    gate = ConnectionGate(max_connections=2)
    assert gate.admit("a:1", 0) is None and gate.admit("b:1", 0) is None
    assert gate.admit("c:1", 0) is Refusal.MAX_CONNECTIONS
    gate.release()
    assert gate.admit("c:1", 0) is None
    assert (gate.open, gate.accepted, gate.refused_max_connections) == (2, 3, 1)


def test_a_token_bucket_allows_the_burst_then_the_rate_per_address() -> None:
    gate = ConnectionGate(rate_limiter=RateLimiter(rate=2.0))
    assert [gate.admit("10.0.0.1:1", 100.0) for _ in range(3)] == [None, None, Refusal.RATE]
    assert gate.admit("10.0.0.2:1", 100.0) is None  # another address has its own bucket
    assert gate.admit("10.0.0.1:2", 100.4) is Refusal.RATE  # 0.4 s refilled 0.8 of a token
    assert gate.admit("10.0.0.1:3", 100.5) is None  # 0.5 s: one whole token
    assert gate.admit("10.0.0.1:4", 100.6) is Refusal.RATE
    assert gate.refused_rate == 3


def test_a_full_rate_table_forgets_idle_addresses_first() -> None:
    limiter = RateLimiter(rate=1.0, max_keys=3)
    for n in range(3):
        assert limiter.allow(f"10.0.0.{n}", 0.0)
    assert limiter.allow("10.0.0.9", 10.0)  # the three older buckets refilled: pruned
    assert not limiter.allow("10.0.0.9", 10.0)


def test_login_failures_are_free_up_to_the_threshold_then_delayed_exponentially_and_capped() -> None:
    backoff = LoginBackoff(free_failures=3, base_delay=1.0, max_delay=8.0)
    delays = [backoff.failed("10.0.0.1:1", 0.0) for _ in range(8)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3] == 1.0
    assert delays[4:7] == [2.0, 4.0, 8.0]  # each from `now`, never shorter than what was already owed
    assert delays[7] == 8.0
    assert backoff.delayed == 5 and backoff.failures == 8


def test_a_held_address_waits_before_any_login_is_checked_and_others_do_not() -> None:
    backoff = LoginBackoff(free_failures=1, base_delay=2.0)
    backoff.failed("10.0.0.1:1", 10.0)
    assert backoff.hold("10.0.0.1:2", 10.0) == 0.0
    backoff.failed("10.0.0.1:1", 10.0)
    assert backoff.hold("10.0.0.1:3", 11.0) == 1.0
    assert backoff.hold("10.0.0.2:3", 11.0) == 0.0
    assert backoff.hold("10.0.0.1:3", 12.0) == 0.0


def test_failures_are_forgotten_after_a_quiet_period() -> None:
    backoff = LoginBackoff(free_failures=1, forget_after=60.0)
    backoff.failed("h:1", 0.0)
    assert backoff.failed("h:1", 1.0) > 0
    assert backoff.failed("h:1", 1000.0) == 0.0  # a first failure again


def test_the_failure_table_is_bounded() -> None:
    backoff = LoginBackoff(max_addresses=2)
    for n in range(5):
        backoff.failed(f"10.0.0.{n}:1", 0.0)
    assert len(backoff._table) == 2


def test_a_user_name_guessed_from_many_addresses_is_held_back_too() -> None:
    backoff = LoginBackoff(free_failures=2, base_delay=1.0)
    delays = [backoff.failed(f"10.0.{n}.1:1", 0.0, "alice") for n in range(4)]
    assert delays == [0.0, 0.0, 1.0, 2.0]  # every address is new; the name is not
    assert backoff.hold("10.0.9.1:1", 1.0, "alice") == 1.0
    assert backoff.hold("10.0.9.1:1", 1.0, "bob") == 0.0
    assert backoff.hold("10.0.9.1:1", 1.0) == 0.0  # an address-only caller
    assert backoff.delayed == 2 and backoff.failures == 4
