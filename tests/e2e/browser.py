"""Headless Debian Chromium driven over the Chrome DevTools Protocol, with no driver package.

`Chromium` starts /usr/bin/chromium with a fresh profile and
``--remote-debugging-port=0``, reads the DevTools address from its stderr and
opens a `Page` (a CDP session over a websockets client). Every wait polls a
JavaScript condition with a deadline. `close()` always ends the process.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from websockets.sync.client import ClientConnection, connect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,860", "--remote-debugging-port=0",
]
DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")
POLL = 0.05


class Chromium:
    """One browser process; `page()` gives its first tab."""

    def __init__(self, profile: Path, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.stderr: list[str] = []
        self._ready = threading.Event()
        self.devtools_url = ""
        threading.Thread(target=self._read_stderr, name="chromium-stderr", daemon=True).start()
        if not self._ready.wait(timeout) or not self.devtools_url:
            self.close()
            raise AssertionError("chromium did not start:\n" + "".join(self.stderr[-30:]))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # drained to the end so chromium never blocks on a full pipe
            self.stderr.append(line)
            match = DEVTOOLS.search(line)
            if match:
                self.devtools_url = match.group(1)
                self._ready.set()
        self._ready.set()  # exited before printing the address

    def page(self) -> "Page":
        http_root = "http://" + self.devtools_url.split("/")[2]
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
        with no_proxy.open(f"{http_root}/json/list", timeout=10) as response:
            targets = json.load(response)
        target = next(t for t in targets if t["type"] == "page")
        return Page(target["webSocketDebuggerUrl"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Page:
    """A CDP session on one tab: navigate, evaluate, wait for a condition, take a screenshot."""

    def __init__(self, url: str) -> None:
        self._exit = contextlib.ExitStack()  # connect() is meant to be used as a context manager
        self.ws: ClientConnection = self._exit.enter_context(connect(url, max_size=None, open_timeout=10, proxy=None))
        self._ids = itertools.count(1)
        self.console: list[str] = []  # console messages and uncaught exceptions, for failure reports
        self.send("Runtime.enable")
        self.send("Page.enable")

    def send(self, method: str, timeout: float = 15.0, **params: Any) -> dict[str, Any]:
        """Call a CDP method and return its result (events that arrive meanwhile are recorded)."""
        message_id = next(self._ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.0, deadline - time.monotonic())))
            if message.get("id") == message_id:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            self._record(message)

    def _record(self, event: dict[str, Any]) -> None:
        params = event.get("params", {})
        if event.get("method") == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            self.console.append(f"console.{params.get('type')}: {text}")
        elif event.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('exception', {}).get('description', details.get('text'))}")

    def navigate(self, url: str) -> None:
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise AssertionError(f"navigation to {url} failed: {result['errorText']}")
        self.wait_for(f"document.readyState === 'complete' && location.href === {json.dumps(url)}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll until `expression` is truthy; return its value, or fail with what the page logged."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{expression!r} still {value!r} after {timeout} s; page log:\n" + "\n".join(self.console[-20:])
                )
            time.sleep(POLL)  # polling interval of a condition with a deadline, not a synchronisation sleep

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._exit.close()


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator["Page"]:
    """A tab of a Chromium of its own for one test; no Chromium outlives its test."""
    browser = Chromium(tmp_path / "chromium-profile")
    try:
        tab = browser.page()
        try:
            yield tab
        finally:
            tab.close()
    finally:
        browser.close()
