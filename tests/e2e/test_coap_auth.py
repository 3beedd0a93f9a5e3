"""CoAP credentials against a gateway with a password file: query parameters, 4.01, connection mode.

Users are made with the password file API at a low iteration count. The raw
client (tests.e2e.coap_clients) sends each request; waits are socket reads
and events with timeouts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest
from aiocoap.numbers.codes import Code

from core.message import Message as CoreMessage
from core.passwords import PasswordFile
from core.principal import SYSTEM
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.coap_clients import RawCoAP, TIMEOUT, coap_port, raw, request

__all__ = ["raw"]  # fixtures from tests.e2e.coap_clients

FAST = 1000


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    users = PasswordFile()
    users.set("sensor", "s3cret", iterations=FAST)
    path = tmp_path / "passwd"
    users.save(path)
    running = RunningGateway(make_config(
        coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
        auth={"password_file": str(path), "allow_anonymous": False},
    ))
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize(
    "query",
    [(), ("u=sensor",), ("u=sensor", "p=wrong"), ("u=nobody", "p=s3cret"), ("c=dev", "t=forged")],
    ids=["anonymous", "no-password", "wrong-password", "unknown-user", "forged-token"],
)
def test_a_publish_without_valid_credentials_is_refused_with_4_01(
    gateway: RunningGateway, raw: RawCoAP, query: tuple[str, ...]
) -> None:
    answer = raw.ask(request(Code.POST, "/ps/secure/t", query=query, payload=b"x"))
    assert answer.code == Code.UNAUTHORIZED
    assert gateway.call(lambda: gateway.broker.router.published) == 0


def test_an_observe_without_valid_credentials_is_refused_with_4_01(gateway: RunningGateway, raw: RawCoAP) -> None:
    answer = raw.ask(request(Code.GET, "/ps/secure/#", query=("u=sensor", "p=nope"), observe=0))
    assert answer.code == Code.UNAUTHORIZED and answer.opt.observe is None
    assert gateway.call(lambda: gateway.broker.router.subscription_count()) == 0


def test_a_publish_with_the_right_password_reaches_mqtt_with_its_username_as_origin(
    gateway: RunningGateway, raw: RawCoAP
) -> None:
    got = []
    gateway.call(lambda: gateway.broker.router.retained_listeners.append(lambda m, cleared: got.append(m.origin)))
    answer = raw.ask(request(Code.POST, "/ps/secure/t", query=("c=dev7", "u=sensor", "p=s3cret", "r=1"),
                             payload=b"ok"))
    assert answer.code == Code.CHANGED
    assert [(o.protocol, o.client_id, o.username) for o in got] == [("coap", "dev7", "sensor")]


def test_connection_mode_opens_a_token_that_replaces_the_password_until_it_is_closed(
    gateway: RunningGateway, raw: RawCoAP
) -> None:
    refused = raw.ask(request(Code.POST, "/mqtt/connection", query=("clientid=dev9", "username=sensor",
                                                                     "password=bad")))
    assert refused.code == Code.UNAUTHORIZED
    opened = raw.ask(request(Code.POST, "/mqtt/connection", query=("clientid=dev9", "username=sensor",
                                                                    "password=s3cret")))
    assert opened.code == Code.CREATED
    token = opened.payload.decode()
    session = ("clientid=dev9", f"token={token}")
    assert raw.ask(request(Code.POST, "/ps/conn/t", query=session, payload=b"1")).code == Code.CHANGED
    assert raw.ask(request(Code.PUT, "/mqtt/connection", query=session)).code == Code.CHANGED  # heartbeat
    assert raw.ask(request(Code.PUT, "/mqtt/connection", query=("clientid=dev9", "token=x"))).code == Code.UNAUTHORIZED
    assert raw.ask(request(Code.DELETE, "/mqtt/connection", query=session)).code == Code.DELETED
    assert raw.ask(request(Code.POST, "/ps/conn/t", query=session, payload=b"2")).code == Code.UNAUTHORIZED
    assert raw.ask(request(Code.POST, "/mqtt/connection")).code == Code.BAD_REQUEST  # no clientid


def test_closing_a_connection_ends_the_observations_it_owned_with_a_final_4_01(
    gateway: RunningGateway, raw: RawCoAP
) -> None:
    opened = raw.ask(request(Code.POST, "/mqtt/connection", query=("c=dev3", "u=sensor", "p=s3cret")))
    session = ("c=dev3", f"t={opened.payload.decode()}")
    registered = raw.ask(request(Code.GET, "/ps/owned/t", query=session, observe=0, token=b"\x33"))
    assert registered.code == Code.CONTENT and registered.opt.observe is not None
    other = RawCoAP(coap_port(gateway))
    try:
        assert other.ask(request(Code.DELETE, "/mqtt/connection", query=session)).code == Code.DELETED
    finally:
        other.close()
    final = raw.receive()
    raw.ack(final)
    assert (final.token, final.code, final.opt.observe) == (b"\x33", Code.UNAUTHORIZED, None)
    assert gateway.call(lambda: gateway.broker.router.subscription_count()) == 0


def test_a_connection_without_heartbeats_expires_and_its_token_stops_working() -> None:
    running = RunningGateway(make_config(coap={"enabled": True, "listen": f"{LOOPBACK}:0", "heartbeat": 1}))
    raw = RawCoAP(coap_port(running))
    try:
        expired = threading.Event()
        opened = raw.ask(request(Code.POST, "/mqtt/connection", query=("c=dev4",)))
        session = ("c=dev4", f"t={opened.payload.decode()}")
        registered = raw.ask(request(Code.GET, "/ps/hb/t", query=session, observe=0, token=b"\x44"))
        assert registered.code == Code.CONTENT
        running.call(lambda: running.gateway.coap.observers.on_remove.append(lambda o: expired.set()))
        final = raw.receive(timeout=TIMEOUT)  # the connection expires after 1 s without heartbeat
        raw.ack(final)
        assert final.code == Code.UNAUTHORIZED
        assert expired.wait(TIMEOUT)
        assert raw.ask(request(Code.POST, "/ps/hb/t", query=session, payload=b"x")).code == Code.UNAUTHORIZED
    finally:
        raw.close()
        running.stop()


def test_the_topic_acl_applies_to_coap_publish_read_and_observe(tmp_path: Path) -> None:
    users = PasswordFile()
    users.set("sensor", "s3cret", iterations=FAST)
    users.save(tmp_path / "passwd")
    (tmp_path / "acl").write_text("user sensor\ntopic write sensors/#\ntopic read alerts/#\n"
                                  "topic deny alerts/secret/#\n")
    running = RunningGateway(make_config(
        coap={"enabled": True, "listen": f"{LOOPBACK}:0"},
        auth={"password_file": str(tmp_path / "passwd"), "acl_file": str(tmp_path / "acl")},
    ))
    raw = RawCoAP(coap_port(running))
    login = ("u=sensor", "p=s3cret")
    try:
        assert raw.ask(request(Code.POST, "/ps/sensors/t1", query=login, payload=b"1")).code == Code.CHANGED
        assert raw.ask(request(Code.POST, "/ps/alerts/x", query=login, payload=b"1")).code == Code.FORBIDDEN
        assert raw.ask(request(Code.GET, "/ps/sensors/t1", query=login)).code == Code.FORBIDDEN
        assert raw.ask(request(Code.GET, "/ps/sensors/%23", query=login, observe=0)).code == Code.FORBIDDEN
        registered = raw.ask(request(Code.GET, "/ps/alerts/%23", query=login, observe=0, token=b"\x55"))
        assert registered.code == Code.CONTENT and registered.opt.observe is not None
        for topic, payload in (("alerts/secret/code", b"1234"), ("alerts/fire", b"hall")):
            running.call(lambda t=topic, p=payload: running.broker.publish(SYSTEM, CoreMessage(t, p, qos=1)))
        notification = raw.receive()
        raw.ack(notification)
        assert (notification.opt.location_path, notification.payload) == (("ps", "alerts", "fire"), b"hall")
    finally:
        raw.close()
        running.stop()
