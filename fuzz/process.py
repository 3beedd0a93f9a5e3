"""The gateway under test: `python -m gateway run` in a subprocess, as a user runs it.

Every listener on 127.0.0.1 with an OS-chosen port (read back from
--ports-file), the memory store, the event loop `rosettamq run` picks (uvloop
when installed). Its stderr goes to a file, never a pipe (a full pipe would
stall the gateway); `new_log` hands out what was written since the last call
and `log_problems` finds tracebacks and ERROR/CRITICAL lines in it. `rss`
reads the resident set from /proc.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENERS = ("mqtt", "ws", "amqp", "coap", "http")
CONFIG = """\
[mqtt]
listen = "127.0.0.1:0"
[ws]
listen = "127.0.0.1:0"
[amqp]
listen = "127.0.0.1:0"
[coap]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
[store]
path = "memory"
"""
PROBLEM = re.compile(r"Traceback \(most recent call last\)|\blevel=(ERROR|CRITICAL)\b")


class GatewayError(RuntimeError):
    """The gateway did not start (it exited, or wrote no ports file in time)."""


class GatewayProcess:
    """One gateway subprocess with its files in `workdir`."""

    def __init__(self, workdir: Path, extra_config: str = "") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.config = workdir / "gateway.toml"
        self.config.write_text(CONFIG + extra_config)
        self.ports_file = workdir / "ports.json"
        self.log_path = workdir / "gateway.log"
        self.log_path.write_bytes(b"")  # restarts append to it
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self._log_offset = 0
        self.starts = 0

    def start(self, timeout: float = 30.0) -> dict[str, int]:
        """Start (or restart) the gateway and wait for its ports file."""
        self.stop()
        self.ports_file.unlink(missing_ok=True)
        self.starts += 1
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--config", str(self.config),
                 "--ports-file", str(self.ports_file)],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while not self.ports_file.exists():
            if self.proc.poll() is not None:
                raise GatewayError(f"gateway exited with {self.proc.returncode}: {self.new_log()[-2000:]}")
            if time.monotonic() > deadline:
                raise GatewayError("gateway wrote no ports file in time")
            time.sleep(0.02)  # polling a file another process writes
        self.ports = json.loads(self.ports_file.read_text())
        missing = [name for name in LISTENERS if name not in self.ports]
        if missing:
            raise GatewayError(f"listeners missing from the ports file: {missing}")
        return self.ports

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def rss(self) -> int:
        """Resident set size in bytes (0 when the process is gone)."""
        if self.proc is None:
            return 0
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) * 1024 if match else 0

    def new_log(self) -> str:
        """What the gateway logged since the last call."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                data = handle.read()
        except FileNotFoundError:
            return ""
        self._log_offset += len(data)
        return data.decode("utf-8", "replace")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; the exit code (None if it never ran)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        return proc.returncode


def log_problems(text: str, context: int = 12) -> list[str]:
    """Each traceback or ERROR/CRITICAL record in `text`, from its first line, with the lines after it
    (a record's own traceback is part of it, not another problem)."""
    lines = text.splitlines()
    found = []
    covered = -1
    for i, line in enumerate(lines):
        if i > covered and PROBLEM.search(line):
            found.append("\n".join(lines[i: i + context]))
            covered = i + context - 1
    return found
