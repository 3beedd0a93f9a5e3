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


class LoggingGateway:
    """The gateway process; its stderr (the log) and stdout (the banner) lines are collected as they come."""

    def __init__(self, config: Path | None, ports_file: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.ports_file = ports_file
        command = [sys.executable, "-m", "gateway", "run", "--ports-file", str(ports_file), *args]
        if config is not None:
            command += ["--config", str(config)]
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self.stdout: list[str] = []
        self._cond = threading.Condition()
        for stream, lines in ((self.proc.stderr, self.lines), (self.proc.stdout, self.stdout)):
            threading.Thread(target=self._read, args=(stream, lines), daemon=True).start()

    def _read(self, stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            with self._cond:
                lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_log(self, text: str, count: int = 1, stdout: bool = False) -> None:
        lines = self.stdout if stdout else self.lines
        with self._cond:
            if not self._cond.wait_for(lambda: sum(text in line for line in lines) >= count, TIMEOUT):
                raise AssertionError(f"gateway never wrote {text!r} x{count}: {''.join(lines)[-2000:]}")

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
