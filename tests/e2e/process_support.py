"""A gateway process (`python -m gateway run`) whose output lines a test can wait for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0
# Tests never take fixed ports: every listener the gateway starts by default asks the OS for one.
EVERY_LISTENER_ON_PORT_0 = [f"--{name}=127.0.0.1:0" for name in ("mqtt", "ws", "amqp", "coap", "http")]


class Watched:
    """A process whose stdout and stderr lines are collected as they come, for a test to wait on."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})})
        self.out: list[str] = []
        self.err: list[str] = []
        self._cond = threading.Condition()
        self._open = 2
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    def _read(self, stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            with self._cond:
                lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    def wait_for(self, text: str, count: int = 1, err: bool = False) -> None:
        """Until `text` was written `count` times (to stderr with `err`); fails when the process ends first."""
        lines = self.err if err else self.out
        with self._cond:
            if not self._cond.wait_for(lambda: sum(text in line for line in lines) >= count or not self._open,
                                       TIMEOUT) or sum(text in line for line in lines) < count:
                raise AssertionError(f"never wrote {text!r} x{count}: {''.join(self.out + self.err)[-2000:]}")


class LoggingGateway(Watched):
    """The gateway process: its log (stderr) is `lines`, its banner (stdout) `stdout`."""

    def __init__(self, config: Path | None, ports_file: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.ports_file = ports_file
        command = [sys.executable, "-m", "gateway", "run", "--ports-file", str(ports_file), *args]
        if config is not None:
            command += ["--config", str(config)]
        super().__init__(command, env)
        self.lines, self.stdout = self.err, self.out

    def wait_for_log(self, text: str, count: int = 1, stdout: bool = False) -> None:
        self.wait_for(text, count, err=not stdout)

    def ports(self) -> dict[str, int]:
        self.wait_for_log("msg=ready")
        return dict(json.loads(self.ports_file.read_text()))

    def mqtt_port(self) -> int:
        return self.ports()["mqtt"]

    def sighup(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()
            return self.proc.wait(TIMEOUT)
