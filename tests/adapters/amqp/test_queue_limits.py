"""x-max-priority and x-overflow reject-publish / reject-publish-dlx on the broker model (issue 18).

Priorities as RabbitMQ: highest first, FIFO within one, capped at the queue's
maximum, none is 0; a requeued message keeps its priority; a restart keeps
the order. Overflow: a publish to a full reject-publish queue is refused,
with confirms each refused publish gets its own basic.nack in sequence
(batched acks around it), without confirms it is silently dropped;
reject-publish-dlx dead-letters it too.
"""

from __future__ import annotations

from typing import Any

from pamqp import body as pamqp_body, commands as c, header as pamqp_header

from adapters.amqp.broker import AMQPBroker
from adapters.amqp.durable import MemoryLog
from adapters.amqp.settings import AMQPSettings
from core.broker import Broker

from tests.adapters.amqp.wire import Clock, Wire


def opened(broker: AMQPBroker | None = None, wall: Clock | None = None) -> Wire:
    wire = Wire(broker=broker, wall=wall)
    wire.handshake()
    wire.open_channel()
    return wire


def publish_frames(exchange: str, routing_key: str, body: bytes, **properties: Any) -> list[Any]:
    return [c.Basic.Publish(exchange=exchange, routing_key=routing_key),
            pamqp_header.ContentHeader(0, len(body), c.Basic.Properties(**properties)),
            pamqp_body.ContentBody(body)]


def drain(wire: Wire, queue: str, *, no_ack: bool = True) -> list[tuple[bytes, bool]]:
    """(body, redelivered) of every ready message in `queue`, by basic.get."""
    out = []
    while True:
        wire.send(1, c.Basic.Get(queue=queue, no_ack=no_ack))
        frames = [f for _, f in wire.received()]
        if any(isinstance(f, c.Basic.GetEmpty) for f in frames):
            return out
        (get_ok,) = [f for f in frames if isinstance(f, c.Basic.GetOk)]
        out.append(([f.value for f in frames if hasattr(f, "value")][0], get_ok.redelivered))


def declared(wire: Wire, *frames: Any) -> None:
    wire.send(1, *frames)
    methods = wire.methods()
    assert not [m for m in methods if isinstance(m, (c.Channel.Close, c.Connection.Close))], methods


# -- x-max-priority ----------------------------------------------------------------------------


def test_higher_priority_first_fifo_within_one_capped_at_the_maximum_none_is_zero() -> None:
    wire = opened()
    declared(wire, c.Queue.Declare(queue="p", arguments={"x-max-priority": 5}), c.Queue.Declare(queue="fifo"))
    for body, priority in ((b"none-1", None), (b"one-1", 1), (b"nine", 9), (b"five", 5), (b"three", 3),
                           (b"one-2", 1), (b"none-2", None), (b"zero", 0)):
        for queue in ("p", "fifo"):
            wire.send(1, *publish_frames("", queue, body, **({} if priority is None else {"priority": priority})))
    order = [body for body, _ in drain(wire, "p")]
    assert order[:2] in ([b"nine", b"five"], [b"five", b"nine"])  # both capped to 5: FIFO, nine came first
    assert order == [b"nine", b"five", b"three", b"one-1", b"one-2", b"none-1", b"none-2", b"zero"]
    assert [body for body, _ in drain(wire, "fifo")] == [b"none-1", b"one-1", b"nine", b"five", b"three",
                                                         b"one-2", b"none-2", b"zero"]  # no argument: FIFO


def test_a_requeued_message_keeps_its_priority() -> None:
    wire = opened()
    declared(wire, c.Queue.Declare(queue="p", arguments={"x-max-priority": 10}))
    wire.send(1, *publish_frames("", "p", b"low", priority=1), *publish_frames("", "p", b"high", priority=8))
    wire.send(1, c.Basic.Get(queue="p"))
    assert [f.value for _, f in wire.received() if hasattr(f, "value")] == [b"high"]
    wire.send(1, *publish_frames("", "p", b"mid", priority=4), c.Basic.Reject(delivery_tag=1, requeue=True))
    assert drain(wire, "p") == [(b"high", True), (b"mid", False), (b"low", False)]


def test_consumers_get_the_highest_priority_first_and_a_restart_keeps_the_order() -> None:
    log, wall = MemoryLog(), Clock(1_700_000_000.0)
    wire = opened(AMQPBroker(Broker(), AMQPSettings(), log=log, clock=wall), wall)
    declared(wire, c.Queue.Declare(queue="p", durable=True, arguments={"x-max-priority": 3}))
    for body, priority in ((b"a", 0), (b"b", 2), (b"c", 1), (b"d", 2)):
        wire.send(1, *publish_frames("", "p", body, priority=priority, delivery_mode=2))
    after = opened(AMQPBroker(Broker(), AMQPSettings(), log=log, clock=wall), wall)
    after.send(1, c.Basic.Consume(queue="p", no_ack=True))
    assert [f.value for _, f in after.received() if hasattr(f, "value")] == [b"b", b"d", b"c", b"a"]


def test_x_max_priority_must_be_an_integer_up_to_255_and_redeclared_alike() -> None:
    for arguments in ({"x-max-priority": 256}, {"x-max-priority": "high"}, {"x-max-priority": -1}):
        wire = opened()
        wire.send(1, c.Queue.Declare(queue="p", arguments=arguments))
        assert [m.reply_code for m in wire.methods() if isinstance(m, c.Channel.Close)] == [406], arguments
    wire = opened()
    declared(wire, c.Queue.Declare(queue="p", arguments={"x-max-priority": 255}))
    wire.send(1, c.Queue.Declare(queue="p"))
    (close,) = [m for m in wire.methods() if isinstance(m, c.Channel.Close)]
    assert close.reply_code == 406 and "x-max-priority" in close.reply_text


# -- x-overflow -------------------------------------------------------------------------------------


def test_reject_publish_nacks_each_refused_publish_within_a_batch_of_acks() -> None:
    wire = opened()
    declared(wire, c.Queue.Declare(queue="full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"}),
             c.Queue.Declare(queue="open"), c.Confirm.Select())
    wire.send(1, *publish_frames("", "full", b"kept"), *publish_frames("", "full", b"refused"),
              *publish_frames("", "open", b"fine"), *publish_frames("", "open", b"fine too"),
              *publish_frames("", "full", b"refused too"))  # one batch: one receive
    confirms = [(type(m).__name__, m.delivery_tag, m.multiple) for m in wire.methods()]
    assert confirms == [("Ack", 1, False), ("Nack", 2, False), ("Ack", 4, True), ("Nack", 5, False)]
    assert drain(wire, "full") == [(b"kept", False)]  # not drop-head: the oldest stays


def test_a_message_one_of_its_queues_refuses_is_nacked_and_the_others_keep_it() -> None:
    wire = opened()
    declared(wire, c.Exchange.Declare(exchange="fan", exchange_type="fanout"),
             c.Queue.Declare(queue="full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"}),
             c.Queue.Declare(queue="other"), c.Queue.Bind(queue="full", exchange="fan"),
             c.Queue.Bind(queue="other", exchange="fan"), c.Confirm.Select())
    wire.send(1, *publish_frames("fan", "", b"half"))
    assert [type(m).__name__ for m in wire.methods()] == ["Nack"]
    assert drain(wire, "other") == [(b"half", False)]


def test_without_confirms_a_refused_publish_is_dropped_silently() -> None:
    wire = opened()
    declared(wire, c.Queue.Declare(queue="full", arguments={"x-max-length": 1, "x-overflow": "reject-publish"}))
    wire.send(1, *publish_frames("", "full", b"kept"), *publish_frames("", "full", b"dropped"))
    assert wire.methods() == []  # no nack, no channel close
    assert drain(wire, "full") == [(b"kept", False)]


def test_reject_publish_dlx_dead_letters_the_refused_message() -> None:
    wire = opened()
    declared(wire, c.Exchange.Declare(exchange="dlx", exchange_type="fanout"), c.Queue.Declare(queue="dead"),
             c.Queue.Bind(queue="dead", exchange="dlx"),
             c.Queue.Declare(queue="full", arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                                                      "x-dead-letter-exchange": "dlx"}),
             c.Confirm.Select())
    wire.send(1, *publish_frames("", "full", b"kept"))
    wire.send(1, *publish_frames("", "full", b"refused"))
    assert [type(m).__name__ for m in wire.methods()] == ["Ack", "Nack"]
    wire.send(1, c.Basic.Get(queue="dead", no_ack=True))
    frames = [f for _, f in wire.received()]
    assert [f.value for f in frames if hasattr(f, "value")] == [b"refused"]
    (header,) = [f for f in frames if isinstance(f, pamqp_header.ContentHeader)]
    (death,) = header.properties.headers["x-death"]
    assert (death["reason"], death["queue"]) == ("maxlen", "full")
    assert wire.broker.held == 1  # the refused one was never held


def test_an_unknown_overflow_mode_is_406() -> None:
    wire = opened()
    wire.send(1, c.Queue.Declare(queue="q", arguments={"x-overflow": "drop-tail"}))
    assert [m.reply_code for m in wire.methods() if isinstance(m, c.Channel.Close)] == [406]
