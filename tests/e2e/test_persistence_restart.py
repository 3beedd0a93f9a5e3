"""A gateway stopped and started again on the same store (memory or SQLite) resumes sessions and retained messages."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from adapters.mqtt.packets import Publish
from core.stores.memory import MemoryStore
from core.stores.sqlite import SqliteStore
from tests.conftest import RunningGateway, make_config
from tests.e2e.test_mqtt_sessions import (
    connect,
    is_offline,
    next_is_pingresp,
    persistent,
    publish,
    subscribe,
    wait_until,
)


def test_the_configured_store_path_opens_a_sqlite_store(tmp_path: Path) -> None:
    running = RunningGateway(make_config(store={"path": str(tmp_path / "gw.db")}))
    try:
        assert isinstance(running.broker.store, SqliteStore)
    finally:
        running.stop()


def gateway_factory(kind: str, tmp_path: Path) -> Callable[[], RunningGateway]:
    """Gateways that share one store: a MemoryStore object, or an SQLite file."""
    if kind == "memory":
        store = MemoryStore()
        return lambda: RunningGateway(make_config(), store=store)
    config = make_config(store={"path": str(tmp_path / "gw.db")})
    return lambda: RunningGateway(config)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_restarted_gateway_on_the_same_store_resumes_sessions_and_retained_messages(
    kind: str, tmp_path: Path
) -> None:
    start = gateway_factory(kind, tmp_path)
    first = start()
    try:
        port = first.mqtt_port
        sub, _ = connect(port, "survivor", 5, **persistent(5, expiry=3600))
        subscribe(sub, "boot/#", 2)
        publish(port, "boot/inflight", b"unacked", qos=1)
        unacked = sub.recv()
        assert isinstance(unacked, Publish) and unacked.payload == b"unacked"
        sub.close()  # never acknowledged
        assert wait_until(lambda: is_offline(first, "survivor"))
        publish(port, "boot/queued", b"queued", qos=2)
        publish(port, "boot/retained", b"kept", qos=1, retain=True)
        publish(port, "boot/cleared", b"gone", qos=0, retain=True)
        publish(port, "boot/cleared", b"", qos=0, retain=True)
    finally:
        first.stop()
    second = start()
    try:
        port = second.mqtt_port
        sub, connack = connect(port, "survivor", 5, **persistent(5, expiry=3600))
        assert connack.session_present is True
        resent = sub.recv()
        assert isinstance(resent, Publish)
        assert (resent.packet_id, resent.payload, resent.dup) == (unacked.packet_id, b"unacked", True)
        queued = [sub.recv() for _ in range(2)]
        assert [(p.payload, p.qos, p.dup) for p in queued] == [(b"queued", 2, False), (b"kept", 1, False)]
        publish(port, "boot/after", b"live", qos=0)
        assert sub.recv().payload == b"live"  # the subscription is live in the new router
        later, _ = connect(port, "late-reader", 5)
        subscribe(later, "boot/retained", 1)
        retained = later.recv()
        assert (retained.payload, retained.retain) == (b"kept", True)
        subscribe(later, "boot/cleared", 1, packet_id=2)
        assert next_is_pingresp(later)  # the cleared retained message stayed cleared
        sub.close()
        later.close()
    finally:
        second.stop()
