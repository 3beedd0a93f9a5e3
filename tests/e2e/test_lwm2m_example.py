"""LwM2M as a user runs it: examples/lwm2m_device.py as a process, mosquitto_pub for commands; and the topic ACL.

The example's quick start (README) is exactly this: start the simulator with
--server, publish a read with mosquitto_pub, watch ``lwm2m/{ep}/up/#``, stop
the simulator with Ctrl-C (SIGINT) and see it deregister. With an ACL file,
what a device may publish and receive is checked with its endpoint name as
client id, like any other client.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import TIMEOUT
from tests.e2e.lwm2m_support import ROOT, MqttApp, SimulatedDevice, coap_port, lwm2m_gateway, values


def test_the_example_device_is_read_with_mosquitto_pub_and_deregisters_on_ctrl_c() -> None:
    gateway = lwm2m_gateway()
    app = MqttApp(gateway)
    device = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "lwm2m_device.py"), "--server", f"{LOOPBACK}:{coap_port(gateway)}",
         "--endpoint", "kitchen", "--lifetime", "60", "--bind", LOOPBACK],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        registered = app.next_on("lwm2m/kitchen/up/register")
        assert registered["data"]["objectList"] == ["/1/0", "/3/0", "/3303/0"]
        command = json.dumps({"reqID": 1, "msgType": "read", "data": {"path": "/3/0"}})
        subprocess.run(["mosquitto_pub", "-h", LOOPBACK, "-p", str(gateway.mqtt_port), "-q", "1",
                        "-t", "lwm2m/kitchen/dn", "-m", command], check=True, timeout=TIMEOUT)
        answer = app.answer("kitchen", 1)
        assert values(answer)["/3/0/2"] == "SIM-kitchen"
        device.send_signal(signal.SIGINT)
        assert app.next_on("lwm2m/kitchen/up/deregister")["data"]["reason"] == "deregister"
        assert device.wait(TIMEOUT) == 0
    finally:
        if device.poll() is None:
            device.kill()
            device.wait(TIMEOUT)
        app.close()
        gateway.stop()


ACL = """
user ops
topic readwrite #

topic deny lwm2m/intruder/#
pattern write lwm2m/%c/up/#
pattern read lwm2m/%c/dn/#
"""


def test_the_acl_decides_what_a_device_publishes_and_which_commands_reach_it(tmp_path: Path) -> None:
    (tmp_path / "acl").write_text(ACL)
    gateway = RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                         auth={"acl_file": str(tmp_path / "acl")}))
    app = MqttApp(gateway, "lwm2m/#", username="ops")
    intruder = SimulatedDevice("intruder").start(gateway)
    allowed = SimulatedDevice("allowed").start(gateway)
    try:
        assert app.next_on("lwm2m/allowed/up/register")["data"]["ep"] == "allowed"
        assert [m.topic for m in app.seen] == ["lwm2m/allowed/up/register"]  # nothing from the intruder
        app.command("intruder", "read", {"path": "/3/0/0"})
        assert values(app.ask("allowed", "read", {"path": "/3/0/0"})) == {"/3/0/0": "RosettaMQ"}
        assert intruder.requests() == []
        assert not [m for m in app.seen if m.topic.startswith("lwm2m/intruder/up")]
    finally:
        intruder.stop()
        allowed.stop()
        app.close()
        gateway.stop()
