"""Shared pieces of the admin API tests: a gateway with every protocol and HTTP on loopback, an HTTP helper."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Iterator

import pytest
from aiocoap import Context, Message
from aiocoap.numbers.codes import Code

from tests.conftest import LOOPBACK, RunningGateway, make_config

TIMEOUT = 10.0


def admin_gateway(**sections: dict[str, Any]) -> RunningGateway:
    """MQTT, AMQP, CoAP and HTTP on loopback (OS-chosen ports); `sections` add or override keys."""
    base: dict[str, dict[str, Any]] = {
        "http": {"enabled": True, "listen": f"{LOOPBACK}:0"},
        "amqp": {"enabled": True, "listen": f"{LOOPBACK}:0"},
        "coap": {"enabled": True, "listen": f"{LOOPBACK}:0"},
        "sys": {"interval": 0},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return RunningGateway(make_config(**base))


@pytest.fixture(scope="module")
def gateway() -> Iterator[RunningGateway]:
    """`admin_gateway()` for one test module (import it as a fixture: `from ... import gateway`)."""
    running = admin_gateway()
    try:
        yield running
    finally:
        running.stop()


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def http(gateway: RunningGateway, method: str, path: str, body: Any = None, *, token: str | None = None,
         basic: tuple[str, str] | None = None) -> Answer:
    """One request to the gateway's HTTP listener; errors are answers too."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if basic is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    url = f"http://{LOOPBACK}:{gateway.gateway.ports['http']}{path}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.headers, exc.read())


def eventually(condition: Callable[[], Any], timeout: float = TIMEOUT, step: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


def coap_requests(port: int, *requests: tuple[Code, str, bytes]) -> list[Message]:
    """Send requests with an aiocoap client context (a real CoAP client); returns the responses."""

    async def run() -> list[Message]:
        context = await Context.create_client_context()
        try:
            answers = []
            for code, path_and_query, payload in requests:
                message = Message(code=code, uri=f"coap://{LOOPBACK}:{port}{path_and_query}", payload=payload)
                answers.append(await asyncio.wait_for(context.request(message).response, TIMEOUT))
            return answers
        finally:
            await context.shutdown()

    return asyncio.run(run())
