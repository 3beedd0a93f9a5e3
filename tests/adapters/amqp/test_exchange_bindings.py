"""Exchange-to-exchange bindings (exchange.bind / exchange.unbind, issue 18) on the broker model, through the wire.

RabbitMQ's semantics: a message the source routes to the destination is routed
again there (its type, the same routing key); a cycle ends at an exchange
visited before and each queue gets one copy; bindings go with either end;
an auto-delete source goes with its last binding; durable ones survive a
restart (memory log and the SQLite store); amq.topic (the core's topic space)
works as either end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pamqp import commands as c

from adapters.amqp.broker import AMQPBroker
from adapters.amqp.durable import MemoryLog
from adapters.amqp.settings import AMQPSettings
from adapters.amqp.store_log import StoreLog
from core.broker import Broker
from core.message import Message
from core.principal import SYSTEM
from core.stores.sqlite import SqliteStore

from tests.adapters.amqp.wire import Clock, Wire

PERSISTENT = c.Basic.Properties(delivery_mode=2)


def opened(broker: AMQPBroker | None = None, wall: Clock | None = None) -> Wire:
    wire = Wire(broker=broker, wall=wall)
    wire.handshake()
    wire.open_channel()
    return wire


def bodies_in(wire: Wire, queue: str) -> list[bytes]:
    """Every message ready in `queue`, taken with basic.get (no ack)."""
    out: list[bytes] = []
    while True:
        wire.send(1, c.Basic.Get(queue=queue, no_ack=True))
        frames = wire.received()
        if any(isinstance(f, c.Basic.GetEmpty) for _, f in frames):
            return out
        got = [f.value for _, f in frames if hasattr(f, "value")]
        assert got, frames
        out.extend(got)


def declare(wire: Wire, *frames: Any) -> list[Any]:
    wire.send(1, *frames)
    methods = wire.methods()
    assert not [m for m in methods if isinstance(m, (c.Channel.Close, c.Connection.Close))], methods
    return methods


def test_a_message_routed_to_an_exchange_is_routed_again_there_by_its_type() -> None:
    wire = opened()
    methods = declare(wire, c.Exchange.Declare(exchange="src", exchange_type="direct"),
                      c.Exchange.Declare(exchange="dst", exchange_type="topic"),
                      c.Queue.Declare(queue="q"),
                      c.Exchange.Bind(destination="dst", source="src", routing_key="a.b"),
                      c.Exchange.Bind(destination="dst", source="src", routing_key="x.y", nowait=True),
                      c.Queue.Bind(queue="q", exchange="dst", routing_key="a.*"))
    assert sum(isinstance(m, c.Exchange.BindOk) for m in methods) == 1  # the other was nowait
    wire.publish(1, "src", "a.b", b"routed twice")
    wire.publish(1, "src", "x.y", b"dst has no binding for x.y")
    wire.publish(1, "src", "a.c", b"src has no binding for a.c")
    assert bodies_in(wire, "q") == [b"routed twice"]
    assert declare(wire, c.Exchange.Unbind(destination="dst", source="src", routing_key="a.b", nowait=True)) == []
    wire.publish(1, "src", "a.b", b"unbound")
    assert bodies_in(wire, "q") == []
    assert [type(m) for m in declare(wire, c.Exchange.Unbind(destination="dst", source="src",
                                                             routing_key="x.y"))] == [c.Exchange.UnbindOk]


def test_cycles_end_and_each_queue_gets_one_copy_whatever_the_paths() -> None:
    wire = opened()
    declare(wire, *[c.Exchange.Declare(exchange=name, exchange_type="fanout") for name in ("a", "b", "c")],
            c.Queue.Declare(queue="q"),
            c.Exchange.Bind(destination="b", source="a"), c.Exchange.Bind(destination="c", source="a"),
            c.Exchange.Bind(destination="a", source="b"), c.Exchange.Bind(destination="a", source="c"),
            c.Queue.Bind(queue="q", exchange="a"), c.Queue.Bind(queue="q", exchange="b"),
            c.Queue.Bind(queue="q", exchange="c"))
    for exchange in ("a", "b", "c"):
        wire.publish(1, exchange, "k", exchange.encode())
    assert bodies_in(wire, "q") == [b"a", b"b", b"c"]


def test_bindings_go_with_either_end_and_an_auto_delete_source_with_its_last_binding() -> None:
    wire = opened()
    declare(wire, c.Exchange.Declare(exchange="src", exchange_type="fanout", auto_delete=True),
            c.Exchange.Declare(exchange="mid", exchange_type="fanout"),
            c.Exchange.Declare(exchange="dst", exchange_type="fanout"),
            c.Queue.Declare(queue="q"),
            c.Exchange.Bind(destination="mid", source="src"), c.Exchange.Bind(destination="dst", source="mid"),
            c.Queue.Bind(queue="q", exchange="dst"))
    vhost = wire.broker.vhosts["/"]
    declare(wire, c.Exchange.Delete(exchange="dst"))
    assert vhost.exchanges["mid"].bindings == {}  # its binding to the deleted destination went
    declare(wire, c.Exchange.Declare(exchange="dst", exchange_type="fanout"), c.Queue.Bind(queue="q", exchange="dst"),
            c.Exchange.Bind(destination="dst", source="mid"))
    wire.publish(1, "src", "", b"through again")
    assert bodies_in(wire, "q") == [b"through again"]
    declare(wire, c.Exchange.Delete(exchange="mid"))
    assert "src" not in vhost.exchanges  # auto-delete: its last binding as a source went with mid


def test_unknown_exchanges_are_404_and_the_default_exchange_403() -> None:
    for bind, code in ((c.Exchange.Bind(destination="nope", source="amq.direct"), 404),
                       (c.Exchange.Bind(destination="amq.direct", source="nope"), 404),
                       (c.Exchange.Bind(destination="", source="amq.direct"), 403),
                       (c.Exchange.Bind(destination="amq.direct", source=""), 403),
                       (c.Exchange.Unbind(destination="nope", source="amq.direct"), 404)):
        wire = opened()
        wire.send(1, bind)
        (close,) = [m for m in wire.methods() if isinstance(m, c.Channel.Close)]
        assert (close.reply_code, close.class_id) == (code, 40), (bind, close)


def test_amq_topic_is_a_source_for_mqtt_messages_and_a_destination_once_per_queue() -> None:
    wire = opened()
    declare(wire, c.Exchange.Declare(exchange="alerts", exchange_type="direct"),
            c.Exchange.Declare(exchange="fan", exchange_type="fanout"),
            c.Queue.Declare(queue="alerts-q"), c.Queue.Declare(queue="both"),
            c.Exchange.Bind(destination="alerts", source="amq.topic", routing_key="sensors.#"),
            c.Queue.Bind(queue="alerts-q", exchange="alerts", routing_key="sensors.hall.temp"),
            c.Exchange.Bind(destination="amq.topic", source="fan"),
            c.Queue.Bind(queue="both", exchange="fan"), c.Queue.Bind(queue="both", exchange="amq.topic",
                                                                     routing_key="room.#"))
    core = wire.broker.core
    core.publish(SYSTEM, Message("sensors/hall/temp", b"from mqtt"))
    core.publish(SYSTEM, Message("other/topic", b"not bound"))
    assert bodies_in(wire, "alerts-q") == [b"from mqtt"]
    received: list[bytes] = []

    class Sink:
        protocol, is_online = "test", True

        def is_origin_of(self, message: Message) -> bool:
            return False

        def deliver(self, delivery: Any, cache: Any) -> None:
            received.append(delivery.message.payload)

    from core.subscriptions import SubscriptionOptions
    core.router.subscribe(Sink(), "room/#", SubscriptionOptions(qos=0))
    wire.publish(1, "fan", "room.1", b"via fan")
    assert received == [b"via fan"]  # fan -> amq.topic -> an MQTT-side subscriber
    assert bodies_in(wire, "both") == [b"via fan"]  # bound to fan and (room.#) to amq.topic: one copy


def test_durable_bindings_between_durable_exchanges_survive_a_restart() -> None:
    log, wall = MemoryLog(), Clock(1_700_000_000.0)
    wire = opened(AMQPBroker(Broker(), AMQPSettings(), log=log, clock=wall), wall)
    declare(wire, c.Exchange.Declare(exchange="src", exchange_type="topic", durable=True),
            c.Exchange.Declare(exchange="dst", exchange_type="fanout", durable=True),
            c.Exchange.Declare(exchange="tmp", exchange_type="fanout"),
            c.Queue.Declare(queue="q", durable=True), c.Queue.Bind(queue="q", exchange="dst"),
            c.Exchange.Bind(destination="dst", source="src", routing_key="k.#"),
            c.Exchange.Bind(destination="tmp", source="src", routing_key="k.#"),
            c.Exchange.Bind(destination="dst", source="amq.topic", routing_key="mqtt.#"))
    assert sorted(b.queue for b in log.records().bindings.values() if b.destination_kind == "exchange") == \
        ["dst", "dst"]  # not the one to the transient exchange
    after = opened(AMQPBroker(Broker(), AMQPSettings(), log=log, clock=wall), wall)
    after.publish(1, "src", "k.1", b"after restart")
    after.broker.core.publish(SYSTEM, Message("mqtt/x", b"mqtt after restart"))
    assert bodies_in(after, "q") == [b"after restart", b"mqtt after restart"]
    declare(after, c.Exchange.Delete(exchange="dst"))
    assert [b for b in log.records().bindings.values() if b.destination_kind == "exchange"] == []


def test_e2e_bindings_survive_a_restart_on_the_sqlite_store(tmp_path: Path) -> None:
    path, wall = str(tmp_path / "store.db"), Clock(1_700_000_000.0)

    def started() -> tuple[Wire, SqliteStore]:
        store = SqliteStore(path)
        core = Broker(store)
        core.start()
        return opened(AMQPBroker(core, AMQPSettings(), log=StoreLog(store), clock=wall), wall), store

    wire, store = started()
    declare(wire, c.Exchange.Declare(exchange="src", exchange_type="direct", durable=True),
            c.Exchange.Declare(exchange="dst", exchange_type="fanout", durable=True),
            c.Queue.Declare(queue="q", durable=True), c.Queue.Bind(queue="q", exchange="dst"),
            c.Exchange.Bind(destination="dst", source="src", routing_key="k"))
    store.close()
    after, store = started()
    after.publish(1, "src", "k", b"kept", PERSISTENT)
    assert bodies_in(after, "q") == [b"kept"]
    declare(after, c.Exchange.Unbind(destination="dst", source="src", routing_key="k"))
    store.close()
    again, store = started()
    again.publish(1, "src", "k", b"unbound")
    assert bodies_in(again, "q") == []
    store.close()


def test_the_server_advertises_exchange_exchange_bindings() -> None:
    wire = Wire()
    wire.send_raw(b"AMQP\x00\x00\x09\x01")
    (start,) = wire.methods()
    assert start.server_properties["capabilities"]["exchange_exchange_bindings"] is True


def test_binding_needs_write_on_the_destination_read_on_the_source_and_the_topic_acl_on_amq_topic() -> None:
    from tests.adapters.amqp.test_permissions import amqp_broker, login, ok, refused

    broker = amqp_broker()
    alice = login(broker, "alice")
    ok(alice, c.Exchange.Declare(exchange="alice-x", exchange_type="fanout"))
    bob = login(broker, "bob")
    ok(bob, c.Exchange.Declare(exchange="bob-x", exchange_type="fanout"),
       c.Exchange.Declare(exchange="bob-y", exchange_type="topic"))
    assert "write access to exchange 'alice-x'" in refused(bob, c.Exchange.Bind(destination="alice-x",
                                                                                source="bob-x"))
    assert "read access to exchange 'alice-x'" in refused(bob, c.Exchange.Bind(destination="bob-x",
                                                                               source="alice-x"))
    assert "write access to exchange 'alice-x'" in refused(bob, c.Exchange.Unbind(destination="alice-x",
                                                                                  source="bob-x"))
    assert "access to topic 'secret/#'" in refused(bob, c.Exchange.Bind(destination="bob-y", source="amq.topic",
                                                                         routing_key="secret.#"))
    assert ok(bob, c.Exchange.Bind(destination="bob-y", source="bob-x"),
              c.Exchange.Bind(destination="bob-y", source="amq.topic", routing_key="public.#")) == \
        ["Exchange.BindOk", "Exchange.BindOk"]


def test_a_mandatory_publish_that_reaches_only_exchanges_without_queues_is_returned() -> None:
    wire = opened()
    declare(wire, c.Exchange.Declare(exchange="empty", exchange_type="fanout"),
            c.Exchange.Bind(destination="empty", source="amq.topic", routing_key="lonely.#"),
            c.Exchange.Declare(exchange="fan", exchange_type="fanout"),
            c.Exchange.Bind(destination="amq.topic", source="fan"))
    wire.publish(1, "amq.topic", "lonely.a", b"to amq.topic", mandatory=True)
    wire.publish(1, "fan", "lonely.b", b"through amq.topic", mandatory=True)
    assert [m.reply_code for m in wire.methods() if isinstance(m, c.Basic.Return)] == [312, 312]
    declare(wire, c.Queue.Declare(queue="q"), c.Queue.Bind(queue="q", exchange="empty"))
    wire.publish(1, "fan", "lonely.c", b"reaches q", mandatory=True)
    assert [m for m in wire.methods() if isinstance(m, c.Basic.Return)] == []
    assert bodies_in(wire, "q") == [b"reaches q"]
