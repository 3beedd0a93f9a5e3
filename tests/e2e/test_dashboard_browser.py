"""The browser dashboard in headless Debian Chromium, against a real gateway.

The gateway serves examples/dashboard on its HTTP listener; the page connects
with MQTT.js over WebSocket. A device publishes over plain MQTT/TCP (paho) and
the test reads the page's DOM over the DevTools protocol; the page publishes
from its form and a TCP subscriber receives it. A screenshot is saved to
test-artifacts/dashboard.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.browser import Page, browser_page  # noqa: F401 (a fixture)
from tests.e2e.clients import PahoClient

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHOWS_UP = 3.0  # seconds a value may take from the device to the page's DOM


def cell(topic: str, column: str) -> str:
    """A JavaScript expression: the text of one cell of the live table (undefined while absent)."""
    return f"document.querySelector('tr[data-topic=\"{topic}\"] td.{column}')?.textContent"


@pytest.fixture
def gateway() -> Iterator[RunningGateway]:
    running = RunningGateway(make_config(
        ws={"enabled": True, "listen": f"{LOOPBACK}:0"},
        http={"enabled": True, "listen": f"{LOOPBACK}:0"},
    ))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def page(browser_page: Page) -> Page:
    return browser_page


@pytest.fixture
def device(gateway: RunningGateway) -> Iterator[PahoClient]:
    client = PahoClient(gateway.mqtt_port, "device-t1", "311").connect()
    try:
        yield client
    finally:
        client.close()


def open_dashboard(page: Page, gateway: RunningGateway, query: str = "") -> None:
    ports = gateway.gateway.ports
    page.navigate(f"http://{LOOPBACK}:{ports['http']}/dashboard/{query}")
    page.wait_for("document.getElementById('status').dataset.state === 'connected'")
    assert page.evaluate("document.getElementById('url').value") == f"ws://{LOOPBACK}:{ports['ws']}/mqtt"


def test_the_dashboard_shows_what_a_tcp_device_publishes_charts_it_and_publishes_back(
    gateway: RunningGateway, page: Page, device: PahoClient
) -> None:
    listener = PahoClient(gateway.mqtt_port, "tcp-listener", "5").connect()
    try:
        listener.subscribe("dashboard/#", 2)
        open_dashboard(page, gateway)
        page.wait_for("document.getElementById('filter').dataset.subscribed === 'sensors/#'")

        # A device on plain MQTT/TCP publishes; the value appears in the page's table.
        device.publish("sensors/t1/temperature", b"21.5", qos=1)
        assert page.wait_for(cell("sensors/t1/temperature", "value"), timeout=SHOWS_UP) == "21.5"
        assert page.evaluate(cell("sensors/t1/temperature", "qos")) == "1"

        # More readings: the table counts them and the canvas chart draws every point.
        device.publish_many([("sensors/t1/temperature", f"{21.5 + i * 0.15:.2f}".encode()) for i in range(1, 12)]
                            + [("sensors/t1/humidity", b"44.0")], qos=1)
        page.wait_for(f"{cell('sensors/t1/temperature', 'count')} === '12'", timeout=SHOWS_UP)
        assert page.wait_for(cell("sensors/t1/humidity", "value"), timeout=SHOWS_UP) == "44.0"
        assert page.evaluate(cell("sensors/t1/temperature", "value")) == "23.15"
        chart = "document.getElementById('chart').dataset"
        page.wait_for(f"{chart}.topic === 'sensors/t1/temperature' && {chart}.points === '12'")

        # The page publishes from its form; a TCP subscriber receives it at the chosen QoS.
        page.evaluate("""(() => {
            document.getElementById('pub-topic').value = 'dashboard/setpoint';
            document.getElementById('pub-payload').value = '22.5';
            document.getElementById('pub-qos').value = '2';
            document.getElementById('publish').click();
        })()""")
        message = listener.inbox.get()
        assert (message.topic, message.payload, message.qos) == ("dashboard/setpoint", b"22.5", 2)
        page.wait_for("document.getElementById('publish-status').dataset.state === 'ok'")

        page.screenshot(ARTIFACTS / "dashboard.png")
        assert [line for line in page.console if "error" in line.lower()] == []
    finally:
        listener.close()


def test_changing_the_filter_resubscribes_and_starts_a_fresh_table(
    gateway: RunningGateway, page: Page, device: PahoClient
) -> None:
    open_dashboard(page, gateway, "?filter=sensors/%2B/temperature")
    page.wait_for("document.getElementById('filter').dataset.subscribed === 'sensors/+/temperature'")
    device.publish("sensors/t1/humidity", b"50", qos=1)  # not matched by the filter
    device.publish("sensors/t1/temperature", b"20.0", qos=1)
    assert page.wait_for(cell("sensors/t1/temperature", "value"), timeout=SHOWS_UP) == "20.0"
    assert page.evaluate("document.querySelectorAll('#topics tbody tr').length") == 1

    page.evaluate("""(() => {
        document.getElementById('filter').value = 'plant/#';
        document.querySelector('#subscribe-form button').click();
    })()""")
    page.wait_for("document.getElementById('filter').dataset.subscribed === 'plant/#'")
    device.publish("sensors/t1/temperature", b"20.5", qos=1)  # no longer subscribed
    device.publish("plant/line1/speed", b"1200", qos=1)
    assert page.wait_for(cell("plant/line1/speed", "value"), timeout=SHOWS_UP) == "1200"
    assert page.evaluate("Array.from(document.querySelectorAll('#topics tbody tr'), r => r.dataset.topic)") == [
        "plant/line1/speed"
    ]


def test_with_a_password_file_the_dashboard_stops_at_a_refused_login_then_logs_in(
    tmp_path: Path, page: Page
) -> None:
    users = PasswordFile()
    users.set("operator", "s3cret", iterations=1000)
    users.save(tmp_path / "passwd")
    running = RunningGateway(make_config(
        ws={"enabled": True, "listen": f"{LOOPBACK}:0"},
        http={"enabled": True, "listen": f"{LOOPBACK}:0"},
        auth={"password_file": str(tmp_path / "passwd")},
    ))
    try:
        page.navigate(f"http://{LOOPBACK}:{running.gateway.ports['http']}/dashboard/")
        status = "document.getElementById('status')"
        assert "login refused" in page.wait_for(f"{status}.dataset.state === 'error' && {status}.textContent")
        assert page.evaluate("document.getElementById('connect').textContent") == "Connect"  # no retry loop

        page.evaluate("""(() => {
            document.getElementById('username').value = 'operator';
            document.getElementById('password').value = 's3cret';
            document.getElementById('connect').click();
        })()""")
        page.wait_for("document.getElementById('filter').dataset.subscribed === 'sensors/#'")
        page.evaluate("document.getElementById('publish').click()")  # the form's default: sensors/dashboard/setpoint
        assert page.wait_for(cell("sensors/dashboard/setpoint", "value"), timeout=SHOWS_UP) == "21.0"
    finally:
        running.stop()
