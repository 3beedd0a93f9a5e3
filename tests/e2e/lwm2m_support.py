"""LwM2M peers for the end-to-end tests: the example simulator on its own loop, and an MQTT application.

`SimulatedDevice` runs examples/lwm2m_device.py's `Device` (aiocoap) on an
event loop in a thread, as a separate process would; `MqttApp` is a paho
client that publishes commands on ``lwm2m/{ep}/dn`` and reads what the
gateway publishes under ``lwm2m/+/up/#``. Every wait is on a queue or an
event with a timeout.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import pytest

from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import TIMEOUT, PahoClient, Received

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


def _load_example() -> Any:
    name = "lwm2m_device_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "lwm2m_device.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


example = _load_example()


def lwm2m_gateway(**lwm2m: Any) -> RunningGateway:
    """MQTT and CoAP (with LwM2M) on loopback, OS-chosen ports; `lwm2m` adds [lwm2m] keys."""
    return RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"}, lwm2m=lwm2m))


def coap_port(gateway: RunningGateway) -> int:
    return gateway.gateway.ports["coap"]


class SimulatedDevice:
    """examples/lwm2m_device.py's `Device` (or another with its interface, such as
    lwm2m_senml_device.SenmlDevice) on its own event loop thread."""

    def __init__(self, endpoint: str, device_class: Callable[..., Any] | None = None, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"device {endpoint}", daemon=True)
        self._thread.start()
        self.endpoint = endpoint
        factory = device_class or example.Device
        self.device = self.run(lambda: factory(endpoint, **options))

    def run(self, fn: Callable[[], T], timeout: float = TIMEOUT) -> T:
        """Call `fn` on the device's loop and return its result."""
        async def call() -> T:
            return fn()
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def call(self, coroutine: Any, timeout: float = TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self, gateway: RunningGateway, *, register: bool = True) -> "SimulatedDevice":
        self.call(self.device.start(LOOPBACK, coap_port(gateway), register=register))
        return self

    def wait_until(self, predicate: Callable[[Any], bool], timeout: float = TIMEOUT) -> None:
        """Wait until `predicate(device)` holds (checked after each request the device serves)."""
        async def waiter() -> None:
            changed = asyncio.Event()
            self.device.on_change.append(changed.set)
            try:
                while not predicate(self.device):
                    changed.clear()
                    await changed.wait()
            finally:
                self.device.on_change.remove(changed.set)
        try:
            self.call(asyncio.wait_for(waiter(), timeout), timeout + 1)
        except TimeoutError:
            raise AssertionError(f"device {self.endpoint}: condition not met within {timeout} s") from None

    def requests(self) -> list[tuple[Any, ...]]:
        return self.run(lambda: list(self.device.requests))

    def stop(self, *, deregister: bool = True) -> None:
        try:
            self.call(self.device.stop(deregister=deregister))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


class MqttApp:
    """An MQTT application managing devices: commands out, answers and events in."""

    _ids = itertools.count(1)

    def __init__(self, gateway: RunningGateway, *filters: str, username: str | None = None) -> None:
        self.client = PahoClient(gateway.mqtt_port, f"lwm2m-app-{next(self._ids)}", "5")
        if username is not None:
            self.client.client.username_pw_set(username)
        self.client.connect()
        for topic_filter in filters or ("lwm2m/+/up/#",):
            self.client.subscribe(topic_filter, qos=1)
        self._req_ids = itertools.count(100)
        self.seen: list[Received] = []

    def command(self, endpoint: str, msg_type: str, data: dict[str, Any], **extra: Any) -> int:
        """Publish a command (QoS 1: the gateway has routed it when this returns); its reqID."""
        req_id = next(self._req_ids)
        body = {"reqID": req_id, "msgType": msg_type, "data": data, **extra}
        self.client.publish(f"lwm2m/{endpoint}/dn", json.dumps(body).encode(), qos=1)
        return req_id

    def next_on(self, topic: str, predicate: Callable[[dict[str, Any]], bool] = lambda d: True,
                timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next JSON message on `topic` that `predicate` accepts; everything read is kept in `seen`."""
        while True:
            message = self.client.inbox.get(timeout)
            self.seen.append(message)
            if message.topic == topic:
                document = json.loads(message.payload)
                if predicate(document):
                    return document

    def next_raw(self, topic: str, timeout: float = TIMEOUT) -> bytes:
        """The payload of the next message on `topic` (not JSON)."""
        while True:
            message = self.client.inbox.get(timeout)
            self.seen.append(message)
            if message.topic == topic:
                return message.payload

    def answer(self, endpoint: str, req_id: int, timeout: float = TIMEOUT) -> dict[str, Any]:
        return self.next_on(f"lwm2m/{endpoint}/up/resp", lambda d: d.get("reqID") == req_id, timeout)

    def ask(self, endpoint: str, msg_type: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return self.answer(endpoint, self.command(endpoint, msg_type, data, **extra))

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def app(gateway: RunningGateway) -> Iterator[MqttApp]:
    """An MQTT app (paho) on the module's `gateway` fixture, for one test (import it as a fixture)."""
    client = MqttApp(gateway)
    try:
        yield client
    finally:
        client.close()


def values(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer's content as {path: value}."""
    return {item["path"]: item["value"] for item in answer["data"].get("content", [])}
