"""Start the brokers under test on free loopback ports: RosettaMQ and Debian's mosquitto."""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) of process `root` and every process under it, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


@dataclass
class Broker:
    """A running broker process."""

    name: str
    proc: subprocess.Popen
    port: int
    workdir: tempfile.TemporaryDirectory
    ports: dict[str, int] = field(default_factory=dict)  # every listener by name ("mqtt", "ws", ...)

    def rss(self) -> int:
        """Resident memory in bytes."""
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the broker and every process under it (workers, nats-server)."""
        return tree_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.workdir.cleanup()


def start_rosettamq(extra_args: tuple[str, ...] = (), store: str = "memory") -> Broker:
    """The gateway with `store` "memory" or "sqlite" (a fresh file in its work folder)."""
    workdir = tempfile.TemporaryDirectory(prefix="bench-rmq-")
    ports_file = Path(workdir.name) / "ports.json"
    store_path = "memory" if store == "memory" else str(Path(workdir.name) / "rosettamq.db")
    config = Path(workdir.name) / "gateway.toml"  # every listener on loopback port 0; HTTP off
    config.write_text(
        "".join(f'[{name}]\nlisten = "{HOST}:0"\n' for name in ("ws", "amqp", "coap")) + "[http]\nenabled = false\n"
    )
    cmd = [
        sys.executable, "-m", "gateway", "run", "--config", str(config), "--mqtt", f"{HOST}:0", "--store", store_path,
        "--ports-file", str(ports_file), "--log-level", "warning", *extra_args,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, preexec_fn=_raise_fd_limit, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not ports_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("rosettamq did not start")
        time.sleep(0.05)
    ports = json.loads(ports_file.read_text())
    _wait_listening(ports["mqtt"], proc)
    return Broker("rosettamq", proc, ports["mqtt"], workdir, ports)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if found is None:
        raise RuntimeError("mosquitto not installed: apt-get install -y mosquitto")
    return found


def start_mosquitto(persistence: bool = False, nodelay: bool = False) -> Broker:
    """mosquitto as users run it: its defaults (a listener and anonymous access only). `nodelay`
    adds `set_tcp_nodelay true`, a tuned variant reported as an extra row, never the comparison."""
    workdir = tempfile.TemporaryDirectory(prefix="bench-mosq-")
    port = free_port()
    conf = Path(workdir.name) / "mosquitto.conf"
    lines = [f"listener {port} {HOST}", "allow_anonymous true"]
    if nodelay:
        lines.append("set_tcp_nodelay true")
    if persistence:
        lines += ["persistence true", f"persistence_location {workdir.name}/", "autosave_interval 1"]
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [mosquitto_binary(), "-c", str(conf)], preexec_fn=_raise_fd_limit,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    _wait_listening(port, proc)
    return Broker("mosquitto", proc, port, workdir)


def start_floor() -> Broker:
    """bench/floor_server.py: uvloop answering CONNECT and SUBSCRIBE with canned acks, no MQTT work (not a broker)."""
    workdir = tempfile.TemporaryDirectory(prefix="bench-floor-")
    proc = subprocess.Popen([sys.executable, "-m", "bench.floor_server"], cwd=ROOT, preexec_fn=_raise_fd_limit,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # its port, once listening (empty if it died first)
    if not line:
        proc.wait()
        raise RuntimeError(f"bench.floor_server exited with {proc.returncode}")
    port = json.loads(line)["mqtt"]
    _wait_listening(port, proc)
    return Broker("uvloop-floor", proc, port, workdir)
