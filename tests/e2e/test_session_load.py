"""A resumed session's queue is read from the SQLite store off the event loop (issue 25).

Reading it means committing what is queued first (a commit, an fsync): done on the event
loop, every client waited for the disk. Here the store's database is held busy from the test
(as a slow disk would) while a persistent session reconnects: another client's PINGREQ is
still answered, and once the store is free the session gets its whole queue, in order,
including what was published while it was being read.
"""

from __future__ import annotations

import threading
from pathlib import Path

from adapters.mqtt.packets import ConnAck, Connect, PingReq, PingResp, Publish, PubAck, SubAck, Subscribe, SubscriptionRequest
from adapters.mqtt.properties import Properties
from tests.conftest import RunningGateway, make_config
from tests.wire_client import WireClient


def test_a_session_resumes_with_its_queue_read_off_the_loop(tmp_path: Path) -> None:
    running = RunningGateway(make_config(store={"path": str(tmp_path / "gw.db")}))
    try:
        port = running.mqtt_port
        expiry = Properties(session_expiry_interval=3600)
        sub = WireClient(port, 5)
        sub.connect("roamer", clean_start=True, properties=expiry)
        sub.send(Subscribe(1, (SubscriptionRequest("q/#", 1),)))
        assert isinstance(sub.recv(), SubAck)
        sub.close()
        pub, other = WireClient(port, 5), WireClient(port, 5)
        pub.connect("pub")
        other.connect("bystander")
        for n in range(20):
            pub.send(Publish("q/t", b"%d" % n, qos=1, packet_id=n + 1))
            assert isinstance(pub.recv(), PubAck)
        session = running.call(lambda: running.broker.mqtt_sessions.get("roamer"))
        assert running.call(lambda: session.offline_queued) == 20  # on disk, not in memory

        store = running.broker.store
        busy = threading.Lock()
        busy.acquire()
        holder = threading.Thread(target=lambda: (store._db_lock.acquire(), busy.acquire(), store._db_lock.release()))
        holder.start()  # the database is busy until `busy` is released
        back = WireClient(port, 5)
        back.send(Connect(
            client_id="roamer", protocol_level=5, clean_start=False, properties=expiry))
        other.send(PingReq())
        assert isinstance(other.recv(), PingResp)  # the loop serves others while the queue is read
        pub.send(Publish("q/t", b"20", qos=1, packet_id=21))  # arrives while the session is loading
        other.send(PingReq())
        assert isinstance(other.recv(), PingResp)  # routed (its PUBACK waits for the disk, rightly)
        busy.release()
        holder.join(10)
        assert isinstance(pub.recv(), PubAck)
        connack = back.recv()
        assert isinstance(connack, ConnAck) and connack.session_present
        got = []
        while len(got) < 21:
            packet = back.recv()
            assert isinstance(packet, Publish)
            got.append(int(packet.payload))
            back.send(PubAck(packet.packet_id))  # type: ignore[arg-type]
        assert got == list(range(21))
        for client in (back, pub, other):
            client.close()
    finally:
        running.stop()
