"""Hostile input on every listener of a real `rosettamq run` process (issue 14), with the fuzzing harness.

The first test is a fixed-seed, time-bounded run of `python -m fuzz` (the same minute everywhere);
the others send the issue's CoAP datagram and 200 random ones, each from a socket closed at once
(the answer meets a closed port: ICMP port unreachable), then a normal CoAP client must get its
round trip within a second.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Iterator

import pytest
from aiocoap import Message

from fuzz.mutate import random_bytes
from fuzz.probes import probe_coap
from fuzz.process import GatewayProcess, log_problems
from fuzz.runner import run
from fuzz.send import Input, send_udp
from fuzz.targets import TARGETS

SEED = 14
SECONDS = 60.0
# A stalled listener never answers; a busy one on a 2-core CI machine shared with the fuzzer's own
# load once took 1,002 ms for an LwM2M registration: the suite checks behaviour, not timing.
PROBE_TIMEOUT = 3.0

pytestmark = pytest.mark.timeout(SECONDS * 4)


def test_a_fixed_seed_minute_of_fuzzing_every_listener_finds_no_failure(tmp_path: Path) -> None:
    report = run(SECONDS, SEED, tmp_path, probe_timeout=PROBE_TIMEOUT)
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


# Found by the fuzzer (seed 100): a Block1 POST whose first block holds 28 bytes where its size
# exponent says 32, then its last block. aiocoap's block assembly raises ValueError inside our
# resource (adapters/coap/resources.py): a 5.00 and an ERROR with a traceback. RFC 7959 2.3 asks
# for a 4.xx (4.00, or 4.08 Request Entity Incomplete). Left to the CoAP adapter's owner.
SHORT_FIRST_BLOCK1 = [
    bytes.fromhex("410212347ab2707302667a03626c6bd10309ff" + "42" * 28),  # POST /ps/fz/blk, Block1 0/more/32
    bytes.fromhex("4102123520b2707302667a03626c6bd10311ff43"),  # Block1 1/last/32, payload "C"
]


def test_a_block1_transfer_whose_first_block_is_short_is_refused_with_4xx_and_no_error(
    gateway: GatewayProcess,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for datagram in SHORT_FIRST_BLOCK1:
            sock.sendto(datagram, ("127.0.0.1", gateway.ports["coap"]))
        answers = {}
        while len(answers) < 2:
            answer = Message.decode(sock.recvfrom(65536)[0])
            answers[answer.token] = answer
    assert answers[b"\x20"].code.class_ == 4, answers[b"\x20"].code
    assert log_problems(gateway.new_log()) == []
    probe_coap(gateway.ports, timeout=1.0)
