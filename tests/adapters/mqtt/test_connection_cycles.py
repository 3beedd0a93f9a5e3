"""An ended MQTT connection is freed by reference counting, not left in cycles for the garbage collector.

Connect/subscribe churn (issue 17) spent ~10% of the gateway's CPU in the cycle collector:
every connection left its MQTTConnection, login, driver, session and transport (~20 objects)
in reference cycles. `ConnectionDriver.lost` drops the back references; this checks that
nothing of ours is left for the collector after clients connect, subscribe and go away
(a clean DISCONNECT, a dropped socket, and a refused login).
"""

from __future__ import annotations

import gc
import time

from adapters.mqtt.packets import ConnAck, Disconnect, SubAck, Subscribe, SubscriptionRequest
from tests.conftest import RunningGateway
from tests.wire_client import WireClient

OURS = ("adapters.", "core.")  # the modules whose objects must not be left in cycles


def _churn(running: RunningGateway, count: int) -> None:
    for index in range(count):
        with WireClient(running.mqtt_port, level=4 if index % 2 else 5) as client:
            assert isinstance(client.connect(f"cycle{index}"), ConnAck)
            client.send(Subscribe(1, (SubscriptionRequest(f"devices/cycle{index}/cmd", 1),)))
            assert isinstance(client.recv(), SubAck)
            if index % 3 == 0:
                client.send(Disconnect())
    with WireClient(running.mqtt_port, level=4) as refused:  # 3.1.1 with an empty id and no clean session
        refused.connect("", clean_start=False)
    deadline = time.monotonic() + 10
    while running.call(lambda: len(running.gateway.mqtt_connections)):  # every connection_lost has run
        assert time.monotonic() < deadline, "connections still open"
        time.sleep(0.01)
    running.call(lambda: None)  # and whatever they scheduled on the loop


def test_ended_connections_leave_no_cycles_of_ours(running: RunningGateway) -> None:
    _churn(running, 3)  # warm up: first-use caches, lazily made module state
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        _churn(running, 12)
        gc.collect()
        left = sorted({f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                       if type(o).__module__.startswith(OURS)})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
