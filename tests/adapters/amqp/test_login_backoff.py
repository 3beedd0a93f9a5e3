"""AMQP logins under the gateway's login backoff: held refusals and held checks, on a hand-moved clock."""

from __future__ import annotations

from pamqp import commands as c

from adapters.amqp.broker import AMQPBroker
from adapters.amqp.errors import ReplyCode
from adapters.amqp.frames import PROTOCOL_HEADER
from adapters.amqp.settings import AMQPSettings
from core.auth import Credentials
from core.broker import Broker
from core.login_backoff import LoginBackoff

from tests.adapters.amqp.wire import Clock, Wire


class OnlyAlice:
    def authenticate(self, credentials: Credentials) -> bool:
        return credentials.username == "alice" and credentials.password == b"secret"


def attempt(broker: AMQPBroker, clock: Clock, password: str) -> Wire:
    """A new connection from the same address sending its start-ok."""
    wire = Wire(broker=broker, clock=clock)
    wire.send_raw(PROTOCOL_HEADER)
    wire.received()
    wire.send(0, c.Connection.StartOk(client_properties={}, mechanism="PLAIN", response=f"\0alice\0{password}"))
    return wire


def setup(free_failures: int = 1) -> tuple[AMQPBroker, Clock, LoginBackoff]:
    backoff = LoginBackoff(free_failures=free_failures, base_delay=2.0, max_delay=30.0)
    broker = AMQPBroker(Broker(), AMQPSettings(authenticator=OnlyAlice(), login_backoff=backoff))
    return broker, Clock(), backoff


def test_a_failure_past_the_free_ones_holds_its_403_until_the_backoff_deadline() -> None:
    broker, clock, backoff = setup()
    first = attempt(broker, clock, "wrong")
    assert [m.reply_code for m in first.methods() if isinstance(m, c.Connection.Close)] == [403]

    second = attempt(broker, clock, "wrong again")
    assert second.methods() == []  # refused, but not yet told
    assert second.conn.next_deadline() == clock.now + 2.0
    clock.now += 1.9
    second.conn.handle_timeout()
    assert second.methods() == []
    clock.now += 0.1
    second.conn.handle_timeout()
    (close,) = second.methods()
    assert isinstance(close, c.Connection.Close) and close.reply_code == ReplyCode.ACCESS_REFUSED
    assert backoff.failures == 2 and backoff.delayed == 1


def test_a_login_from_an_address_in_backoff_is_checked_only_at_its_deadline_then_the_handshake_goes_on() -> None:
    broker, clock, _ = setup()
    attempt(broker, clock, "wrong")
    attempt(broker, clock, "wrong again")  # now this address waits 2 s
    right = attempt(broker, clock, "secret")
    right.send(0, c.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=0),
               c.Connection.Open(virtual_host="/"))  # held with the login
    assert right.methods() == [] and right.conn.username is None
    clock.now = right.conn.next_deadline()  # type: ignore[assignment]
    right.conn.handle_timeout()
    assert right.names() == ["Connection.Tune", "Connection.OpenOk"]
    assert right.conn.username == "alice"


def test_without_backoff_a_wrong_password_is_refused_at_once_every_time() -> None:
    broker, clock = AMQPBroker(Broker(), AMQPSettings(authenticator=OnlyAlice())), Clock()
    for _ in range(5):
        wire = attempt(broker, clock, "wrong")
        assert [m.reply_code for m in wire.methods() if isinstance(m, c.Connection.Close)] == [403]


def test_failures_for_a_user_name_from_other_addresses_and_protocols_hold_its_amqp_login_too() -> None:
    """Backoff counts per user name as well as per address: a password guesser spreading over
    addresses (and over MQTT) gets no fresh tries on AMQP."""
    broker, clock, backoff = setup()
    for address in ("127.0.0.5:1000", "127.0.0.6:1000"):  # e.g. two MQTT attempts as alice
        backoff.failed(address, clock.now, "alice")
    held = attempt(broker, clock, "secret")  # from this test wire's own address: new to the backoff
    assert held.methods() == []  # even the right password waits for alice's deadline
    assert held.conn.next_deadline() is not None and held.conn.next_deadline() > clock.now
