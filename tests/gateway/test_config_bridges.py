"""`[[bridge.mqtt]]`, `[[bridge.amqp]]`, `[[bridge.http]]` read from TOML, and the mistakes refused."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from gateway.bridges.settings import AMQPBridgeSettings, HTTPBridgeSettings, MQTTBridgeSettings
from gateway.config import ConfigError, config_from_dict, load_config

EXAMPLE_BRIDGES = """
[[bridge.mqtt]]
name = "cloud"
url = "mqtts://edge:s3cret@broker.example:8883"
client_id = "edge-1"
version = 3
out = ["sensors/#"]
in = ["commands/#"]
remote_prefix = "site1/"
qos = 2
ca = "ca.pem"

[[bridge.amqp]]
name = "backend"
url = "amqp://user:pass@rabbit.example:5672/vhost"
exchange = "telemetry"
out = ["sensors/#"]
in_queue = "device-commands"
in_prefix = "commands/"
queue_max_messages = 500
overflow = "drop_new"

[[bridge.http]]
name = "webhook"
url = "https://example.com/api/ingest"
out = ["alerts/#"]
headers = {Authorization = "Bearer abc"}
batch = 20
timeout = 2.5
reconnect_min = 0.5
reconnect_max = 30
"""


def test_every_kind_is_read_with_its_keys(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here\n")
    path = tmp_path / "gw.toml"
    path.write_text(EXAMPLE_BRIDGES)
    mqtt, amqp, http = load_config(path).bridges
    assert isinstance(mqtt, MQTTBridgeSettings)
    assert (mqtt.name, mqtt.client_id, mqtt.version, mqtt.out, mqtt.in_, mqtt.remote_prefix, mqtt.qos) == (
        "cloud", "edge-1", 3, ("sensors/#",), ("commands/#",), "site1/", 2)
    assert (mqtt.username, mqtt.password, mqtt.secure, mqtt.tls.ca) == ("edge", "s3cret", True, str(tmp_path / "ca.pem"))
    assert mqtt.public_url() == "mqtts://edge:***@broker.example:8883"
    assert isinstance(amqp, AMQPBridgeSettings)
    assert (amqp.exchange, amqp.in_queue, amqp.in_prefix, amqp.queue.max_messages, amqp.queue.overflow) == (
        "telemetry", "device-commands", "commands/", 500, "drop_new")
    assert isinstance(http, HTTPBridgeSettings)
    assert (http.headers, http.batch, http.timeout, http.reconnect_min, http.reconnect_max) == (
        (("Authorization", "Bearer abc"),), 20, 2.5, 0.5, 30.0)


def test_defaults_keep_qos1_and_verify_tls() -> None:
    (bridge,) = config_from_dict({"bridge": {"mqtt": [{"name": "a", "url": "mqtt://h", "out": ["x"]}]}}).bridges
    assert isinstance(bridge, MQTTBridgeSettings)
    assert (bridge.qos, bridge.version, bridge.client_id, bridge.clean_start, bridge.tls.insecure) == (
        1, 5, "rosettamq-a", True, False)
    assert bridge.queue.overflow == "drop_oldest" and bridge.queue.max_messages == 100_000
    assert config_from_dict({}).bridges == ()


@pytest.mark.parametrize("table, error", [
    ({"mqtt": [{"url": "mqtt://h", "out": ["x"]}]}, "bridge.mqtt[0].name: required"),
    ({"mqtt": [{"name": "a", "out": ["x"]}]}, "bridge.mqtt[0].url: required"),
    ({"mqtt": [{"name": "a", "url": "http://h", "out": ["x"]}]}, 'expected "mqtt://host:port"'),
    ({"amqp": [{"name": "a", "url": "amqp://h:99999", "out": ["x"]}]}, "bridge.amqp[0].url"),
    ({"mqtt": [{"name": "a", "url": "mqtt://h", "out": ["x/#/y"]}]}, "bridge.mqtt[0].out"),
    ({"mqtt": [{"name": "a", "url": "mqtt://h"}]}, "needs out or in"),
    ({"mqtt": [{"name": "a", "url": "mqtt://h", "out": ["x"], "version": 4}]}, "3 (MQTT 3.1.1) or 5"),
    ({"mqtt": [{"name": "a", "url": "mqtt://h", "out": ["x"], "qos": 3}]}, "bridge.mqtt[0].qos"),
    ({"mqtt": [{"name": "a", "url": "mqtt://h", "in": ["$share/g/x"], "remote_prefix": "p/"}]}, "shared"),
    ({"mqtt": [{"name": "a", "url": "mqtt://h", "out": ["x"], "ca": "/nowhere.pem"}]}, "file not found"),
    ({"mqtt": [{"name": "a", "url": "mqtt://h", "out": ["x"], "colour": "red"}]}, "unknown key"),
    ({"amqp": [{"name": "a", "url": "amqp://h"}]}, "out filters or an in_queue"),
    ({"http": [{"name": "a", "url": "https://h/x"}]}, "needs out filters"),
    ({"http": [{"name": "a", "url": "https://h/x", "out": ["x"], "overflow": "disconnect"}]}, "overflow"),
    ({"http": [{"name": "a", "url": "https://h/x", "out": ["x"], "headers": {"Bad Name": "v"}}]}, "header"),
    ({"mqtt": [{"name": "a", "url": "mqtt://h", "out": ["x"]}], "http": [{"name": "a", "url": "http://h", "out": ["x"]}]},
     "two bridges are named 'a'"),
    ({"kafka": []}, "unknown key in [bridge]"),
])
def test_mistakes_are_refused_naming_the_bridge_and_key(table: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        config_from_dict({"bridge": table})
    assert error in str(caught.value)


def test_the_commented_examples_of_the_example_config_are_valid_bridges() -> None:
    text = (Path(__file__).resolve().parents[2] / "examples" / "rosettamq.toml").read_text()
    block = text[text.index("# [[bridge.mqtt]]"):]
    uncommented = "\n".join(re.sub(r"^# ?", "", line) for line in block.splitlines())
    bridges = config_from_dict(tomllib.loads(uncommented)).bridges
    assert [(b.kind, b.name) for b in bridges] == [("mqtt", "cloud"), ("amqp", "backend"), ("http", "webhook")]
