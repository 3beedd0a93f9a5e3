"""What one user declares over AMQP, no other user may take (issue 24), with pika, aio-pika and paho.

The issue's setting: a password file, `allow_anonymous = false`, and an ACL file where alice may
use every topic and bob only `public/#`. Each row of the issue's table is tried as bob against
alice's durable queue: the answer is a 403 channel close naming bob, the operation and the queue,
and alice's queue and message are still there afterwards.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import aio_pika
import aiormq
import pika
import pytest
from pika.exceptions import ChannelClosedByBroker

from core.passwords import PasswordFile
from tests.conftest import LOOPBACK, RunningGateway
from tests.e2e.amqp_support import TIMEOUT, amqp_config, amqp_port, next_message, unique, wait_until
from tests.e2e.clients import PahoClient

ACL = """\
user alice
topic readwrite #

user bob
topic readwrite public/#

user carol
topic readwrite public/#
queue all %u-.*
queue read alice-shared-.*
exchange all amq\\..*

user dave
topic readwrite public/#
"""
USERS = {"alice": "wonderland", "bob": "builder", "carol": "c4r0l", "dave": "d4ve", "root": "r00t"}
PERSISTENT = pika.BasicProperties(delivery_mode=2)


def secured_config(folder: Path, store: str = "memory") -> Any:
    users = PasswordFile()
    for name, password in USERS.items():
        users.set(name, password, iterations=1000)
    users.save(folder / "passwd")
    (folder / "acl").write_text(ACL, encoding="utf-8")
    return amqp_config(auth={"password_file": str(folder / "passwd"), "acl_file": str(folder / "acl"),
                             "allow_anonymous": False}, store={"path": store})


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = RunningGateway(secured_config(tmp_path_factory.mktemp("ownership")))
    yield running
    running.stop()


def login(gateway: RunningGateway, user: str) -> pika.BlockingConnection:
    credentials = pika.PlainCredentials(user, USERS[user])
    return pika.BlockingConnection(pika.ConnectionParameters(LOOPBACK, amqp_port(gateway), credentials=credentials,
                                                             blocked_connection_timeout=TIMEOUT))


@pytest.fixture
def connect(secured: RunningGateway) -> Iterator[Callable[[str], pika.BlockingConnection]]:
    opened: list[pika.BlockingConnection] = []

    def make(user: str) -> pika.BlockingConnection:
        opened.append(login(secured, user))
        return opened[-1]

    yield make
    for conn in opened:
        if conn.is_open:
            conn.close()


def alices_queue(connect: Callable[[str], pika.BlockingConnection], prefix: str = "alice-orders") -> str:
    """A durable queue alice declared, holding one persistent message of hers."""
    name = unique(prefix)
    ch = connect("alice").channel()
    ch.confirm_delivery()
    ch.queue_declare(name, durable=True)
    ch.basic_publish("", name, b"alice's order", PERSISTENT)
    return name


def still_alices(connect: Callable[[str], pika.BlockingConnection], name: str) -> None:
    """Her queue is there, with exactly her message (read back by her, then put back)."""
    ch = connect("alice").channel()
    assert ch.queue_declare(name, passive=True).method.message_count == 1
    method, _, body = ch.basic_get(name, auto_ack=False)
    assert body == b"alice's order"
    ch.basic_nack(method.delivery_tag, requeue=True)


def refusal(action: Callable[[], Any]) -> str:
    with pytest.raises(ChannelClosedByBroker) as closed:
        action()
    assert closed.value.reply_code == 403
    return str(closed.value.reply_text)


def test_bob_may_not_basic_get_alices_message(connect: Callable[[str], pika.BlockingConnection]) -> None:
    name = alices_queue(connect)
    ch = connect("bob").channel()
    text = refusal(lambda: ch.basic_get(name))
    assert text == f"ACCESS_REFUSED - read access to queue '{name}' in vhost '/' refused for user 'bob'"
    still_alices(connect, name)


def test_bob_may_not_consume_from_alices_queue(connect: Callable[[str], pika.BlockingConnection]) -> None:
    name = alices_queue(connect)
    ch = connect("bob").channel()
    assert "read access to queue" in refusal(lambda: ch.basic_consume(name, lambda *args: None))
    still_alices(connect, name)


@pytest.mark.parametrize("operation", ["queue_purge", "queue_delete"])
def test_bob_may_neither_purge_nor_delete_alices_queue(connect: Callable[[str], pika.BlockingConnection],
                                                       operation: str) -> None:
    name = alices_queue(connect)
    ch = connect("bob").channel()
    assert f"configure access to queue '{name}'" in refusal(lambda: getattr(ch, operation)(name))
    still_alices(connect, name)


def test_bob_may_not_bind_alices_queue_to_his_topics(connect: Callable[[str], pika.BlockingConnection]) -> None:
    name = alices_queue(connect)
    ch = connect("bob").channel()
    assert f"write access to queue '{name}'" in refusal(lambda: ch.queue_bind(name, "amq.topic", "public.#"))
    ch = connect("bob").channel()
    ch.confirm_delivery()
    ch.basic_publish("amq.topic", "public.spam", b"bob's spam")  # allowed, and lands nowhere near alice
    still_alices(connect, name)


def test_bob_may_not_publish_into_alices_queue_through_the_default_exchange(
    connect: Callable[[str], pika.BlockingConnection]
) -> None:
    name = alices_queue(connect)
    ch = connect("bob").channel()
    ch.confirm_delivery()
    assert f"write access to queue '{name}'" in refusal(lambda: ch.basic_publish("", name, b"bob's spam"))
    still_alices(connect, name)


def test_bob_may_not_smuggle_a_message_onto_alices_secret_topic_through_a_dead_letter_exchange(
    secured: RunningGateway, connect: Callable[[str], pika.BlockingConnection]
) -> None:
    x = uuid.uuid4().hex[:8]
    alice = PahoClient(secured.mqtt_port, f"alice-{x}")
    alice.client.username_pw_set("alice", USERS["alice"])
    alice.connect()
    try:
        assert alice.subscribe(f"secret/{x}", 1) == [1]
        ch = connect("bob").channel()
        arguments = {"x-dead-letter-exchange": "amq.topic", "x-dead-letter-routing-key": f"secret.{x}",
                     "x-message-ttl": 1}
        text = refusal(lambda: ch.queue_declare(unique("bob-dl"), arguments=arguments))
        assert text == (f"ACCESS_REFUSED - write access to topic 'secret/{x}' in exchange 'amq.topic' in vhost '/' "
                        "refused for user 'bob'")
        # Without the key the declaration passes; the message's own key is then checked when it
        # is dead-lettered, as bob: the door refuses it.
        vhost = secured.gateway.amqp.broker.vhosts["/"]  # type: ignore[union-attr]
        refused_before = secured.call(lambda: vhost.dead_letters_refused)
        ch = connect("bob").channel()
        queue = ch.queue_declare(unique("bob-dl"), arguments={"x-dead-letter-exchange": "amq.topic",
                                                               "x-message-ttl": 1}).method.queue
        ch.queue_bind(queue, "amq.direct", f"secret.{x}")
        ch.confirm_delivery()
        ch.basic_publish("amq.direct", f"secret.{x}", b"bob's forgery")
        wait_until(lambda: secured.call(lambda: vhost.dead_letters_refused) > refused_before, ch.connection)
        alice.publish(f"secret/{x}", b"alice's own", qos=1)
        assert [m.payload for m in alice.inbox.until_topic(f"secret/{x}")] == [b"alice's own"]
    finally:
        alice.close()


def test_rules_in_the_acl_file_grant_what_they_name_and_nothing_else(
    connect: Callable[[str], pika.BlockingConnection]
) -> None:
    shared = alices_queue(connect, "alice-shared")
    ch = connect("carol").channel()
    _, _, body = next_message(ch, shared)
    assert body == b"alice's order"
    assert f"configure access to queue '{shared}'" in refusal(lambda: ch.queue_purge(shared))
    ch = connect("carol").channel()
    assert "configure access to queue 'mine'" in refusal(lambda: ch.queue_declare("mine"))
    ch = connect("carol").channel()
    own = ch.queue_declare(unique("carol-jobs"), durable=True).method.queue
    ch.queue_bind(own, "amq.topic", "public.jobs.#")
    private = ch.queue_declare("", exclusive=True).method.queue  # server-named: hers whatever her rules say
    ch.queue_bind(private, "amq.topic", "public.#")
    assert ch.queue_declare(own, passive=True).method.queue == own


def test_an_admin_may_use_every_queue(secured: RunningGateway, connect: Callable[[str], pika.BlockingConnection]) -> None:
    name = alices_queue(connect)
    ch = connect("root").channel()
    assert "read access" in refusal(lambda: ch.basic_get(name))
    security = secured.gateway.security
    security.admins = frozenset({"root"})  # what `[http] admins = ["root"]` sets
    try:
        ch = connect("root").channel()
        method, _, body = ch.basic_get(name, auto_ack=False)
        assert body == b"alice's order"
        ch.basic_nack(method.delivery_tag, requeue=True)
    finally:
        security.admins = frozenset()
    still_alices(connect, name)


def test_a_user_that_loses_a_right_it_used_to_have_is_told_once_how_to_grant_it(
    connect: Callable[[str], pika.BlockingConnection], caplog: pytest.LogCaptureFixture
) -> None:
    name = alices_queue(connect)
    with caplog.at_level(logging.WARNING, "rosettamq.amqp"):
        for _ in range(2):
            ch = connect("dave").channel()
            refusal(lambda: ch.basic_get(name))
    lines = [r.getMessage() for r in caplog.records if "may no longer" in r.getMessage()]
    escaped = name.replace("-", "\\-")
    assert lines == [f"user dave may no longer read queue '{name}' in vhost '/' (issue 24 ownership rules: without "
                     f"`queue` rules a user uses only the queues it declared); grant it with `queue read {escaped}` "
                     "under `user dave` in the ACL file"]


async def test_aio_pika_sees_the_refusal_as_access_refused(secured: RunningGateway,
                                                           connect: Callable[[str], pika.BlockingConnection]) -> None:
    name = alices_queue(connect)
    url = f"amqp://bob:{USERS['bob']}@{LOOPBACK}:{amqp_port(secured)}/"

    async def never(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        raise AssertionError("bob received alice's message")

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="read access to queue"):
            queue = await channel.get_queue(name, ensure=False)
            await queue.consume(never)
    still_alices(connect, name)


def test_after_a_restart_a_stored_queue_is_still_its_owners_and_dead_letters_as_her(tmp_path: Path) -> None:
    config = secured_config(tmp_path, store=str(tmp_path / "store.db"))
    running = RunningGateway(config)
    try:
        conn = login(running, "alice")
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("alice-box", durable=True)
        ch.basic_publish("", "alice-box", b"kept", PERSISTENT)
        ch.queue_declare("alice-expiring", durable=True, arguments={
            "x-dead-letter-exchange": "amq.topic", "x-dead-letter-routing-key": "secret.restored"})
        conn.close()
    finally:
        running.stop()
    running = RunningGateway(config)
    try:
        bob = login(running, "bob")
        assert "read access to queue 'alice-box'" in refusal(lambda: bob.channel().basic_get("alice-box"))
        bob.close()
        alice_mqtt = PahoClient(running.mqtt_port, "alice-restored")
        alice_mqtt.client.username_pw_set("alice", USERS["alice"])
        alice_mqtt.connect()
        try:
            assert alice_mqtt.subscribe("secret/restored", 1) == [1]
            conn = login(running, "alice")
            ch = conn.channel()
            assert ch.basic_get("alice-box", auto_ack=True)[2] == b"kept"
            ch.confirm_delivery()  # expires at once: dead-lettered into amq.topic as alice, whose ACL allows it
            ch.basic_publish("", "alice-expiring", b"dead letter", pika.BasicProperties(expiration="0"))
            assert [m.payload for m in alice_mqtt.inbox.until_topic("secret/restored")] == [b"dead letter"]
            conn.close()
        finally:
            alice_mqtt.close()
    finally:
        running.stop()
