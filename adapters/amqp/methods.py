"""One handler per channel method, validating in the spec's order.

Each handler takes the channel and the decoded method, changes state through
the vhost and the channel, and sends its reply (unless `nowait`). A handler
raises `AMQPError`; the connection turns it into channel.close or
connection.close by its reply code (errors.py). Permissions on queues and
exchanges (permissions.py) are checked first, as RabbitMQ does; declarations
are checked by the vhost, which names server-named queues. Names lose their CR
and LF characters where RabbitMQ strips them (declare, delete, bind, unbind).
"""

from __future__ import annotations

from typing import Callable

from pamqp import base, commands as c

from adapters.amqp import errors
from adapters.amqp.channel import Channel, ChannelState
from adapters.amqp.content import Content
from adapters.amqp.frames import encode_declare_ok, encode_return
from adapters.amqp.permissions import CONFIGURE, EXCHANGE, QUEUE, READ, WRITE
from adapters.amqp.properties import copy_properties
from adapters.amqp.queues import Consumer
from adapters.amqp.reply_to import REPLY_PREFIX, REPLY_QUEUE

Handler = Callable[[Channel, base.Frame], None]


# -- channel class -------------------------------------------------------------------------


def channel_flow(ch: Channel, m: c.Channel.Flow) -> None:
    ch.flow_active = bool(m.active)
    ch.send(c.Channel.FlowOk(active=ch.flow_active))
    ch.pump()


def ignore(ch: Channel, m: base.Frame) -> None:
    pass


# -- exchange class ------------------------------------------------------------------------


def _require(ch: Channel, permission: int, kind: str, name: str) -> None:
    """403 unless this connection's user has `permission` on the queue or exchange `name`."""
    vhost = ch.conn.vhost
    vhost.permissions.require(vhost, ch.conn.principal, permission, kind, name, ch.conn)


def _stripped(name: str) -> str:
    """RabbitMQ's strip_cr_lf: a name never holds a line break."""
    return name.replace("\r", "").replace("\n", "") if "\r" in name or "\n" in name else name


def exchange_declare(ch: Channel, m: c.Exchange.Declare) -> None:
    ch.conn.vhost.declare_exchange(_stripped(m.exchange), m.exchange_type, passive=m.passive, durable=m.durable,
                                   auto_delete=m.auto_delete, internal=m.internal, arguments=m.arguments,
                                   principal=ch.conn.principal)
    if not m.nowait:
        ch.send(c.Exchange.DeclareOk())


def _exchange_ends(ch: Channel, m: c.Exchange.Bind | c.Exchange.Unbind) -> tuple[str, str]:
    """RabbitMQ's exchange-to-exchange binding: write on the destination, read on the source."""
    destination, source = _stripped(m.destination), _stripped(m.source)
    _require(ch, WRITE, EXCHANGE, destination)
    _require(ch, READ, EXCHANGE, source)
    return destination, source


def exchange_bind(ch: Channel, m: c.Exchange.Bind) -> None:
    destination, source = _exchange_ends(ch, m)
    ch.conn.vhost.bind_exchange(destination, source, m.routing_key, m.arguments, ch.conn.access)
    if not m.nowait:
        ch.send(c.Exchange.BindOk())


def exchange_unbind(ch: Channel, m: c.Exchange.Unbind) -> None:
    destination, source = _exchange_ends(ch, m)
    ch.conn.vhost.unbind_exchange(destination, source, m.routing_key, m.arguments)
    if not m.nowait:
        ch.send(c.Exchange.UnbindOk())


def exchange_delete(ch: Channel, m: c.Exchange.Delete) -> None:
    name = _stripped(m.exchange)
    _require(ch, CONFIGURE, EXCHANGE, name)
    ch.conn.vhost.delete_exchange(name, if_unused=m.if_unused)
    if not m.nowait:
        ch.send(c.Exchange.DeleteOk())


# -- queue class ---------------------------------------------------------------------------


def _queue_name(ch: Channel, name: str) -> str:
    """An empty queue name means the channel's last declared queue (0-9-1 section 1.7.2)."""
    if name:
        return name
    if not ch.last_queue:
        raise errors.not_found("no previously declared queue")
    return ch.last_queue


def queue_declare(ch: Channel, m: c.Queue.Declare) -> None:
    if m.passive and m.queue == REPLY_QUEUE:  # clients check for direct reply-to this way
        ch.conn.send_bytes(encode_declare_ok(ch.number, REPLY_QUEUE, 0, 0))
        return
    queue = ch.conn.vhost.declare_queue(_stripped(m.queue), ch.conn, passive=m.passive, durable=m.durable,
                                        exclusive=m.exclusive, auto_delete=m.auto_delete, arguments=m.arguments,
                                        principal=ch.conn.principal)
    ch.last_queue = queue.name
    if not m.nowait:
        ch.conn.send_bytes(encode_declare_ok(ch.number, queue.name, queue.message_count, len(queue.consumers)))


def queue_bind(ch: Channel, m: c.Queue.Bind) -> None:
    name, exchange = _queue_name(ch, _stripped(m.queue)), _stripped(m.exchange)
    key = m.routing_key if (m.routing_key or m.queue) else name
    _require(ch, WRITE, QUEUE, name)
    _require(ch, READ, EXCHANGE, exchange)
    ch.conn.vhost.bind(name, exchange, key, m.arguments, ch.conn, ch.conn.access)
    if not m.nowait:
        ch.send(c.Queue.BindOk())


def queue_unbind(ch: Channel, m: c.Queue.Unbind) -> None:
    name, exchange = _queue_name(ch, _stripped(m.queue)), _stripped(m.exchange)
    _require(ch, WRITE, QUEUE, name)
    _require(ch, READ, EXCHANGE, exchange)
    ch.conn.vhost.unbind(name, exchange, m.routing_key, m.arguments, ch.conn)
    ch.send(c.Queue.UnbindOk())


def queue_purge(ch: Channel, m: c.Queue.Purge) -> None:
    name = _queue_name(ch, m.queue)
    _require(ch, CONFIGURE, QUEUE, name)
    count = ch.conn.vhost.purge_queue(name, ch.conn)
    if not m.nowait:
        ch.send(c.Queue.PurgeOk(message_count=count))


def queue_delete(ch: Channel, m: c.Queue.Delete) -> None:
    name = _queue_name(ch, _stripped(m.queue))
    _require(ch, CONFIGURE, QUEUE, name)
    count = ch.conn.vhost.delete_queue(name, ch.conn, if_unused=m.if_unused, if_empty=m.if_empty)
    if not m.nowait:
        ch.send(c.Queue.DeleteOk(message_count=count))


# -- basic class ---------------------------------------------------------------------------


def basic_qos(ch: Channel, m: c.Basic.Qos) -> None:
    if m.prefetch_size:
        raise errors.not_implemented("prefetch_size!=0 (%d)" % m.prefetch_size)
    if m.global_:
        ch.global_prefetch = m.prefetch_count
    else:
        ch.prefetch = m.prefetch_count
    ch.send(c.Basic.QosOk())
    ch.pump()


def basic_consume(ch: Channel, m: c.Basic.Consume) -> None:
    name = _queue_name(ch, m.queue)
    tag = m.consumer_tag or ch.new_consumer_tag()
    if tag in ch.consumers:
        raise errors.not_allowed(f"attempt to reuse consumer tag '{tag}'")
    if name == REPLY_QUEUE:
        _consume_replies(ch, m, tag)
        return
    _require(ch, READ, QUEUE, name)
    queue = ch.conn.vhost.queue(name, ch.conn)
    if queue.has_exclusive_consumer or (m.exclusive and queue.consumers):
        raise errors.access_refused(f"queue '{queue.name}' in vhost '{ch.conn.vhost.name}' in exclusive use")
    consumer = Consumer(tag, queue, ch, no_ack=m.no_ack, exclusive=m.exclusive, prefetch=ch.prefetch,
                        arguments=m.arguments)
    ch.consumers[tag] = consumer
    if not m.nowait:
        ch.send(c.Basic.ConsumeOk(consumer_tag=tag))  # before the first basic.deliver
    queue.add_consumer(consumer, ch.conn.vhost_clock())


def _consume_replies(ch: Channel, m: c.Basic.Consume, tag: str) -> None:
    consumer = ch.conn.vhost.replies.consume(ch, tag, m.no_ack)
    ch.consumers[tag] = consumer
    if not m.nowait:
        ch.send(c.Basic.ConsumeOk(consumer_tag=tag))
    consumer.queue.add_consumer(consumer, ch.conn.vhost_clock())


def basic_cancel(ch: Channel, m: c.Basic.Cancel) -> None:
    ch.cancel(m.consumer_tag)
    if not m.nowait:
        ch.send(c.Basic.CancelOk(consumer_tag=m.consumer_tag))


def basic_publish(ch: Channel, m: c.Basic.Publish) -> None:
    if m.immediate:
        raise errors.not_implemented("immediate=true")
    ch.conn.published = True
    ch.start_content(m)


def complete_publish(ch: Channel, m: c.Basic.Publish, properties: c.Basic.Properties, body: bytes,
                     header: bytes | None = None) -> None:
    """A whole message arrived: route it now, or keep it for tx.commit (write permission checked now)."""
    if m.exchange:
        _require(ch, WRITE, EXCHANGE, m.exchange)
    elif not m.routing_key.startswith(REPLY_PREFIX):  # the default exchange: write on the queue it names
        _require(ch, WRITE, QUEUE, m.routing_key)
    if properties.reply_to == REPLY_QUEUE:  # a direct reply-to request: the reply key names our consumer
        properties = copy_properties(properties, reply_to=ch.conn.vhost.replies.key_of(ch))
        header = None
    if ch.tx:
        ch.conn.vhost.exchange(m.exchange)  # a missing exchange fails now, as in RabbitMQ
        ch.tx_actions.append(("publish", m, properties, body, header))
        return
    rejected = route(ch, m, properties, body, header)
    if ch.confirm:  # after routing: a publish that closes the channel (404, 403) is never confirmed
        ch.publish_seq += 1
        if rejected:  # a full queue with x-overflow reject-publish refused it: basic.nack, as RabbitMQ
            ch.rejected.append(ch.publish_seq)
        elif properties.delivery_mode == 2:
            ch.durable_seq = ch.publish_seq  # its ack waits for the store (Channel.flush_confirms)


def route(ch: Channel, m: c.Basic.Publish, properties: c.Basic.Properties, body: bytes,
          header: bytes | None = None) -> bool:
    """Route a publish (basic.return if mandatory and unroutable); True if a queue refused it."""
    outcome = ch.conn.vhost.publish(m.exchange, m.routing_key, properties, body, ch.conn.principal, header)
    if outcome.hold_on:  # MQTT/WebSocket subscribers it reached are behind: the publisher waits briefly
        ch.conn.hold_for(outcome.hold_on)
    if not outcome.routed and m.mandatory:
        ret = encode_return(ch.number, errors.ReplyCode.NO_ROUTE, "NO_ROUTE", m.exchange, m.routing_key)
        content = Content(m.exchange, m.routing_key, properties, body)
        ch.conn.send_bytes(ret + content.frames(ch.number, ch.conn.frame_max))
    return outcome.rejected


def basic_get(ch: Channel, m: c.Basic.Get) -> None:
    name = _queue_name(ch, m.queue)
    _require(ch, READ, QUEUE, name)
    queue = ch.conn.vhost.queue(name, ch.conn)
    entry = queue.get(ch.conn.vhost_clock())
    if entry is None:
        ch.send(c.Basic.GetEmpty())
    else:
        ch.deliver_get(queue, entry, m.no_ack)


def _acknowledge(ch: Channel, tag: int, multiple: bool, outcome: str) -> None:
    items = ch.take_unacked(tag, multiple)
    if ch.tx:
        ch.tx_actions.append(("settle", items, outcome))
    else:
        ch.settle(items, outcome)


def basic_ack(ch: Channel, m: c.Basic.Ack) -> None:
    _acknowledge(ch, m.delivery_tag, m.multiple, "ack")


def basic_nack(ch: Channel, m: c.Basic.Nack) -> None:
    _acknowledge(ch, m.delivery_tag, m.multiple, "requeue" if m.requeue else "reject")


def basic_reject(ch: Channel, m: c.Basic.Reject) -> None:
    _acknowledge(ch, m.delivery_tag, False, "requeue" if m.requeue else "reject")


def basic_recover(ch: Channel, m: c.Basic.Recover) -> None:
    ch.settle(ch.take_unacked(0, True), "requeue")
    ch.send(c.Basic.RecoverOk())


def basic_recover_async(ch: Channel, m: c.Basic.RecoverAsync) -> None:
    ch.settle(ch.take_unacked(0, True), "requeue")


# -- confirm and tx classes -------------------------------------------------------------------


def confirm_select(ch: Channel, m: c.Confirm.Select) -> None:
    if ch.tx:
        raise errors.precondition_failed("cannot switch from tx to confirm mode")
    ch.confirm = True
    if not m.nowait:
        ch.send(c.Confirm.SelectOk())


def tx_select(ch: Channel, m: c.Tx.Select) -> None:
    if ch.confirm:
        raise errors.precondition_failed("cannot switch from confirm to tx mode")
    ch.tx = True
    ch.send(c.Tx.SelectOk())


def tx_commit(ch: Channel, m: c.Tx.Commit) -> None:
    if not ch.tx:
        raise errors.precondition_failed("channel is not transactional")
    actions, ch.tx_actions = ch.tx_actions, []
    for action in actions:
        if action[0] == "publish":
            route(ch, action[1], action[2], action[3], action[4])
        else:
            ch.settle(action[1], action[2])
    ch.send(c.Tx.CommitOk())


def tx_rollback(ch: Channel, m: c.Tx.Rollback) -> None:
    if not ch.tx:
        raise errors.precondition_failed("channel is not transactional")
    # Acknowledgements rolled back: those deliveries are unacknowledged again.
    restore = [item for action in ch.tx_actions if action[0] == "settle" for item in action[1]]
    ch.tx_actions = []
    for item in restore:
        ch.restore_unacked(item)
    ch.send(c.Tx.RollbackOk())


HANDLERS: dict[type, Handler] = {
    c.Channel.Flow: channel_flow,
    c.Channel.FlowOk: ignore,
    c.Exchange.Declare: exchange_declare,
    c.Exchange.Delete: exchange_delete,
    c.Exchange.Bind: exchange_bind,
    c.Exchange.Unbind: exchange_unbind,
    c.Queue.Declare: queue_declare,
    c.Queue.Bind: queue_bind,
    c.Queue.Unbind: queue_unbind,
    c.Queue.Purge: queue_purge,
    c.Queue.Delete: queue_delete,
    c.Basic.Qos: basic_qos,
    c.Basic.Consume: basic_consume,
    c.Basic.Cancel: basic_cancel,
    c.Basic.Publish: basic_publish,
    c.Basic.Get: basic_get,
    c.Basic.Ack: basic_ack,
    c.Basic.Nack: basic_nack,
    c.Basic.Reject: basic_reject,
    c.Basic.Recover: basic_recover,
    c.Basic.RecoverAsync: basic_recover_async,
    c.Confirm.Select: confirm_select,
    c.Tx.Select: tx_select,
    c.Tx.Commit: tx_commit,
    c.Tx.Rollback: tx_rollback,
}

# Methods a client may send (0-9-1 and RabbitMQ's extensions) that this server does not implement:
# 540 NOT_IMPLEMENTED, a connection error. Methods only a server sends (basic.deliver, queue.declare-ok,
# ...) are 503 COMMAND_INVALID from a client, as in RabbitMQ. Not implemented options of implemented
# methods (basic.qos prefetch_size, basic.publish immediate) are 540 in their handlers.
NOT_IMPLEMENTED: dict[type, str] = {}  # none left since exchange.bind / exchange.unbind (issue 18)


def unhandled(method: base.Frame, channel: int) -> errors.AMQPError:
    """The error for a method no handler takes: 540 if a client may send it (connection methods on
    channel 0, the others on a channel), else 503."""
    text = NOT_IMPLEMENTED.get(type(method))
    if text is not None and (channel == 0) == method.name.startswith("Connection."):
        return errors.not_implemented(text)
    return errors.command_invalid(f"unexpected method {method.name} on channel {channel}")


__all__ = ["HANDLERS", "NOT_IMPLEMENTED", "ChannelState", "complete_publish", "unhandled"]
