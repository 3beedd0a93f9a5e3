"""The console's Retained and AMQP pages in Chromium, with paho and pika on the other side.

Retained: browse by prefix, a value as pretty JSON, text or hex, clear one topic
(a new MQTT subscriber no longer receives it). AMQP: queue counters, purge and
delete (pika sees the queue empty, then gone), publish from the form (pika gets
it). Screenshots: retained.png, amqp.png.
"""

from __future__ import annotations


import pika
import pika.exceptions
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import RunningGateway
from tests.e2e.amqp_support import connect, next_message, ready_count
from tests.e2e.browser import Page
from tests.e2e.clients import PahoClient
from tests.e2e.console_support import Console, browser_page, gateway, js  # noqa: F401 (fixtures)

CONFIG = b'{"setpoint":21.5,"modes":["eco","boost"]}'
BLOB = b"\x00\x01\xffAB"


def shown(console: Console) -> str:
    return str(console.page.evaluate("document.getElementById('retained-payload')?.textContent ?? ''"))


def test_retained_values_browse_view_and_clear(gateway: RunningGateway, browser_page: Page) -> None:
    device = PahoClient(gateway.mqtt_port, "retainer", "5").connect()
    properties = Properties(PacketTypes.PUBLISH)
    properties.ContentType = "application/json"
    device.client.publish("plant/line1/config", CONFIG, 1, True, properties).wait_for_publish(10)
    device.publish("plant/line1/blob", BLOB, qos=1, retain=True)
    device.publish("plant/line2/state", b"running", qos=1, retain=True)
    device.publish("other/x", b"elsewhere", qos=1, retain=True)
    console = Console(browser_page, gateway)
    try:
        console.open("#/retained")
        console.wait("document.querySelectorAll('#retained-table tbody tr[data-topic]').length === 4")
        console.type("#retained-filter", "plant/line1")
        console.click("#retained-browse")
        console.wait("document.getElementById('retained-count')?.textContent.startsWith('2 retained messages match plant/line1/#')")

        # JSON is pretty-printed by default; the raw text is a click away.
        console.click("#retained-table tr[data-topic='plant/line1/config'] button")
        console.wait("document.getElementById('retained-payload')?.dataset.mode === 'json'")
        assert shown(console) == '{\n  "setpoint": 21.5,\n  "modes": [\n    "eco",\n    "boost"\n  ]\n}'
        assert "application/json" in console.text("#retained-value p")
        console.screenshot("retained.png")
        console.click("#retained-value button[data-mode='text']")
        assert shown(console) == CONFIG.decode()

        # Binary shows as hex (text and JSON are not offered for it).
        console.click("#retained-table tr[data-topic='plant/line1/blob'] button")
        console.wait("document.getElementById('retained-value').dataset.topic === 'plant/line1/blob'")
        assert shown(console).startswith("00000000  00 01 ff 41 42")
        assert console.page.evaluate("document.querySelector('#retained-value button[data-mode=\"text\"]').disabled")

        # Clear the blob: a subscriber arriving now gets every retained value but that one.
        console.click("#retained-clear")
        console.confirm("plant/line1/blob")
        console.wait("document.getElementById('retained-count')?.textContent.startsWith('1 retained message match')")
        late = PahoClient(gateway.mqtt_port, "late", "5").connect()
        late.subscribe("plant/#", qos=1)
        got = {m.topic: m.payload for m in late.inbox.take(2)}
        assert got == {"plant/line1/config": CONFIG, "plant/line2/state": b"running"}
        late.close()
        assert console.errors() == []
    finally:
        device.close()


def test_amqp_queues_purge_delete_and_publish(gateway: RunningGateway, browser_page: Page) -> None:
    connection = connect(gateway)
    channel = connection.channel()
    channel.queue_declare("orders")
    channel.queue_bind("orders", "amq.topic", "orders.#")
    channel.queue_declare("scratch")
    channel.queue_declare("work")
    for n in range(3):
        channel.basic_publish("amq.topic", f"orders.{n}", f"order {n}".encode())
    worker = connection.channel()
    worker.basic_qos(prefetch_count=5)
    worker.basic_consume("work", lambda *args: None)  # never acknowledges
    channel.basic_publish("", "work", b"job")
    console = Console(browser_page, gateway)
    row = "#amqp-queues-table tr[data-queue=\"{}\"]"
    cell = "document.querySelector({})?.children[{}]?.textContent"
    try:
        console.open("#/amqp")
        console.wait(cell.format(js(row.format("orders")), 2) + " === '3'")
        console.wait(cell.format(js(row.format("work")), 3) + " === '1' && "
                     + cell.format(js(row.format("work")), 4) + " === '1'")  # unacked, consumers
        assert console.count("#amqp-exchanges-table tr[data-exchange='amq.topic']") == 1
        assert console.count("#amqp-bindings-table tbody tr") >= 4
        console.screenshot("amqp.png")

        console.click(row.format("orders") + " button.purge")
        console.confirm("Purge the 3 ready message(s) of queue orders")
        console.wait(cell.format(js(row.format("orders")), 2) + " === '0'")
        assert "purged 3 message(s) from orders" in console.text("#amqp-result")
        assert ready_count(channel, "orders") == 0

        console.click(row.format("scratch") + " button.delete")
        console.confirm("Delete queue scratch")
        console.wait(f"document.querySelector({js(row.format('scratch'))}) === null")
        probe = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            probe.queue_declare("scratch", passive=True)
        assert refused.value.reply_code == 404

        # The publish form, to amq.topic with a routing key the orders queue is bound by.
        console.wait("document.getElementById('amqp-publish-exchange').selectedOptions[0]?.textContent === 'amq.topic · /'")
        console.type("#amqp-publish-key", "orders.new")
        console.type("#amqp-publish-payload", "from the console")
        console.click("#amqp-publish-button")
        console.wait("document.getElementById('amqp-publish-result').textContent === 'routed'")
        method, properties, body = next_message(channel, "orders", auto_ack=True)
        assert (method.routing_key, body, properties.content_type) == ("orders.new", b"from the console", "text/plain")
        assert console.errors() == []
    finally:
        connection.close()
