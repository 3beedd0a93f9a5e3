"""CoAP and LwM2M behind the gateway's shared limits, over raw UDP on loopback.

- login backoff: a brute-force loop of wrong ``u``/``p`` publishes gets 4.01
  until the address is held, then 4.29 Too Many Requests with Max-Age (RFC
  8516), the right password included, without a password check;
- the per-address rate limiter refuses a flood of new client identities (4.29),
  and the same limiter counts LwM2M registrations on ``/rd``;
- max observers and max connections are answered 5.03 with Max-Age.

Each refusal shows in `CoAPListener.metrics()` (LwM2M: `LwM2MServer.metrics()`).
Waits are socket reads with timeouts, never sleeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from aiocoap.numbers.codes import Code

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.coap_clients import RawCoAP, coap_port, request

FAST = 1000  # password hash iterations: cheap for tests
SLOW_RATE = 0.1  # new identities per second per address: one, then none for 10 s


def scraped(gateway: RunningGateway) -> str:
    """What /metrics would serve (Prometheus text)."""
    return gateway.call(gateway.gateway.metrics.render)


def coap_metrics(gateway: RunningGateway) -> dict[str, int]:
    coap = gateway.gateway.coap
    assert coap is not None
    return gateway.call(coap.metrics)


@pytest.fixture
def running(request: pytest.FixtureRequest) -> Iterator[RunningGateway]:
    gateway = RunningGateway(request.param)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def raw(running: RunningGateway) -> Iterator[RawCoAP]:
    client = RawCoAP(coap_port(running))
    try:
        yield client
    finally:
        client.close()


def _with_password(tmp: Path, **sections: Any) -> Any:
    users = PasswordFile()
    users.set("sensor", "s3cret", iterations=FAST)
    path = tmp / "passwd"
    users.save(path)
    return make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
                       auth={"password_file": str(path), "allow_anonymous": False,
                             "login_backoff_after": 3, "login_backoff_max": 30}, **sections)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RunningGateway]:
    gateway = RunningGateway(_with_password(tmp_path))
    try:
        yield gateway
    finally:
        gateway.stop()


def test_a_brute_force_loop_gets_4_01_then_4_29_with_max_age_even_for_the_right_password(
        guarded: RunningGateway) -> None:
    raw = RawCoAP(coap_port(guarded))
    try:
        codes = []
        for attempt in range(10):
            answer = raw.ask(request(Code.POST, "/ps/t", query=("u=sensor", f"p=guess{attempt}"), payload=b"x",
                                     token=bytes([attempt + 1])))
            codes.append(answer.code)
            if answer.code == Code.TOO_MANY_REQUESTS:
                assert answer.opt.max_age is not None and 1 <= answer.opt.max_age <= 30
                break
        # three free failures, a fourth that starts the hold, then the held answer
        assert codes == [Code.UNAUTHORIZED] * 4 + [Code.TOO_MANY_REQUESTS]
        right = raw.ask(request(Code.POST, "/ps/t", query=("u=sensor", "p=s3cret"), payload=b"x", token=b"\x20"))
        assert right.code == Code.TOO_MANY_REQUESTS and right.opt.max_age is not None
    finally:
        raw.close()
    metrics = coap_metrics(guarded)
    assert (metrics["login_failures"], metrics["refused_login_backoff"]) == (4, 2)
    text = scraped(guarded)
    assert 'connections_refused_total{protocol="coap",listener="coap",reason="login_backoff"} 2' in text
    assert 'auth_failures_total{protocol="coap"} 4' in text
    assert guarded.call(lambda: guarded.broker.router.published) == 0
    backoff = guarded.gateway.security.login_backoff
    assert backoff is not None and guarded.call(lambda: backoff.failures) == 4


def test_the_backoff_is_per_address_and_a_held_address_does_not_hold_an_open_connection(
        guarded: RunningGateway) -> None:
    raw = RawCoAP(coap_port(guarded))
    try:
        opened = raw.ask(request(Code.POST, "/mqtt/connection", query=("c=dev1", "u=sensor", "p=s3cret"),
                                 token=b"\x30"))
        assert opened.code == Code.CREATED
        token = opened.payload.decode()
        answer = None
        for attempt in range(10):
            answer = raw.ask(request(Code.POST, "/ps/t", query=("u=sensor", "p=wrong"), payload=b"x",
                                     token=bytes([attempt + 1])))
            if answer.code == Code.TOO_MANY_REQUESTS:
                break
        assert answer is not None and answer.code == Code.TOO_MANY_REQUESTS
        # the open connection names itself by token: that is no login, so it is not held
        by_token = raw.ask(request(Code.POST, "/ps/t", query=("c=dev1", f"t={token}"), payload=b"ok",
                                   token=b"\x31"))
        assert by_token.code == Code.CHANGED
    finally:
        raw.close()


@pytest.mark.parametrize("running", [make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                                 mqtt={"max_connection_rate": SLOW_RATE})], indirect=True)
def test_a_flood_of_new_identities_from_one_address_is_refused_with_4_29(running: RunningGateway,
                                                                         raw: RawCoAP) -> None:
    first = raw.ask(request(Code.POST, "/ps/flood", query=("c=dev0",), payload=b"0", token=b"\x40"))
    assert first.code == Code.CHANGED
    refused = []
    for n in range(1, 6):
        answer = raw.ask(request(Code.POST, "/ps/flood", query=(f"c=dev{n}",), payload=b"n", token=bytes([0x40 + n])))
        refused.append((answer.code, answer.opt.max_age))
    assert refused == [(Code.TOO_MANY_REQUESTS, 10)] * 5
    # a known identity is not new: it carries on
    again = raw.ask(request(Code.POST, "/ps/flood", query=("c=dev0",), payload=b"0", token=b"\x4f"))
    assert again.code == Code.CHANGED
    assert coap_metrics(running)["refused_rate"] == 5
    assert 'connections_refused_total{protocol="coap",listener="coap",reason="max_connection_rate"} 5' \
        in scraped(running)
    assert running.call(lambda: running.broker.router.published) == 2


@pytest.mark.parametrize("running", [make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
                                                 mqtt={"max_connection_rate": SLOW_RATE},
                                                 lwm2m={"enabled": True})], indirect=True)
def test_lwm2m_registrations_from_one_address_are_rate_limited_with_4_29(running: RunningGateway,
                                                                        raw: RawCoAP) -> None:
    def register(endpoint: str, token: bytes) -> Any:
        return raw.ask(request(Code.POST, "/rd", query=(f"ep={endpoint}", "lt=60", "lwm2m=1.1", "b=U"),
                               payload=b"</3/0>", token=token))

    assert register("dev-a", b"\x51").code == Code.CREATED
    answer = register("dev-b", b"\x52")
    assert (answer.code, answer.opt.max_age) == (Code.TOO_MANY_REQUESTS, 10)
    lwm2m = running.gateway.lwm2m
    assert lwm2m is not None
    metrics = running.call(lwm2m.metrics)
    assert (metrics["registrations"], metrics["refused_rate"]) == (1, 1)


@pytest.mark.parametrize("running", [make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0",
                                                       "max_observers": 1},
                                                 mqtt={"max_connections": 1})], indirect=True)
def test_max_observers_and_max_connections_are_answered_5_03_with_max_age_and_counted(
        running: RunningGateway, raw: RawCoAP) -> None:
    first = raw.ask(request(Code.GET, "/ps/a", observe=0, token=b"\x61"))
    assert first.code == Code.CONTENT and first.opt.observe is not None
    second = raw.ask(request(Code.GET, "/ps/b", observe=0, token=b"\x62"))
    assert (second.code, second.opt.max_age, second.opt.observe) == (Code.SERVICE_UNAVAILABLE, 30, None)

    opened = raw.ask(request(Code.POST, "/mqtt/connection", query=("c=one",), token=b"\x63"))
    assert opened.code == Code.CREATED
    refused = raw.ask(request(Code.POST, "/mqtt/connection", query=("c=two",), token=b"\x64"))
    assert (refused.code, refused.opt.max_age) == (Code.SERVICE_UNAVAILABLE, 30)
    reopened = raw.ask(request(Code.POST, "/mqtt/connection", query=("c=one",), token=b"\x65"))
    assert reopened.code == Code.CREATED  # the same clientid replaces its own connection

    metrics = coap_metrics(running)
    assert (metrics["observers"], metrics["refused_max_observers"]) == (1, 1)
    assert (metrics["connections"], metrics["refused_max_connections"]) == (1, 1)
