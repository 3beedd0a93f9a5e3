"""`rosettamq run --workers 2` (issue 16): two processes on every port, joined through a local nats-server.

The gateway is started as users start it, with the README's defaults moved to OS-chosen loopback
ports; clients connect to the one port and the kernel (SO_REUSEPORT) spreads them over the workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from adapters.mqtt.errors import ReasonCode
from adapters.mqtt.packets import ConnAck, PubAck, Publish, SubAck, Subscribe, SubscriptionRequest
from adapters.mqtt.properties import Properties
from tests.e2e.clients import PahoClient
from tests.e2e.cluster_support import wait_until
from tests.e2e.process_support import EVERY_LISTENER_ON_PORT_0, LoggingGateway
from tests.wire_client import WireClient


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[LoggingGateway]:
    gateway = LoggingGateway(None, tmp_path / "ports.json", "--workers", "2", "--store", "memory",
                             *EVERY_LISTENER_ON_PORT_0)
    try:
        gateway.wait_for_log("workers ready")
        yield gateway
    finally:
        gateway.stop()


def worker_pids(gateway: LoggingGateway) -> list[int]:
    gateway.wait_for_log("workers (pids", stdout=True)
    line = next(line for line in gateway.stdout if "workers (pids" in line)
    return [int(pid) for pid in line.split("(pids ", 1)[1].split(")", 1)[0].split()]


def listening_pids(port: int) -> set[int]:
    """The processes with a listening socket on `port` (ss: users:(("python",pid=N,fd=M)))."""
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return {int(chunk.split("pid=")[1].split(",")[0]) for chunk in out.split("(") if "pid=" in chunk}


def cluster_nodes(gateway: LoggingGateway) -> list[dict]:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"http://127.0.0.1:{gateway.ports()['http']}/api/v1/cluster", timeout=5) as answer:
        return list(json.load(answer)["nodes"])


def test_two_workers_listen_on_one_port_and_every_subscriber_sees_every_message(workers: LoggingGateway) -> None:
    port = workers.ports()["mqtt"]
    pids = worker_pids(workers)
    assert len(pids) == 2 and listening_pids(port) == set(pids)
    assert listening_pids(workers.ports()["amqp"]) == {pids[0]}  # AMQP: worker 1 alone (one node's queues)
    wait_until(lambda: len(cluster_nodes(workers)) == 2, what="both workers in the cluster view")
    subscribers = [PahoClient(port, f"sub{n}", "5").connect() for n in range(20)]
    publisher = PahoClient(port, "pub", "5").connect()
    try:
        for subscriber in subscribers:
            subscriber.subscribe("fan/#", qos=1)

        def everyone_hears_a_probe() -> bool:
            publisher.publish("fan/probe", b"probe", qos=0)
            time.sleep(0.05)
            return all(any(m.topic == "fan/probe" for m in s.inbox.pending()) for s in subscribers)
        wait_until(everyone_hears_a_probe, what="interest on both workers")
        for subscriber in subscribers:
            subscriber.inbox.pending()
        for n in range(30):
            publisher.publish(f"fan/{n}", str(n).encode(), qos=1)
        for subscriber in subscribers:
            got = subscriber.inbox.until(lambda m: m.topic == "fan/29")
            assert [m.payload for m in got if m.topic != "fan/probe"] == [str(n).encode() for n in range(30)]
        def spread() -> bool:  # heartbeats carry each worker's count, once a second
            counts = [node.get("connections", 0) for node in cluster_nodes(workers)]
            return sum(counts) == 21 and all(counts)
        wait_until(spread, what="21 connections over both workers")  # the kernel used both
    finally:
        for client in [*subscribers, publisher]:
            client.close()


def test_a_persistent_session_finds_its_queue_on_whichever_worker_it_lands(workers: LoggingGateway) -> None:
    port = workers.ports()["mqtt"]
    wait_until(lambda: len(cluster_nodes(workers)) == 2, what="both workers in the cluster view")
    device = WireClient(port, 5)
    assert isinstance(device.connect("device", clean_start=False,
                                     properties=Properties(session_expiry_interval=600)), ConnAck)
    device.send(Subscribe(1, (SubscriptionRequest("cmd/#", 1),)))
    assert isinstance(device.recv(), SubAck)
    device.close()
    for round_ in range(6):  # each reconnect is a new source port: the kernel picks a worker anew
        with WireClient(port, 5) as publisher:
            publisher.connect(f"pub{round_}", clean_start=True)
            publisher.send(Publish("cmd/go", f"command {round_}".encode(), qos=1, packet_id=1))
            assert isinstance(publisher.recv(), PubAck)
        with WireClient(port, 5) as device:
            connack = device.connect("device", clean_start=False, properties=Properties(session_expiry_interval=600))
            assert isinstance(connack, ConnAck) and connack.reason_code == ReasonCode.SUCCESS
            assert connack.session_present
            message = device.recv()
            assert isinstance(message, Publish) and message.payload == f"command {round_}".encode()
            device.send(PubAck(message.packet_id))


def test_a_worker_that_dies_is_started_again_and_sigterm_stops_everything(workers: LoggingGateway) -> None:
    first, second = worker_pids(workers)
    os.kill(second, signal.SIGKILL)
    workers.wait_for_log("restarting")
    workers.wait_for_log("msg=ready", count=3)  # the new worker 2 bound every port again
    wait_until(lambda: len(listening_pids(workers.ports()["mqtt"])) == 2, what="two workers listening again")
    assert second not in listening_pids(workers.ports()["mqtt"])
    with WireClient(workers.ports()["mqtt"], 5) as client:
        assert isinstance(client.connect("after-restart"), ConnAck)
    assert workers.stop() == 0
    for pid in (first,):
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), what=f"worker {pid} gone")


DEVICES = 24


def test_the_admin_api_of_worker_1_lists_and_kicks_the_clients_of_every_worker(workers: LoggingGateway) -> None:
    port = workers.ports()["mqtt"]
    wait_until(lambda: len(cluster_nodes(workers)) == 2, what="both workers in the cluster view")
    # The kernel spreads connections over the workers by a hash of addresses and ports: with 8, all on one
    # worker happened (1 in 128); with 24, 1 in 8 million.
    clients = {f"dev{n}": PahoClient(port, f"dev{n}", "5").connect() for n in range(DEVICES)}
    try:
        def listed() -> dict:  # type: ignore[type-arg]
            url = f"http://127.0.0.1:{workers.ports()['http']}/api/v1/clients?protocol=mqtt"
            with urllib.request.urlopen(url, timeout=5) as answer:
                return dict(json.load(answer))
        wait_until(lambda: {c["id"] for c in listed()["clients"]} >= {f"dev{n}" for n in range(DEVICES)},
                   what="every worker's clients listed")
        answer = listed()
        nodes = {c["node"] for c in answer["clients"] if c["id"].startswith("dev")}
        assert len(nodes) == 2 and answer["nodes_missing"] == []  # both workers had some
        elsewhere = next(c for c in answer["clients"] if c["node"].endswith("-w2"))
        request = urllib.request.Request(
            f"http://127.0.0.1:{workers.ports()['http']}/api/v1/clients/{elsewhere['id']}", method="DELETE")
        with urllib.request.urlopen(request, timeout=5) as kicked:
            assert json.load(kicked)["protocols"] == ["mqtt"]
        clients[elsewhere["id"]].wait_for_log("Received DISCONNECT")  # 0x98, from worker 2
    finally:
        for client in clients.values():
            client.close()
