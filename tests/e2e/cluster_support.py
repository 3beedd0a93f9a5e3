"""A real NATS cluster with JetStream on loopback, and gateway nodes joined through it.

`NatsCluster(3)` starts three Debian `nats-server` processes routed to each other (ports
from the OS: bound, released, then given to the servers); `cluster_node(nats, "gw-a")` is a
`RunningGateway` with `[cluster]` pointing at them. `until_routed` publishes probes until a
subscriber sees one: interest crosses NATS asynchronously, so a test waits for it, never sleeps.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import LOOPBACK, RunningGateway, make_config

TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def nats_binary() -> str:
    found = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)
    assert found, "nats-server is not installed (scripts/test.sh installs Debian's nats-server)"
    return found


class NatsCluster:
    """`size` nats-server processes in one cluster, JetStream on, loopback only."""

    def __init__(self, size: int = 3) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="rmq-nats-")
        self.client_ports = [free_port() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        for index in range(size):
            self.start(index)
        for port in self.client_ports:
            _wait_port(port)

    @property
    def urls(self) -> list[str]:
        return [f"nats://{LOOPBACK}:{port}" for port in self.client_ports]

    def start(self, index: int) -> None:
        folder = Path(self.dir.name) / f"n{index}"
        folder.mkdir(exist_ok=True)
        routes = ", ".join(f"nats-route://{LOOPBACK}:{p}" for i, p in enumerate(self.route_ports) if i != index)
        conf = folder / "nats.conf"
        text = (f'server_name: n{index}\nlisten: "{LOOPBACK}:{self.client_ports[index]}"\n'
                f'jetstream {{ store_dir: "{folder}/js" }}\n')
        if len(self.client_ports) > 1:  # a lone server runs JetStream without a cluster block
            text += f'cluster {{ name: rmq, listen: "{LOOPBACK}:{self.route_ports[index]}", routes: [{routes}] }}\n'
        conf.write_text(text)
        self.procs[index] = subprocess.Popen([nats_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                             stderr=open(folder / "log", "wb"))

    def kill(self, index: int) -> None:
        proc = self.procs[index]
        if proc is not None:
            proc.kill()
            proc.wait(10)
            self.procs[index] = None

    def stop(self) -> None:
        for index in range(len(self.procs)):
            self.kill(index)
        self.dir.cleanup()


def _wait_port(port: int, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nats-server did not listen on {port}") from None
            time.sleep(0.05)


@pytest.fixture(scope="module")
def nats() -> Iterator[NatsCluster]:
    """Three nats-server processes in a cluster with JetStream, for one test module."""
    cluster = NatsCluster(3)
    try:
        yield cluster
    finally:
        cluster.stop()


def cluster_node(nats: NatsCluster, node: str, servers: list[str] | None = None, **sections: Any) -> RunningGateway:
    """A gateway node of the cluster: MQTT on loopback plus `sections`; waits until it has joined."""
    cluster = {"nats": servers or nats.urls, "node": node, "heartbeat": 0.2, **sections.pop("cluster", {})}
    running = RunningGateway(make_config(cluster=cluster, **sections))
    fabric = running.gateway.fabric
    assert fabric is not None and running.call_async(fabric.wait_connected(TIMEOUT), timeout=TIMEOUT + 5)
    return running


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.02)
