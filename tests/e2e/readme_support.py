"""Running the README's shell blocks as a user types them, against gateways on OS-chosen loopback ports.

A `QuickStart` session works in a scratch folder that looks like the checkout (scripts/, examples/,
.venv and pyproject.toml are links), so files the commands write (certificates, configs) stay there.
Each command runs through bash as written, with one change: the addresses. The default port of a
listener (taken from the embedded config, so a README that drifts from the defaults fails) becomes
the port the running gateway got from the OS:

- a command starting the gateway (`bash scripts/start.sh ...`) gets `--mqtt 127.0.0.1:0` and the
  other listen flags (a flag it has keeps its host, port 0), `--store memory` unless it names a
  store, and `--ports-file` unless it names one; it runs in the background, as in a terminal of its
  own, and the session waits for the ports file and the ready banner;
- in other commands, `HOST:PORT`, `-p PORT` and `--port PORT` with a default port get the real one
  (port 0 before any gateway runs: a config written for the gateway to come), `coap://HOST/` gets
  the CoAP port, and a client that relies on its default port (mosquitto_pub/sub, the examples) gets
  it added.

Commands ending in `&`, and those that run until stopped (the examples without `--count`,
`coap-client -s`), run in the background on a pseudo-terminal (their output line by line, as on a
screen); the session then waits until the gateway sees them (a new subscription, client, or
message) before the next command, as a person would. Others must exit 0 within a minute.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from gateway.config import Config

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TIMEOUT = 30.0
LISTENERS = ("mqtt", "ws", "amqp", "coap", "http", "mqtt_tls", "wss", "amqps", "coaps")
DEFAULT_PORTS = {getattr(Config(), name).listen.port: name for name in LISTENERS}
FLAG_LISTENERS = ("mqtt", "ws", "amqp", "coap", "http")
EXAMPLE_PORTS = {"sensor_simulator.py": "mqtt", "amqp_consumer.py": "amqp", "coap_sensor.py": "coap"}
LINKED = ("scripts", "examples", ".venv", "pyproject.toml", "README.md", "docs")


def sh_blocks(heading: str) -> list[str]:
    """The ```sh blocks under the README heading that starts with `heading`, up to the next heading."""
    blocks: list[str] = []
    inside, block = False, None
    for line in README.read_text().splitlines():
        if block is not None:
            if line.startswith("```"):
                blocks.append("\n".join(block))
                block = None
            else:
                block.append(line)
            continue
        match = re.match(r"#+ (.*)", line)
        if match:
            if inside:
                break
            inside = match.group(1).startswith(heading)
        elif inside and line.strip() == "```sh":
            block = []
    assert blocks, f"no sh block under a README heading {heading!r}"
    return blocks


def split_comment(line: str) -> str:
    """`line` without its trailing shell comment (a # outside quotes, after a blank)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def commands(block: str) -> list[str]:
    """The commands of a block, comments dropped; a heredoc is one command with its lines."""
    lines, out, i = block.splitlines(), [], 0
    while i < len(lines):
        line = split_comment(lines[i])
        i += 1
        if not line:
            continue
        heredoc = re.search(r"<<-?'?(\w+)'?", line)
        if heredoc:
            end = lines.index(heredoc.group(1), i)
            line, i = "\n".join([line, *lines[i:end + 1]]), end + 1
        out.append(line)
    return out


class Running:
    """A process started by the session, its output collected as it comes (a pty for background ones)."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.command, self.text, self.ended = command, "", False
        self._cond = threading.Condition()
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        threading.Thread(target=self._read, args=(master,), daemon=True).start()

    def _read(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with self._cond:
                self.text += data.decode("utf-8", "replace").replace("\r\n", "\n")
                self.ended = not data
                self._cond.notify_all()
            if not data:
                os.close(fd)
                return

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> str:
        with self._cond:
            self._cond.wait_for(lambda: text in self.text or self.ended, timeout)
            if text not in self.text:
                raise AssertionError(f"{self.command!r} never printed {text!r}; it printed:\n{self.text[-3000:]}")
            return self.text

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)  # the group this process leads (bash and what it runs)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:  # pragma: no cover
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(TIMEOUT)


class QuickStart:
    """One reader following the README in one scratch clone; `close()` stops what it started."""

    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path / "rosettamq"
        self.cwd.mkdir()
        for name in LINKED:
            (self.cwd / name).symlink_to(ROOT / name)
        self.env = {**os.environ, "HOME": str(tmp_path)}  # no ~/.config/mosquitto_* of the machine's user
        self.gateway: Running | None = None
        self.ports: dict[str, int] = {}
        self.background: list[Running] = []
        self.outputs: list[tuple[str, str]] = []  # foreground commands and what they printed
        self._files = 0

    # -- running ------------------------------------------------------------------------------

    def run_blocks(self, heading: str) -> None:
        for block in sh_blocks(heading):
            for command in commands(block):
                self.run(command)

    def run(self, command: str) -> None:
        background = command.endswith("&")
        command = command.rstrip("&").rstrip()
        words = shlex.split(command.splitlines()[0])
        if words[:2] == ["bash", "scripts/start.sh"] or words[0].endswith("rosettamq") and words[1:2] == ["run"]:
            self.start_gateway(command)
            return
        rewritten = self.rewrite(command)
        if background or self.runs_until_stopped(words):
            before = self.seen()
            self.background.append(Running(rewritten, self.cwd, self.env))
            self.wait_seen(before, self.background[-1])
            return
        done = subprocess.run(["bash", "-c", rewritten], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{command!r} ({rewritten!r}) exited {done.returncode}: {done.stderr}"
        self.outputs.append((command, done.stdout + done.stderr))

    @staticmethod
    def runs_until_stopped(words: list[str]) -> bool:
        script = next((Path(w).name for w in words if w.startswith("examples/")), None)
        return script is not None and "--count" not in words or words[0].startswith("coap-client") and "-s" in words

    def start_gateway(self, command: str) -> None:
        if self.gateway is not None:  # the reader stops the last one (Ctrl-C) before starting another
            self.gateway.stop(signal.SIGINT)
        for name in FLAG_LISTENERS:
            flag = re.search(rf"--{name}[ =](\S+?):(\d+)\b", command)
            command = (command[:flag.start(2)] + "0" + command[flag.end(2):] if flag
                       else f"{command} --{name} 127.0.0.1:0")
        if "--store" not in command:
            command += " --store memory"
        named = re.search(r"--ports-file[ =](\S+)", command)
        if named:
            ports_file = self.cwd / named.group(1)
        else:
            self._files += 1
            ports_file = self.cwd.parent / f"ports-{self._files}.json"
            command += f" --ports-file {ports_file}"
        self.gateway = Running(command, self.cwd, self.env)
        self.gateway.wait_for(" ready (pid ", timeout=60)
        deadline = time.monotonic() + TIMEOUT
        while not ports_file.exists():  # written just before the banner; a file, not an event to wait on
            assert time.monotonic() < deadline, "no ports file"
            time.sleep(0.02)
        self.ports = json.loads(ports_file.read_text())

    def rewrite(self, command: str) -> str:
        def real(default: str) -> str:
            name = DEFAULT_PORTS.get(int(default))
            if name is None:
                return default
            return str(self.ports.get(name, 0)) if self.gateway is not None else "0"

        command = re.sub(r"((?:127\.0\.0\.1|localhost|\[::1\]):)(\d+)", lambda m: m.group(1) + real(m.group(2)), command)
        command = re.sub(r"((?:^|\s)(?:-p|--port)\s+)(\d+)", lambda m: m.group(1) + real(m.group(2)), command)
        if "coap" in self.ports:
            command = re.sub(r"(coap://(?:127\.0\.0\.1|localhost))/", rf"\1:{self.ports['coap']}/", command)
        words = command.split()
        if words and words[0] in ("mosquitto_pub", "mosquitto_sub") and "-p" not in words and "mqtt" in self.ports:
            command = command.replace(words[0], f"{words[0]} -p {self.ports['mqtt']}", 1)
        script = next((Path(w).name for w in words if w.startswith("examples/")), "")
        if script in EXAMPLE_PORTS and "--port" not in words:
            command += f" --port {self.ports[EXAMPLE_PORTS[script]]}"
        return command

    # -- what the gateway sees ------------------------------------------------------------------

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['http']}{path}", timeout=10) as answer:
            return json.load(answer)

    def seen(self) -> tuple[int, int, float] | None:
        """Subscriptions, clients, messages received: what changes when a client arrives."""
        if self.gateway is None or "http" not in self.ports:
            return None
        stats = self.api("/api/v1/stats")
        return (self.api("/api/v1/subscriptions")["count"], self.api("/api/v1/clients")["count"],
                sum(stats["messages_received"].values()))

    def wait_seen(self, before: tuple[int, int, float] | None, running: Running) -> None:
        if before is None:
            return
        deadline = time.monotonic() + TIMEOUT
        while self.seen() == before:
            assert running.proc.poll() is None, f"{running.command!r} ended: {running.text[-2000:]}"
            assert time.monotonic() < deadline, f"the gateway never saw {running.command!r}: {running.text[-2000:]}"
            time.sleep(0.05)

    def output(self, fragment: str) -> Running:
        """The background process whose command holds `fragment` (the first one)."""
        return next(r for r in self.background if fragment in r.command)

    def printed(self, fragment: str) -> str:
        """What the foreground command holding `fragment` printed (the last one)."""
        return [text for command, text in self.outputs if fragment in command][-1]

    def close(self) -> None:
        for running in reversed(self.background):
            running.stop()
        if self.gateway is not None:
            self.gateway.stop(signal.SIGINT)
