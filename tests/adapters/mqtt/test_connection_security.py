"""Bytes-only tests of MQTT authorization, quotas and the login flow's waits (ACL, backoff, off-loop checks).

A real core `Broker` with an `Authorizer`, a fake clock, no sockets: the
deadline a held login exposes is read from `next_deadline()`, and time moves
only when the test calls `handle_timeout`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import (
    ConnAck,
    Connect,
    PubAck,
    PubComp,
    Publish,
    PubRec,
    PubRel,
    SubAck,
    Subscribe,
    SubscriptionRequest,
    Will,
)
from adapters.mqtt.settings import MQTTSettings
from adapters.mqtt.states import State
from core.acl import Authorizer, parse_acl
from core.auth import PasswordAuthenticator
from core.broker import Broker
from core.login_backoff import LoginBackoff
from core.passwords import PasswordFile
from core.stores.memory import MemoryStore
from tests.adapters.mqtt.test_connection import FakeClock, Peer

ACL = """\
user alice
topic readwrite sensors/#
topic read #
topic deny secret/#

user bob
topic readwrite secret/#

pattern readwrite devices/%c/#
"""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def broker(clock: FakeClock) -> Broker:
    broker = Broker(MemoryStore(), clock=clock, authorizer=Authorizer(rules=parse_acl(ACL)))
    broker.start()
    return broker


def connected(broker: Broker, clock: FakeClock, level: int, username: str, client_id: str, **settings: Any) -> Peer:
    peer = Peer(broker, clock, level, MQTTSettings(**settings))
    assert peer.connect(client_id, username=username, password=b"x").reason_code == ReasonCode.SUCCESS
    return peer


def publish(peer: Peer, topic: str, qos: int, packet_id: int | None = 1) -> list[Any]:
    peer.send(Publish(topic, b"payload", qos=qos, packet_id=packet_id if qos else None))
    return peer.received()


def subscribe(peer: Peer, *filters: str, packet_id: int = 1) -> tuple[int, ...]:
    peer.send(Subscribe(packet_id, tuple(SubscriptionRequest(f, 1) for f in filters)))
    (suback,) = peer.received()
    assert isinstance(suback, SubAck)
    return suback.reason_codes


# -- publish -----------------------------------------------------------------------------------


def test_a_v5_qos1_publish_the_acl_denies_gets_puback_0x87_and_reaches_nobody(broker: Broker, clock: FakeClock) -> None:
    bob = connected(broker, clock, 5, "bob", "b1")
    assert subscribe(bob, "secret/#") == (1,)
    alice = connected(broker, clock, 5, "alice", "a1")
    assert publish(alice, "secret/plan", 1) == [PubAck(1, ReasonCode.NOT_AUTHORIZED)]
    assert bob.received() == []
    assert alice.conn.publishes_denied == 1
    assert broker.router.published == 0


def test_a_v5_qos2_publish_the_acl_denies_gets_pubrec_0x87_which_ends_the_flow(broker: Broker, clock: FakeClock) -> None:
    alice = connected(broker, clock, 5, "alice", "a1")
    assert publish(alice, "secret/plan", 2) == [PubRec(1, ReasonCode.NOT_AUTHORIZED)]
    assert 1 not in alice.conn.session.incoming_qos2


def test_a_qos0_publish_the_acl_denies_is_dropped_silently(broker: Broker, clock: FakeClock) -> None:
    alice = connected(broker, clock, 5, "alice", "a1")
    assert publish(alice, "secret/plan", 0) == []
    assert alice.conn.publishes_denied == 1 and not alice.conn.closing


def test_a_v311_publish_the_acl_denies_is_acknowledged_plainly_and_never_routed(broker: Broker, clock: FakeClock) -> None:
    bob = connected(broker, clock, 4, "bob", "b1")
    assert subscribe(bob, "secret/#") == (1,)
    alice = connected(broker, clock, 4, "alice", "a1")
    assert publish(alice, "secret/plan", 1) == [PubAck(1)]
    assert publish(alice, "secret/plan", 2, packet_id=2) == [PubRec(2)]
    alice.send(PubRel(2))
    assert alice.received() == [PubComp(2)]
    assert bob.received() == []


def test_an_allowed_publish_is_delivered_as_before(broker: Broker, clock: FakeClock) -> None:
    bob = connected(broker, clock, 5, "bob", "b1")
    assert subscribe(bob, "secret/#") == (1,)
    delivered, ack = publish(bob, "secret/plan", 1)
    assert isinstance(delivered, Publish) and delivered.topic == "secret/plan"
    assert ack == PubAck(1)


def test_a_client_id_pattern_lets_a_device_publish_under_its_own_id_only(broker: Broker, clock: FakeClock) -> None:
    dev = connected(broker, clock, 5, "mallory", "dev7")
    assert publish(dev, "devices/dev7/up", 1) == [PubAck(1, ReasonCode.NO_MATCHING_SUBSCRIBERS)]
    assert publish(dev, "devices/dev8/up", 1, packet_id=2) == [PubAck(2, ReasonCode.NOT_AUTHORIZED)]


# -- subscribe and delivery ------------------------------------------------------------------


def test_a_subscription_the_acl_denies_gets_0x87_in_v5_and_0x80_in_v311(broker: Broker, clock: FakeClock) -> None:
    v5 = connected(broker, clock, 5, "alice", "a5")
    assert subscribe(v5, "secret/#", "sensors/+") == (ReasonCode.NOT_AUTHORIZED, 1)
    v3 = connected(broker, clock, 4, "alice", "a3")
    assert subscribe(v3, "secret/x", "sensors/+") == (0x80, 1)
    assert v5.conn.subscriptions_denied == 1 and "secret/#" not in v5.conn.session.subscriptions


def test_a_hash_subscriber_without_read_on_secret_never_receives_secret_messages(broker: Broker, clock: FakeClock) -> None:
    alice = connected(broker, clock, 5, "alice", "a1")
    assert subscribe(alice, "#") == (1,)
    bob = connected(broker, clock, 5, "bob", "b1")
    publish(bob, "secret/x", 1)
    bob.send(Publish("devices/b1/t", b"ok", qos=1, packet_id=2))
    bob.received()
    topics = [p.topic for p in alice.received() if isinstance(p, Publish)]
    assert topics == ["devices/b1/t"]
    assert alice.conn.session.counters.acl_denied == 1


def test_retained_messages_a_subscriber_may_not_read_are_not_sent_on_subscribe(broker: Broker, clock: FakeClock) -> None:
    bob = connected(broker, clock, 5, "bob", "b1")
    bob.send(Publish("secret/x", b"kept", qos=1, packet_id=1, retain=True))
    bob.received()
    alice = connected(broker, clock, 5, "alice", "a1")
    assert subscribe(alice, "#") == (1,)
    assert alice.received() == []


def test_the_subscription_quota_refuses_new_filters_with_0x97_but_allows_resubscribing(clock: FakeClock) -> None:
    broker = Broker(MemoryStore(), clock=clock)
    peer = connected(broker, clock, 5, "u", "c1", max_subscriptions=2)
    assert subscribe(peer, "a", "b", "c") == (1, 1, ReasonCode.QUOTA_EXCEEDED)
    assert subscribe(peer, "a", packet_id=2) == (1,)
    v3 = connected(broker, clock, 4, "u", "c3", max_subscriptions=1)
    assert subscribe(v3, "a", "b") == (1, 0x80)
    assert peer.conn.subscriptions_over_quota == 1 and v3.conn.subscriptions_over_quota == 1


def test_a_will_the_acl_denies_is_not_published(broker: Broker, clock: FakeClock) -> None:
    bob = connected(broker, clock, 5, "bob", "b1")
    assert subscribe(bob, "secret/#") == (1,)
    alice = Peer(broker, clock, 5)
    alice.connect("a1", username="alice", password=b"x", will=Will("secret/gone", b"bye", qos=1))
    alice.conn.connection_lost()
    assert bob.received() == []
    assert broker.mqtt_sessions.wills_denied == 1


# -- the login: off-loop verification and backoff -------------------------------------------


@pytest.fixture
def passwords(tmp_path: Path) -> PasswordAuthenticator:
    users = PasswordFile()
    users.set("alice", "wonderland", iterations=1000)
    users.save(tmp_path / "passwd")
    return PasswordAuthenticator(tmp_path / "passwd", allow_anonymous=False)


def test_a_password_check_is_handed_to_the_owner_and_pipelined_packets_wait_for_it(
    broker: Broker, clock: FakeClock, passwords: PasswordAuthenticator
) -> None:
    peer = Peer(broker, clock, 5, MQTTSettings(authenticator=passwords))
    peer.send_raw(
        _bytes(peer, Connect("a1", protocol_level=5, username="alice", password=b"wonderland"))
        + _bytes(peer, Subscribe(1, (SubscriptionRequest("sensors/#", 1),)))
    )
    assert peer.received() == [] and peer.conn.state is State.VERIFYING
    credentials = peer.conn.login.take_verification()
    assert credentials is not None and credentials.username == "alice"
    peer.conn.login.verified(passwords.authenticate(credentials))  # what the server runs in a thread
    peer.conn.receive_data(b"")  # the owner resumes reading
    connack, suback = peer.received()
    assert isinstance(connack, ConnAck) and connack.reason_code == ReasonCode.SUCCESS
    assert suback == SubAck(1, (1,))


def test_a_login_verified_before_is_accepted_without_handing_anything_to_the_owner(
    broker: Broker, clock: FakeClock, passwords: PasswordAuthenticator
) -> None:
    passwords.authenticate(_credentials("alice", b"wonderland"))
    peer = Peer(broker, clock, 5, MQTTSettings(authenticator=passwords))
    assert peer.connect("a1", username="alice", password=b"wonderland").reason_code == ReasonCode.SUCCESS


def test_each_refusal_past_the_free_failures_comes_later_by_the_deadline_the_connection_exposes(
    broker: Broker, clock: FakeClock
) -> None:
    settings = MQTTSettings(authenticator=_RefuseAll(), login_backoff=LoginBackoff(free_failures=2, base_delay=1.0))
    refused_after: list[float] = []
    for attempt in range(6):
        peer = Peer(broker, clock, 5, settings)
        started = clock.now
        peer.send(Connect(f"c{attempt}", protocol_level=5, username="alice", password=b"guess"))
        while not peer.conn.closing:
            deadline = peer.conn.next_deadline()
            assert deadline is not None and deadline > clock.now and peer.received() == []
            clock.now = deadline  # jump straight to the deadline the state machine exposes
            peer.conn.handle_timeout()
        (connack,) = peer.received()
        assert connack.reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD
        refused_after.append(clock.now - started)
    assert refused_after == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0]


def test_a_right_password_from_a_held_address_waits_for_the_hold_then_gets_in(
    broker: Broker, clock: FakeClock, passwords: PasswordAuthenticator
) -> None:
    backoff = LoginBackoff(free_failures=0, base_delay=5.0)
    backoff.failed("test", clock.now)  # the Peer's address is "test"
    peer = Peer(broker, clock, 5, MQTTSettings(authenticator=passwords, login_backoff=backoff))
    passwords.authenticate(_credentials("alice", b"wonderland"))  # cheap from now on: only the hold matters
    peer.send(Connect("a1", protocol_level=5, username="alice", password=b"wonderland"))
    assert peer.received() == [] and peer.conn.next_deadline() == clock.now + 5.0
    clock.advance(5.0)
    peer.conn.handle_timeout()
    (connack,) = peer.received()
    assert connack.reason_code == ReasonCode.SUCCESS


def test_a_held_refusal_ignores_what_the_client_sends_meanwhile(broker: Broker, clock: FakeClock) -> None:
    settings = MQTTSettings(authenticator=_RefuseAll(), login_backoff=LoginBackoff(free_failures=0))
    peer = Peer(broker, clock, 4, settings)
    peer.send(Connect("c1", protocol_level=4, username="alice", password=b"guess"))
    peer.send(Subscribe(1, (SubscriptionRequest("#", 0),)))
    assert peer.received() == [] and not peer.conn.closing
    clock.advance(1.0)
    peer.conn.handle_timeout()
    assert [p.reason_code for p in peer.received()] == [ReasonCode.BAD_USER_NAME_OR_PASSWORD]
    assert peer.conn.closing


# -- certificate identity ------------------------------------------------------------------


def test_the_certificate_cn_is_the_username_and_the_connect_credentials_are_ignored(
    broker: Broker, clock: FakeClock, passwords: PasswordAuthenticator
) -> None:
    peer = Peer(broker, clock, 5, MQTTSettings(authenticator=passwords))
    peer.conn.login.use_transport_identity = True
    peer.conn.login.transport_identity = "bob"
    assert peer.connect("b1", username="alice", password=b"wrong").reason_code == ReasonCode.SUCCESS
    assert peer.conn.username == "bob"
    assert subscribe(peer, "secret/#") == (1,)  # bob's ACL, not alice's


def test_a_listener_using_certificate_identity_refuses_a_client_without_one(
    broker: Broker, clock: FakeClock, passwords: PasswordAuthenticator
) -> None:
    peer = Peer(broker, clock, 4, MQTTSettings(authenticator=passwords))
    peer.conn.login.use_transport_identity = True
    assert peer.connect("b1", username="alice", password=b"wonderland").reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD


# -- helpers ---------------------------------------------------------------------------------------


class _RefuseAll:
    def authenticate(self, credentials: Any) -> bool:
        return False


def _credentials(username: str, password: bytes) -> Any:
    from core.auth import Credentials

    return Credentials("mqtt", "a1", username, password, "test")


def _bytes(peer: Peer, packet: Any) -> bytes:
    from adapters.mqtt.codec import encode

    return encode(packet, peer.level)
