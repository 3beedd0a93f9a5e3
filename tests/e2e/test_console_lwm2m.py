"""The console's LwM2M pages in Chromium, with the example simulator (examples/lwm2m_device.py) registered.

The devices table, a device's object tree from its registration and the object
definitions, and commands from the browser answered by the device: a read, a
write (the device's value changes), an execute, and an observation whose
notifications arrive live on the page. Screenshots: lwm2m.png, lwm2m-device.png
and the device page at phone width, lwm2m-device-phone.png.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.conftest import RunningGateway
from tests.e2e.browser import Page
from tests.e2e.console_support import PHONE, Console, browser_page, gateway, js  # noqa: F401 (fixtures)
from tests.e2e.lwm2m_support import SimulatedDevice

EP = "boiler-17"


@pytest.fixture
def device(gateway: RunningGateway) -> Iterator[SimulatedDevice]:
    simulated = SimulatedDevice(EP, lifetime=60).start(gateway)
    try:
        yield simulated
    finally:
        simulated.stop()


def value(path: str) -> str:
    return f"document.querySelector('[data-value-of=\"{path}\"]')?.textContent"


def run(console: Console, path: str, op: str) -> str:
    """Click an operation's button on a resource or instance; returns the answer's code."""
    before = console.page.evaluate("document.getElementById('lwm2m-answer').textContent")
    console.click(f"#lwm2m-tree [data-path=\"{path}\"] button[data-op=\"{op}\"]")
    console.wait(f"document.getElementById('lwm2m-answer').textContent !== {js(before)}", timeout=35)
    return str(console.page.evaluate("document.getElementById('lwm2m-result').dataset.code"))


def test_a_device_is_read_written_executed_and_observed_from_the_browser(
        gateway: RunningGateway, device: SimulatedDevice, browser_page: Page) -> None:
    console = Console(browser_page, gateway)
    console.open("#/lwm2m")
    row = f"#lwm2m-devices tr[data-endpoint=\"{EP}\"]"
    console.wait(f"document.querySelector({js(row)}) !== null")
    objects = console.page.evaluate(f"document.querySelector({js(row)}).lastElementChild.textContent")
    assert "/3/0" in objects and "/3303/0" in objects
    console.screenshot("lwm2m.png")

    console.click(f"{row} a")
    console.wait(f"location.hash === '#/lwm2m/{EP}'")
    console.wait("document.getElementById('lwm2m-device')?.dataset.loaded === 'true'")
    names = console.page.evaluate("[...document.querySelectorAll('#lwm2m-tree details.object summary')].map((s) => s.textContent)")
    assert "/3 Device" in names and any(name.startswith("/3303 ") for name in names)

    # Read an instance: every readable resource of /3/0 gets its value.
    assert run(console, "/3/0", "read") == "2.05"
    assert console.page.evaluate(value("/3/0/1")) == "lwm2m-device.py"
    assert console.page.evaluate(value("/3/0/2")) == f"SIM-{EP}"

    # Read a resource: the device's manufacturer, as the device answers it.
    assert run(console, "/3/0/0", "read") == "2.05"
    assert console.page.evaluate(value("/3/0/0")) == "RosettaMQ"
    assert ("GET", "3/0/0") in {(method, path.strip("/")) for method, path, _ in device.requests()}

    # Write: the device's UTC offset changes.
    console.type("input[data-write-for='/3/0/14']", "+02:00")
    assert run(console, "/3/0/14", "write") == "2.04"
    assert device.run(lambda: device.device.tree.values[(3, 0)][14]) == "+02:00"
    assert run(console, "/3/0/14", "read") == "2.05"
    assert console.page.evaluate(value("/3/0/14")) == "+02:00"

    # Execute: reset min and max of the temperature sensor.
    assert run(console, "/3303/0/5605", "execute") == "2.04"
    assert device.run(lambda: [path for path, _ in device.device.executed]) == ["/3303/0/5605"]

    # Observe: a new temperature arrives on the page without a click.
    console.wait("document.getElementById('lwm2m-live').dataset.state === 'open'")
    assert run(console, "/3303/0/5700", "observe") == "2.05"
    device.run(lambda: device.device.set_temperature(30.25))
    console.wait(f"{value('/3303/0/5700')} === '30.25'")
    console.wait("document.querySelector('#lwm2m-notifications li[data-kind=\"notify\"]') !== null")
    console.screenshot("lwm2m-device.png")
    assert run(console, "/3303/0/5700", "cancel-observe") == "2.05"

    console.viewport(*PHONE)
    console.wait("document.documentElement.clientWidth === 390")
    console.screenshot("lwm2m-device-phone.png")
    assert console.errors() == []
