"""LwM2M interop with lwm2m-node-lib, a real third-party LwM2M 1.0 client (npm; scripts/test.sh installs it).

It registers with ``lwm2m=1.0``, no Content-Format on its object list, and
answers reads with the old text format (1541): the gateway must take all of it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import RunningGateway
from tests.e2e.lwm2m_support import MqttApp, coap_port, lwm2m_gateway, values

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "lwm2m_client.js"


@pytest.fixture(scope="module", autouse=True)
def lwm2m_node_lib_installed() -> None:
    """scripts/test.sh installs the node peers; a bare `pytest` run installs them here from the lock file."""
    if not (NODE_DIR / "node_modules" / "lwm2m-node-lib").is_dir():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = lwm2m_gateway(command_timeout=5)
    try:
        yield running
    finally:
        running.stop()


def next_event(process: subprocess.Popen[str], key: str) -> Any:
    """The next JSON event line the node client prints (its library's log lines are skipped)."""
    assert process.stdout is not None
    for line in process.stdout:  # ends at EOF: the process exited (the test then fails below)
        try:
            event = json.loads(line)
        except ValueError:
            continue
        assert "error" not in event, event["error"]
        if key in event:
            return event[key]
    raise AssertionError(f"lwm2m_client.js ended without {key!r}: {process.stderr.read() if process.stderr else ''}")


def test_lwm2m_node_lib_registers_and_answers_a_read_an_mqtt_app_requests(gateway: RunningGateway) -> None:
    app = MqttApp(gateway)
    node = subprocess.Popen(["node", str(SCRIPT), str(coap_port(gateway)), "node-lib-1"], cwd=NODE_DIR,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        registered = app.next_on("lwm2m/node-lib-1/up/register")["data"]
        assert (registered["lwm2m"], registered["b"], registered["objectList"]) == ("1.0", "U", ["/3/0"])
        assert next_event(node, "registered").startswith("rd/")

        answer = app.ask("node-lib-1", "read", {"path": "/3/0/0"})
        assert (answer["data"]["code"], values(answer)) == ("2.05", {"/3/0/0": "lwm2m-node-lib maker"})
        answer = app.ask("node-lib-1", "read", {"path": "/3/0/2"})
        assert values(answer) == {"/3/0/2": "NODE-0001"}

        assert node.stdin is not None
        node.stdin.close()  # the client deregisters
        assert next_event(node, "deregistered") is True
        assert app.next_on("lwm2m/node-lib-1/up/deregister")["data"]["reason"] == "deregister"
        assert node.wait(10) == 0
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(10)
        app.close()
