"""The broker model through the wire: durable recovery, timers on a fake clock, flow, confirms."""

from __future__ import annotations

from pamqp import body as pamqp_body, commands as c, frame as pamqp_frame, header as pamqp_header

from adapters.amqp.broker import AMQPBroker
from adapters.amqp.durable import MemoryLog
from adapters.amqp.settings import AMQPSettings
from core.broker import Broker
from core.message import Message
from core.principal import SYSTEM

from tests.adapters.amqp.wire import Clock, Wire

PERSISTENT = c.Basic.Properties(delivery_mode=2)


def restarted(log: MemoryLog, wall: Clock) -> Wire:
    """A fresh core and AMQP broker over the same durable log: what a process restart leaves."""
    return Wire(broker=AMQPBroker(Broker(), AMQPSettings(), log=log, clock=wall), wall=wall)


def test_durable_exchanges_queues_bindings_and_persistent_messages_survive_a_restart() -> None:
    log, wall = MemoryLog(), Clock(1_700_000_000.0)
    wire = restarted(log, wall)
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Exchange.Declare(exchange="orders", exchange_type="topic", durable=True),
              c.Queue.Declare(queue="keep", durable=True), c.Queue.Declare(queue="lose", durable=False),
              c.Queue.Bind(queue="keep", exchange="orders", routing_key="order.*"),
              c.Queue.Bind(queue="keep", exchange="amq.topic", routing_key="sensors.#"))
    wire.received()
    wire.publish(1, "orders", "order.new", b"persistent", PERSISTENT)
    wire.publish(1, "orders", "order.new", b"transient")
    wire.publish(1, "orders", "order.new", b"acked", PERSISTENT)
    wire.publish(1, "", "lose", b"in a transient queue", PERSISTENT)
    wire.send(1, c.Basic.Get(queue="keep"), c.Basic.Get(queue="keep"), c.Basic.Get(queue="keep"))
    wire.received()
    wire.send(1, c.Basic.Ack(delivery_tag=3))  # "acked" is gone for good; the others are unacked at the crash

    after = restarted(log, wall)
    after.handshake()
    after.open_channel()
    after.send(1, c.Queue.Declare(queue="keep", passive=True))
    (declared,) = after.methods()
    assert declared.message_count == 1
    after.send(1, c.Basic.Get(queue="keep", no_ack=True))
    assert [f.value for _, f in after.received() if hasattr(f, "value")] == [b"persistent"]
    after.publish(1, "orders", "order.again", b"binding kept")
    after.send(1, c.Basic.Get(queue="keep", no_ack=True))
    assert [f.value for _, f in after.received() if hasattr(f, "value")] == [b"binding kept"]
    after.broker.core.publish(SYSTEM, Message("sensors/a", b"from mqtt"))
    after.send(1, c.Basic.Get(queue="keep", no_ack=True))
    assert [f.value for _, f in after.received() if hasattr(f, "value")] == [b"from mqtt"]
    after.send(1, c.Queue.Declare(queue="lose", passive=True))
    assert [m.reply_code for m in after.methods()] == [404]


def test_an_unused_queue_is_deleted_at_its_x_expires_deadline() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Queue.Declare(queue="tmp", arguments={"x-expires": 2000}))
    wire.received()
    assert wire.broker.next_deadline() == wire.wall.now + 2
    wire.wall.now += 1.999
    wire.broker.run_due()
    assert "tmp" in wire.broker.vhosts["/"].queues
    wire.wall.now += 0.001
    wire.broker.run_due()
    assert "tmp" not in wire.broker.vhosts["/"].queues


def test_expired_messages_are_dead_lettered_when_their_ttl_passes_without_consumers() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Queue.Declare(queue="dead"), c.Queue.Declare(queue="slow", arguments={
        "x-message-ttl": 500, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}))
    wire.received()
    wire.publish(1, "", "slow", b"m")
    wire.wall.now += 0.499
    wire.broker.run_due()
    assert wire.broker.vhosts["/"].queues["dead"].message_count == 0
    wire.wall.now += 0.001
    wire.broker.run_due()
    assert wire.broker.vhosts["/"].queues["dead"].message_count == 1
    assert wire.broker.vhosts["/"].queues["slow"].message_count == 0


def test_channel_flow_pauses_and_resumes_deliveries() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Queue.Declare(queue="q"), c.Channel.Flow(active=False),
              c.Basic.Consume(queue="q", consumer_tag="t", no_ack=True))
    assert wire.names() == ["Queue.DeclareOk", "Channel.FlowOk", "Basic.ConsumeOk"]
    wire.publish(1, "", "q", b"held")
    assert wire.names() == []
    wire.send(1, c.Channel.Flow(active=True))
    assert wire.names() == ["Channel.FlowOk", "Basic.Deliver", "ContentHeader", "ContentBody"]


def test_confirms_for_a_batch_of_publishes_go_out_as_one_multiple_ack() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Confirm.Select(), c.Queue.Declare(queue="q"))
    wire.received()
    wire.conn.receive_data(b"".join(
        pamqp_frame.marshal(f, 1)
        for body in (b"1", b"2", b"3")
        for f in (c.Basic.Publish(routing_key="q"),
                  pamqp_header.ContentHeader(0, 1, c.Basic.Properties()), pamqp_body.ContentBody(body))))
    (ack,) = wire.methods()
    assert isinstance(ack, c.Basic.Ack) and (ack.delivery_tag, ack.multiple) == (3, True)


def test_a_consumer_is_told_when_its_queue_is_deleted_only_if_it_announced_the_capability() -> None:
    for announced in (True, False):
        wire = Wire()
        wire.handshake(capabilities={"consumer_cancel_notify": announced})
        wire.open_channel()
        wire.send(1, c.Queue.Declare(queue="q"), c.Basic.Consume(queue="q", consumer_tag="t"))
        wire.received()
        wire.send(1, c.Queue.Delete(queue="q"))
        names = wire.names()
        assert ("Basic.Cancel" in names) is announced
        assert names[-1] == "Queue.DeleteOk"


def test_publishers_are_blocked_above_the_held_message_limit_and_unblocked_below_80_percent() -> None:
    wall = Clock(1_700_000_000.0)
    broker = AMQPBroker(Broker(), AMQPSettings(max_held_messages=5), clock=wall)
    publisher = Wire(broker=broker, wall=wall)
    publisher.handshake(capabilities={"connection.blocked": True})
    publisher.open_channel()
    consumer = Wire(broker=broker, wall=wall)
    consumer.handshake(capabilities={"connection.blocked": True})
    consumer.open_channel()
    publisher.send(1, c.Queue.Declare(queue="q"))
    publisher.received()
    for n in range(6):
        publisher.publish(1, "", "q", b"%d" % n)
    assert publisher.names() == ["Connection.Blocked"]
    assert publisher.conn.reading_paused and not consumer.conn.reading_paused  # consumers keep draining
    assert consumer.names() == ["Connection.Blocked"]
    consumer.send(1, c.Basic.Get(queue="q", no_ack=True))
    assert publisher.names() == []  # 5 held: still above 80% of 5
    consumer.send(1, c.Basic.Get(queue="q", no_ack=True))
    assert publisher.names() == ["Connection.Unblocked"]
    assert not publisher.conn.reading_paused


def test_a_retained_amqp_publish_is_storable_and_replays_with_its_original_properties() -> None:
    from core.stores.codec import decode_message, encode_message

    wire = Wire()
    wire.handshake()
    wire.open_channel()
    properties = c.Basic.Properties(headers={"x-retain": True, "n": 1}, message_id="m-1", app_id="billing",
                                    delivery_mode=2)
    wire.publish(1, "amq.topic", "meters.m1", b"42", properties)
    (stored,) = wire.broker.core.router.retained.match("meters/m1")
    assert decode_message(encode_message(stored)).extra == stored.extra  # plain bytes: any store keeps them
    wire.send(1, c.Queue.Declare(queue="late"), c.Queue.Bind(queue="late", exchange="amq.topic",
                                                             routing_key="meters.*"))
    wire.received()
    wire.send(1, c.Basic.Get(queue="late", no_ack=True))
    _, header = wire.received()[1]
    assert (header.properties.message_id, header.properties.app_id) == ("m-1", "billing")
    assert header.properties.headers == {"x-retain": True, "n": 1}


ACL = """
user alice
topic write sensors/alice/#
topic read alerts/#
topic deny alerts/private/#
"""


def test_the_topic_acl_guards_publishes_binds_and_deliveries_on_amq_topic() -> None:
    from core.acl import Authorizer, parse_acl

    wall = Clock(1_700_000_000.0)
    core = Broker(authorizer=Authorizer(rules=parse_acl(ACL)))
    wire = Wire(broker=AMQPBroker(core, AMQPSettings(), clock=wall), wall=wall)
    wire.handshake(user="alice")
    wire.open_channel()
    wire.publish(1, "amq.topic", "sensors.alice.t", b"mine")
    assert wire.names() == []
    wire.publish(1, "amq.topic", "sensors.bob.t", b"not mine")
    (close,) = wire.methods()
    assert close.reply_code == 403 and "sensors/bob/t" in close.reply_text
    wire.send(1, c.Channel.CloseOk())
    wire.open_channel()
    wire.send(1, c.Queue.Declare(queue="q"), c.Queue.Bind(queue="q", exchange="amq.topic", routing_key="alerts.#"))
    assert wire.names() == ["Queue.DeclareOk", "Queue.BindOk"]
    core.publish(SYSTEM, Message("alerts/fire", b"public"))
    core.publish(SYSTEM, Message("alerts/private/x", b"denied on read"))
    wire.send(1, c.Basic.Get(queue="q", no_ack=True), c.Basic.Get(queue="q", no_ack=True))
    assert [f.value for _, f in wire.received() if hasattr(f, "value")] == [b"public"]
    wire.send(1, c.Queue.Bind(queue="q", exchange="amq.topic", routing_key="sensors.#"))
    assert [m.reply_code for m in wire.methods()] == [403]  # write-only: no subscribe


def test_a_publish_to_a_missing_exchange_is_not_confirmed_before_the_channel_closes() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Confirm.Select())
    wire.received()
    wire.publish(1, "", "anything", b"ok")
    wire.publish(1, "missing", "k", b"fails")
    methods = wire.methods()
    assert [type(m).__name__ for m in methods] == ["Ack", "Close"]
    assert methods[0].delivery_tag == 1 and methods[1].reply_code == 404
