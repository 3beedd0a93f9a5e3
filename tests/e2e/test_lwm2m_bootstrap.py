"""The LwM2M bootstrap server on ``/bs`` (issue 18), with the SenML-only client of
tests/e2e/lwm2m_senml_device.py bootstrapping as wakaama's lwm2mclient does (``pct=110``).

Configurations come from ``[lwm2m.bootstrap]`` or a per-endpoint JSON file in
``[lwm2m] bootstrap_dir``; what happened is published on ``lwm2m/{ep}/up/bootstrap``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiocoap.numbers.codes import Code

from tests.e2e.lwm2m_senml_device import SENML_JSON, SenmlDevice
from tests.e2e.lwm2m_support import LOOPBACK, MqttApp, SimulatedDevice, coap_port, lwm2m_gateway, values

DEFAULT = {"security": {"0": {"uri": "coap://127.0.0.1:5999", "bootstrap": False, "mode": 3, "shortId": 7}},
           "server": {"0": {"shortId": 7, "lifetime": 120, "binding": "U", "notifStoring": True}}}


def bootstrap(simulated: SimulatedDevice, port: int) -> Code:
    return simulated.call(simulated.device.bootstrap(LOOPBACK, port))


def test_a_client_is_bootstrapped_from_the_configured_default() -> None:
    running = lwm2m_gateway(bootstrap=DEFAULT)
    app = MqttApp(running)
    simulated = SimulatedDevice("boot-1", SenmlDevice).start(running, register=False)
    try:
        assert bootstrap(simulated, coap_port(running)) == Code.CHANGED
        assert app.next_on("lwm2m/boot-1/up/bootstrap") == {"msgType": "bootstrap", "data": {
            "status": "requested", "format": SENML_JSON}}
        assert app.next_on("lwm2m/boot-1/up/bootstrap") == {"msgType": "bootstrap", "data": {"status": "finished"}}
        objects = simulated.run(lambda: simulated.device.objects)
        assert objects[0] == {0: {0: "coap://127.0.0.1:5999", 1: False, 2: 3, 10: 7}}
        assert objects[1] == {0: {0: 7, 1: 120, 6: True, 7: "U"}}
        sequence = [r[:2] for r in simulated.requests()]
        assert sequence == [("DELETE", "/"), ("PUT", "/0/0"), ("PUT", "/1/0"), ("POST", "/bs")]
        assert all(r[3] == SENML_JSON for r in simulated.requests() if r[0] == "PUT")  # the pct it asked for
    finally:
        simulated.stop(deregister=False)
        app.close()
        running.stop()


def test_a_per_endpoint_file_sends_the_client_to_the_gateway_where_it_registers(tmp_path: Path) -> None:
    running = lwm2m_gateway(bootstrap_dir=str(tmp_path))
    app = MqttApp(running)
    port = coap_port(running)
    (tmp_path / "boot-2.json").write_text(json.dumps({
        "security": {"0": {"uri": f"coap://{LOOPBACK}:{port}", "bootstrap": False, "mode": 3, "shortId": 1},
                     "1": {"uri": f"coap://{LOOPBACK}:{port}", "bootstrap": True, "mode": 3}},
        "server": {"0": {"shortId": 1, "lifetime": 90, "binding": "U"}}}))
    simulated = SimulatedDevice("boot-2", SenmlDevice).start(running, register=False)
    try:
        assert bootstrap(simulated, port) == Code.CHANGED
        assert app.next_on("lwm2m/boot-2/up/bootstrap", lambda m: m["data"]["status"] != "requested") == {
            "msgType": "bootstrap", "data": {"status": "finished"}}
        simulated.call(simulated.device.register())
        registered = app.next_on("lwm2m/boot-2/up/register")["data"]
        assert registered["lt"] == 90  # the lifetime the bootstrap gave it
        assert values(app.ask("boot-2", "read", {"path": "/1/0"})) == {"/1/0/0": 1, "/1/0/1": 90, "/1/0/7": "U"}
    finally:
        simulated.stop()
        app.close()
        running.stop()


def test_an_endpoint_without_configuration_is_refused(tmp_path: Path) -> None:
    running = lwm2m_gateway(bootstrap_dir=str(tmp_path))
    simulated = SimulatedDevice("unknown", SenmlDevice).start(running, register=False)
    try:
        assert bootstrap(simulated, coap_port(running)) == Code.BAD_REQUEST
    finally:
        simulated.stop(deregister=False)
        running.stop()


def test_a_write_the_client_refuses_fails_the_bootstrap_and_says_where() -> None:
    running = lwm2m_gateway(bootstrap=DEFAULT)
    app = MqttApp(running)
    simulated = SimulatedDevice("boot-3", SenmlDevice).start(running, register=False)
    simulated.run(lambda: simulated.device.refuse.add(("PUT", "/1/0")))
    simulated.run(lambda: setattr(simulated.device, "bootstrapped", asyncio.Event()))  # bootstrapping
    try:
        simulated.call(simulated.device.ask(Code.POST, "/bs", ["ep=boot-3", "pct=110"]))
        failed = app.next_on("lwm2m/boot-3/up/bootstrap", lambda m: m["data"]["status"] != "requested")
        assert failed == {"msgType": "bootstrap", "data": {
            "status": "failed", "method": "PUT", "path": "/1/0", "code": "4.00"}}
        assert ("POST", "/bs") not in [r[:2] for r in simulated.requests()]  # never finished
    finally:
        simulated.stop(deregister=False)
        app.close()
        running.stop()


def test_without_configuration_there_is_no_bootstrap_server() -> None:
    running = lwm2m_gateway()
    simulated = SimulatedDevice("nobs", SenmlDevice).start(running, register=False)
    try:
        assert bootstrap(simulated, coap_port(running)) == Code.NOT_FOUND
    finally:
        simulated.stop(deregister=False)
        running.stop()
