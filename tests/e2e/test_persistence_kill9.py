"""Crash safety of the SQLite store: `python -m gateway run` killed with SIGKILL, restarted on the same file.

Every message the gateway acknowledged before the kill must reach the
persistent subscriber after the restart (QoS 1: duplicates allowed, nothing
missing); retained messages set or cleared before the kill stay so; an
inbound QoS 2 message acknowledged with PUBREC is still known afterwards. A
file that is not a usable store stops the gateway with exit code 2 and is
left as it was.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from adapters.mqtt.packets import PingReq, PingResp, PubAck, PubComp, Publish, PubRec, PubRel
from core.stores.sqlite_schema import MIGRATIONS
from tests.e2e.test_mqtt_sessions import connect, disconnect, persistent, publish, subscribe, wait_until
from tests.wire_client import WireClient

ROOT = Path(__file__).resolve().parents[2]
ACKED_BEFORE_KILL = 2000
WINDOW = 50


class GatewayProcess:
    """The gateway as a subprocess on a store file: MQTT only, on an OS-chosen loopback port."""

    def __init__(self, tmp_path: Path, store: Path) -> None:
        self.config = tmp_path / "gateway.toml"
        self.config.write_text(
            "[mqtt]\nmax_queued_messages = 1000000\n"
            + "".join(f"[{name}]\nenabled = false\n" for name in ("ws", "amqp", "coap", "http"))
        )
        self.store = store
        self.ports_file = tmp_path / "ports.json"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "gateway", "run", "--config", str(self.config), "--mqtt", "127.0.0.1:0",
            "--store", str(self.store), "--ports-file", str(self.ports_file),
        ]

    def start(self) -> int:
        """Start it and return its MQTT port once it is listening."""
        self.ports_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        proc = self.proc
        assert wait_until(lambda: self.ports_file.exists() or proc.poll() is not None, timeout=20)
        assert proc.poll() is None, proc.communicate()[1].decode()
        return json.loads(self.ports_file.read_text())["mqtt"]

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit, no checkpoint."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=10)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.communicate(timeout=15)


@pytest.fixture
def gateway(tmp_path: Path):  # type: ignore[no-untyped-def]
    process = GatewayProcess(tmp_path, tmp_path / "rosettamq.db")
    try:
        yield process
    finally:
        process.stop()


class CountingPublisher(threading.Thread):
    """Publishes numbered QoS 1 messages as fast as a window of `WINDOW` unacknowledged ones allows.

    `acked` holds the numbers the gateway acknowledged; the thread ends when the connection dies.
    """

    def __init__(self, port: int) -> None:
        super().__init__(name="counting-publisher", daemon=True)
        self.client = WireClient(port, 5, timeout=10)
        self.acked: list[int] = []
        self.enough = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        in_flight: dict[int, int] = {}  # packet id -> message number
        number = 0
        try:
            self.client.connect("counting-publisher")
            while True:
                while len(in_flight) < WINDOW:
                    number += 1
                    packet_id = (number - 1) % 65535 + 1
                    self.client.send(Publish("load/n", str(number).encode(), 1, packet_id=packet_id))
                    in_flight[packet_id] = number
                ack = self.client.recv()
                assert isinstance(ack, PubAck) and ack.reason_code == 0, ack
                self.acked.append(in_flight.pop(ack.packet_id))
                if len(self.acked) >= ACKED_BEFORE_KILL:
                    self.enough.set()
        except (ConnectionError, OSError):
            pass  # the gateway was killed
        except BaseException as exc:  # pragma: no cover - reported by the test
            self.error = exc
        finally:
            self.enough.set()
            self.client.close()


def no_retained_for(port: int, topic_filter: str) -> bool:
    client, _ = connect(port, "retained-check")
    subscribe(client, topic_filter, 1)
    client.send(PingReq())
    answer = client.recv()
    client.close()
    return isinstance(answer, PingResp)


def read_until(client: WireClient, received: set[int], wanted: set[int]) -> None:
    """Read and acknowledge messages into `received` until it holds `wanted`; fail naming what is lost."""
    while not wanted <= received:
        try:
            packet = client.recv()
        except TimeoutError:
            pytest.fail(f"{len(wanted - received)} acknowledged messages lost, e.g. {sorted(wanted - received)[:10]}")
        assert isinstance(packet, Publish) and packet.topic == "load/n", packet
        received.add(int(packet.payload))
        client.send(PubAck(packet.packet_id))  # type: ignore[arg-type]


def test_every_message_acknowledged_before_a_kill_9_reaches_the_persistent_subscriber_after_restart(
    gateway: GatewayProcess,
) -> None:
    port = gateway.start()
    sub, _ = connect(port, "durable-sub", 5, **persistent(5, expiry=3600))
    subscribe(sub, "load/#", 1)
    disconnect(sub)
    publish(port, "keep/me", b"retained before the kill", qos=1, retain=True)
    publish(port, "clear/me", b"soon cleared", qos=1, retain=True)
    publish(port, "clear/me", b"", qos=1, retain=True)  # cleared, and acknowledged, before the kill

    publisher = CountingPublisher(port)
    publisher.start()
    assert publisher.enough.wait(60)
    gateway.kill()  # mid-stream: the publisher still has WINDOW messages in flight
    publisher.join(15)
    assert publisher.error is None, publisher.error
    acked = set(publisher.acked)
    assert len(acked) >= ACKED_BEFORE_KILL

    port = gateway.start()
    sub, connack = connect(port, "durable-sub", 5, **persistent(5, expiry=3600))
    assert connack.session_present is True
    read_until(sub, set(), acked)
    sub.close()

    reader, _ = connect(port, "retained-reader")
    subscribe(reader, "keep/#", 1)
    kept = reader.recv()
    assert isinstance(kept, Publish) and (kept.payload, kept.retain) == (b"retained before the kill", True)
    reader.close()
    assert no_retained_for(port, "clear/#")


def test_a_qos2_message_acknowledged_with_pubrec_before_a_kill_9_is_delivered_exactly_once(
    gateway: GatewayProcess,
) -> None:
    port = gateway.start()
    sub, _ = connect(port, "q2-sub", 5, **persistent(5, expiry=3600))
    subscribe(sub, "exactly/#", 2)
    disconnect(sub)
    pub, _ = connect(port, "q2-pub", 5, **persistent(5, expiry=3600))
    pub.send(Publish("exactly/once", b"once", 2, packet_id=7))
    assert isinstance(pub.recv(), PubRec)
    gateway.kill()  # before the PUBREL: the gateway must still know packet id 7
    pub.close()

    port = gateway.start()
    pub, connack = connect(port, "q2-pub", 5, **persistent(5, expiry=3600))
    assert connack.session_present is True
    pub.send(Publish("exactly/once", b"once", 2, dup=True, packet_id=7))  # the client resends it
    assert isinstance(pub.recv(), PubRec)
    pub.send(PubRel(7))
    pubcomp = pub.recv()
    assert isinstance(pubcomp, PubComp) and pubcomp.reason_code == 0  # the id was known: not 0x92
    pub.close()
    sub, _ = connect(port, "q2-sub", 5, **persistent(5, expiry=3600))
    first = sub.recv()
    assert isinstance(first, Publish) and first.payload == b"once"
    sub.send(PubRec(first.packet_id))  # type: ignore[arg-type]
    assert isinstance(sub.recv(), PubRel)
    sub.send(PubComp(first.packet_id))  # type: ignore[arg-type]
    sub.send(PingReq())
    assert isinstance(sub.recv(), PingResp)  # and no second copy
    sub.close()


def _newer_schema(path: Path) -> None:
    import sqlite3
    from contextlib import closing

    from core.stores.sqlite_schema import APPLICATION_ID

    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute("PRAGMA user_version=7")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda path: path.write_bytes(b"not a database at all\n" * 100), "not a readable RosettaMQ store"),
        (_newer_schema, f"written by a newer RosettaMQ (schema v7, this build knows v{len(MIGRATIONS)})"),
    ],
    ids=["garbage", "newer-schema"],
)
def test_a_store_file_the_gateway_cannot_use_stops_it_with_exit_2_and_a_one_line_error(
    gateway: GatewayProcess, make, reason: str  # type: ignore[no-untyped-def]
) -> None:
    make(gateway.store)
    before = gateway.store.read_bytes()
    result = subprocess.run(gateway.command(), cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot start: store:" in errors[0] and str(gateway.store) in errors[0] and reason in errors[0]
    assert gateway.store.read_bytes() == before
    assert not gateway.ports_file.exists()
