"""The example clients keep going when an operator kicks them or the gateway restarts (one line, no traceback).

Each example runs as a user runs it (a process, `python examples/X.py`); the gateway runs in-process and
is restarted on the same OS-chosen ports. Every wait is on an output line or a message, with a timeout.
"""

from __future__ import annotations

import signal
import sys
import urllib.parse
from typing import Any, Iterator

import pytest

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.admin_support import http
from tests.e2e.clients import PahoClient
from tests.e2e.process_support import ROOT, TIMEOUT, Watched


class Example(Watched):
    """`python examples/NAME.py ARGS`, as a user runs it."""

    def __init__(self, name: str, *args: str) -> None:
        super().__init__([sys.executable, str(ROOT / "examples" / name), *args])

    def wait_for(self, text: str, count: int = 1, err: bool = False) -> None:
        super().wait_for(text, count, err)
        assert self.proc.poll() is None, f"the example died: {''.join(self.err)[-2000:]}"

    def interrupt(self) -> int:
        """Ctrl-C, as a user stops it; the exit code."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(TIMEOUT)
        finally:
            if self.proc.poll() is None:  # pragma: no cover
                self.proc.kill()


class Gateway:
    """An in-process gateway that can be restarted on the ports it got the first time."""

    def __init__(self) -> None:
        self.running: RunningGateway | None = RunningGateway(
            self.config({name: 0 for name in ("mqtt", "amqp", "coap", "http")}))
        self.ports = dict(self.running.gateway.ports)

    @staticmethod
    def config(ports: dict[str, int]) -> Any:
        return make_config(**{name: {"enabled": True, "listen": f"{LOOPBACK}:{port}"} for name, port in ports.items()})

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None

    def start(self) -> None:
        """On the ports of the first start (the OS chose them; they are free again once it stopped)."""
        self.running = RunningGateway(self.config(self.ports))

    def restart(self) -> None:
        self.stop()
        self.start()

    def kick(self, prefix: str, protocol: str) -> str:
        """Kick (admin API) the one client of `protocol` whose id starts with `prefix`; its id."""
        assert self.running is not None
        clients = http(self.running, "GET", f"/api/v1/clients?protocol={protocol}").json()["clients"]
        (client_id,) = [c["id"] for c in clients if c["id"].startswith(prefix)]
        quoted = urllib.parse.quote(client_id, safe="")
        assert http(self.running, "DELETE", f"/api/v1/clients/{quoted}?protocol={protocol}").status == 200
        return str(client_id)

    def subscriber(self) -> PahoClient:
        client = PahoClient(self.ports["mqtt"]).connect()
        client.subscribe("sensors/#", qos=0)
        return client


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    running = Gateway()
    try:
        yield running
    finally:
        running.stop()


def no_traceback(example: Example) -> None:
    assert "Traceback" not in "".join(example.out + example.err), "".join(example.err)


def test_the_sensor_simulator_reconnects_when_kicked_and_when_the_gateway_restarts(gateway: Gateway) -> None:
    watcher = gateway.subscriber()
    example = Example("sensor_simulator.py", "--port", str(gateway.ports["mqtt"]), "--interval", "0.1")
    try:
        example.wait_for("connected to")
        watcher.inbox.get()
        gateway.kick("sensor-simulator-", "mqtt")
        example.wait_for("disconnected from", err=True)
        example.wait_for("reconnected to")
        watcher.inbox.pending()
        watcher.inbox.get()  # readings flow again
        watcher.close()
        gateway.restart()
        example.wait_for("reconnected to", count=2)
        watcher = gateway.subscriber()
        watcher.inbox.get()
    finally:
        watcher.close()
        code = example.interrupt()
    assert code == 0
    no_traceback(example)


def test_the_amqp_consumer_reconnects_when_kicked_and_when_the_gateway_restarts(gateway: Gateway) -> None:
    example = Example("amqp_consumer.py", "--port", str(gateway.ports["amqp"]), "--binding", "sensors.#")
    try:
        for n, disturb in enumerate((None, "kick", "restart")):
            if disturb == "kick":
                gateway.kick("", "amqp")
            elif disturb == "restart":
                gateway.restart()
            if disturb:
                example.wait_for("connecting again", count=n, err=True)
                example.wait_for("consuming again", count=n)
            else:
                example.wait_for("consuming amq.topic")
            publisher = PahoClient(gateway.ports["mqtt"]).connect()
            publisher.publish(f"sensors/x{n}", str(n).encode(), qos=1)
            publisher.close()
            example.wait_for(f"sensors.x{n}: {n}")
        assert "closed by the gateway (320" in "".join(example.err)  # kicked, then the shutdown: CONNECTION_FORCED
    finally:
        code = example.interrupt()
    assert code == 0
    no_traceback(example)


def test_the_coap_sensor_skips_readings_while_the_gateway_restarts_and_carries_on(gateway: Gateway) -> None:
    watcher = gateway.subscriber()
    example = Example("coap_sensor.py", "--port", str(gateway.ports["coap"]), "--topic", "sensors/c1",
                      "--interval", "0.2")
    try:
        example.wait_for("sensors/c1 ")
        watcher.inbox.get()
        watcher.close()
        gateway.stop()
        example.wait_for("not delivered", err=True)
        gateway.start()
        watcher = gateway.subscriber()
        assert watcher.inbox.get().topic == "sensors/c1"
    finally:
        watcher.close()
        code = example.interrupt()
    assert code == 0
    no_traceback(example)
