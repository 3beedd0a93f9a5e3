"""The LwM2M server layer with a driven clock and a fake CoAP client: deadlines, queue mode, one request at a time.

The server is mounted on a fake listener whose context records the requests
it is asked to send and lets the test answer them; time is a variable the
test moves, and `run_due(now)` is called as the server's timer would.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiocoap import Message as CoAPMessage
from aiocoap.numbers.codes import Code

from adapters.lwm2m.server import LwM2MServer
from adapters.lwm2m.settings import LwM2MSettings
from core.broker import Broker
from core.message import Message
from core.subscriptions import Delivery, EncodeCache, SubscriptionOptions
from core.principal import SYSTEM

TIMEOUT = 5.0


class FakeRequest:
    def __init__(self, message: CoAPMessage) -> None:
        self.message = message
        self.response: asyncio.Future[CoAPMessage] = asyncio.get_running_loop().create_future()
        self.observation = None

    def answer(self, code: Code, payload: bytes = b"", content_format: int | None = 0) -> None:
        reply = CoAPMessage(code=code, payload=payload)
        if content_format is not None:
            reply.opt.content_format = content_format
        reply.token = b"\x01"
        self.response.set_result(reply)


class FakeContext:
    """Stands in for the listener's aiocoap context: requests are recorded, answered by the test."""

    def __init__(self) -> None:
        self.sent: asyncio.Queue[FakeRequest] = asyncio.Queue()

    def request(self, message: CoAPMessage) -> FakeRequest:
        request = FakeRequest(message)
        self.sent.put_nowait(request)
        return request


class FakeListener:
    def __init__(self) -> None:
        self.context = FakeContext()


class Sink:
    """An in-process subscriber of everything the server publishes."""

    is_online = True

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def is_origin_of(self, message: Message) -> bool:
        return False

    def deliver(self, delivery: Delivery, cache: EncodeCache) -> None:
        message = delivery.message
        if "/up/" in message.topic:
            self.messages.put_nowait((message.topic, json.loads(message.payload)))

    async def next(self) -> tuple[str, Any]:
        return await asyncio.wait_for(self.messages.get(), TIMEOUT)

    def pending(self) -> list[tuple[str, Any]]:
        items = []
        while not self.messages.empty():
            items.append(self.messages.get_nowait())
        return items


class Setup:
    def __init__(self, **settings: Any) -> None:
        self.time = 1000.0
        self.broker = Broker()
        self.sink = Sink()
        self.broker.router.subscribe(self.sink, "#", SubscriptionOptions(qos=0))
        self.server = LwM2MServer(self.broker, LwM2MSettings(**settings), clock=lambda: self.time)
        self.listener = FakeListener()
        self.server.mount(self.listener)

    def register(self, *query: str) -> str:
        response = self.server.registration_request("POST", (), ("ep=dev", *query), b"</3/0>", 40, "addr-1")
        assert response.code == "2.01"
        return response.location_path[1]

    def command(self, msg_type: str, path: str, **extra: Any) -> None:
        body = {"reqID": 1, "msgType": msg_type, "data": {"path": path}, **extra}
        self.broker.publish(SYSTEM, Message("lwm2m/dev/dn", json.dumps(body).encode()))

    async def sent(self) -> FakeRequest:
        return await asyncio.wait_for(self.listener.context.sent.get(), TIMEOUT)


async def test_a_registration_expires_only_once_its_lifetime_and_grace_have_passed() -> None:
    setup = Setup(lifetime_grace=5, min_lifetime=1)
    setup.register("lt=10")
    assert (await setup.sink.next())[0] == "lwm2m/dev/up/register"
    assert setup.server.next_deadline() == 1015.0
    setup.server.run_due(1014.9)
    assert setup.sink.pending() == [] and len(setup.server.devices) == 1
    setup.server.run_due(1015.0)
    topic, message = await setup.sink.next()
    assert (topic, message["data"]["reason"]) == ("lwm2m/dev/up/deregister", "expired")
    assert setup.server.devices == {} and setup.server.next_deadline() is None
    setup.command("read", "/3/0/0")  # nobody subscribes the command topic any more
    assert setup.listener.context.sent.empty()


async def test_an_update_moves_the_expiry_and_the_device_address() -> None:
    setup = Setup(lifetime_grace=0, min_lifetime=1)
    location = setup.register("lt=10")
    setup.time = 1008.0
    response = setup.server.registration_request("POST", (location,), (), b"", None, "addr-2")
    assert response.code == "2.04"
    assert setup.server.next_deadline() == 1018.0
    setup.command("read", "/3/0/0")
    assert (await setup.sent()).message.remote == "addr-2"


async def test_commands_go_one_at_a_time_and_each_gets_its_answer() -> None:
    setup = Setup()
    setup.register("lt=60")
    setup.command("read", "/3/0/0")
    setup.command("read", "/3/0/1")
    first = await setup.sent()
    assert first.message.opt.uri_path == ("3", "0", "0")
    assert setup.listener.context.sent.empty()  # the second waits for the first answer
    first.answer(Code.CONTENT, b"ACME")
    second = await setup.sent()
    assert second.message.opt.uri_path == ("3", "0", "1")
    second.answer(Code.NOT_FOUND, content_format=None)
    answers = [m for _, m in [await setup.sink.next() for _ in range(3)] if m["msgType"] == "read"]
    assert [a["data"]["code"] for a in answers] == ["2.05", "4.04"]
    assert answers[0]["data"]["content"] == [{"path": "/3/0/0", "value": "ACME"}]


async def test_a_queue_mode_device_gets_its_commands_at_its_next_update() -> None:
    setup = Setup(awake_window=10, queue_ttl=30)
    location = setup.register("lt=600", "b=UQ")
    await setup.sink.next()
    setup.time = 1011.0  # the awake window after the registration is over
    setup.command("read", "/3/0/0")
    assert setup.listener.context.sent.empty() and setup.server.metrics()["queued_commands"] == 1
    setup.time = 1020.0
    setup.server.registration_request("POST", (location,), (), b"", None, "addr-1")
    request = await setup.sent()
    assert request.message.opt.uri_path == ("3", "0", "0")


async def test_a_queued_command_expires_with_a_coap_timeout_answer_at_its_ttl() -> None:
    setup = Setup(awake_window=0, queue_ttl=30)
    setup.register("lt=600", "b=UQ")
    await setup.sink.next()
    setup.command("read", "/3/0/0", ttl=5)
    assert setup.server.next_deadline() == 1005.0  # the command's own ttl comes before the expiry
    setup.server.run_due(1005.0)
    topic, answer = await setup.sink.next()
    assert (topic, answer["msgType"], answer["data"]["code"]) == ("lwm2m/dev/up/resp", "coap_timeout", "5.04")
    assert setup.listener.context.sent.empty()


async def test_deregistering_answers_the_commands_still_waiting() -> None:
    setup = Setup(awake_window=0)
    location = setup.register("lt=600", "b=UQ")
    await setup.sink.next()
    setup.command("read", "/3/0/0")
    response = setup.server.registration_request("DELETE", (location,), (), b"", None, "addr-1")
    assert response.code == "2.02"
    messages = [await setup.sink.next() for _ in range(2)]
    assert {(t, m["msgType"]) for t, m in messages} == {("lwm2m/dev/up/resp", "coap_timeout"),
                                                        ("lwm2m/dev/up/deregister", "deregister")}


async def test_a_device_that_never_answers_gets_coap_timeout_after_the_command_timeout() -> None:
    setup = Setup(command_timeout=0.05)
    setup.register("lt=60")
    await setup.sink.next()
    setup.command("read", "/3/0/0")
    request = await setup.sent()
    topic, answer = await setup.sink.next()
    assert (answer["msgType"], answer["data"]["reqPath"]) == ("coap_timeout", "/3/0/0")
    assert request.response.cancelled()  # the exchange is given up, not left retransmitting
