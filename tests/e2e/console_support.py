"""Driving the management console (gateway/http/console) in Chromium for the test_console_* tests.

`Console` wraps a DevTools `Page` with what the tests do to the console: open a
route, type in a field (real input events, so debounced searches run), click,
answer the confirmation dialog, set the viewport (1280x800 or a 390 px phone)
and save screenshots in test-artifacts/. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import admin_gateway
from tests.e2e.browser import Page, browser_page  # noqa: F401 (a fixture, imported from here)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHOWS_UP = 15.0  # seconds: pages refresh every few seconds, the stats stream once a second
DESKTOP = (1280, 800)
PHONE = (390, 844)


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    """Every protocol and the HTTP listener (open API) on loopback, OS-chosen ports."""
    running = admin_gateway()
    try:
        yield running
    finally:
        running.stop()


def js(value: Any) -> str:
    """A Python value as a JavaScript literal."""
    return json.dumps(value)


class Console:
    """The console of one gateway in one tab."""

    def __init__(self, page: Page, gateway: RunningGateway) -> None:
        self.page = page
        self.base = f"http://{LOOPBACK}:{gateway.gateway.ports['http']}/"
        self.viewport(*DESKTOP)

    def viewport(self, width: int, height: int) -> None:
        self.page.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                       mobile=width < 600)

    def open(self, route: str = "") -> None:
        """Load the console at `route` ("#/clients"...) and wait until it is signed in and shows it."""
        self.page.navigate(self.base + route)
        self.page.wait_for("document.getElementById('nav').hidden === false || "
                           "document.getElementById('signin').hidden === false", timeout=SHOWS_UP)

    def go(self, route: str) -> None:
        """Follow a route as a link click would (hash change, no reload)."""
        self.page.evaluate(f"location.hash = {js(route)}")
        self.wait(f"location.hash === {js(route)}")

    def wait(self, condition: str, timeout: float = SHOWS_UP) -> Any:
        return self.page.wait_for(condition, timeout=timeout)

    def text(self, selector: str) -> str:
        return str(self.page.evaluate(f"document.querySelector({js(selector)})?.textContent ?? null"))

    def count(self, selector: str) -> int:
        return int(self.page.evaluate(f"document.querySelectorAll({js(selector)}).length"))

    def click(self, selector: str) -> None:
        """Click an enabled element (waits until it exists and is enabled)."""
        self.wait(f"(e => e && !e.disabled)(document.querySelector({js(selector)}))")
        self.page.evaluate(f"document.querySelector({js(selector)}).click()")

    def type(self, selector: str, text: str) -> None:
        """Focus a field, select what it holds and type `text` as keyboard input (input events fire)."""
        self.wait(f"document.querySelector({js(selector)}) !== null")
        self.page.evaluate(f"(e => {{ e.focus(); e.select?.(); }})(document.querySelector({js(selector)}))")
        self.page.send("Input.insertText", text=text)

    def press(self, key: str, code: int, text: str = "") -> None:
        """A key pressed and released (`code`: its Windows virtual key code)."""
        for kind in ("keyDown", "keyUp"):
            self.page.send("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code,
                           **({"text": text} if kind == "keyDown" and text else {}))

    def confirm(self, expected: str) -> str:
        """Answer the open confirmation dialog with its action button; returns its message."""
        message = self.wait("document.querySelector('dialog.confirm[open] #confirm-message')?.textContent")
        assert expected in message, message
        self.page.evaluate("document.querySelector('dialog.confirm[open] #confirm-ok').click()")
        self.wait("document.querySelector('dialog.confirm') === null")
        return str(message)

    def dismiss(self) -> None:
        self.wait("document.querySelector('dialog.confirm[open]') !== null")
        self.page.evaluate("document.querySelector('dialog.confirm[open] #confirm-cancel').click()")
        self.wait("document.querySelector('dialog.confirm') === null")

    def screenshot(self, name: str) -> Path:
        self.page.evaluate("window.scrollTo(0, 0)")
        return self.page.screenshot(ARTIFACTS / name)

    def errors(self) -> list[str]:
        """What the page logged as errors or exceptions."""
        return [line for line in self.page.console if "error" in line.lower() or line.startswith("exception")]
