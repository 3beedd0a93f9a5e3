"""LwM2M registrations across a restart: a gateway on an SQLite file stops, a new one starts on the same file.

Two simulated devices (examples/lwm2m_device.py) register with the first
gateway and keep running. The second gateway starts "an hour later": its
stored-registration clock (`adapters.lwm2m.server.wall_clock`) is moved one
hour ahead, so the device registered for 2 hours is still known and the one
registered for 60 s ended while the gateway was down. No device registers
again; an MQTT watcher with a persistent session (on the same file) sees the
expiry that the second gateway announces at start.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import pytest
from aiocoap.numbers.codes import Code

import adapters.lwm2m.server as lwm2m_server
from adapters.lwm2m.registration_records import KIND
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import PahoClient
from tests.e2e.lwm2m_support import MqttApp, SimulatedDevice, coap_port, values

KEPT, GONE = "kept-1", "gone-1"
HOUR = 3600.0


def gateway_on(path: Path) -> RunningGateway:
    return RunningGateway(make_config(store={"path": str(path)}, coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                      lwm2m={"qos": 1, "command_timeout": 5}))


def watcher(gateway: RunningGateway) -> PahoClient:
    """A persistent MQTT 3.1.1 session (clean session off) reading every LwM2M event."""
    return PahoClient(gateway.mqtt_port, "lwm2m-watcher", "311", clean=False).connect()


@pytest.fixture
def devices() -> Iterator[dict[str, SimulatedDevice]]:
    running = {KEPT: SimulatedDevice(KEPT, lifetime=7200), GONE: SimulatedDevice(GONE, lifetime=60)}
    try:
        yield running
    finally:
        for device in running.values():
            device.stop(deregister=False)


def test_a_registration_outlives_a_restart_until_its_lifetime_ends(
        tmp_path: Path, devices: dict[str, SimulatedDevice], monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "gateway.db"
    first = gateway_on(db)
    try:
        events = watcher(first)
        events.subscribe("lwm2m/+/up/#", qos=1)
        for device in devices.values():
            device.start(first)
        registered = {}
        for _ in devices:
            message = events.inbox.get(10)
            assert message.topic.endswith("/up/register")
            registered[message.topic.split("/")[1]] = message
        assert set(registered) == {KEPT, GONE}
        events.close()
    finally:
        first.stop()
    kept, gone = devices[KEPT], devices[GONE]
    location = kept.run(lambda: kept.device.location)
    requests_before = len(kept.requests())

    monkeypatch.setattr(lwm2m_server, "wall_clock", lambda: time.time() + HOUR)
    second = gateway_on(db)
    try:
        server = second.gateway.lwm2m
        assert server is not None
        # The expired one was announced at start, to the persistent session that was offline then.
        events = watcher(second)
        expired = events.inbox.get(10)
        assert expired.topic == f"lwm2m/{GONE}/up/deregister"
        assert b'"reason":"expired"' in expired.payload
        assert second.call(lambda: server.table.by_endpoint(GONE)) is None
        assert second.call(lambda: sorted(server.store.load_records(KIND))) == [KEPT]

        # The kept one takes commands at once, at the address it registered from, under its location id.
        restored = second.call(lambda: server.table.by_endpoint(KEPT))
        assert restored is not None and restored.location == location and restored.lifetime == 7200
        app = MqttApp(second)
        try:
            answer = app.ask(KEPT, "read", {"path": "/3/0"})
            assert answer["data"]["code"] == "2.05" and values(answer)["/3/0/2"] == f"SIM-{KEPT}"
            assert kept.requests()[requests_before:] == [("GET", "/3/0", None)]
            assert kept.run(lambda: kept.device.location) == location  # never registered again

            # Its next Update, sent to the new gateway's port, finds the registration it had.
            kept.run(lambda: setattr(kept.device, "server", (LOOPBACK, coap_port(second))))
            assert kept.call(kept.device.update()) == Code.CHANGED
            assert app.next_on(f"lwm2m/{KEPT}/up/update")["data"]["ep"] == KEPT
            assert not [m for m in app.seen + events.inbox.pending() if m.topic.endswith("/up/register")]
        finally:
            app.close()
        events.close()
    finally:
        second.stop()
