"""Queue mode: commands wait for a sleeping device, expire, and flow when it wakes."""

from __future__ import annotations

from adapters.lwm2m.queue_mode import AWAKE_WINDOW, DownlinkQueue, Release, ttl_of


def test_without_queue_mode_every_command_is_sent_at_once() -> None:
    queue = DownlinkQueue(queue_mode=False)
    assert queue.submit("read", now=0) == Release(send=("read",))
    assert len(queue) == 0 and queue.next_deadline() is None


def test_a_queue_mode_device_is_awake_for_a_window_after_it_was_seen() -> None:
    queue = DownlinkQueue(queue_mode=True, awake_window=20)
    assert not queue.is_awake(0)
    queue.seen(100)
    assert queue.submit("read", now=119.9) == Release(send=("read",))
    assert queue.is_awake(119.9) and not queue.is_awake(120)
    assert queue.submit("write", now=120) == Release()
    assert len(queue) == 1
    assert AWAKE_WINDOW == 93.0


def test_commands_for_a_sleeping_device_wait_for_its_next_update_in_order() -> None:
    queue = DownlinkQueue(queue_mode=True, awake_window=10)
    for n, name in enumerate(("read", "write", "execute")):
        assert queue.submit(name, now=n) == Release()
    assert queue.seen(50) == Release(send=("read", "write", "execute"))
    assert len(queue) == 0 and queue.submit("observe", now=55) == Release(send=("observe",))


def test_queued_commands_expire_after_their_ttl() -> None:
    queue = DownlinkQueue(queue_mode=True, default_ttl=60)
    queue.submit("old", now=0)
    queue.submit("short", now=10, ttl=5)
    queue.submit("new", now=30)
    assert queue.next_deadline() == 15
    assert queue.expire(14) == Release()
    assert queue.expire(15) == Release(expired=("short",))
    assert queue.next_deadline() == 60
    assert queue.seen(70) == Release(send=("new",), expired=("old",))


def test_a_full_queue_drops_its_oldest_command() -> None:
    queue = DownlinkQueue(queue_mode=True, max_items=2)
    queue.submit("a", now=0)
    queue.submit("b", now=1)
    assert queue.submit("c", now=2) == Release(dropped=("a",))
    assert queue.seen(3).send == ("b", "c")


def test_commands_without_ttl_never_expire() -> None:
    queue = DownlinkQueue(queue_mode=True, default_ttl=None)
    queue.submit("a", now=0)
    assert queue.next_deadline() is None and queue.expire(10**9) == Release()


def test_leaving_queue_mode_releases_what_waited() -> None:
    queue = DownlinkQueue(queue_mode=True)
    queue.submit("a", now=0)
    assert queue.set_queue_mode(True, now=1) == Release()
    assert queue.set_queue_mode(False, now=2) == Release(send=("a",))
    assert queue.submit("b", now=3) == Release(send=("b",))


def test_clearing_returns_the_waiting_commands() -> None:
    queue = DownlinkQueue(queue_mode=True)
    queue.submit("a", now=0)
    assert queue.clear() == ("a",) and len(queue) == 0


def test_a_command_may_carry_its_own_ttl() -> None:
    assert ttl_of({"reqID": 1, "ttl": 30}, 100) == 30.0
    assert ttl_of({"reqID": 1}, 100) == 100
    assert ttl_of({"ttl": "soon"}, None) is None and ttl_of({"ttl": True}, 5) == 5
