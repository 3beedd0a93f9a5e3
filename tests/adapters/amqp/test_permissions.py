"""Queue and exchange permissions through the wire (adapters/amqp/permissions.py): ownership by
default, `queue` / `exchange` rules of the ACL file, admins, dead-letter targets, stored owners."""

from __future__ import annotations

import logging
from typing import Any, Callable

import pytest
from pamqp import commands as c

from adapters.amqp.broker import AMQPBroker
from adapters.amqp.durable import MemoryLog, QueueRecord
from adapters.amqp.settings import AMQPSettings
from core.acl import Authorizer, parse_acl
from core.broker import Broker

from tests.adapters.amqp.wire import Clock, Wire

ACL = """\
user alice
topic readwrite #

user bob
topic readwrite public/#

user carol
topic readwrite #
queue all %u-.*
queue read alice-shared
exchange all amq\\..*
"""


def amqp_broker(acl: str | None = ACL, *, log: MemoryLog | None = None, wall: Clock | None = None,
                is_admin: Callable[[str | None], bool] | None = None) -> AMQPBroker:
    core = Broker(authorizer=Authorizer(rules=None if acl is None else parse_acl(acl)))
    return AMQPBroker(core, AMQPSettings(is_admin=is_admin), log=log, clock=wall or Clock(1_700_000_000.0))


def login(broker: AMQPBroker, user: str) -> Wire:
    wire = Wire(broker=broker, wall=broker.clock)  # type: ignore[arg-type]
    wire.handshake(user=user)
    wire.open_channel()
    return wire


def ok(wire: Wire, *frames: Any) -> list[str]:
    wire.send(1, *frames)
    names = wire.names()
    assert "Channel.Close" not in names, wire
    return names


def refused(wire: Wire, *frames: Any) -> str:
    """The 403 channel.close the last of `frames` gets; the channel is opened again."""
    wire.send(1, *frames)
    closes = [m for m in wire.methods() if isinstance(m, c.Channel.Close)]
    assert len(closes) == 1 and closes[0].reply_code == 403, closes
    wire.send(1, c.Channel.CloseOk())
    wire.open_channel()
    return closes[0].reply_text


def alice_with_a_message(broker: AMQPBroker, queue: str = "alice-q") -> Wire:
    alice = login(broker, "alice")
    ok(alice, c.Queue.Declare(queue=queue, durable=True))
    alice.publish(1, "", queue, b"for alice only")
    return alice


def ready(broker: AMQPBroker, queue: str) -> list[bytes]:
    return [entry.content.body for entry in broker.vhosts["/"].queues[queue].ready]


def test_without_an_acl_file_any_user_uses_any_queue_as_before() -> None:
    broker = amqp_broker(None)
    alice_with_a_message(broker)
    bob = login(broker, "bob")
    assert ok(bob, c.Basic.Get(queue="alice-q", no_ack=True))[0] == "Basic.GetOk"
    assert ok(bob, c.Queue.Delete(queue="alice-q")) == ["Queue.DeleteOk"]


BOB_ON_ALICES_QUEUE = [
    ("read", c.Basic.Get(queue="alice-q")),
    ("read", c.Basic.Consume(queue="alice-q")),
    ("configure", c.Queue.Purge(queue="alice-q")),
    ("configure", c.Queue.Delete(queue="alice-q")),
    ("configure", c.Queue.Declare(queue="alice-q", durable=True)),
    ("configure", c.Queue.Declare(queue="alice-q", passive=True)),  # any right would do; RabbitMQ names the last
    ("write", c.Queue.Bind(queue="alice-q", exchange="amq.topic", routing_key="public.#")),
    ("write", c.Queue.Unbind(queue="alice-q", exchange="amq.direct", routing_key="k")),
]


@pytest.mark.parametrize(("permission", "method"), BOB_ON_ALICES_QUEUE, ids=lambda v: getattr(v, "name", v))
def test_another_user_may_not_touch_a_queue_it_did_not_declare(permission: str, method: Any) -> None:
    broker = amqp_broker()
    alice = alice_with_a_message(broker)
    bob = login(broker, "bob")
    text = refused(bob, method)
    assert text == f"ACCESS_REFUSED - {permission} access to queue 'alice-q' in vhost '/' refused for user 'bob'"
    assert ready(broker, "alice-q") == [b"for alice only"]
    assert broker.vhosts["/"].subscribers.get("alice-q") is None  # no binding to amq.topic either
    assert ok(alice, c.Basic.Get(queue="alice-q", no_ack=True))[0] == "Basic.GetOk"


def test_a_publish_to_the_default_exchange_needs_write_on_the_queue_it_names() -> None:
    broker = amqp_broker()
    alice_with_a_message(broker)
    bob = login(broker, "bob")
    bob.publish(1, "", "alice-q", b"from bob")
    (close,) = bob.methods()
    assert close.reply_code == 403 and "write access to queue 'alice-q'" in close.reply_text
    assert ready(broker, "alice-q") == [b"for alice only"]


def test_the_owner_uses_its_queue_in_every_way() -> None:
    broker = amqp_broker()
    alice = alice_with_a_message(broker)
    assert ok(alice, c.Queue.Bind(queue="alice-q", exchange="amq.topic", routing_key="news.#"),
              c.Queue.Declare(queue="alice-q", passive=True), c.Queue.Purge(queue="alice-q"),
              c.Queue.Delete(queue="alice-q")) == ["Queue.BindOk", "Queue.DeclareOk", "Queue.PurgeOk",
                                                   "Queue.DeleteOk"]


def test_a_user_declares_any_new_name_and_a_missing_queue_is_still_404() -> None:
    broker = amqp_broker()
    bob = login(broker, "bob")
    assert ok(bob, c.Queue.Declare(queue="anything")) == ["Queue.DeclareOk"]
    bob.send(1, c.Basic.Get(queue="missing"))
    assert [m.reply_code for m in bob.methods()] == [404]


def test_another_users_exchange_is_refused_and_the_built_in_ones_are_everyones() -> None:
    broker = amqp_broker()
    alice = login(broker, "alice")
    ok(alice, c.Exchange.Declare(exchange="alice-fan", exchange_type="fanout"),
       c.Queue.Declare(queue="alice-q"), c.Queue.Bind(queue="alice-q", exchange="alice-fan"))
    bob = login(broker, "bob")
    ok(bob, c.Queue.Declare(queue="bob-q"), c.Queue.Bind(queue="bob-q", exchange="amq.direct", routing_key="k"))
    bob.publish(1, "amq.direct", "k", b"built-in")
    assert ready(broker, "bob-q") == [b"built-in"]
    assert "read access to exchange 'alice-fan'" in refused(bob, c.Queue.Bind(queue="bob-q", exchange="alice-fan"))
    assert "configure access to exchange 'alice-fan'" in refused(bob, c.Exchange.Delete(exchange="alice-fan"))
    assert "configure access to exchange 'alice-fan'" in refused(
        bob, c.Exchange.Declare(exchange="alice-fan", exchange_type="fanout"))
    bob.publish(1, "alice-fan", "", b"into alice's queue")
    (close,) = bob.methods()
    assert close.reply_code == 403 and "write access to exchange 'alice-fan'" in close.reply_text
    assert ready(broker, "alice-q") == [] and "alice-fan" in broker.vhosts["/"].exchanges


def test_the_default_exchange_cannot_be_declared_as_in_rabbitmq() -> None:
    wire = login(amqp_broker(), "alice")
    assert "default exchange" in refused(wire, c.Exchange.Declare(exchange="", exchange_type="direct"))


def test_queue_and_exchange_rules_alone_decide_for_a_user_that_has_them() -> None:
    broker = amqp_broker()
    alice_with_a_message(broker, "alice-shared")
    carol = login(broker, "carol")
    assert ok(carol, c.Basic.Get(queue="alice-shared", no_ack=True))[0] == "Basic.GetOk"
    assert "configure access to queue 'alice-shared'" in refused(carol, c.Queue.Purge(queue="alice-shared"))
    assert "configure access to queue 'mine'" in refused(carol, c.Queue.Declare(queue="mine"))
    ok(carol, c.Queue.Declare(queue="carol-jobs"), c.Queue.Bind(queue="carol-jobs", exchange="amq.topic",
                                                                 routing_key="jobs.#"))


def test_a_server_named_exclusive_queue_is_declared_and_used_by_its_connection_whatever_the_rules() -> None:
    broker = amqp_broker()
    carol = login(broker, "carol")  # her rules name only carol-*, not amq.gen-*
    carol.send(1, c.Queue.Declare(queue="", exclusive=True))
    (declared,) = carol.methods()
    name = declared.queue
    assert name.startswith("amq.gen-")
    assert ok(carol, c.Queue.Bind(queue=name, exchange="amq.topic", routing_key="news.#"),
              c.Basic.Get(queue=name)) == ["Queue.BindOk", "Basic.GetEmpty"]


def test_an_admin_uses_every_queue_and_exchange() -> None:
    broker = amqp_broker(is_admin=lambda username: username == "root")
    alice_with_a_message(broker)
    root = login(broker, "root")
    assert ok(root, c.Basic.Get(queue="alice-q", no_ack=True))[0] == "Basic.GetOk"
    assert ok(root, c.Queue.Delete(queue="alice-q")) == ["Queue.DeleteOk"]


DEAD_LETTER_TARGETS = [
    ({"x-dead-letter-exchange": "amq.topic", "x-dead-letter-routing-key": "secret.plans"},
     "write access to topic 'secret/plans' in exchange 'amq.topic' in vhost '/' refused for user 'bob'"),
    ({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "alice-q"},
     "write access to queue 'alice-q' in vhost '/' refused for user 'bob'"),
    ({"x-dead-letter-exchange": "alice-fan"},
     "write access to exchange 'alice-fan' in vhost '/' refused for user 'bob'"),
]


@pytest.mark.parametrize(("arguments", "text"), DEAD_LETTER_TARGETS)
def test_a_dead_letter_target_its_declarer_may_not_write_to_is_refused_before_anything_is_stored(
    arguments: dict[str, Any], text: str
) -> None:
    log = MemoryLog()
    broker = amqp_broker(log=log)
    alice = alice_with_a_message(broker)
    ok(alice, c.Exchange.Declare(exchange="alice-fan", exchange_type="fanout"))
    bob = login(broker, "bob")
    assert refused(bob, c.Queue.Declare(queue="bob-dl", durable=True,
                                        arguments={"x-message-ttl": 1, **arguments})) == f"ACCESS_REFUSED - {text}"
    assert "bob-dl" not in broker.vhosts["/"].queues and ("/", "bob-dl") not in log.records().queues


def test_a_dead_letter_target_its_declarer_may_write_to_is_accepted() -> None:
    broker = amqp_broker()
    bob = login(broker, "bob")
    ok(bob, c.Queue.Declare(queue="bob-dl", arguments={"x-dead-letter-exchange": "amq.topic",
                                                       "x-dead-letter-routing-key": "public.expired"}))


def test_a_dead_letter_to_a_queue_its_owner_may_not_write_to_is_dropped_when_it_happens() -> None:
    broker = amqp_broker()
    alice_with_a_message(broker)
    bob = login(broker, "bob")  # no key at the declaration: the message's own key decides, at dead-letter time
    ok(bob, c.Queue.Declare(queue="bob-dl", arguments={"x-dead-letter-exchange": "", "x-message-ttl": 1}),
       c.Queue.Bind(queue="bob-dl", exchange="amq.direct", routing_key="alice-q"))
    bob.publish(1, "amq.direct", "alice-q", b"smuggled")
    broker.clock.now += 1  # type: ignore[attr-defined]
    broker.run_due()
    vhost = broker.vhosts["/"]
    assert ready(broker, "bob-dl") == [] and vhost.dead_letters_refused == 1
    assert ready(broker, "alice-q") == [b"for alice only"]


def test_the_first_refusal_a_user_did_not_have_before_logs_one_line_saying_how_to_grant_it(
    caplog: pytest.LogCaptureFixture
) -> None:
    broker = amqp_broker()
    alice_with_a_message(broker)
    bob, carol = login(broker, "bob"), login(broker, "carol")
    with caplog.at_level(logging.WARNING, "rosettamq.amqp"):
        refused(bob, c.Basic.Get(queue="alice-q"))
        refused(bob, c.Queue.Purge(queue="alice-q"))
        refused(carol, c.Queue.Purge(queue="alice-shared"))  # her own rules refuse: nothing lost
    lines = [r.getMessage() for r in caplog.records if "may no longer" in r.getMessage()]
    assert lines == ["user bob may no longer read queue 'alice-q' in vhost '/' (issue 24 ownership rules: without "
                     "`queue` rules a user uses only the queues it declared); grant it with `queue read alice\\-q` "
                     "under `user bob` in the ACL file"]


def test_a_queue_restored_from_the_store_keeps_its_owner() -> None:
    log, wall = MemoryLog(), Clock(1_700_000_000.0)
    alice_with_a_message(amqp_broker(log=log, wall=wall)).publish(
        1, "", "alice-q", b"persistent", c.Basic.Properties(delivery_mode=2))
    broker = amqp_broker(log=log, wall=wall)
    assert broker.vhosts["/"].queues["alice-q"].owner.username == "alice"  # type: ignore[attr-defined]
    assert "read access" in refused(login(broker, "bob"), c.Basic.Get(queue="alice-q"))
    assert ok(login(broker, "alice"), c.Basic.Get(queue="alice-q", no_ack=True))[0] == "Basic.GetOk"


def test_a_queue_stored_without_an_owner_loads_for_admins_and_rules_only(caplog: pytest.LogCaptureFixture) -> None:
    log = MemoryLog()
    log.put_queue(QueueRecord("/", "legacy", False, {}))  # as a version before issue 24 wrote it
    with caplog.at_level(logging.WARNING, "rosettamq.amqp"):
        broker = amqp_broker(ACL + "user dave\nqueue all legacy\n", log=log,
                             is_admin=lambda username: username == "root")
    assert "without an owner" in caplog.text and "queue 'legacy'" in caplog.text
    assert "read access" in refused(login(broker, "alice"), c.Basic.Get(queue="legacy"))
    for user in ("root", "dave"):
        assert ok(login(broker, user), c.Basic.Get(queue="legacy")) == ["Basic.GetEmpty"]
