"""The console's Clients and Sessions pages in Chromium, with real MQTT (paho) and AMQP (pika) clients.

Search (debounced, server-side), protocol filter, paging, a client's page with
its subscriptions, session, will and last error (a publish the ACL refused), a kick answered by the client's
disconnection, and the deletion of an offline session that a reconnection
then finds gone. Screenshots: clients.png, client.png, sessions.png.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import paho.mqtt.client as mqtt
import pika
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import admin_gateway, eventually, http
from tests.e2e.browser import Page
from tests.e2e.clients import TIMEOUT, PahoClient
from tests.e2e.console_support import Console, browser_page, js  # noqa: F401 (fixture)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    (tmp_path / "acl").write_text("topic readwrite plant/#\ntopic readwrite meters/#\ntopic write wills/#\n")
    running = admin_gateway(auth={"acl_file": str(tmp_path / "acl"), "allow_anonymous": True})
    try:
        yield running
    finally:
        running.stop()


MARKUP = "<img src=x onerror=window.pwned=1>"


class SessionClient:
    """A paho MQTT 5 client with a persistent session (expiry 3600 s) and a will; records its DISCONNECT."""

    def __init__(self, port: int, client_id: str) -> None:
        self.port = port
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.will_set(f"wills/{client_id}", b"gone", qos=1, retain=False)
        self.connected, self.disconnected = threading.Event(), threading.Event()
        self.session_present: bool | None = None
        self.disconnect_reason: Any = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self.subscribed.set()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.disconnect_reason = reason_code
        self.disconnected.set()

    def connect(self) -> "SessionClient":
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self.connected.clear()
        self.client.connect(LOOPBACK, self.port, 60, clean_start=False, properties=properties)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT), "no CONNACK"
        return self

    def subscribe(self, topic_filter: str, qos: int) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic_filter, qos)
        assert self.subscribed.wait(TIMEOUT), "no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rows(console: Console, table: str) -> list[str]:
    return console.page.evaluate(f"[...document.querySelectorAll('#{table} tbody tr[data-client]')]"
                                 ".map((tr) => tr.dataset.client)")


def test_clients_search_filter_page_detail_and_kick(gateway: RunningGateway, browser_page: Page) -> None:
    port = gateway.mqtt_port
    plain = [PahoClient(port, name, "5").connect() for name in ("sensor-1", "sensor-3")]
    press = PahoClient(port, "press-7", "311").connect()
    markup = PahoClient(port, MARKUP, "5").connect()
    persistent = SessionClient(port, "sensor-2").connect()
    persistent.subscribe("plant/+/temp", 1)
    persistent.client.publish("secret/door", b"open", 1).wait_for_publish(TIMEOUT)  # refused by the ACL
    amqp = pika.BlockingConnection(pika.ConnectionParameters(
        LOOPBACK, gateway.gateway.ports["amqp"], client_properties={"connection_name": "amqp-line-4"}))
    console = Console(browser_page, gateway)
    try:
        # Two rows a page; every client shows up, AMQP too.
        console.open("#/clients?limit=2")
        console.wait("document.getElementById('clients-total')?.dataset.total === '6'")
        assert len(rows(console, "clients-table")) == 2
        console.screenshot("clients.png")

        # A client id is text on the page, never markup.
        console.type("#clients-q", "onerror")
        console.wait(f"document.querySelector('#clients-table tbody tr')?.dataset.client === {js(MARKUP)}")
        assert console.text("#clients-table tbody tr td a") == MARKUP
        assert console.page.evaluate("document.querySelector('#clients-table img') === null && window.pwned === undefined")

        console.page.evaluate("(s => { s.value = 'amqp'; s.dispatchEvent(new Event('change')); })"
                              "(document.getElementById('clients-protocol'))")
        console.wait("document.getElementById('clients-total')?.dataset.total === '1'")
        assert console.page.evaluate("document.querySelector('#clients-table tbody tr').dataset.protocol") == "amqp"
        console.page.evaluate("(s => { s.value = ''; s.dispatchEvent(new Event('change')); })"
                              "(document.getElementById('clients-protocol'))")

        # The search box (typed, debounced) narrows to the sensors; the pager reaches the third.
        console.type("#clients-q", "SENSOR")
        console.wait("document.getElementById('clients-total')?.dataset.total === '3'")
        assert rows(console, "clients-table") == ["sensor-1", "sensor-2"]
        console.click("#clients-results .pager .next")
        console.wait(f"JSON.stringify([...document.querySelectorAll('#clients-table tbody tr')]"
                     f".map((tr) => tr.dataset.client)) === {js(js(['sensor-3']))}")

        # A row opens the client's page: its subscription, session expiry and will.
        console.click("#clients-results .pager .prev")
        console.wait("document.querySelector('#clients-table tr[data-client=\"sensor-2\"]') !== null")
        console.page.evaluate("document.querySelector('#clients-table tr[data-client=\"sensor-2\"] td:nth-child(2)').click()")
        console.wait("location.hash === '#/clients/sensor-2?protocol=mqtt'")
        console.wait("document.querySelector('#client-subscriptions tr[data-filter=\"plant/+/temp\"]') !== null")
        cells = console.page.evaluate("[...document.querySelectorAll('#client-subscriptions tr[data-filter=\"plant/+/temp\"] td')]"
                                      ".map((td) => td.textContent)")
        assert cells[:2] == ["plant/+/temp", "1"]
        assert console.text("[data-fact='session expiry']") == "3600 s"
        assert console.text("[data-fact='topic']") == "wills/sensor-2"
        errors = console.page.evaluate("[...document.querySelectorAll('#client-errors tbody td:last-child')]"
                                       ".map((td) => td.textContent)")
        assert errors == ["publish to 'secret/door' refused: not authorized"]
        console.screenshot("client.png")

        # Kick, cancelled first, then confirmed: the client is disconnected by an administrative action.
        console.click("#client-kick")
        console.dismiss()
        assert not persistent.disconnected.is_set()
        console.click("#client-kick")
        console.confirm("Disconnect sensor-2")
        assert persistent.disconnected.wait(TIMEOUT)
        assert persistent.disconnect_reason.value == 0x98  # administrative action
        console.wait("document.getElementById('client-result').textContent.startsWith('kicked sensor-2')")
        console.wait("document.getElementById('client-gone') !== null")
        assert console.errors() == []
    finally:
        persistent.client.loop_stop()
        amqp.close()
        press.close()
        markup.close()
        for client in plain:
            client.close()


def test_an_offline_session_is_listed_and_deleted(gateway: RunningGateway, browser_page: Page) -> None:
    persistent = SessionClient(gateway.mqtt_port, "meter-9").connect()
    persistent.subscribe("meters/9/#", 1)
    persistent.close()
    eventually(lambda: any(s["client_id"] == "meter-9" for s in http(gateway, "GET", "/api/v1/sessions").json()["sessions"]))
    publisher = PahoClient(gateway.mqtt_port, "meter-publisher", "5").connect()
    publisher.publish("meters/9/kwh", b"12.5", qos=1)
    publisher.publish("meters/9/kwh", b"12.6", qos=1)
    console = Console(browser_page, gateway)
    try:
        console.open("#/sessions")
        row = "#sessions-table tr[data-client=\"meter-9\"]"
        console.wait(f"document.querySelector({js(row)}) !== null")
        cells = console.page.evaluate(f"[...document.querySelectorAll({js(row + ' td')})].map((td) => td.textContent)")
        assert cells[0] == "meter-9" and cells[2] == "2"  # two messages queued for it
        console.screenshot("sessions.png")
        console.type("#sessions-q", "nobody")  # the search goes to the server (?q=), debounced
        console.wait(f"document.querySelector({js(row)}) === null && "
                     "document.querySelector('#sessions-results .range').textContent === '0 of 0'")
        console.type("#sessions-q", "METER")
        console.wait(f"document.querySelector({js(row)}) !== null")

        console.click(f"{row} button.delete")
        console.confirm("Delete the session of meter-9")
        console.wait(f"document.querySelector({js(row)}) === null")
        assert "deleted the session of meter-9" in console.text("#sessions-result")
        assert all(s["client_id"] != "meter-9" for s in http(gateway, "GET", "/api/v1/sessions").json()["sessions"])

        # The client comes back to no session: nothing was kept for it.
        again = SessionClient(gateway.mqtt_port, "meter-9").connect()
        assert again.session_present is False
        again.close()
        assert console.errors() == []
    finally:
        publisher.close()
