"""The ACL's ``clientid`` rules tie client ids to users (issue 24, core/acl_client_ids.py).

Alice may use ``dashboard`` (her own rule) and, like every logged-in user, ids made of her name
(``pattern clientid %u-*``); anonymous clients only ``anon-*``. Any other id is refused before a
session is opened: MQTT 5 CONNACK 0x87, 3.1.1 return code 5, over TCP and WebSocket, and CoAP's
connection mode with 4.03. Users without a rule that applies to them keep any id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from aiocoap.numbers.codes import Code

from adapters.mqtt.errors import ReasonCode
from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway, make_config
from tests.e2e.clients import PahoClient
from tests.e2e.coap_clients import RawCoAP, coap_port, request
from tests.e2e.test_ws import PahoWSClient
from tests.wire_client import WireClient

ACL = """\
topic read public/#
clientid anon-*

user alice
topic readwrite #
clientid dashboard

user bob
topic readwrite public/#

user carol
topic readwrite public/#

pattern clientid %u-*
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("client-ids")
    users = PasswordFile()
    for name in ("alice", "bob", "carol"):
        users.set(name, f"{name}-pw", iterations=1000)
    users.save(folder / "passwd")
    (folder / "acl").write_text(ACL)
    running = RunningGateway(make_config(
        auth={"password_file": str(folder / "passwd"), "acl_file": str(folder / "acl"), "allow_anonymous": True},
        ws={"enabled": True, "listen": f"{LOOPBACK}:0"},
        coap={"enabled": True, "listen": f"{LOOPBACK}:0"}))
    try:
        yield running
    finally:
        running.stop()


def connack_of(gateway: RunningGateway, client_id: str, user: str | None, level: int = 5) -> ReasonCode:
    fields: dict[str, object] = {"clean_start": True}
    if user is not None:
        fields.update(username=user, password=f"{user}-pw".encode())
    with WireClient(gateway.mqtt_port, level) as client:
        connack = client.connect(client_id, **fields)
        code = connack.reason_code  # type: ignore[attr-defined]
        if code != ReasonCode.SUCCESS:
            assert client.closed_by_server()
        return code


@pytest.mark.parametrize(("client_id", "user"), [
    ("dashboard", "alice"), ("alice-1", "alice"), ("bob-kitchen", "bob"), ("anon-7", None),
])
def test_an_id_a_rule_names_for_the_user_is_accepted(gateway: RunningGateway, client_id: str,
                                                     user: str | None) -> None:
    assert connack_of(gateway, client_id, user) == ReasonCode.SUCCESS


@pytest.mark.parametrize(("client_id", "user"), [
    ("bob-1", "alice"),      # another user's name
    ("dashboard", "bob"),    # alice's own rule, not bob's
    ("bob", "bob"),          # %u-* needs the dash
    ("bob-1", None),         # %u never applies to anonymous clients
    ("sensor-1", None),      # anonymous: only anon-*
])
@pytest.mark.parametrize("level", [5, 4])
def test_an_id_no_rule_names_for_the_user_is_refused_not_authorized(gateway: RunningGateway, client_id: str,
                                                                    user: str | None, level: int) -> None:
    # 3.1.1's return code 5 is decoded as the v5 reason it stands for (V3_CONNACK_REASONS)
    assert connack_of(gateway, client_id, user, level) == ReasonCode.NOT_AUTHORIZED
    sessions = gateway.call(lambda: set(gateway.broker.mqtt_sessions.sessions))
    assert client_id not in sessions  # refused before any session was opened


def test_the_same_rules_hold_over_websocket(gateway: RunningGateway) -> None:
    refused = PahoWSClient(gateway.gateway.ports["ws"], "alice-ws", "5")
    refused.client.username_pw_set("bob", "bob-pw")
    with pytest.raises(AssertionError, match="(?i)not authorized|refused|135"):
        refused.connect()
    refused.close()
    accepted = PahoWSClient(gateway.gateway.ports["ws"], "bob-ws", "5")
    accepted.client.username_pw_set("bob", "bob-pw")
    accepted.connect()
    accepted.close()


def test_a_coap_connection_with_an_id_no_rule_names_is_refused_4_03(gateway: RunningGateway) -> None:
    raw = RawCoAP(coap_port(gateway))
    try:
        refused = raw.ask(request(Code.POST, "/mqtt/connection",
                                  query=("clientid=alice-9", "username=bob", "password=bob-pw")))
        assert refused.code == Code.FORBIDDEN
        opened = raw.ask(request(Code.POST, "/mqtt/connection",
                                 query=("clientid=bob-9", "username=bob", "password=bob-pw")))
        assert opened.code == Code.CREATED
    finally:
        raw.close()


def test_paho_sees_the_refusal_and_the_owner_of_the_id_is_untouched(gateway: RunningGateway) -> None:
    alice = PahoClient(gateway.mqtt_port, "alice-phone", "5")
    alice.client.username_pw_set("alice", "alice-pw")
    alice.connect()
    carol = PahoClient(gateway.mqtt_port, "alice-phone", "5")
    carol.client.username_pw_set("carol", "carol-pw")
    with pytest.raises(AssertionError, match="(?i)not authorized|refused|135"):
        carol.connect()
    carol.close()
    assert alice.client.is_connected()
    alice.close()


def test_without_clientid_rules_any_id_goes(tmp_path: Path) -> None:
    (tmp_path / "acl").write_text("topic readwrite #\n")
    running = RunningGateway(make_config(auth={"acl_file": str(tmp_path / "acl"), "allow_anonymous": True}))
    try:
        assert connack_of(running, "whatever-id", None) == ReasonCode.SUCCESS
    finally:
        running.stop()
