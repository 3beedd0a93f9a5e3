"""`rosettamq run --workers N`: one gateway process per core, sharing every listener port.

The supervisor (this module, in the process the user started) runs no listener itself:

- it fixes each enabled listener's port (a port 0 in the config becomes one free port, the same
  for every worker) and starts N workers, `rosettamq run` again with the same arguments and a
  `ROSETTAMQ_WORKER` description in their environment (`worker_config`): they bind with
  SO_REUSEPORT, so the kernel spreads TCP connections (and CoAP client addresses) over them;
- the workers are the nodes of a cluster (gateway/cluster/): a message published on one reaches
  subscribers on every other, retained messages are shared, and a session follows its client to
  whichever worker the kernel gives it (gateway/cluster/sessions.py). Without `[cluster] nats`
  the supervisor runs a local nats-server for them (gateway/local_nats.py);
- worker 1 serves the admin API and prints the ready banner; each worker keeps its own store
  (`rosettamq-w2.db` beside `rosettamq.db`), named so that a restarted worker finds its sessions;
- worker 1 alone runs the bridges (every worker's copy would forward each message once more);
- worker 1 alone serves AMQP: AMQP queues and exchanges other than amq.topic's bindings live on
  one node, so every AMQP client of the machine must reach the same one (a durable queue declared
  through one worker and consumed through another would be two queues);
- a worker that dies is started again (after 1, 2, 4... s up to 30 s if it keeps dying at once);
  SIGTERM or SIGINT stops every worker gracefully (then nats-server); SIGHUP is passed on.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from adapters.net.server import free_port
from gateway.cluster.settings import ClusterSettings
from gateway.config import Config, ListenAddress, StoreConfig
from gateway.local_nats import LocalNATS, NATSServerMissing
from gateway.systemd import notify

log = logging.getLogger("rosettamq.workers")

WORKER_ENV = "ROSETTAMQ_WORKER"
READY_TIMEOUT = 60.0  # seconds every worker has to bind its listeners
STOP_TIMEOUT = 20.0
UDP_LISTENERS = frozenset({"coap", "coaps"})


def worker_count(value: str) -> int:
    """`--workers`: a number, or "auto" (the cores this process may use)."""
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--workers takes a number or 'auto', not {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("--workers must be at least 1")
    return count


def worker_config(config: Config, spec: dict[str, Any]) -> Config:
    """The config of one worker: the supervisor's ports, its own node name and store, SO_REUSEPORT."""
    changes: dict[str, Any] = {"reuse_port": True}
    for name, port in spec["ports"].items():
        section = getattr(config, name)
        changes[name] = dataclasses.replace(section, listen=ListenAddress(section.listen.host, int(port)))
    if not spec["http"]:
        changes["http"] = dataclasses.replace(config.http, enabled=False)
    if not spec.get("amqp", True):
        for name in ("amqp", "amqps"):
            changes[name] = dataclasses.replace(getattr(config, name), enabled=False)
    if not spec.get("bridges", True):
        changes["bridges"] = ()
    cluster = config.cluster
    if cluster is None:
        # One machine, AMQP on worker 1 only: its durable queues are the machine's, as without workers.
        changes["cluster"] = ClusterSettings(servers=(spec["nats"],), node=spec["node"], durable_queues="local")
    else:
        changes["cluster"] = dataclasses.replace(cluster, node=spec["node"])
    changes["store"] = StoreConfig(spec["store"])
    return dataclasses.replace(config, **changes)


def worker_store(path: str, index: int) -> str:
    """Worker 1 keeps the configured store; worker i a file beside it (`rosettamq-w2.db`)."""
    if path in ("memory", ":memory:") or index == 1:
        return path
    stem, suffix = os.path.splitext(path)
    return f"{stem}-w{index}{suffix}"


def fixed_ports(config: Config) -> dict[str, int]:
    """Every enabled listener's port, a port 0 replaced by a free one (TCP or UDP, as it listens)."""
    ports: dict[str, int] = {}
    for name, section in config.enabled_listeners().items():
        port = section.listen.port
        if port == 0:
            kind = socket.SOCK_DGRAM if name in UDP_LISTENERS else socket.SOCK_STREAM
            port = free_port(section.listen.host or "0.0.0.0", kind)  # "localhost": free on 127.0.0.1 and ::1
        ports[name] = port
    return ports


class Supervisor:
    """Starts, watches and stops the workers (and the local nats-server); see the module docstring."""

    def __init__(self, argv: list[str], config: Config, count: int, ports_file: str | None) -> None:
        self.argv = argv  # `run`'s own arguments, without --workers and --ports-file
        self.config = config
        self.count = count
        self.ports_file = ports_file
        self.nats: LocalNATS | None = None
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.started_at: dict[int, float] = {}
        self.failures: dict[int, int] = {}
        self.restart_at: dict[int, float] = {}
        self.restarts = 0
        self._signal: int | None = None
        self._scratch = Path(tempfile.mkdtemp(prefix="rosettamq-workers-"))
        self.ports = fixed_ports(config)
        self.node_base = (config.cluster.node if config.cluster is not None else socket.gethostname())

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        try:
            nats_url = self._nats_url()
            for index in range(1, self.count + 1):
                self._spawn(index)
            if not self._wait_ready():
                return 1
            self._announce()
            while self._signal not in (signal.SIGTERM, signal.SIGINT):
                if self._signal == signal.SIGHUP:
                    self._signal = None
                    for process in self.workers.values():
                        process.send_signal(signal.SIGHUP)
                self._watch(nats_url)
                time.sleep(0.2)
            notify("STOPPING=1")
            log.info("workers: stopping %d workers", len(self.workers))
            return 0
        except NATSServerMissing as exc:
            log.error("cannot start: %s", exc)
            return 2
        finally:
            self._stop()

    # -- start ----------------------------------------------------------------------------

    def _nats_url(self) -> str:
        if self.config.cluster is not None:
            return self.config.cluster.servers[0]
        state = Path("." if self.config.store.is_memory else os.path.dirname(os.path.abspath(self.config.store.path)))
        store_dir = self._scratch / "nats" if self.config.store.is_memory else state / "rosettamq-nats"
        self.nats = LocalNATS(store_dir)
        self.nats.start()
        return self.nats.url

    def _spawn(self, index: int) -> None:
        spec = {"index": index, "ports": self.ports, "http": index == 1, "amqp": index == 1, "bridges": index == 1,
                "node": f"{self.node_base}-w{index}",
                "nats": self.nats.url if self.nats is not None else "", "quiet": index != 1,
                "store": worker_store(self.config.store.path, index)}
        env = dict(os.environ, **{WORKER_ENV: json.dumps(spec)})
        env.pop("NOTIFY_SOCKET", None)  # systemd hears from the supervisor only
        ports_file = self._scratch / f"worker-{index}.json"
        ports_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "gateway", "run", *self.argv, "--ports-file", str(ports_file)]
        self.workers[index] = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
        self.started_at[index] = time.monotonic()
        log.info("workers: worker %d started pid=%d", index, self.workers[index].pid)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self._signal in (signal.SIGTERM, signal.SIGINT):
                return False
            missing = [i for i in self.workers if not (self._scratch / f"worker-{i}.json").exists()]
            if not missing:
                return True
            for index in missing:
                code = self.workers[index].poll()
                if code is not None:
                    log.error("cannot start: worker %d exited with %d before it was ready", index, code)
                    return False
            if time.monotonic() > deadline:
                log.error("cannot start: workers %s not ready within %.0f s", missing, READY_TIMEOUT)
                return False
            time.sleep(0.05)

    def _announce(self) -> None:
        ports = json.loads((self._scratch / "worker-1.json").read_text())
        if self.ports_file:
            tmp = f"{self.ports_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(ports, handle)
            os.replace(tmp, self.ports_file)
        pids = " ".join(str(p.pid) for p in self.workers.values())
        where = "a local nats-server at " + self.nats.url if self.nats is not None else "NATS"
        print(f"RosettaMQ: {self.count} workers (pids {pids}) sharing every port, joined through {where}",
              flush=True)
        log.info("workers ready count=%d pids=%s", self.count, pids)
        notify("READY=1")

    # -- watch ----------------------------------------------------------------------------

    def _watch(self, nats_url: str) -> None:
        if self.nats is not None:
            self.nats.check()
        now = time.monotonic()
        for index, process in list(self.workers.items()):
            code = process.poll()
            if code is None:
                if now - self.started_at[index] > 30:
                    self.failures[index] = 0  # it lived: a later death restarts at once
                continue
            if index not in self.restart_at:
                failures = self.failures.get(index, 0)
                delay = 0.0 if failures == 0 else min(30.0, 2.0 ** (failures - 1))
                self.failures[index] = failures + 1
                self.restart_at[index] = now + delay
                log.error("workers: worker %d (pid %d) exited with %s; restarting in %.0f s",
                          index, process.pid, code, delay)
            if now >= self.restart_at[index]:
                del self.restart_at[index]
                self.restarts += 1
                self._spawn(index)

    # -- stop -----------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = signum

    def _stop(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for index, process in self.workers.items():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("workers: worker %d did not stop in time; killing it", index)
                process.kill()
                process.wait()
        if self.nats is not None:
            self.nats.stop()
        for path in self._scratch.glob("*.json"):
            path.unlink(missing_ok=True)
        shutil.rmtree(self._scratch, ignore_errors=True)
