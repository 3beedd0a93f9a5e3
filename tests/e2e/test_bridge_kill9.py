"""Bridges survive a kill -9 of the gateway during an upstream outage: `python -m gateway run` on a
SQLite store, its MQTT upstream (mosquitto) and webhook both down, messages acknowledged to the
publisher, SIGKILL, then the upstreams and the gateway start again: every acknowledged message
reaches both upstreams, in order.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.bridge_support import Mosquitto, Webhook, _mosquitto_installed, needs_mosquitto  # noqa: F401
from tests.e2e.clients import PahoClient
from tests.e2e.process_support import LoggingGateway

pytestmark = needs_mosquitto

COUNT = 500


def test_a_kill_9_during_an_outage_loses_nothing_acknowledged(tmp_path: Path) -> None:
    upstream = Mosquitto(tmp_path / "mosquitto", persistence=True).start()
    webhook = Webhook().start()
    far = PahoClient(upstream.port, "far", "311", clean=False).connect()
    far.subscribe("sensors/#", 1)
    far.close()  # its session waits in mosquitto for what the bridge forwards
    config = tmp_path / "gateway.toml"
    config.write_text(
        "".join(f"[{name}]\nenabled = false\n" for name in ("ws", "amqp", "coap", "http"))
        + f'[[bridge.mqtt]]\nname = "cloud"\nurl = "mqtt://127.0.0.1:{upstream.port}"\nout = ["sensors/#"]\n'
        + 'reconnect_min = 0.05\nreconnect_max = 0.4\n'
        + f'[[bridge.http]]\nname = "hook"\nurl = "{webhook.url}"\nout = ["sensors/#"]\nbatch = 100\n'
        + 'reconnect_min = 0.05\nreconnect_max = 0.4\n'
    )
    store = tmp_path / "rosettamq.db"
    args = ("--mqtt", "127.0.0.1:0", "--store", str(store))
    gateway = LoggingGateway(config, tmp_path / "ports.json", *args)
    try:
        port = gateway.mqtt_port()
        gateway.wait_for_log("bridge cloud (mqtt://127.0.0.1")  # connected
        upstream.stop()
        webhook.stop()
        gateway.wait_for_log("cannot connect", count=2)  # both bridges see their upstream gone
        near = PahoClient(port, "near", "5").connect()
        near.publish_many([(f"sensors/{n}", str(n).encode()) for n in range(COUNT)], qos=1)  # all PUBACKed
        near.client.loop_stop()
        gateway.proc.kill()  # SIGKILL: no goodbye, no flush
        gateway.proc.wait(20)
    finally:
        gateway.stop()
    upstream.start()
    webhook.start()
    gateway = LoggingGateway(config, tmp_path / "ports2.json", *args)
    try:
        gateway.wait_for_log(f"{COUNT} messages kept from the last run", count=2)
        far = PahoClient(upstream.port, "far", "311", clean=False).connect()
        got = far.inbox.take(COUNT)
        assert [m.payload for m in got] == [str(n).encode() for n in range(COUNT)]
        posted = webhook.wait_for(COUNT)
        assert [m["payload"] for m in posted] == [str(n) for n in range(COUNT)]
        far.close()
    finally:
        gateway.stop()
        webhook.close()
        upstream.stop()
