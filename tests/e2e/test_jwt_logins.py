"""OAuth 2.0 access tokens log in on every protocol ([auth.jwt], issue 27), and bad ones never do.

The identity provider is a real HTTP server on a loopback port (tests/e2e/jwt_provider.py): the
gateway discovers its keys through /.well-known/openid-configuration, tokens come from its
client-credentials token endpoint. Clients are the suite's real ones: paho (3.1.1, 5, over TCP
and WebSocket), pika, aiocoap, urllib for the admin API.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import jwt
import paho.mqtt.client as mqtt
import pika
import pytest
from aiocoap.numbers.codes import Code
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from pika.exceptions import ProbableAuthenticationError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.admin_support import admin_gateway, coap_requests, http
from tests.e2e.jwt_provider import AUDIENCE, Provider, SigningKey, fetch_token, unsigned_token

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    idp = Provider()
    try:
        yield idp
    finally:
        idp.close()


@pytest.fixture(scope="module")
def gateway(provider: Provider) -> Iterator[RunningGateway]:
    running = admin_gateway(
        ws={"enabled": True, "listen": f"{LOOPBACK}:0"},
        auth={"jwt": {"issuer": provider.issuer, "audience": AUDIENCE}, "login_backoff_after": 0},  # many refusals
    )
    try:
        yield running
    finally:
        running.stop()


# -- one login per protocol: True when the gateway let it in ---------------------------------------

def mqtt_login(port: int, token: str, *, level: int = 5, username: str | None = None,
               client_id: str = "jwt-dev", transport: str = "tcp", headers: dict[str, str] | None = None,
               keep: bool = False) -> tuple[int, mqtt.Client]:
    """CONNACK's reason code (0: accepted) of a paho client sending `token` as its password."""
    protocol = mqtt.MQTTv5 if level == 5 else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, transport=transport)
    if transport == "websockets":
        client.ws_set_options(path="/mqtt", headers=headers)
    else:
        client.username_pw_set(username or "", token)  # paho sends a password only with a username
    answered, codes = threading.Event(), []

    def on_connect(c, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        codes.append(reason_code.value)
        answered.set()

    client.on_connect = on_connect
    client.connect(LOOPBACK, port)
    client.loop_start()
    assert answered.wait(TIMEOUT), "no CONNACK"
    if not keep:
        client.disconnect()
        client.loop_stop()
    return codes[0], client


def session_user(gateway: RunningGateway, port: int, token: str, client_id: str, **options: Any) -> str | None:
    """The username of the session a login with `token` opened (the connection closes after)."""
    code, client = mqtt_login(port, token, client_id=client_id, keep=True, **options)
    try:
        assert code == 0
        return gateway.call(lambda: gateway.broker.mqtt_sessions.get(client_id).username)  # type: ignore[no-any-return]
    finally:
        client.disconnect()
        client.loop_stop()


def amqp_login(gateway: RunningGateway, token: str, username: str = "ignored") -> bool:
    parameters = pika.ConnectionParameters(LOOPBACK, gateway.gateway.ports["amqp"],
                                           credentials=pika.PlainCredentials(username, token))
    try:
        with pika.BlockingConnection(parameters) as connection:
            return bool(connection.channel().queue_declare("", exclusive=True).method.queue)
    except ProbableAuthenticationError:
        return False


def coap_publish(gateway: RunningGateway, token: str) -> Code:
    (answer,) = coap_requests(gateway.gateway.ports["coap"], (Code.POST, f"/ps/jwt/coap?c=coap-dev&p={token}", b"21"))
    return answer.code


def ws_login(gateway: RunningGateway, token: str, client_id: str) -> int:
    """401 when the upgrade refuses the bearer token at once, else the CONNACK's reason code: a token
    whose key must first be fetched is checked with the CONNECT (off the event loop)."""
    try:
        with ws_connect(f"ws://{LOOPBACK}:{gateway.gateway.ports['ws']}/mqtt", subprotocols=["mqtt"],
                        additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=TIMEOUT):
            pass
    except InvalidStatus as refused:
        return refused.response.status_code
    return mqtt_login(gateway.gateway.ports["ws"], token, transport="websockets", client_id=client_id,
                      headers={"Authorization": f"Bearer {token}"})[0]


# -- tokens that log in ------------------------------------------------------------------------------

def test_a_token_from_the_token_endpoint_is_the_mqtt_5_password_and_names_the_user(
        gateway: RunningGateway, provider: Provider) -> None:
    token = fetch_token(provider, sub="backend-7")
    assert session_user(gateway, gateway.mqtt_port, token, "jwt-v5") == "backend-7"


def test_mqtt_3_1_1_sends_the_username_claim_and_the_token(gateway: RunningGateway, provider: Provider) -> None:
    token = fetch_token(provider, sub="sensor-3")
    assert session_user(gateway, gateway.mqtt_port, token, "jwt-v311", level=4, username="sensor-3") == "sensor-3"


def test_a_username_other_than_the_claim_is_refused(gateway: RunningGateway, provider: Provider) -> None:
    token = fetch_token(provider, sub="sensor-3")
    assert mqtt_login(gateway.mqtt_port, token, username="someone-else", client_id="jwt-other")[0] == 0x86
    assert mqtt_login(gateway.mqtt_port, token, level=4, username="someone-else", client_id="jwt-o4")[0] == 0x86  # paho reports 3.1.1 rc 4 so


@pytest.mark.parametrize("key", [0, 1, 2], ids=["RS256", "ES256", "EdDSA"])
def test_every_default_algorithm_logs_in(gateway: RunningGateway, provider: Provider, key: int) -> None:
    assert mqtt_login(gateway.mqtt_port, provider.issue(key=provider.keys[key]))[0] == 0


def test_pika_logs_in_with_the_token_as_plain_password_whatever_the_username(
        gateway: RunningGateway, provider: Provider) -> None:
    assert amqp_login(gateway, fetch_token(provider), username="")
    assert amqp_login(gateway, fetch_token(provider), username="anything")


def test_aiocoap_publishes_with_the_token_as_p(gateway: RunningGateway, provider: Provider) -> None:
    assert coap_publish(gateway, provider.issue(key=provider.keys[2])) == Code.CHANGED


def test_a_coap_connection_opened_with_a_token_ends_when_it_expires(
        gateway: RunningGateway, provider: Provider) -> None:
    port = gateway.gateway.ports["coap"]
    token = provider.issue(key=provider.keys[2], lifetime=2)
    (opened,) = coap_requests(port, (Code.POST, f"/mqtt/connection?clientid=coap-exp&p={token}", b""))
    assert opened.code == Code.CREATED
    handle = opened.payload.decode()
    heartbeat = (Code.PUT, f"/mqtt/connection?clientid=coap-exp&token={handle}", b"")
    assert coap_requests(port, heartbeat)[0].code == Code.CHANGED
    deadline = time.monotonic() + 2 + TIMEOUT
    while coap_requests(port, heartbeat)[0].code == Code.CHANGED:  # alive until the token's exp, then 4.01
        assert time.monotonic() < deadline, "the connection outlived its access token"
    assert coap_requests(port, heartbeat)[0].code == Code.UNAUTHORIZED
    assert time.time() >= jwt.decode(token, options={"verify_signature": False})["exp"] - 0.5


def test_the_websocket_upgrade_takes_the_token_as_bearer(gateway: RunningGateway, provider: Provider) -> None:
    port = gateway.gateway.ports["ws"]
    token = fetch_token(provider, sub="browser-1")
    assert session_user(gateway, port, token, "jwt-ws", transport="websockets",
                        headers={"Authorization": f"Bearer {token}"}) == "browser-1"


def test_the_admin_api_gives_the_role_the_token_names(gateway: RunningGateway, provider: Provider) -> None:
    admin = provider.issue(sub="ops", roles=["admin"])
    monitor = provider.issue(sub="grafana", roles=["monitor"])
    nobody = provider.issue(sub="device-9")
    assert http(gateway, "GET", "/api/v1/whoami", token=admin).json() == {"user": "ops", "role": "admin"}
    assert http(gateway, "GET", "/api/v1/whoami", token=monitor).json() == {"user": "grafana", "role": "monitor"}
    assert http(gateway, "POST", "/api/v1/publish", {"topic": "t", "payload": "x"}, token=monitor).status == 403
    assert http(gateway, "GET", "/api/v1/whoami", token=nobody).status == 403
    rabbit = provider.issue(sub="rabbit-admin", scope="rabbitmq.tag:administrator")
    assert http(gateway, "GET", "/api/v1/whoami", token=rabbit).json()["role"] == "admin"


# -- tokens that never log in --------------------------------------------------------------------------

BAD_TOKENS: dict[str, Callable[[Provider], str]] = {
    "expired": lambda p: p.issue(lifetime=-60),
    "wrong-audience": lambda p: p.issue(aud="another-api"),
    "wrong-issuer": lambda p: p.issue(iss="http://127.0.0.1:1/evil"),
    "never-published-key": lambda p: p.issue(key=SigningKey("never-1", "RS256")),
    "alg-none": lambda p: unsigned_token(iss=p.issuer),
    "hs256-not-allowed": lambda p: jwt.encode({"iss": p.issuer, "aud": AUDIENCE, "sub": "x",
                                                "exp": int(time.time()) + 60}, "k" * 32, algorithm="HS256"),
    "no-exp": lambda p: jwt.encode({"iss": p.issuer, "aud": AUDIENCE, "sub": "x"}, p.signing.private,
                                   algorithm="RS256", headers={"kid": p.signing.kid}),
    "tampered": lambda p: p.issue()[:-6] + "AAAAAA",
    "garbage": lambda p: "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_a_bad_token_is_refused_on_every_protocol(gateway: RunningGateway, provider: Provider, kind: str) -> None:
    token = BAD_TOKENS[kind](provider)
    assert mqtt_login(gateway.mqtt_port, token, client_id=f"bad-{kind}")[0] == 0x86
    assert mqtt_login(gateway.mqtt_port, token, level=4, username="device-1", client_id=f"bad4-{kind}")[0] == 0x86  # rc 4
    assert not amqp_login(gateway, token)
    assert coap_publish(gateway, token) == Code.UNAUTHORIZED
    assert ws_login(gateway, token, f"ws-{kind}") in (401, 0x86)
    assert http(gateway, "GET", "/api/v1/whoami", token=token).status == 401


def test_the_token_never_reaches_the_log(gateway: RunningGateway, provider: Provider,
                                         caplog: pytest.LogCaptureFixture) -> None:
    good, bad = provider.issue(), provider.issue(aud="another-api")
    with caplog.at_level("DEBUG"):
        assert mqtt_login(gateway.mqtt_port, good, client_id="quiet-1")[0] == 0
        assert mqtt_login(gateway.mqtt_port, bad, client_id="quiet-2")[0] == 0x86
        assert coap_publish(gateway, bad) == Code.UNAUTHORIZED
    assert "wrong audience" in caplog.text
    for token in (good, bad):
        assert token not in caplog.text and token.split(".")[2] not in caplog.text


# -- authorization from the token ---------------------------------------------------------------------

def test_emqx_acl_rules_in_the_token_decide_its_topics(gateway: RunningGateway, provider: Provider) -> None:
    acl = [{"permission": "allow", "action": "publish", "topic": "up/${clientid}"},
           {"permission": "deny", "action": "all", "topic": "#"}]
    code, client = mqtt_login(gateway.mqtt_port, provider.issue(sub="acl-dev", acl=acl), client_id="acl-1",
                              keep=True)
    acks: dict[int, int] = {}
    acked = threading.Event()

    def on_publish(c, userdata, mid, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        acks[mid] = reason_code.value
        if len(acks) == 2:
            acked.set()

    client.on_publish = on_publish
    try:
        assert code == 0
        allowed = client.publish("up/acl-1", b"ok", qos=1).mid
        denied = client.publish("up/someone-else", b"no", qos=1).mid
        assert acked.wait(TIMEOUT)
        assert acks[allowed] in (0, 0x10) and acks[denied] == 0x87  # 0x10: accepted, no subscriber yet
    finally:
        client.disconnect()
        client.loop_stop()


def test_rabbitmq_scopes_in_the_token_decide_its_queues(gateway: RunningGateway, provider: Provider) -> None:
    token = provider.issue(sub="worker", scope="rabbitmq.configure:*/orders-* rabbitmq.read:*/orders-*")
    parameters = pika.ConnectionParameters(LOOPBACK, gateway.gateway.ports["amqp"],
                                           credentials=pika.PlainCredentials("worker", token))
    with pika.BlockingConnection(parameters) as connection:
        channel = connection.channel()
        assert channel.queue_declare("orders-1", auto_delete=True).method.queue == "orders-1"
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("payroll", auto_delete=True)
        assert refused.value.reply_code == 403


# -- expiry and renewal -----------------------------------------------------------------------------------

def test_an_mqtt_5_connection_ends_with_0xA0_soon_after_exp(gateway: RunningGateway, provider: Provider) -> None:
    token = provider.issue(sub="short", lifetime=2)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    ended, reasons = threading.Event(), []

    def on_disconnect(c, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        reasons.append(reason_code.value)
        ended.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="short-1", protocol=mqtt.MQTTv5)
    client.username_pw_set("", token)
    client.on_disconnect = on_disconnect
    client.connect(LOOPBACK, gateway.mqtt_port, keepalive=60)
    client.loop_start()
    try:
        assert ended.wait(2 + TIMEOUT)
        assert reasons == [0xA0]  # maximum connect time: the token authorized the connection until exp
        assert exp - 0.5 <= time.time() <= exp + 2.5
    finally:
        client.loop_stop()


def test_mqtt_5_reauthentication_with_a_fresh_token_keeps_the_connection(
        gateway: RunningGateway, provider: Provider) -> None:
    from adapters.mqtt.errors import ReasonCode
    from adapters.mqtt.packets import Auth, ConnAck, Disconnect, PingReq, PingResp
    from adapters.mqtt.properties import Properties as Props
    from tests.wire_client import WireClient

    def bearer(token: str) -> bytes:
        return b"n,a=renewing,\x01auth=Bearer " + token.encode() + b"\x01\x01"

    first = provider.issue(sub="renewing", lifetime=2)
    with WireClient(gateway.mqtt_port, timeout=TIMEOUT) as client:
        connack = client.connect("renew-1", keep_alive=60, properties=Props(
            authentication_method="OAUTHBEARER", authentication_data=bearer(first)))
        assert isinstance(connack, ConnAck) and connack.reason_code == ReasonCode.SUCCESS
        assert connack.properties.authentication_method == "OAUTHBEARER"
        client.send(Auth(ReasonCode.RE_AUTHENTICATE, Props(authentication_method="OAUTHBEARER",
                                                          authentication_data=bearer(provider.issue(sub="renewing")))))
        answer = client.recv()
        assert isinstance(answer, Auth) and answer.reason_code == ReasonCode.SUCCESS
        exp = jwt.decode(first, options={"verify_signature": False})["exp"]
        client.sock.settimeout(max(0.1, exp + 1.5 - time.time()))  # past the first token's exp ...
        with pytest.raises(TimeoutError):
            client.recv()  # ... no DISCONNECT came
        client.sock.settimeout(TIMEOUT)
        client.send(PingReq())
        assert isinstance(client.recv(), PingResp)
        # A token for another user is no renewal: the connection ends (0x87).
        client.send(Auth(ReasonCode.RE_AUTHENTICATE, Props(authentication_method="OAUTHBEARER",
                                                          authentication_data=bearer(provider.issue(sub="intruder")))))
        ended = client.recv()
        assert isinstance(ended, Disconnect) and ended.reason_code == ReasonCode.NOT_AUTHORIZED


def test_paho_can_use_oauthbearer_at_connect(gateway: RunningGateway, provider: Provider) -> None:
    token = provider.issue(sub="paho-bearer")
    props = Properties(PacketTypes.CONNECT)
    props.AuthenticationMethod = "OAUTHBEARER"
    props.AuthenticationData = b"n,,\x01auth=Bearer " + token.encode() + b"\x01\x01"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="paho-bearer", protocol=mqtt.MQTTv5)
    answered, codes = threading.Event(), []
    client.on_connect = lambda c, u, f, rc, p: (codes.append(rc.value), answered.set())
    client.connect(LOOPBACK, gateway.mqtt_port, properties=props)
    client.loop_start()
    try:
        assert answered.wait(TIMEOUT) and codes == [0]
        assert gateway.call(lambda: gateway.broker.mqtt_sessions.get("paho-bearer").username) == "paho-bearer"
    finally:
        client.disconnect()
        client.loop_stop()


# -- AMQP: the connection ends at exp unless connection.update-secret renews it (as RabbitMQ) ----------


def amqp_connection(gateway: RunningGateway, token: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        LOOPBACK, gateway.gateway.ports["amqp"], credentials=pika.PlainCredentials("ignored", token)))


def closed_by_broker_within(connection: pika.BlockingConnection, seconds: float) -> Any:
    """The broker's connection.close within `seconds` (pika's ConnectionClosedByBroker), else None."""
    from pika.exceptions import ConnectionClosedByBroker
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.1)
    except ConnectionClosedByBroker as closed:
        return closed
    return None


def test_an_amqp_connection_ends_with_320_soon_after_exp(gateway: RunningGateway, provider: Provider) -> None:
    token = provider.issue(sub="amqp-short", lifetime=2)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    connection = amqp_connection(gateway, token)
    closed = closed_by_broker_within(connection, 2 + TIMEOUT)
    assert closed is not None and closed.reply_code == 320 and "expired" in closed.reply_text
    assert exp - 0.5 <= time.time() <= exp + 2.5


def test_amqp_update_secret_with_a_fresh_token_keeps_the_connection_past_exp(
        gateway: RunningGateway, provider: Provider) -> None:
    token = provider.issue(sub="amqp-renewing", lifetime=2)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    connection = amqp_connection(gateway, token)
    try:
        connection.update_secret(provider.issue(sub="amqp-renewing", lifetime=300), "refresh")
        assert closed_by_broker_within(connection, exp - time.time() + 2) is None  # lived past the first exp
        assert connection.is_open and connection.channel().queue_declare("", exclusive=True).method.queue
    finally:
        if connection.is_open:
            connection.close()


def test_amqp_update_secret_with_another_users_or_a_bad_token_closes_with_403(
        gateway: RunningGateway, provider: Provider) -> None:
    from pika.exceptions import ConnectionClosedByBroker
    for new_secret in (provider.issue(sub="someone-else"), "not-a-token"):
        connection = amqp_connection(gateway, provider.issue(sub="amqp-user"))
        with pytest.raises(ConnectionClosedByBroker) as closed:
            connection.update_secret(new_secret, "refresh")
        assert closed.value.reply_code == 403 and "update-secret" in closed.value.reply_text
