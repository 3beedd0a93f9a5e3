"""The AMQP connection state machine, bytes only: handshake, framing errors, heartbeats, channel errors."""

from __future__ import annotations

import struct

from pamqp import body as pamqp_body, commands as c, frame as pamqp_frame, header as pamqp_header

from adapters.amqp.errors import ReplyCode
from adapters.amqp.frames import PROTOCOL_HEADER
from adapters.amqp.settings import AMQPSettings
from core.auth import Credentials

from tests.adapters.amqp.wire import Wire


class OnlyAlice:
    def authenticate(self, credentials: Credentials) -> bool:
        return credentials.username == "alice" and credentials.password == b"secret"


def publish_frames(channel: int, exchange: str, routing_key: str, body: bytes) -> bytes:
    return b"".join(pamqp_frame.marshal(f, channel) for f in (
        c.Basic.Publish(exchange=exchange, routing_key=routing_key),
        pamqp_header.ContentHeader(0, len(body), c.Basic.Properties()), pamqp_body.ContentBody(body)))


def closes_connection_with(wire: Wire, code: int) -> c.Connection.Close:
    closes = [m for m in wire.methods() if isinstance(m, c.Connection.Close)]
    assert closes and closes[-1].reply_code == code, closes
    return closes[-1]


def test_a_wrong_protocol_header_gets_our_header_back_and_a_close() -> None:
    wire = Wire()
    wire.send_raw(b"AMQP\x01\x01\x00\x0a")
    assert wire.received() == [(0, PROTOCOL_HEADER)]
    assert wire.conn.closing


def test_an_http_request_instead_of_a_header_is_answered_with_our_header() -> None:
    wire = Wire()
    wire.send_raw(b"GET / HTTP/1.1\r\n")
    assert wire.received() == [(0, PROTOCOL_HEADER)]
    assert wire.conn.closing


def test_the_handshake_offers_plain_and_amqplain_then_tunes_and_opens() -> None:
    wire = Wire(AMQPSettings(heartbeat=30, frame_max=65536, channel_max=100))
    wire.send_raw(PROTOCOL_HEADER[:3])
    assert wire.received() == []
    wire.send_raw(PROTOCOL_HEADER[3:])
    (start,) = wire.methods()
    assert isinstance(start, c.Connection.Start)
    assert start.mechanisms.split() == ["PLAIN", "AMQPLAIN"]
    assert start.server_properties["capabilities"]["consumer_cancel_notify"] is True
    wire.send(0, c.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0guest\0guest"))
    (tune,) = wire.methods()
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (100, 65536, 30)
    wire.send(0, c.Connection.TuneOk(channel_max=100, frame_max=65536, heartbeat=30))
    wire.send(0, c.Connection.Open(virtual_host="/"))
    assert wire.names() == ["Connection.OpenOk"]
    assert wire.conn.heartbeat == 30 and wire.conn.frame_max == 65536


def test_a_refused_login_closes_with_403_access_refused() -> None:
    wire = Wire(AMQPSettings(authenticator=OnlyAlice()))
    wire.send_raw(PROTOCOL_HEADER)
    wire.received()
    wire.send(0, c.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0alice\0wrong"))
    closes_connection_with(wire, ReplyCode.ACCESS_REFUSED)


def test_an_amqplain_login_is_checked_by_the_authenticator() -> None:
    wire = Wire(AMQPSettings(authenticator=OnlyAlice()))
    wire.send_raw(PROTOCOL_HEADER)
    wire.received()
    table = b"\x05LOGINS\x00\x00\x00\x05alice\x08PASSWORDS\x00\x00\x00\x06secret"
    wire.send(0, c.Connection.StartOk(client_properties={}, mechanism="AMQPLAIN", response=table.decode()))
    assert wire.names() == ["Connection.Tune"]
    assert wire.conn.username == "alice"


def test_an_unknown_vhost_is_refused_with_530() -> None:
    wire = Wire()
    wire.send_raw(PROTOCOL_HEADER)
    wire.send(0, c.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0g\0g"))
    wire.send(0, c.Connection.TuneOk(channel_max=0, frame_max=0, heartbeat=0))
    wire.send(0, c.Connection.Open(virtual_host="/other"))
    closes_connection_with(wire, ReplyCode.NOT_ALLOWED)


def test_a_bad_frame_end_octet_closes_the_connection_with_501() -> None:
    wire = Wire()
    wire.handshake()
    frame = bytearray(__import__("pamqp.frame", fromlist=["marshal"]).marshal(c.Channel.Open(), 1))
    frame[-1] = 0x00
    wire.send_raw(bytes(frame))
    closes_connection_with(wire, ReplyCode.FRAME_ERROR)
    assert wire.conn.closing


def test_a_frame_larger_than_frame_max_closes_the_connection_with_501() -> None:
    wire = Wire()
    wire.handshake(frame_max=4096)
    wire.open_channel()
    wire.send_raw(struct.pack(">BHI", 3, 1, 5000))  # the header alone is enough to refuse it
    close = closes_connection_with(wire, ReplyCode.FRAME_ERROR)
    assert "frame_max" in close.reply_text


def test_a_truncated_method_closes_the_connection_with_501() -> None:
    wire = Wire()
    wire.handshake()
    payload = struct.pack(">HH", 50, 10) + b"\x00"  # queue.declare cut short
    wire.send_raw(struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce")
    closes_connection_with(wire, ReplyCode.FRAME_ERROR)


def test_a_content_body_without_a_publish_closes_the_connection_with_505() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send_raw(struct.pack(">BHI", 3, 1, 2) + b"hi" + b"\xce")
    closes_connection_with(wire, ReplyCode.UNEXPECTED_FRAME)
    assert wire.conn.state.value == "closing"
    wire.send(0, c.Connection.CloseOk())
    assert wire.conn.closing


def test_a_method_in_the_middle_of_content_closes_the_connection_with_505() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Basic.Publish(exchange="", routing_key="q"), c.Basic.Qos(prefetch_count=1))
    closes_connection_with(wire, ReplyCode.UNEXPECTED_FRAME)


def test_a_method_on_a_channel_never_opened_closes_the_connection_with_504() -> None:
    wire = Wire()
    wire.handshake()
    wire.send(3, c.Queue.Declare(queue="q"))
    closes_connection_with(wire, ReplyCode.CHANNEL_ERROR)


def test_a_missing_queue_closes_only_the_channel_with_404() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel(1)
    wire.send(1, c.Basic.Get(queue="nowhere"))
    (close,) = wire.methods()
    assert isinstance(close, c.Channel.Close)
    assert (close.reply_code, close.class_id, close.method_id) == (404, 60, 70)
    assert "no queue 'nowhere'" in close.reply_text
    wire.send(1, c.Channel.CloseOk())
    wire.open_channel(1)  # the number is free again and the connection is fine
    wire.send(1, c.Queue.Declare(queue="q"))
    assert wire.names() == ["Queue.DeclareOk"]


def test_frames_after_a_channel_error_are_ignored_until_close_ok() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel(1)
    wire.send(1, c.Basic.Get(queue="nowhere"), c.Queue.Declare(queue="q"))
    assert wire.names() == ["Channel.Close"]


def test_reusing_a_consumer_tag_closes_the_connection_with_530() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Queue.Declare(queue="q"), c.Basic.Consume(queue="q", consumer_tag="t"))
    wire.received()
    wire.send(1, c.Basic.Consume(queue="q", consumer_tag="t"))
    closes_connection_with(wire, ReplyCode.NOT_ALLOWED)


def test_the_server_sends_heartbeats_and_closes_a_silent_connection() -> None:
    wire = Wire()
    wire.handshake(heartbeat=2)
    start = wire.clock.now
    assert wire.conn.next_deadline() == start + 1  # our heartbeat, every half interval
    wire.clock.now = start + 1
    wire.conn.handle_timeout()
    assert wire.conn.data_to_send() == b"\x08\x00\x00\x00\x00\x00\x00\xce"
    wire.clock.now = start + 3.9
    wire.conn.handle_timeout()
    assert not wire.conn.closing
    wire.clock.now = start + 4  # two intervals without a single octet from the client
    wire.conn.handle_timeout()
    assert wire.conn.closing


def test_any_client_traffic_keeps_the_connection_alive() -> None:
    wire = Wire()
    wire.handshake(heartbeat=2)
    wire.clock.now += 3
    wire.send_raw(b"\x08\x00\x00\x00\x00\x00\x00\xce")
    wire.clock.now += 3
    wire.conn.handle_timeout()
    assert not wire.conn.closing


def test_a_handshake_that_stalls_is_dropped_at_the_handshake_timeout() -> None:
    wire = Wire(AMQPSettings(handshake_timeout=5))
    wire.send_raw(PROTOCOL_HEADER)
    wire.clock.now += 5
    wire.conn.handle_timeout()
    assert wire.conn.closing


def test_the_client_closing_gets_close_ok_and_closes_the_socket_itself() -> None:
    wire = Wire(AMQPSettings(close_timeout=3))
    wire.handshake()
    wire.send(0, c.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
    assert wire.names() == ["Connection.CloseOk"]
    assert not wire.conn.closing  # the client closes first (no TIME_WAIT here, no reset there)
    assert wire.conn.next_deadline() == wire.clock.now + 3
    wire.conn.connection_lost()  # its FIN
    assert wire.conn.closing


def test_a_client_that_never_closes_after_close_ok_is_closed_at_the_close_timeout() -> None:
    wire = Wire(AMQPSettings(close_timeout=3))
    wire.handshake()
    wire.send(0, c.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
    wire.clock.now += 2.9
    wire.conn.handle_timeout()
    assert not wire.conn.closing
    wire.clock.now += 0.1
    wire.conn.handle_timeout()
    assert wire.conn.closing and wire.names() == ["Connection.CloseOk"]


def test_every_frame_before_the_client_close_is_processed_and_every_frame_after_it_dropped() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Queue.Declare(queue="q"))
    wire.received()
    data = bytearray()
    for i in range(1000):  # as amqplib writes them: publishes, the close, more publishes, in one stream
        if i == 600:
            data += pamqp_frame.marshal(c.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0), 0)
        data += publish_frames(1, "", "q", str(i).encode())
    wire.send_raw(bytes(data[:70_000]))
    wire.send_raw(bytes(data[70_000:]))
    assert wire.names() == ["Connection.CloseOk"]
    assert wire.broker.vhosts["/"].queues["q"].message_count == 600
    wire.send(1, c.Basic.Get(queue="q"))  # dropped unread: no answer, no error
    assert wire.received() == [] and not wire.conn.closing


def test_frames_while_waiting_for_close_ok_are_dropped_and_close_ok_closes() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Queue.Declare(queue="q"))
    wire.received()
    wire.send(3, c.Queue.Declare(queue="x"))  # 504: our connection.close
    closes_connection_with(wire, ReplyCode.CHANNEL_ERROR)
    wire.send_raw(publish_frames(1, "", "q", b"late") + pamqp_frame.marshal(c.Basic.Get(queue="q"), 1))
    assert wire.received() == [] and not wire.conn.closing
    assert wire.broker.vhosts["/"].queues["q"].message_count == 0
    wire.send(0, c.Connection.CloseOk())
    assert wire.conn.closing


def test_a_client_closing_at_the_same_time_gets_close_ok_and_we_still_wait_for_ours() -> None:
    wire = Wire()
    wire.handshake()
    wire.conn.shutdown(wait=1.5)
    closes_connection_with(wire, ReplyCode.CONNECTION_FORCED)
    wire.send(0, c.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
    assert wire.names() == ["Connection.CloseOk"] and not wire.conn.closing
    wire.send(0, c.Connection.CloseOk())
    assert wire.conn.closing


def test_shutdown_with_a_wait_closes_on_close_ok_or_at_its_deadline() -> None:
    wire = Wire()
    wire.handshake()
    wire.conn.shutdown(wait=1.5)
    closes_connection_with(wire, ReplyCode.CONNECTION_FORCED)
    assert not wire.conn.closing and wire.conn.next_deadline() == wire.clock.now + 1.5
    wire.clock.now += 1.5
    wire.conn.handle_timeout()
    assert wire.conn.closing


def test_garbage_while_waiting_for_close_ok_is_dropped_until_the_deadline() -> None:
    wire = Wire(AMQPSettings(close_timeout=3))
    wire.handshake()
    wire.send(3, c.Queue.Declare(queue="x"))
    closes_connection_with(wire, ReplyCode.CHANNEL_ERROR)
    wire.send_raw(b"\x01\x00\x01\x00\x00\x00\x00\x00")  # a bad frame end
    wire.send(0, c.Connection.CloseOk())  # unreadable after that: the deadline closes
    assert wire.received() == [] and not wire.conn.closing
    wire.clock.now += 3
    wire.conn.handle_timeout()
    assert wire.conn.closing


def test_shutdown_sends_320_connection_forced() -> None:
    wire = Wire()
    wire.handshake()
    wire.conn.shutdown()
    closes_connection_with(wire, ReplyCode.CONNECTION_FORCED)
    assert wire.conn.closing


def test_a_message_larger_than_frame_max_is_delivered_in_several_body_frames() -> None:
    wire = Wire()
    wire.handshake(frame_max=4096)
    wire.open_channel()
    wire.send(1, c.Queue.Declare(queue="big"))
    wire.received()
    body = bytes(range(256)) * 40  # 10240 octets
    wire.publish(1, "", "big", body)
    wire.send(1, c.Basic.Get(queue="big", no_ack=True))
    frames = [f for _, f in wire.received()]
    assert frames[0].name == "Basic.GetOk"
    bodies = [f.value for f in frames[2:]]
    assert len(bodies) == 3 and b"".join(bodies) == body


class SlowAuthenticator:
    """A password check too slow for the event loop: `quick_check` defers every login."""

    def quick_check(self, credentials: Credentials) -> bool | None:
        return None

    def authenticate(self, credentials: Credentials) -> bool:
        return credentials.password == b"secret"


def test_a_slow_login_holds_the_input_until_the_owner_decides() -> None:
    wire = Wire(AMQPSettings(authenticator=SlowAuthenticator()))
    wire.send_raw(PROTOCOL_HEADER)
    wire.received()
    wire.send(0, c.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0alice\0secret"),
              c.Connection.TuneOk(channel_max=0, frame_max=0, heartbeat=0), c.Connection.Open(virtual_host="/"))
    assert wire.received() == []  # nothing answered while the check runs
    login = wire.conn.pending_login
    assert login is not None and (login.username, login.password) == ("alice", b"secret")
    wire.conn.login_decided(SlowAuthenticator().authenticate(login))
    assert wire.names() == ["Connection.Tune", "Connection.OpenOk"]  # the held frames then ran
    assert wire.conn.username == "alice"


def test_a_slow_login_that_fails_closes_with_403() -> None:
    wire = Wire(AMQPSettings(authenticator=SlowAuthenticator()))
    wire.send_raw(PROTOCOL_HEADER)
    wire.send(0, c.Connection.StartOk(client_properties={}, mechanism="PLAIN", response="\0alice\0nope"))
    wire.received()
    wire.conn.login_decided(False)
    close = closes_connection_with(wire, ReplyCode.ACCESS_REFUSED)
    assert (close.class_id, close.method_id) == (10, 11)


# A content header whose headers table holds a long string that is not UTF-8 ({"k": b"\xff\xfe"}),
# as the fuzzer's mutated publishes did: pamqp decodes it as bytes, which it cannot encode again.
NOT_UTF8_HEADER = bytes.fromhex("003c" "0000" "0000000000000001" "2000" "00000009016b5300000002fffe")
NOT_UTF8_HEADER_FRAME = struct.pack(">BHI", 2, 1, len(NOT_UTF8_HEADER)) + NOT_UTF8_HEADER + b"\xce"


def publish_with_a_header_that_is_not_utf8(wire: Wire, exchange: str, routing_key: str, *, mandatory: bool = False) -> None:
    wire.send(1, c.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=mandatory))
    wire.send_raw(NOT_UTF8_HEADER_FRAME + b"\x03\x00\x01\x00\x00\x00\x01x\xce")  # and a one-byte body


def test_a_header_that_is_not_utf8_survives_dead_lettering() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel(1)
    wire.send(1, c.Queue.Declare(queue="dead"), c.Queue.Declare(queue="src", arguments={
        "x-max-length": 1, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}))
    assert wire.names() == ["Queue.DeclareOk", "Queue.DeclareOk"]
    publish_with_a_header_that_is_not_utf8(wire, "", "src")
    publish_with_a_header_that_is_not_utf8(wire, "", "src")  # drops the first: dead-lettered, headers re-encoded
    wire.send(1, c.Basic.Get(queue="dead", no_ack=True))
    frames = [f for _, f in wire.received()]
    assert [getattr(f, "name", type(f).__name__) for f in frames][:2] == ["Basic.GetOk", "ContentHeader"]
    headers = frames[1].properties.headers
    assert headers["k"] == b"\xff\xfe" and headers["x-death"][0]["reason"] == "maxlen"


def test_a_header_that_is_not_utf8_survives_a_mandatory_return() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel(1)
    publish_with_a_header_that_is_not_utf8(wire, "", "no-such-queue", mandatory=True)
    names = wire.names()
    assert names[:2] == ["Basic.Return", "ContentHeader"], names


# Every method a client may send in AMQP 0-9-1 with RabbitMQ's extensions (the spec's "server" chassis).
CLIENT_METHODS = {
    c.Connection.StartOk, c.Connection.SecureOk, c.Connection.TuneOk, c.Connection.Open, c.Connection.Close,
    c.Connection.CloseOk, c.Connection.UpdateSecret,
    c.Channel.Open, c.Channel.Flow, c.Channel.FlowOk, c.Channel.Close, c.Channel.CloseOk,
    c.Exchange.Declare, c.Exchange.Delete, c.Exchange.Bind, c.Exchange.Unbind,
    c.Queue.Declare, c.Queue.Bind, c.Queue.Purge, c.Queue.Delete, c.Queue.Unbind,
    c.Basic.Qos, c.Basic.Consume, c.Basic.Cancel, c.Basic.Publish, c.Basic.Get, c.Basic.Ack, c.Basic.Reject,
    c.Basic.RecoverAsync, c.Basic.Recover, c.Basic.Nack,
    c.Confirm.Select, c.Tx.Select, c.Tx.Commit, c.Tx.Rollback,
}
ON_CHANNEL_ZERO = {c.Connection.StartOk, c.Connection.SecureOk, c.Connection.TuneOk, c.Connection.Open,
                   c.Connection.Close, c.Connection.CloseOk, c.Connection.UpdateSecret}
ON_CHANNELS = {c.Channel.Open, c.Channel.Close, c.Channel.CloseOk}


def test_every_method_a_client_may_send_is_handled_or_named_not_implemented() -> None:
    from adapters.amqp.methods import HANDLERS, NOT_IMPLEMENTED

    covered = set(HANDLERS) | set(NOT_IMPLEMENTED) | ON_CHANNEL_ZERO | ON_CHANNELS
    assert CLIENT_METHODS - covered == set()
    assert set(NOT_IMPLEMENTED) <= CLIENT_METHODS and not set(NOT_IMPLEMENTED) & set(HANDLERS)


def test_connection_update_secret_without_an_access_token_login_is_403() -> None:
    """update-secret renews an access token ([auth.jwt], tests/e2e/test_jwt_logins.py); a connection
    that logged in otherwise has none to renew."""
    wire = Wire()
    wire.handshake()
    wire.send(0, c.Connection.UpdateSecret(new_secret="token", reason="refresh"))
    close = closes_connection_with(wire, ReplyCode.ACCESS_REFUSED)
    assert (close.class_id, close.method_id) == (10, 70)


def test_exchange_to_exchange_binding_to_a_missing_exchange_is_a_404_channel_error() -> None:
    """exchange.bind is implemented (issue 18; it was 540): a missing end closes the channel only."""
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Exchange.Bind(destination="a", source="amq.topic", routing_key="#"))
    (close,) = [m for m in wire.methods() if isinstance(m, c.Channel.Close)]
    assert (close.reply_code, close.class_id, close.method_id) == (404, 40, 30)
    assert "no exchange 'a'" in close.reply_text


def test_a_method_only_a_server_sends_is_503_command_invalid() -> None:
    for channel, method in ((1, c.Basic.Deliver(consumer_tag="t", delivery_tag=1, exchange="", routing_key="q")),
                            (1, c.Queue.DeclareOk(queue="q", message_count=0, consumer_count=0)),
                            (0, c.Connection.Tune(channel_max=0, frame_max=0, heartbeat=0)),
                            (1, c.Connection.UpdateSecret(new_secret="s", reason="r"))):
        wire = Wire()
        wire.handshake()
        wire.open_channel()
        wire.send(channel, method)
        closes_connection_with(wire, ReplyCode.COMMAND_INVALID)


def test_an_unknown_exchange_type_closes_only_the_channel_with_406() -> None:
    wire = Wire()
    wire.handshake()
    wire.open_channel()
    wire.send(1, c.Exchange.Declare(exchange="odd", exchange_type="x-no-such-type"))
    (close,) = wire.methods()
    assert isinstance(close, c.Channel.Close) and close.reply_code == ReplyCode.PRECONDITION_FAILED
    assert "invalid exchange type 'x-no-such-type'" in close.reply_text and not wire.conn.closing
