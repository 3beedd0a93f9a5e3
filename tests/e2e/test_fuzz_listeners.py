"""Hostile input on every listener of a real `rosettamq run` process (issue 14), with the fuzzing harness.

The first test is a fixed-seed, time-bounded run of `python -m fuzz` (the same minute everywhere);
the others send the issue's CoAP datagram and 200 random ones, each from a socket closed at once
(the answer meets a closed port: ICMP port unreachable), then a normal CoAP client must get its
round trip within a second.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

import pytest

from fuzz.mutate import random_bytes
from fuzz.probes import probe_coap
from fuzz.process import GatewayProcess, log_problems
from fuzz.runner import run
from fuzz.send import Input, send_udp
from fuzz.targets import TARGETS

SEED = 14
SECONDS = 60.0

pytestmark = pytest.mark.timeout(SECONDS * 4)


def test_a_fixed_seed_minute_of_fuzzing_every_listener_finds_no_failure(tmp_path: Path) -> None:
    report = run(SECONDS, SEED, tmp_path)
    assert report.failures == [], report.summary()
    assert sorted(report.targets) == sorted(TARGETS)
    assert all(stats.inputs >= 500 for stats in report.targets.values()), report.summary()
    assert report.gateway_starts == 1
    log = Path(report.log_path).read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log and log_problems(log) == []


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def send_and_vanish(gateway: GatewayProcess, datagrams: list[bytes]) -> None:
    send_udp(gateway.ports["coap"], [Input("coap", "vanish", (datagram,)) for datagram in datagrams])


def test_the_issue_datagram_from_a_closed_socket_leaves_coap_answering_within_a_second(
    gateway: GatewayProcess,
) -> None:
    send_and_vanish(gateway, [bytes.fromhex("4284cf361234")])  # a CON 4.04 response, unknown token
    probe_coap(gateway.ports, timeout=1.0)
    assert gateway.alive() and log_problems(gateway.new_log()) == []


def test_two_hundred_random_datagrams_of_a_seed_leave_coap_answering_within_a_second(
    gateway: GatewayProcess,
) -> None:
    rng = random.Random(SEED)
    datagrams = []
    for _ in range(200):
        data = random_bytes(rng)
        if data and rng.random() < 0.5:  # half of them look like CoAP version 1
            data = bytes([0x40 | (data[0] & 0x3F)]) + data[1:]
        datagrams.append(data)
    send_and_vanish(gateway, datagrams)
    probe_coap(gateway.ports, timeout=1.0)
    assert gateway.alive() and log_problems(gateway.new_log()) == []
