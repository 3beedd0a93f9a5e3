"""The upstreams of the bridge tests, started by the tests on free loopback ports.

- `Mosquitto`: Debian's mosquitto as the upstream MQTT broker (with persistence, logins or TLS as
  a test asks), stopped and started again on the same port for outages.
- `RabbitMQ`: Debian's rabbitmq-server as the upstream AMQP broker, run directly (not as the
  system service) with a private HOME, node name, ports, data and log folders, and its own epmd
  on a private loopback port; stopped and started again for outages.
- `Webhook`: an aiohttp server in a thread recording each POST's JSON; its answers can be
  scripted, and it can be stopped and started again on the same port.

Every wait has a timeout and waits on a process's output, an event or a condition.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from aiohttp import web

from tests.e2e.process_support import Watched

HOST = "127.0.0.1"
TIMEOUT = 20.0
RABBIT_TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _binary(name: str, *folders: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in folders:
        if os.access(os.path.join(folder, name), os.X_OK):
            return os.path.join(folder, name)
    return None


MOSQUITTO = _binary("mosquitto", "/usr/sbin")
RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"  # rabbitmq-server and rabbitmqctl as they are, not the /usr/sbin wrappers
EPMD = _binary("epmd", "/usr/lib/erlang/bin")


@pytest.fixture
def _mosquitto_installed() -> None:
    """A missing peer fails the test: scripts/test.sh installs it (a skipped interop test is a missing one)."""
    assert MOSQUITTO is not None, "mosquitto not installed: run bash scripts/test.sh (it installs it)"


@pytest.fixture
def _rabbitmq_installed() -> None:
    assert os.path.exists(f"{RABBITMQ_BIN}/rabbitmq-server") and EPMD is not None, \
        "rabbitmq-server not installed: run bash scripts/test.sh (it installs it)"


needs_mosquitto = pytest.mark.usefixtures("_mosquitto_installed")
needs_rabbitmq = pytest.mark.usefixtures("_rabbitmq_installed")


class Mosquitto:
    """mosquitto on a free loopback port, with its own config; `stop()` then `start()` keeps the port."""

    def __init__(self, folder: Path, *, persistence: bool = False, users: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        lines = [f"listener {self.port} {HOST}"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it becomes user mosquitto, who cannot write in pytest's tmp_path
        lines += [f"log_type {kind}" for kind in ("error", "warning", "notice", "information", "subscribe")]
        if users:
            passwords = folder / "passwords"
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", *([] if passwords.exists() else ["-c"]), str(passwords),
                                user, password], check=True, capture_output=True, timeout=TIMEOUT)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if tls is not None:
            lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
        if persistence:
            lines += ["persistence true", f"persistence_location {folder}/"]
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: Watched | None = None
        self.connections = 0  # "New client connected" lines seen in all runs before the current one

    def start(self) -> "Mosquitto":
        assert MOSQUITTO is not None
        self.process = Watched([MOSQUITTO, "-c", str(self.conf)])
        self.process.wait_for("running", err=True)
        return self

    def stop(self) -> None:
        """SIGTERM and wait (with persistence, mosquitto saves its sessions on the way out)."""
        if self.process is not None and self.process.proc.poll() is None:
            self.process.proc.send_signal(signal.SIGTERM)
            self.process.proc.wait(TIMEOUT)
        if self.process is not None:
            self.connections += self.log().count("New client connected")

    def log(self) -> str:
        return "" if self.process is None else "".join(self.process.err)

    def wait_for_log(self, text: str, count: int = 1) -> None:
        assert self.process is not None
        self.process.wait_for(text, count, err=True)


class RabbitMQ:
    """rabbitmq-server as PEERS.md describes, with private folders, ports and epmd; ~4 s to start."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for name in ("home", "mnesia", "log"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        self.port, dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.node = f"rmqtest{os.getpid()}@localhost"
        self.pidfile = folder / "rabbit.pid"
        (folder / "enabled_plugins").write_text("[].\n")
        (folder / "rabbitmq.conf").write_text("loopback_users = none\n")
        self.env = {
            **os.environ, "HOME": str(folder / "home"), "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": HOST, "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port), "ERL_EPMD_PORT": str(self.epmd_port), "ERL_EPMD_ADDRESS": HOST,
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"), "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PID_FILE": str(self.pidfile), "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.epmd: subprocess.Popen[bytes] | None = None
        self.server: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{self.port}/"

    def start(self) -> "RabbitMQ":
        if self.epmd is None:  # our own epmd on a private port: stopping it stops nobody else's
            assert EPMD is not None
            self.epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port), "-address", HOST], env=self.env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pidfile.unlink(missing_ok=True)
        log = (self.folder / "server.out").open("ab")
        self.server = subprocess.Popen([f"{RABBITMQ_BIN}/rabbitmq-server"], env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.ctl("wait", str(self.pidfile), "--timeout", str(RABBIT_TIMEOUT))
        return self

    def ctl(self, *args: str) -> str:
        done = subprocess.run([f"{RABBITMQ_BIN}/rabbitmqctl", "-n", self.node, *args], env=self.env,
                              capture_output=True, text=True, timeout=RABBIT_TIMEOUT + 10)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        """Stop the node and wait until its process has ended (the port is free again)."""
        if self.server is not None and self.server.poll() is None:
            self.ctl("stop", str(self.pidfile))
            self.server.wait(RABBIT_TIMEOUT)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self.server is not None and self.server.poll() is None:
                self.server.kill()
            if self.epmd is not None:
                self.epmd.terminate()
                self.epmd.wait(TIMEOUT)


class Webhook:
    """An aiohttp server in its own thread: each POST's JSON is recorded; `answer(body)` says the status."""

    def __init__(self, path: str = "/ingest") -> None:
        self.path = path
        self.port = 0
        self.bodies: list[Any] = []
        self.heads = 0
        self.headers: list[dict[str, str]] = []
        self.answer: Callable[[Any], int] = lambda body: 200
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook", daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.path}"

    async def _handle(self, request: web.Request) -> web.Response:
        if request.method == "HEAD":
            with self._cond:
                self.heads += 1
            return web.Response(status=405)
        body = json.loads(await request.read())
        status = self.answer(body)
        with self._cond:
            self.headers.append(dict(request.headers))
            if 200 <= status < 300:
                self.bodies.append(body)
            self._cond.notify_all()
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_route("*", self.path, self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.port, reuse_address=True)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> "Webhook":
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(TIMEOUT)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(TIMEOUT)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT)

    def messages(self) -> list[dict[str, Any]]:
        """Every message received (batches flattened), in arrival order."""
        with self._cond:
            return [m for body in self.bodies for m in (body if isinstance(body, list) else [body])]

    def wait_for(self, count: int, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages_unlocked()) >= count, timeout):
                raise AssertionError(f"the webhook got {len(self.messages_unlocked())} messages, not {count}")
            return self.messages_unlocked()

    def messages_unlocked(self) -> list[dict[str, Any]]:
        return [m for body in self.bodies for m in (body if isinstance(body, list) else [body])]
