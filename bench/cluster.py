"""Cluster benchmarks: a publisher on node A, a subscriber on node B, through a NATS server.

`python -m bench compare --group cluster` runs each scenario against one node (publisher and
subscriber on the same gateway) and against two nodes joined through a local nats-server
(JetStream on), in the same run; the ratio is two nodes / one node.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.brokers import (
    HOST, ROOT, Broker, _raise_fd_limit, _wait_listening, free_port, start_rosettamq, tree_cpu_seconds,
)
from bench.clients import STAMP, open_client, publish_batch, publish_size
from bench.scenarios import PAYLOAD, Params, Result, _flood, _subscribers, _timed, _windowed_qos1


class ClusterPair(Broker):
    """Two gateway nodes and the nats-server between them, stopped together."""

    others: list[subprocess.Popen] = []

    def cpu_seconds(self) -> float:
        """Both nodes and nats-server (none is the other's child)."""
        return sum(tree_cpu_seconds(proc.pid) for proc in [self.proc, *self.others])

    def stop(self) -> None:
        for proc in [self.proc, *self.others]:
            proc.terminate()
        for proc in [self.proc, *self.others]:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.workdir.cleanup()


def start_single_node() -> Broker:
    """One gateway: the "subscriber's node" is the publisher's."""
    broker = start_rosettamq()
    broker.ports["mqtt_b"] = broker.ports["mqtt"]
    return broker


def start_cluster_pair() -> Broker:
    workdir = tempfile.TemporaryDirectory(prefix="bench-cluster-")
    folder = Path(workdir.name)
    nats_port = free_port()
    nats_bin = shutil.which("nats-server") or "/usr/sbin/nats-server"
    (folder / "nats.conf").write_text(f'listen: "{HOST}:{nats_port}"\njetstream {{ store_dir: "{folder}/js" }}\n')
    nats = subprocess.Popen([nats_bin, "-c", str(folder / "nats.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_listening(nats_port, nats)
    nodes = []
    for name in ("a", "b"):
        config = folder / f"{name}.toml"
        config.write_text(f'[cluster]\nnats = ["nats://{HOST}:{nats_port}"]\nnode = "bench-{name}"\n'
                          '[ws]\nenabled = false\n[amqp]\nenabled = false\n[coap]\nenabled = false\n'
                          '[http]\nenabled = false\n')
        ports_file = folder / f"{name}.ports.json"
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config), "--mqtt",
                                 f"{HOST}:0", "--store", "memory", "--ports-file", str(ports_file),
                                 "--log-level", "warning"], cwd=ROOT, preexec_fn=_raise_fd_limit,
                                stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not ports_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("a cluster node did not start")
            time.sleep(0.05)
        nodes.append((proc, json.loads(ports_file.read_text())))
    (a, a_ports), (b, b_ports) = nodes
    pair = ClusterPair("rosettamq-cluster", a, a_ports["mqtt"], workdir, {"mqtt": a_ports["mqtt"],
                                                                           "mqtt_b": b_ports["mqtt"]})
    pair.others = [b, nats]
    return pair


async def _routed(host: str, ports: dict[str, int], topic: str) -> object:
    """A probe subscriber on node B, returned once it receives from node A (interest crosses NATS
    asynchronously). Subscribe the measured client, then close the probe: the interest stays."""
    probe_size = publish_size(topic, PAYLOAD, 0)
    sub = await open_client(host, ports["mqtt_b"], "probe-s", message_size=probe_size, payload_size=PAYLOAD)
    await sub.subscribe(topic, 0)
    pub = await open_client(host, ports["mqtt"], "probe-p")
    for _ in range(200):
        await pub.write(publish_batch(topic, b"p" * PAYLOAD, 0, 1))
        await asyncio.sleep(0.05)  # a probe's round trip: the bench's own pacing, not a test wait
        if sub.received:
            break
    pub.close()
    return sub


async def cross_node_qos0(host: str, ports: dict[str, int], p: Params) -> Result:
    probe = await _routed(host, ports, "bench/x")
    (sub,) = await _subscribers(host, ports["mqtt_b"], 1, "bench/x", 0, "x0s")
    probe.close()  # type: ignore[attr-defined]
    pub = await open_client(host, ports["mqtt"], "x0p")
    done = sub.expect(p.messages)
    start = time.perf_counter()
    await _flood(pub, "bench/x", p.messages)
    elapsed = await _timed([done], start, p.timeout)
    for c in (sub, pub):
        c.close()
    return {"msgs_per_s": sub.received / elapsed, "delivered": sub.received / p.messages}


async def cross_node_qos1(host: str, ports: dict[str, int], p: Params) -> Result:
    probe = await _routed(host, ports, "bench/x")
    (sub,) = await _subscribers(host, ports["mqtt_b"], 1, "bench/x", 1, "x1s")
    probe.close()  # type: ignore[attr-defined]
    pub = await open_client(host, ports["mqtt"], "x1p")
    return await _windowed_qos1(pub, sub, p)


async def cross_node_latency(host: str, ports: dict[str, int], p: Params) -> Result:
    size = publish_size("bench/x", STAMP.size, 0)
    probe = await _routed(host, ports, "bench/x")
    sub = await open_client(host, ports["mqtt_b"], "xls", message_size=size, payload_size=STAMP.size, latency=True)
    await sub.subscribe("bench/x", 0)
    probe.close()  # type: ignore[attr-defined]
    pub = await open_client(host, ports["mqtt"], "xlp")
    count = int(p.latency_rate * p.latency_seconds)
    done = sub.expect(count)
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / p.latency_rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await pub.write(publish_batch("bench/x", STAMP.pack(time.perf_counter()), 0, 1))
    await _timed([done], start, p.timeout)
    lat = sorted(sub.latencies) or [float("nan")]
    for c in (sub, pub):
        c.close()
    return {"p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "delivered": len(sub.latencies) / count}


CLUSTER = {"cross_node_qos0": cross_node_qos0, "cross_node_qos1": cross_node_qos1,
           "cross_node_latency": cross_node_latency}
