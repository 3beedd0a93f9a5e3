"""Direct reply-to (amq.rabbitmq.reply-to), bytes only (issue 18)."""

from __future__ import annotations

from typing import Any

from pamqp import commands as c

from adapters.amqp.errors import ReplyCode
from adapters.amqp.reply_to import REPLY_PREFIX, REPLY_QUEUE

from tests.adapters.amqp.wire import Wire


def opened(broker: Any = None) -> Wire:
    wire = Wire(broker=broker)
    wire.handshake()
    wire.open_channel()
    return wire


def asked(requester: Wire, responder: Wire) -> c.Basic.Properties:
    """The requester publishes a request with reply_to amq.rabbitmq.reply-to; the responder gets it."""
    requester.publish(1, "", "rpc", b"question", c.Basic.Properties(reply_to=REPLY_QUEUE, correlation_id="1"))
    responder.send(1, c.Basic.Get(queue="rpc", no_ack=True))
    frames = [f for _, f in responder.received()]
    assert [f.name for f in frames] == ["Basic.GetOk", "ContentHeader", "ContentBody"]
    return frames[1].properties


def setup() -> tuple[Wire, Wire]:
    requester = opened()
    responder = opened(requester.broker)
    responder.send(1, c.Queue.Declare(queue="rpc"))
    responder.received()
    requester.send(1, c.Basic.Consume(queue=REPLY_QUEUE, consumer_tag="replies", no_ack=True))
    assert requester.names() == ["Basic.ConsumeOk"]
    return requester, responder


def test_a_reply_to_the_rewritten_key_reaches_the_requesters_consumer() -> None:
    requester, responder = setup()
    properties = asked(requester, responder)
    assert properties.reply_to.startswith(REPLY_PREFIX) and properties.correlation_id == "1"
    responder.publish(1, "", properties.reply_to, b"answer", c.Basic.Properties(correlation_id="1"))
    frames = [f for _, f in requester.received()]
    assert [f.name for f in frames] == ["Basic.Deliver", "ContentHeader", "ContentBody"]
    assert (frames[0].consumer_tag, frames[0].exchange, frames[0].routing_key) == ("replies", "", properties.reply_to)
    assert frames[2].value == b"answer" and frames[1].properties.correlation_id == "1"
    assert len(requester.broker.vhosts["/"].queues) == 1  # no queue was declared for it


def test_a_reply_after_the_consumer_is_gone_is_unroutable_and_returned_if_mandatory() -> None:
    requester, responder = setup()
    key = asked(requester, responder).reply_to
    requester.send(1, c.Basic.Cancel(consumer_tag="replies"))
    assert requester.names() == ["Basic.CancelOk"]
    responder.publish(1, "", key, b"late", mandatory=True)
    assert responder.names()[0] == "Basic.Return"
    assert len(requester.broker.vhosts["/"].replies) == 0


def test_a_reply_consumer_must_be_no_ack_and_one_per_channel() -> None:
    wire = opened()
    wire.send(1, c.Basic.Consume(queue=REPLY_QUEUE, consumer_tag="a", no_ack=False))
    (close,) = wire.methods()
    assert isinstance(close, c.Channel.Close) and close.reply_code == ReplyCode.PRECONDITION_FAILED
    wire = opened()
    wire.send(1, c.Basic.Consume(queue=REPLY_QUEUE, consumer_tag="a", no_ack=True),
              c.Basic.Consume(queue=REPLY_QUEUE, consumer_tag="b", no_ack=True))
    assert [m.name for m in wire.methods()] == ["Basic.ConsumeOk", "Channel.Close"]


def test_a_request_without_a_reply_consumer_is_406() -> None:
    wire = opened()
    wire.send(1, c.Queue.Declare(queue="rpc"))
    wire.received()
    wire.publish(1, "", "rpc", b"question", c.Basic.Properties(reply_to=REPLY_QUEUE))
    (close,) = wire.methods()
    assert isinstance(close, c.Channel.Close) and close.reply_code == ReplyCode.PRECONDITION_FAILED
    assert "fast reply consumer does not exist" in close.reply_text


def test_a_passive_declare_of_the_pseudo_queue_succeeds() -> None:
    wire = opened()
    wire.send(1, c.Queue.Declare(queue=REPLY_QUEUE, passive=True))
    (ok,) = wire.methods()
    assert isinstance(ok, c.Queue.DeclareOk) and ok.queue == REPLY_QUEUE


def test_the_server_advertises_direct_reply_to() -> None:
    from adapters.amqp.frames import PROTOCOL_HEADER

    wire = Wire()
    wire.send_raw(PROTOCOL_HEADER)
    (start,) = wire.methods()
    assert start.server_properties["capabilities"]["direct_reply_to"] is True
