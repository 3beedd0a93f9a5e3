"""Registrations as store records: times across clocks, restoring under the same id, the server's writes.

The server tests run two `LwM2MServer`s on one memory store, as a gateway and
the one started after it on the same file; clocks are variables the test sets.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiocoap.message import UndecidedRemote

from adapters.lwm2m.registration import parse_register, parse_update
from adapters.lwm2m.registration_records import KIND, decode_registration, encode_registration
from adapters.lwm2m.registrations import RegistrationTable
from adapters.lwm2m.server import LwM2MServer
from adapters.lwm2m.settings import LwM2MSettings
from core.broker import Broker
from core.message import Message
from core.stores.base import StoreError
from core.stores.memory import MemoryStore
from core.subscriptions import SubscriptionOptions
from core.principal import SYSTEM
from tests.adapters.lwm2m.test_server import TIMEOUT, FakeListener, Sink

WALL = 1_700_000_000.0
LINKS = b'</>;rt="oma.lwm2m";ct=110,</3/0>;ver=1.1,</3303/0>'


def registered(table: RegistrationTable, now: float, query: str = "ep=dev&lt=100&lwm2m=1.1&b=UQ&x=1"):
    return table.register(parse_register(query, LINKS), now).registration


def test_a_record_keeps_every_field_and_moves_the_times_to_the_readers_clock() -> None:
    registration = registered(RegistrationTable(grace=10), now=500.0)
    value = encode_registration(registration, "127.0.0.1:5690", now=500.0, wall=WALL)
    assert json.loads(value)["expires_at"] == WALL + 110
    # Read back 30 s later by a process whose monotonic clock started elsewhere.
    stored = decode_registration(value, now=7.0, wall=WALL + 30)
    assert stored.address == "127.0.0.1:5690" and not stored.expired
    restored = stored.registration
    assert restored.deadline == pytest.approx(7.0 + 80)
    assert restored.updated_at == pytest.approx(7.0 - 30)
    times = ("registered_at", "updated_at", "deadline")
    assert {f: getattr(restored, f) for f in restored.__slots__ if f not in times} == \
        {f: getattr(registration, f) for f in registration.__slots__ if f not in times}


def test_a_record_whose_lifetime_ended_reads_as_expired() -> None:
    value = encode_registration(registered(RegistrationTable(grace=10), now=500.0), None, now=500.0, wall=WALL)
    assert decode_registration(value, now=0.0, wall=WALL + 110).expired
    assert not decode_registration(value, now=0.0, wall=WALL + 109.9).expired


def test_a_record_of_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        decode_registration(b'{"v": 2}', now=0.0, wall=WALL)


def test_a_restored_registration_keeps_its_id_expires_and_takes_updates() -> None:
    original = registered(RegistrationTable(grace=0), now=0.0)
    table = RegistrationTable(grace=0)
    table.restore(original)
    assert table.get(original.id) == original and table.by_endpoint("dev") == original
    assert table.next_deadline() == original.deadline
    updated = table.update(original.id, parse_update("lt=300", b""), now=50.0)
    assert updated.id == original.id and table.next_deadline() == 350.0
    with pytest.raises(ValueError):
        table.restore(original)


class Node:
    """One gateway run: a broker on the shared store, an LwM2M server on a fake listener."""

    def __init__(self, store: MemoryStore, now: float, wall: float) -> None:
        self.now, self.wall = now, wall
        self.broker = Broker(store)
        self.sink = Sink()
        self.broker.router.subscribe(self.sink, "#", SubscriptionOptions(qos=0))
        self.server = LwM2MServer(self.broker, LwM2MSettings(lifetime_grace=0, min_lifetime=1),
                                  clock=lambda: self.now, wall=lambda: self.wall)
        self.listener = FakeListener()
        self.server.mount(self.listener)

    def request(self, method: str, subpath: tuple[str, ...], query: tuple[str, ...], remote: Any) -> str:
        return self.server.registration_request(method, subpath, query, LINKS, 40, remote).code


async def test_records_follow_register_update_replace_and_deregister() -> None:
    store = MemoryStore()
    node = Node(store, now=100.0, wall=WALL)
    assert node.request("POST", (), ("ep=a", "lt=60"), "addr-1") == "2.01"
    location = node.server.table.by_endpoint("a").id
    node.now, node.wall = 110.0, WALL + 10
    assert node.request("POST", (location,), (), "addr-2") == "2.04"
    record = json.loads(store.load_records(KIND)["a"])
    assert (record["address"], record["expires_at"]) == ("addr-2", WALL + 70)
    assert node.request("POST", (), ("ep=a", "lt=60"), "addr-3") == "2.01"  # replaced: still stored
    assert json.loads(store.load_records(KIND)["a"])["address"] == "addr-3"
    assert node.request("DELETE", (node.server.table.by_endpoint("a").id,), (), "addr-3") == "2.02"
    assert store.load_records(KIND) == {}
    node.request("POST", (), ("ep=b", "lt=5"), "addr-4")
    node.server.run_due(105.0 + 100)
    assert store.load_records(KIND) == {}


async def test_a_new_server_takes_back_live_registrations_and_announces_the_ended_ones() -> None:
    store = MemoryStore()
    first = Node(store, now=100.0, wall=WALL)
    first.request("POST", (), ("ep=live", "lt=600"), "127.0.0.1:5690")
    first.request("POST", (), ("ep=ended", "lt=60"), "127.0.0.1:5691")
    location = first.server.table.by_endpoint("live").id
    first.server.close()

    second = Node(store, now=3.0, wall=WALL + 120)  # started 2 minutes later
    topic, message = await second.sink.next()
    assert (topic, message["data"]["reason"]) == ("lwm2m/ended/up/deregister", "expired")
    assert second.sink.pending() == [] and sorted(store.load_records(KIND)) == ["live"]
    restored = second.server.table.by_endpoint("live")
    assert restored.id == location and restored.deadline == pytest.approx(3.0 + 480)
    assert second.server.next_deadline() == restored.deadline
    second.broker.publish(SYSTEM, Message("lwm2m/live/dn", b'{"reqID":1,"msgType":"read","data":{"path":"/3/0/0"}}'))
    sent = await asyncio.wait_for(second.listener.context.sent.get(), TIMEOUT)
    assert sent.message.remote == UndecidedRemote("coap", "127.0.0.1:5690")
    assert sent.message.opt.uri_path == ("3", "0", "0")


async def test_an_unreadable_record_stops_the_start_with_a_store_error() -> None:
    store = MemoryStore()
    store.put_record(KIND, "dev", b"not json")
    with pytest.raises(StoreError, match="dev"):
        Node(store, now=0.0, wall=WALL)
