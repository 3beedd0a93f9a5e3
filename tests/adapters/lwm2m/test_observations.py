"""Observations: tokens for notifications and cancel-observe, ordering, auto-observe."""

from __future__ import annotations

import pytest

from adapters.lwm2m.answers import notify_answer, plain_value
from adapters.lwm2m.coap import CoapResponse
from adapters.lwm2m.commands import parse_command, translate_command
from adapters.lwm2m.errors import CommandError
from adapters.lwm2m.observations import ObservationTable, auto_observe_commands, is_fresher
from adapters.lwm2m.registration import parse_register
from adapters.lwm2m.registrations import RegistrationTable

from .strategies import REGISTRY


def observe(path: str, req_id: int = 1):
    return translate_command(parse_command({"reqID": req_id, "msgType": "observe",
                                            "data": {"path": path}}), None, REGISTRY)


def test_notifications_find_their_command_by_token_and_cancel_finds_the_token() -> None:
    table = ObservationTable()
    temperature, voltage = observe("/3303/0/5700", 1), observe("/3316/0/5700", 2)
    assert table.add(b"\x01", temperature) is None
    table.add(b"\x02", voltage)
    assert table.by_token(b"\x02").command is voltage
    assert table.by_path((3303, 0, 5700)).token == b"\x01"
    assert table.remove(b"\x01").command is temperature and table.by_token(b"\x01") is None
    assert [o.token for o in table.clear()] == [b"\x02"] and len(table) == 0


def test_observing_a_path_again_replaces_the_old_observation() -> None:
    table = ObservationTable()
    table.add(b"old", observe("/3/0/9"))
    replaced = table.add(b"new", observe("/3/0/9", 2))
    assert replaced.token == b"old" and [o.token for o in table] == [b"new"]


def test_notifications_out_of_order_or_unknown_are_not_published() -> None:
    table = ObservationTable()
    table.add(b"t", observe("/3303/0/5700"))
    assert table.accept(b"t", 5, now=0)
    assert table.accept(b"t", 6, now=1)
    assert not table.accept(b"t", 4, now=2)       # late, older than 6
    assert table.accept(b"t", 4, now=200)         # 128 s later anything is newer
    assert not table.accept(b"unknown", 1, now=3)
    assert table.accept(b"t", None, now=201)      # no Observe option: nothing to compare


@pytest.mark.parametrize("old, new, fresher", [
    ((1, 0), (2, 0), True), ((2, 0), (1, 0), False), ((0xFFFFFF, 0), (3, 0), True),
    ((3, 0), (0xFFFFFF, 0), False), ((5, 0), (5, 0), False), ((9, 0), (1, 129), True),
])
def test_freshness_follows_rfc_7641(old: tuple, new: tuple, fresher: bool) -> None:
    assert is_fresher(old[0], old[1], new[0], new[1]) is fresher


def test_auto_observe_covers_only_the_objects_the_device_announced() -> None:
    registration = RegistrationTable().register(parse_register(
        "ep=sensor", b'</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>,</lwm2m/3303/0>,</lwm2m/3316>'),
        0).registration
    commands = auto_observe_commands(
        registration, ["/3303/0/5700", "/3303/1/5700", "/3316/2/5700", "/3304/0/5700"], REGISTRY)
    assert [c.req_path for c in commands] == ["/3303/0/5700", "/3316/2/5700"]
    assert commands[0].request.path == ("lwm2m", "3303", "0", "5700")
    assert commands[0].request.observe == 0 and commands[0].raw["autoObserve"] is True
    with pytest.raises(CommandError):
        auto_observe_commands(registration, ["/3303/x"], REGISTRY)


def test_a_numeric_value_can_be_republished_as_plain_text() -> None:
    answer = notify_answer(observe("/3303/0/5700"),
                           CoapResponse("2.05", 0, b"21.5", observe=2), REGISTRY)
    assert plain_value(answer, "/3303/0/5700") == b"21.5"
    assert plain_value(answer, "/3303/0/5701") is None
    text = notify_answer(observe("/3/0/0"), CoapResponse("2.05", 0, b"ACME"), REGISTRY)
    assert plain_value(text, "/3/0/0") is None
