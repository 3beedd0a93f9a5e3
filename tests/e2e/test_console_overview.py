"""The console's shell in Chromium: signing in (token, user and password), roles, a 401 sending the
page back to its sign-in, the overview's last-hour charts, keyboard navigation and the phone layout.

Also the cluster page (#/cluster: the cluster and bridges cards alone). Screenshots: signin.png,
overview.png (1280x800), overview-phone.png (390 px wide), cluster.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pika
import pytest

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.admin_support import admin_gateway
from tests.e2e.bridge_support import Webhook
from tests.e2e.browser import Page
from tests.e2e.clients import PahoClient
from tests.e2e.console_support import DESKTOP, PHONE, Console, browser_page, js  # noqa: F401 (fixture)

TOKEN = "console-test-token-0123456789"
SHOWN = "document.getElementById({}).hidden === false"


@pytest.fixture
def protected(tmp_path: Path) -> Iterator[RunningGateway]:
    passwords = PasswordFile(tmp_path / "passwords")
    for name in ("alice", "carol"):
        passwords.set(name, f"pw-{name}", iterations=1000)
    passwords.save()
    running = admin_gateway(auth={"password_file": str(tmp_path / "passwords"), "allow_anonymous": True},
                            http={"api_token": TOKEN, "admins": ["alice"], "monitors": ["carol"]})
    try:
        yield running
    finally:
        running.stop()


def sign_in(console: Console, *, token: str | None = None, user: str | None = None, password: str = "") -> None:
    console.wait(SHOWN.format(js("signin")))
    if token is not None:
        console.click("#signin-kind-token")
        console.type("#signin-token", token)
    else:
        console.click("#signin-kind-password")
        console.type("#signin-user", user or "")
        console.type("#signin-password", password)
    console.click("#signin-button")


def test_sign_in_roles_and_a_401_back_to_sign_in(protected: RunningGateway, browser_page: Page) -> None:
    client = PahoClient(protected.mqtt_port, "line-5", "5").connect()
    amqp = pika.BlockingConnection(pika.ConnectionParameters(
        LOOPBACK, protected.gateway.ports["amqp"], credentials=pika.PlainCredentials("alice", "pw-alice")))
    amqp.channel().queue_declare("console-q")
    console = Console(browser_page, protected)
    try:
        console.open()
        console.wait(SHOWN.format(js("signin")))
        assert console.text("#status") == "signed out"
        assert console.page.evaluate("document.getElementById('nav').hidden && document.getElementById('overview').hidden")
        console.screenshot("signin.png")

        sign_in(console, token="not-the-token")
        console.wait("document.getElementById('signin-error').textContent.includes('refused (401)')")

        # The API token: an administrator; the stream goes live with the Authorization header.
        sign_in(console, token=TOKEN)
        console.wait(SHOWN.format(js("nav")))
        console.wait("document.getElementById('status').textContent === 'live'")
        assert console.text("#whoami") == "admin"
        assert console.page.evaluate(SHOWN.format(js("publish-card")))

        # Kept for this tab: a reload stays signed in.
        console.open()
        console.wait(SHOWN.format(js("nav")))
        assert console.page.evaluate("document.getElementById('signin').hidden")

        # A monitor (user and password): reads everything, every action disabled.
        console.click("#sign-out")
        sign_in(console, user="carol", password="pw-carol")
        console.wait("document.getElementById('whoami').textContent === 'carol · monitor (read only)'")
        console.wait("document.getElementById('status').textContent === 'live'")
        assert not console.page.evaluate(SHOWN.format(js("publish-card")))
        console.go("#/clients/line-5?protocol=mqtt")
        console.wait("document.getElementById('client-page')?.dataset.connected === 'true'")
        assert console.page.evaluate("document.getElementById('client-kick').disabled")
        console.go("#/amqp")
        console.wait("document.querySelector('#amqp-queues-table tr[data-queue=\"console-q\"] button.purge') !== null")
        assert console.page.evaluate("[...document.querySelectorAll('#amqp-page button.purge, #amqp-page button.delete,"
                                     " #amqp-publish-button')].every((b) => b.disabled)")

        # Credentials that stop working (here: replaced in the page) send it back to its sign-in.
        console.page.evaluate("import('/console/api.js').then((api) => api.setCredentials({ token: 'revoked' }))")
        console.go("#/clients")
        console.wait(SHOWN.format(js("signin")))
        assert "sign in again" in console.text("#signin-error")
        sign_in(console, user="alice", password="pw-alice")
        console.wait("document.getElementById('whoami').textContent === 'alice · admin'")
        console.wait("document.querySelector('#clients-table tr[data-client=\"line-5\"]') !== null")
        assert console.errors() == []
    finally:
        amqp.close()
        client.close()


@pytest.fixture
def sampled() -> Iterator[RunningGateway]:
    running = admin_gateway(http={"history_interval": 1})
    try:
        yield running
    finally:
        running.stop()


def test_overview_history_keyboard_and_phone(sampled: RunningGateway, browser_page: Page) -> None:
    device = PahoClient(sampled.mqtt_port, "overview-device", "5").connect()
    listener = PahoClient(sampled.mqtt_port, "overview-listener", "5").connect()
    listener.subscribe("site/#", qos=1)
    console = Console(browser_page, sampled)
    try:
        console.open()
        # One event received: the page's stream is attached, and with it the topic watcher that counts
        # the top topics (publishes before it are not counted: a CI run published first and waited).
        console.wait("Number(document.getElementById('history-card').dataset.samples) >= 1", timeout=30)
        device.publish_many([(f"site/{n % 3}/power", str(n).encode()) for n in range(30)], qos=1)
        listener.inbox.take(30)
        console.wait("Number(document.getElementById('history-card').dataset.samples) >= 3", timeout=30)
        assert console.page.evaluate("document.querySelector('#history-legend li[data-protocol=\"mqtt\"]') !== null")
        console.wait("document.querySelector('#top-topics tbody tr') !== null")
        console.screenshot("overview.png")

        # Keyboard only: Tab reaches the navigation with a visible focus ring; Enter follows the link.
        console.page.evaluate("document.activeElement.blur()")
        for _ in range(12):
            console.press("Tab", 9)
            if console.page.evaluate("document.activeElement.dataset.route === 'clients'"):
                break
        else:
            raise AssertionError("Tab never reached the Clients link")
        assert console.page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        console.press("Enter", 13, "\r")
        console.wait("location.hash === '#/clients'")
        console.wait("document.querySelector('#clients-table tr[data-client=\"overview-device\"]') !== null")
        assert console.page.evaluate("document.querySelector('#nav a[aria-current=page]').dataset.route") == "clients"

        # At phone width nothing but the tables scrolls sideways.
        console.viewport(*PHONE)
        console.wait("document.documentElement.clientWidth === 390")
        assert console.page.evaluate("document.documentElement.scrollWidth") <= 390
        console.go("#/overview")
        console.wait(SHOWN.format(js("overview")))
        assert console.page.evaluate("document.documentElement.scrollWidth") <= 390
        console.screenshot("overview-phone.png")
        console.viewport(*DESKTOP)
        assert console.errors() == []
    finally:
        listener.close()
        device.close()


def test_the_cluster_page_shows_bridges_and_nodes_alone(browser_page: Page) -> None:
    webhook = Webhook().start()
    running = RunningGateway(make_config(http={"enabled": True, "listen": f"{LOOPBACK}:0"}, bridge={"http": [
        {"name": "hook", "url": webhook.url, "out": ["alerts/#"], "reconnect_min": 0.05, "reconnect_max": 0.4}]}))
    console = Console(browser_page, running)
    try:
        console.open("#/cluster")
        console.wait("document.querySelector('#bridges tr[data-bridge=\"hook\"]')?.dataset.connected === 'true'")
        visible = console.page.evaluate("[...document.querySelectorAll('#overview > *')]"
                                        ".filter((e) => e.offsetParent !== null).map((e) => e.id)")
        assert visible == ["bridges-card"]  # single node: no cluster card, no 'single node' note beside a bridge
        assert console.page.evaluate("document.querySelector('#nav a[aria-current=page]').dataset.route") == "cluster"
        console.screenshot("cluster.png")
        console.go("#/overview")
        console.wait("document.getElementById('connections-card').offsetParent !== null")
        assert console.errors() == []
    finally:
        running.stop()
        webhook.stop()


def test_a_single_node_without_bridges_says_so(browser_page: Page) -> None:
    running = admin_gateway()
    console = Console(browser_page, running)
    try:
        console.open("#/cluster")
        console.wait("document.getElementById('cluster-none').offsetParent !== null")
        assert console.page.evaluate("document.getElementById('connections-card').offsetParent") is None
    finally:
        running.stop()
