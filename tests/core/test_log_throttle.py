"""LogThrottle: one line per key per interval, and how many were held back, on a hand-moved clock."""

from core.log_throttle import LogThrottle


def test_the_first_event_of_a_key_is_logged_and_repeats_within_the_interval_are_not() -> None:
    throttle = LogThrottle(interval=10)
    assert throttle.allow("peer", 0.0) == 0
    assert throttle.allow("peer", 1.0) is None
    assert throttle.allow("peer", 9.9) is None
    assert throttle.allow("other", 5.0) == 0


def test_after_the_interval_the_next_line_says_how_many_were_held_back() -> None:
    throttle = LogThrottle(interval=10)
    throttle.allow("peer", 0.0)
    for t in range(1, 6):
        throttle.allow("peer", float(t))
    assert throttle.allow("peer", 10.0) == 5
    assert throttle.allow("peer", 10.5) is None


def test_keys_are_bounded_oldest_forgotten_first() -> None:
    throttle = LogThrottle(interval=10, max_keys=3)
    for key in "abcd":
        throttle.allow(key, 0.0)
    assert throttle.allow("a", 1.0) == 0  # forgotten, so logged again
    assert throttle.allow("d", 1.0) is None
