"""The registration table and the /rd handler, with a clock the tests drive."""

from __future__ import annotations

import re

import itertools

import pytest

from adapters.lwm2m.errors import RegistrationNotFound
from adapters.lwm2m.rd import RdEvent, expire_events, handle_rd
from adapters.lwm2m.registration import parse_register, parse_update
from adapters.lwm2m.registrations import RegistrationTable


def make_table(**options) -> RegistrationTable:
    ids = (f"r{n}" for n in itertools.count(1))
    return RegistrationTable(new_id=lambda: next(ids), **options)


def register(table: RegistrationTable, query: str, now: float, payload: bytes = b"</3/0>"):
    return table.register(parse_register(query, payload), now).registration


def test_a_registration_lives_for_its_lifetime_plus_the_grace_period() -> None:
    table = make_table(grace=10)
    reg = register(table, "ep=a&lt=60", now=1000)
    assert (reg.id, reg.location_path, reg.deadline) == ("r1", ("rd", "r1"), 1070)
    assert table.next_deadline() == 1070
    assert table.expire(1069.9) == [] and table.get("r1") is reg
    assert table.expire(1070) == [reg]
    assert table.get("r1") is None and table.by_endpoint("a") is None
    assert table.next_deadline() is None and len(table) == 0


def test_an_update_restarts_the_lifetime_and_may_change_it() -> None:
    table = make_table(grace=0)
    register(table, "ep=a&lt=60", now=0)
    assert table.update("r1", parse_update("", b""), now=50).deadline == 110
    assert table.expire(60) == [] and table.next_deadline() == 110
    updated = table.update("r1", parse_update("lt=300", b""), now=100)
    assert (updated.lifetime, updated.deadline, updated.registered_at) == (300, 400, 0)
    assert table.expire(399) == [] and [r.endpoint for r in table.expire(400)] == ["a"]


def test_registrations_expire_in_deadline_order_and_only_when_due() -> None:
    table = make_table(grace=0)
    for ep, lt in (("slow", 300), ("fast", 10), ("mid", 100)):
        register(table, f"ep={ep}&lt={lt}", now=0)
    table.update(table.by_endpoint("fast").id, parse_update("", b""), now=5)
    assert table.next_deadline() == 15
    assert [r.endpoint for r in table.expire(120)] == ["fast", "mid"]
    assert [r.endpoint for r in table] == ["slow"] and table.next_deadline() == 300


def test_the_default_lifetime_is_86400_and_limits_apply() -> None:
    table = make_table(grace=0, min_lifetime=30, max_lifetime=3600)
    assert register(table, "ep=a", 0).lifetime == 3600
    assert register(table, "ep=b&lt=5", 0).lifetime == 30
    assert register(table, "ep=c&lt=0", 0).lifetime == 3600
    assert make_table().register(parse_register("ep=d", b""), 0).registration.lifetime == 86400


def test_re_registering_an_endpoint_replaces_its_registration() -> None:
    table = make_table(grace=0)
    old = register(table, "ep=a&lt=10", now=0)
    result = table.register(parse_register("ep=a&lt=100", b"</1/0>"), now=5)
    assert result.replaced == old and result.registration.id == "r2"
    assert table.by_endpoint("a") is result.registration and len(table) == 1
    with pytest.raises(RegistrationNotFound):
        table.update("r1", parse_update("", b""), now=6)
    assert table.expire(50) == [] and table.next_deadline() == 105


def test_deregister_removes_and_unknown_locations_are_4_04() -> None:
    table = make_table()
    reg = register(table, "ep=a", now=0)
    assert table.deregister(reg.id) == reg and table.by_endpoint("a") is None
    with pytest.raises(RegistrationNotFound) as caught:
        table.deregister(reg.id)
    assert caught.value.code == "4.04"
    assert table.next_deadline() is None


def test_an_update_merges_query_parameters_and_replaces_the_object_list() -> None:
    table = make_table()
    register(table, "ep=a&lt=60&apn=psm&lwm2m=1.0", now=0, payload=b"</1/0>,</3/0>")
    updated = table.update("r1", parse_update("lt=90&apn=nb", b"</3303/0>"), now=1)
    assert dict(updated.params) == {"ep": "a", "lt": "90", "apn": "nb", "lwm2m": "1.0"}
    assert [str(o) for o in updated.objects] == ["/3303/0"]
    kept = table.update("r1", parse_update("", b""), now=2)
    assert [str(o) for o in kept.objects] == ["/3303/0"]


@pytest.mark.parametrize("version, update, queue_mode", [
    ("1.0", "b=U", False),      # a 1.0 client leaves queue mode with a binding without Q
    ("1.1", "b=U", True),       # 1.1 bindings never carry Q: the mode stays
    ("1.1", "", True),
    ("1.0", "b=UQ", True),
])
def test_queue_mode_follows_updates_by_version(version: str, update: str,
                                               queue_mode: bool) -> None:
    table = make_table()
    register(table, f"ep=a&lwm2m={version}&b=UQ", now=0)
    assert table.update("r1", parse_update(update, b""), now=1).queue_mode is queue_mode


def test_q_flag_in_an_update_turns_queue_mode_on() -> None:
    table = make_table()
    register(table, "ep=a&lwm2m=1.1", now=0)
    assert table.update("r1", parse_update("Q", b""), now=1).queue_mode


def test_random_location_ids_are_unguessable_url_safe_and_distinct() -> None:
    """96 random bits (issue 24: the location authorizes Update and De-register), as one path segment."""
    table = RegistrationTable()
    ids = {table.register(parse_register(f"ep=e{n}", b""), 0).registration.id
           for n in range(50)}
    assert len(ids) == 50 and all(len(i) == 16 and re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)


# --- /rd ------------------------------------------------------------------------

def test_post_rd_registers_with_2_01_and_a_location_path() -> None:
    table = make_table()
    response, events = handle_rd(table, "POST", (), "ep=a&lt=60&lwm2m=1.1", b"</3/0>", 40, 0)
    assert (response.code, response.location_path) == ("2.01", ("rd", "r1"))
    assert events == [RdEvent("register", table.get("r1"))]


def test_post_or_put_on_the_location_updates_with_2_04() -> None:
    table = make_table()
    handle_rd(table, "POST", (), "ep=a&lt=60", b"</3/0>", None, 0)
    response, events = handle_rd(table, "POST", ("r1",), "lt=120", b"", None, 10)
    assert response.code == "2.04" and events[0].kind == "update"
    assert events[0].registration.lifetime == 120
    response, _ = handle_rd(table, "PUT", ("r1",), "lt=60&lwm2m=1.0&b=U", b"</3/0>", None, 20)
    assert response.code == "2.04"  # lwm2m-node-lib updates with PUT


def test_delete_on_the_location_deregisters_with_2_02() -> None:
    table = make_table()
    handle_rd(table, "POST", (), "ep=a", b"", None, 0)
    response, events = handle_rd(table, "DELETE", ("r1",), (), b"", None, 1)
    assert response.code == "2.02"
    assert [(e.kind, e.reason, e.registration.endpoint) for e in events] == [
        ("deregister", "deregister", "a")]
    assert len(table) == 0


def test_re_registration_reports_the_replaced_registration_first() -> None:
    table = make_table()
    handle_rd(table, "POST", (), "ep=a", b"", None, 0)
    _, events = handle_rd(table, "POST", (), "ep=a", b"", None, 1)
    assert [(e.kind, e.reason, e.registration.id) for e in events] == [
        ("deregister", "replaced", "r1"), ("register", None, "r2")]


@pytest.mark.parametrize("method, subpath, query, code", [
    ("POST", ("nope",), "", "4.04"), ("DELETE", ("nope",), "", "4.04"),
    ("GET", (), "", "4.05"), ("GET", ("r1",), "", "4.05"), ("POST", ("r1", "x"), "", "4.04"),
    ("POST", (), "lt=60", "4.00"), ("POST", (), "ep=b&lwm2m=3.0", "4.12"),
    ("POST", ("r1",), "lt=x", "4.00"),
])
def test_bad_requests_get_the_right_code_and_a_diagnostic(method: str, subpath: tuple,
                                                          query: str, code: str) -> None:
    table = make_table()
    handle_rd(table, "POST", (), "ep=a", b"", None, 0)
    response, events = handle_rd(table, method, subpath, query, b"", None, 1)
    assert response.code == code and events == []
    assert response.content_format == 0 and response.payload
    assert len(table) == 1


def test_expiry_events_say_expired() -> None:
    table = make_table(grace=5)
    handle_rd(table, "POST", (), "ep=a&lt=10", b"", None, 0)
    assert expire_events(table, 14) == []
    assert [(e.kind, e.reason) for e in expire_events(table, 15)] == [("deregister", "expired")]
