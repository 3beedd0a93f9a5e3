"""kill -9 with an online persistent subscriber acknowledging as it reads (issue 17's store rework).

A publisher's PUBACK may now come once every persistent session its message went
to has acknowledged it, before any commit. Across a SIGKILL and a restart on the
same file: no message PUBACKed to the publisher is missing from what the online
subscriber received before the kill and after its session resumes (QoS 1:
duplicates allowed); and a message also owed to an offline persistent session
still reaches that one, so the online subscriber's acks never release it early.
"""

from __future__ import annotations

import threading

import pytest

from adapters.mqtt.packets import PubAck, Publish
from tests.e2e.test_mqtt_sessions import connect, disconnect, persistent, subscribe
from tests.e2e.test_persistence_kill9 import ACKED_BEFORE_KILL, CountingPublisher, GatewayProcess, gateway, read_until
from tests.wire_client import WireClient

__all__ = ["gateway"]  # the fixture, shared with test_persistence_kill9


class AckingSubscriber(threading.Thread):
    """Reads numbered QoS 1 messages and PUBACKs each at once; ends when the connection dies."""

    def __init__(self, client: WireClient) -> None:
        super().__init__(name="acking-subscriber", daemon=True)
        self.client = client
        self.received: set[int] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                packet = self.client.recv()
                assert isinstance(packet, Publish) and packet.topic == "load/n", packet
                self.received.add(int(packet.payload))
                self.client.send(PubAck(packet.packet_id))  # type: ignore[arg-type]
        except (ConnectionError, OSError):
            pass  # the gateway was killed
        except BaseException as exc:  # pragma: no cover - reported by the test
            self.error = exc
        finally:
            self.client.close()


@pytest.mark.parametrize("offline_too", [False, True], ids=["online-only", "with-an-offline-session"])
def test_no_message_acknowledged_to_its_publisher_is_lost_by_a_kill_9_with_an_acking_subscriber(
    gateway: GatewayProcess, offline_too: bool
) -> None:
    port = gateway.start()
    if offline_too:
        offline, _ = connect(port, "offline-sub", 5, **persistent(5, expiry=3600))
        subscribe(offline, "load/#", 1)
        disconnect(offline)
    online, _ = connect(port, "online-sub", 5, **persistent(5, expiry=3600))
    subscribe(online, "load/#", 1)
    reader = AckingSubscriber(online)
    reader.start()

    publisher = CountingPublisher(port)
    publisher.start()
    assert publisher.enough.wait(60)
    gateway.kill()
    publisher.join(15)
    reader.join(15)
    assert publisher.error is None, publisher.error
    assert reader.error is None, reader.error
    acked = set(publisher.acked)
    assert len(acked) >= ACKED_BEFORE_KILL

    port = gateway.start()
    online, connack = connect(port, "online-sub", 5, **persistent(5, expiry=3600))
    assert connack.session_present is True
    received = set(reader.received)
    read_until(online, received, acked)
    online.close()
    if offline_too:
        offline, connack = connect(port, "offline-sub", 5, **persistent(5, expiry=3600))
        assert connack.session_present is True
        read_until(offline, set(), acked)
        offline.close()
