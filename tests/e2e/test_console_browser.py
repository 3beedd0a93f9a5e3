"""The live web console at / in headless Debian Chromium, with MQTT, AMQP and CoAP traffic flowing.

The page reads server-sent events (/api/v1/events) and the admin API; the test
asserts its DOM over the DevTools protocol, publishes from its form to a TCP
subscriber, and saves test-artifacts/console.png.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pika
from aiocoap.numbers.codes import Code

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import admin_gateway, coap_requests
from tests.e2e.browser import Page
from tests.e2e.console_support import ARTIFACTS, browser_page, gateway  # noqa: F401 (fixtures)
from tests.e2e.clients import PahoClient

SHOWS_UP = 10.0  # seconds: events come once a second


def connections(protocol: str) -> str:
    return f"document.querySelector('#connections li[data-protocol=\"{protocol}\"] .count')?.textContent"


def test_the_console_shows_connections_rates_topics_and_publishes(gateway: RunningGateway, browser_page: Page) -> None:
    page = browser_page
    ports = gateway.gateway.ports
    subscriber = PahoClient(gateway.mqtt_port, "console-sub", "5").connect()
    subscriber.subscribe("plant/#", qos=1)
    amqp = pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, ports["amqp"]))
    try:
        channel = amqp.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, "amq.topic", "plant.#")
        page.navigate(f"http://{LOOPBACK}:{ports['http']}/")
        page.wait_for("document.getElementById('status').textContent === 'live'", timeout=SHOWS_UP)
        page.wait_for(f"{connections('mqtt')} === '1' && {connections('amqp')} === '1'", timeout=SHOWS_UP)

        # Traffic of every protocol while the page watches: rates per protocol pair and top topics.
        device = PahoClient(gateway.mqtt_port, "console-device", "311").connect()
        device.publish("plant/line1/temp", b"21.5", qos=1, retain=True)
        device.publish_many([("plant/line1/speed", str(1200 + i).encode()) for i in range(20)], qos=1)
        channel.basic_publish("amq.topic", "plant.line2.state", b"running")
        coap_requests(ports["coap"], (Code.POST, "/ps/plant/line3/level?retain=true", b"0.8"))
        subscriber.inbox.take(23)
        legend = "document.querySelector('#legend li[data-pair=\"{}\"]')"
        for pair in ("mqtt->mqtt", "mqtt->amqp", "amqp->mqtt", "coap->mqtt", "coap->amqp"):
            page.wait_for(legend.format(pair) + " !== null", timeout=SHOWS_UP)
        page.wait_for("document.querySelector('#top-topics tbody tr')?.dataset.topic === 'plant/line1/speed'",
                      timeout=SHOWS_UP)
        assert page.evaluate("document.querySelector('#top-topics tbody tr td.messages').textContent") == "20"
        assert page.evaluate("document.getElementById('rates').width") == 760

        # The topic tree holds the retained values; clicking a leaf shows it.
        leaf = "document.querySelector('#tree li[data-topic=\"plant/line3/level\"]')"
        page.wait_for(f"{leaf}?.querySelector('.value').textContent === '0.8'", timeout=SHOWS_UP)
        page.evaluate(f"{leaf}.querySelector('.leaf').click()")
        assert "plant/line3/level (retained)" in page.evaluate("document.getElementById('topic-value').textContent")

        # The publish form reaches an MQTT subscriber.
        page.evaluate("""(() => {
            document.getElementById('publish-topic').value = 'plant/console/setpoint';
            document.getElementById('publish-payload').value = '42';
            document.getElementById('publish-qos').value = '1';
            document.getElementById('publish-button').click();
        })()""")
        message = subscriber.inbox.until_topic("plant/console/setpoint")[-1]
        assert (message.payload, message.qos) == (b"42", 1)
        page.wait_for("document.getElementById('publish-result').textContent.startsWith('published')")
        page.wait_for(f"{connections('mqtt')} === '2'", timeout=SHOWS_UP)

        page.screenshot(ARTIFACTS / "console.png")
        assert [line for line in page.console if "error" in line.lower()] == []
        device.close()
    finally:
        amqp.close()
        subscriber.close()


def test_the_console_shows_only_what_the_role_allows(tmp_path: Path, browser_page: Page) -> None:
    """Issue 24: an admin gets the publish form, a monitor reads without it, a user with no role is
    told why (403) and how to get access; each signs in with HTTP basic credentials."""
    passwords = PasswordFile(tmp_path / "passwords")
    for name in ("alice", "bob", "carol"):
        passwords.set(name, f"pw-{name}", iterations=1000)
    passwords.save()
    running = admin_gateway(auth={"password_file": str(tmp_path / "passwords"), "allow_anonymous": True},
                            http={"admins": ["alice"], "monitors": ["carol"]})
    url = f"http://{LOOPBACK}:{running.gateway.ports['http']}/"
    page = browser_page
    page.send("Network.enable")
    shown = "!document.getElementById('{}').hidden"
    try:
        def sign_in(name: str) -> None:
            credentials = base64.b64encode(f"{name}:pw-{name}".encode()).decode()
            page.send("Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {credentials}"})
            page.navigate(url)

        sign_in("carol")
        page.wait_for("document.getElementById('status').textContent === 'live'", timeout=SHOWS_UP)
        page.wait_for("document.getElementById('whoami').textContent === 'carol · monitor (read only)'")
        assert not page.evaluate(shown.format("publish-card")) and not page.evaluate(shown.format("access-message"))
        page.screenshot(ARTIFACTS / "console-monitor.png")

        sign_in("bob")
        message = page.wait_for(f"{shown.format('access-message')} && "
                                "document.getElementById('access-message').textContent")
        assert "Access refused" in message and "[http] admins" in message and "bob" in message
        assert not page.evaluate(shown.format("publish-card"))
        page.screenshot(ARTIFACTS / "console-no-role.png")

        sign_in("alice")
        page.wait_for(shown.format("publish-card"))
        page.wait_for("document.getElementById('whoami').textContent === 'alice · admin'")
        assert not page.evaluate(shown.format("access-message"))
    finally:
        running.stop()
