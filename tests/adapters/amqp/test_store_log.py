"""AMQP durable state in the gateway's store (StoreLog), and publisher confirms that wait for the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pamqp import commands as c

from adapters.amqp.broker import AMQPBroker
from adapters.amqp.settings import AMQPSettings
from adapters.amqp.store_log import DELIVERED, MESSAGE, StoreLog
from core.broker import Broker
from core.stores.base import Store
from core.stores.memory import MemoryStore
from core.stores.sqlite import SqliteStore

from tests.adapters.amqp.wire import Clock, Wire

PERSISTENT = c.Basic.Properties(delivery_mode=2)


class HeldStore(MemoryStore):
    """A memory store whose `sync` callbacks wait until the test releases them (a slow disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Callable[[], None]] = []

    def sync(self, callback: Callable[[], None]) -> None:
        self.held.append(callback)

    def release(self) -> None:
        held, self.held = self.held, []
        for callback in held:
            callback()


def started(store: Store, wall: Clock) -> Wire:
    """A core and AMQP broker on `store`, as the gateway builds them, with an open channel 1."""
    core = Broker(store)
    core.start()
    wire = Wire(broker=AMQPBroker(core, AMQPSettings(), log=StoreLog(store), clock=wall), wall=wall)
    wire.handshake()
    wire.open_channel()
    return wire


def bodies(frames: list[tuple[int, Any]]) -> list[bytes]:
    return [f.value for _, f in frames if hasattr(f, "value")]


def test_durable_state_and_unacknowledged_deliveries_survive_a_restart_on_the_sqlite_file(tmp_path: Path) -> None:
    path, wall = str(tmp_path / "store.db"), Clock(1_700_000_000.0)
    store = SqliteStore(path)
    wire = started(store, wall)
    arguments = {"x-message-ttl": 3_600_000, "x-dead-letter-exchange": "dlx", "x-note": bytearray(b"\x00\xff")}
    wire.send(1, c.Exchange.Declare(exchange="orders", exchange_type="topic", durable=True),
              c.Exchange.Declare(exchange="scratch", exchange_type="fanout", durable=False),
              c.Queue.Declare(queue="keep", durable=True, arguments=arguments),
              c.Queue.Declare(queue="lose", durable=False),
              c.Queue.Bind(queue="keep", exchange="orders", routing_key="order.*"),
              c.Queue.Bind(queue="keep", exchange="amq.topic", routing_key="sensors.#"))
    wire.received()
    for body in (b"delivered", b"acked", b"waiting"):
        wire.publish(1, "orders", "order.new", body, PERSISTENT)
    wire.publish(1, "orders", "order.new", b"transient")
    wire.publish(1, "", "lose", b"persistent in a transient queue", PERSISTENT)
    wire.send(1, c.Basic.Get(queue="keep"), c.Basic.Get(queue="keep"))
    assert bodies(wire.received()) == [b"delivered", b"acked"]
    wire.send(1, c.Basic.Ack(delivery_tag=2))
    store.close()  # a restart; what the store committed is all that is left

    store = SqliteStore(path)
    after = started(store, wall)
    after.send(1, c.Queue.Declare(queue="keep", durable=True, arguments=arguments))  # equivalent: accepted
    (declared,) = after.methods()
    assert isinstance(declared, c.Queue.DeclareOk) and declared.message_count == 2
    after.send(1, c.Basic.Get(queue="keep", no_ack=True), c.Basic.Get(queue="keep", no_ack=True),
               c.Basic.Get(queue="keep", no_ack=True))
    frames = after.received()
    assert bodies(frames) == [b"delivered", b"waiting"]
    assert [m.redelivered for _, m in frames if isinstance(m, c.Basic.GetOk)] == [True, False]
    assert [type(m) for _, m in frames if isinstance(m, c.Basic.GetEmpty)] == [c.Basic.GetEmpty]
    after.publish(1, "orders", "order.again", b"binding kept")
    after.send(1, c.Basic.Get(queue="keep", no_ack=True))
    assert bodies(after.received()) == [b"binding kept"]
    after.send(1, c.Queue.Declare(queue="lose", passive=True))
    assert [m.reply_code for m in after.methods()] == [404]
    after.open_channel(2)
    after.send(2, c.Exchange.Declare(exchange="scratch", passive=True))
    assert [m.reply_code for m in after.methods()] == [404]
    assert store.load_records(MESSAGE) == {} and store.load_records(DELIVERED) == {}  # all settled
    store.close()


def test_only_persistent_messages_in_durable_queues_reach_the_store() -> None:
    store, wall = MemoryStore(), Clock(1_700_000_000.0)
    wire = started(store, wall)
    wire.send(1, c.Queue.Declare(queue="durable", durable=True), c.Queue.Declare(queue="transient"))
    wire.received()
    wire.publish(1, "", "durable", b"transient message")
    wire.publish(1, "", "transient", b"persistent message", PERSISTENT)
    assert store.load_records(MESSAGE) == {}
    wire.publish(1, "", "durable", b"stored", PERSISTENT)
    assert len(store.load_records(MESSAGE)) == 1


def test_a_deleted_durable_queue_leaves_no_records_behind() -> None:
    store, wall = MemoryStore(), Clock(1_700_000_000.0)
    wire = started(store, wall)
    wire.send(1, c.Queue.Declare(queue="q", durable=True),
              c.Queue.Bind(queue="q", exchange="amq.direct", routing_key="k"))
    wire.publish(1, "", "q", b"ready", PERSISTENT)
    wire.publish(1, "", "q", b"unacked", PERSISTENT)
    wire.send(1, c.Basic.Get(queue="q"))
    wire.send(1, c.Queue.Delete(queue="q"))
    wire.send(1, c.Basic.Ack(delivery_tag=1))
    wire.received()
    assert {kind: store.load_records(kind) for kind in ("amqp.queue", "amqp.binding", MESSAGE, DELIVERED)} == {
        "amqp.queue": {}, "amqp.binding": {}, MESSAGE: {}, DELIVERED: {}}


def test_a_confirm_for_a_persistent_message_waits_for_the_stores_sync_and_later_ones_queue_behind_it() -> None:
    store = HeldStore()
    wire = started(store, Clock(1_700_000_000.0))
    wire.send(1, c.Confirm.Select(), c.Queue.Declare(queue="q", durable=True))
    wire.received()
    wire.publish(1, "", "q", b"transient, alone")
    assert [(m.delivery_tag, m.multiple) for m in wire.methods()] == [(1, False)]  # no disk: at once
    wire.publish(1, "", "q", b"persistent", PERSISTENT)
    assert wire.methods() == []
    wire.publish(1, "", "q", b"transient, after it")
    assert wire.methods() == []  # acks stay in order
    assert len(store.held) == 2
    store.release()
    assert [(m.delivery_tag, m.multiple) for m in wire.methods()] == [(2, False), (3, False)]


def test_a_confirm_still_waiting_for_the_store_is_never_sent_once_the_channel_is_closed() -> None:
    store = HeldStore()
    wire = started(store, Clock(1_700_000_000.0))
    wire.send(1, c.Confirm.Select(), c.Queue.Declare(queue="q", durable=True))
    wire.received()
    wire.publish(1, "", "q", b"persistent", PERSISTENT)
    wire.send(1, c.Channel.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
    assert [type(m) for m in wire.methods()] == [c.Channel.CloseOk]
    store.release()
    assert wire.methods() == []


def test_queue_and_exchange_owners_are_stored_and_records_without_one_still_load(tmp_path: Path) -> None:
    from adapters.amqp.durable import ExchangeRecord, Owner, QueueRecord
    from adapters.amqp.store_log import EXCHANGE, QUEUE, _key, _table

    store = SqliteStore(str(tmp_path / "store.db"))
    log = StoreLog(store)
    log.put_queue(QueueRecord("/", "alice-q", False, {"x-max-length": 5}, Owner("alice")))
    log.put_queue(QueueRecord("/", "anonymous-q", True, {}, Owner(None)))
    log.put_exchange(ExchangeRecord("/", "café\x00x", "fanout", owner=Owner("bob")))
    # What a version before issue 24 wrote: no owner field at all.
    store.put_record(QUEUE, _key("/", "legacy"), _table({"auto_delete": False, "arguments": {}}))
    store.put_record(EXCHANGE, _key("/", "old-x"), _table({"kind": "direct", "auto_delete": False,
                                                           "internal": False, "arguments": {}}))
    store.close()
    records = StoreLog(SqliteStore(str(tmp_path / "store.db"))).records()
    assert records.queues[("/", "alice-q")] == QueueRecord("/", "alice-q", False, {"x-max-length": 5}, Owner("alice"))
    assert records.queues[("/", "anonymous-q")].owner == Owner(None)
    assert records.exchanges[("/", "café\x00x")].owner == Owner("bob")
    assert records.queues[("/", "legacy")].owner is None and records.exchanges[("/", "old-x")].owner is None
