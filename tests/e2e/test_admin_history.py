"""``GET /api/v1/history`` (issue 20): metrics sampled every [http] history_interval seconds into an hour's ring."""

from __future__ import annotations

from typing import Iterator

import pytest

from gateway.config import config_from_dict
from gateway.config_sections import ConfigError
from tests.conftest import RunningGateway
from tests.e2e.admin_support import admin_gateway, eventually, http
from tests.e2e.clients import PahoClient


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    running = admin_gateway(http={"history_interval": 0.05})
    try:
        yield running
    finally:
        running.stop()


def test_history_has_rates_connections_and_queues_after_the_interval(gateway: RunningGateway) -> None:
    subscriber = PahoClient(gateway.mqtt_port, "history-sub", "5").connect()
    publisher = PahoClient(gateway.mqtt_port, "history-pub", "311").connect()
    try:
        subscriber.subscribe("history/#", qos=1)
        publisher.publish_many([("history/t", b"x")] * 20, qos=1)
        subscriber.inbox.take(20)

        def busy() -> list:
            body = http(gateway, "GET", "/api/v1/history?minutes=5").json()
            assert body["interval"] == 0.05
            return [s for s in body["samples"] if s["messages_in"].get("mqtt", 0) > 0
                    and s["messages_out"].get("mqtt", 0) > 0 and s["connections"].get("mqtt", 0) >= 2]

        sample = eventually(busy)[-1]
        assert sample["queued"] >= 0 and isinstance(sample["time"], float)
        samples = eventually(lambda: (s := http(gateway, "GET", "/api/v1/history").json()["samples"])[2:] and s)
        assert samples == sorted(samples, key=lambda s: s["time"])  # one every interval, oldest first
        for bad in ("0", "61", "soon"):
            assert http(gateway, "GET", f"/api/v1/history?minutes={bad}").status == 400
    finally:
        publisher.close()
        subscriber.close()


def test_history_interval_is_read_from_the_http_section() -> None:
    assert config_from_dict({}).http.history_interval == 10.0
    assert config_from_dict({"http": {"history_interval": 2}}).http.history_interval == 2.0
    with pytest.raises(ConfigError, match="history_interval"):
        config_from_dict({"http": {"history_interval": 0}})
