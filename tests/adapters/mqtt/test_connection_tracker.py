"""What a listener keeps of its ended connections (adapters/mqtt/server.py `ConnectionTracker`)."""

from __future__ import annotations

import pytest

from adapters.mqtt.connection import MQTTConnection
from adapters.mqtt.server import CONNECTION_COUNTERS, ConnectionTracker
from adapters.mqtt.settings import MQTTSettings
from core.broker import Broker


def _ended(tracker: ConnectionTracker, listener: str = "mqtt", counts: dict[str, int] | None = None) -> None:
    conn = MQTTConnection(Broker(), MQTTSettings(), listener=listener)
    for name, count in (counts or {}).items():
        setattr(conn, name, count)
    tracker.connections.add(conn)
    tracker.forget(conn)


def test_a_listeners_totals_start_at_zero_with_its_first_ended_connection() -> None:
    tracker = ConnectionTracker()
    _ended(tracker)
    assert tracker.totals == {("mqtt", name): 0 for name in CONNECTION_COUNTERS}
    assert tracker.closed == {("mqtt", "client"): 1}


@pytest.mark.parametrize("counter", CONNECTION_COUNTERS)
def test_each_counter_of_an_ended_connection_is_added_to_its_listeners_total(counter: str) -> None:
    tracker = ConnectionTracker()
    _ended(tracker, counts={counter: 2})
    _ended(tracker)
    _ended(tracker, counts={counter: 3})
    _ended(tracker, "mqtts", {counter: 5})
    assert tracker.totals[("mqtt", counter)] == 5 and tracker.totals[("mqtts", counter)] == 5
    assert sum(tracker.totals.values()) == 10  # and nothing else counted


def test_a_connection_is_counted_once() -> None:
    tracker = ConnectionTracker()
    conn = MQTTConnection(Broker(), MQTTSettings())
    conn.publishes_denied = 1
    tracker.connections.add(conn)
    tracker.forget(conn)
    tracker.forget(conn)  # a second connection_lost, or one after shutdown's sweep
    assert tracker.totals[("mqtt", "publishes_denied")] == 1 and tracker.closed == {("mqtt", "client"): 1}
