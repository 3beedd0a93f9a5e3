"""`$SYS/broker/...` topics with Mosquitto's names, published as retained messages every `[sys] interval`.

A deadline timer (``loop.call_later``, re-armed after each round) publishes
them; nothing sleeps. The load averages are Mosquitto's: an exponentially
weighted moving average of the rate per minute over 1, 5 and 15 minutes.
The gateway's own `$SYS` publishes carry origin protocol "sys" and are left
out of the message counts they report.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Callable

from core.message import Message, Origin
from core.principal import SYSTEM

from gateway.version import gateway_version

if TYPE_CHECKING:
    from gateway.app import Gateway

ORIGIN = Origin("sys", "$SYS")
WINDOWS = (("1min", 60.0), ("5min", 300.0), ("15min", 900.0))


class SysPublisher:
    """Publishes the `$SYS` tree now and then every `interval` seconds until `stop`."""

    def __init__(self, gateway: "Gateway", interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.gateway = gateway
        self.interval = interval
        self.clock = clock
        self.rounds = 0
        self._handle: asyncio.TimerHandle | None = None
        self._last: tuple[float, int, int] | None = None  # (time, received, sent) of the previous round
        self._load: dict[str, float] = {}

    def start(self) -> None:
        self._tick()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self._handle = None
        try:
            self.publish_all()
        finally:
            self._handle = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def counts(self) -> tuple[int, int, int, int]:
        """Messages received and sent, payload bytes received and sent, leaving out `$SYS` itself."""
        received = sent = bytes_in = bytes_out = 0
        for origin, traffic in self.gateway.broker.router.traffic.items():
            if origin == ORIGIN.protocol:
                continue
            received += traffic.messages_in
            bytes_in += traffic.bytes_in
            for flow in traffic.flows.values():
                sent += flow.deliveries
                bytes_out += flow.bytes
        return received, sent, bytes_in, bytes_out

    def values(self) -> dict[str, str]:
        gateway = self.gateway
        broker = gateway.broker
        received, sent, bytes_in, bytes_out = self.counts()
        now = self.clock()
        if self._last is not None:
            then, last_received, last_sent = self._last
            elapsed = max(now - then, 1e-6)
            for name, value in (("received", received - last_received), ("sent", sent - last_sent)):
                per_minute = value * 60.0 / elapsed
                for window, seconds in WINDOWS:
                    key = f"{name}/{window}"
                    decay = math.exp(-elapsed / seconds)
                    self._load[key] = self._load.get(key, per_minute) * decay + per_minute * (1 - decay)
        else:  # the first round: no rate yet
            self._load = {f"{name}/{window}": 0.0 for name in ("received", "sent") for window, _ in WINDOWS}
        self._last = (now, received, sent)
        sessions = broker.mqtt_sessions
        connected = gateway.connection_count()
        offline = sum(1 for s in sessions.sessions.values() if s.sink is None)
        values = {
            "version": f"rosettamq version {gateway_version()}",
            "uptime": f"{int(time.time() - broker.started_at)} seconds",
            "clients/connected": str(connected),
            "clients/disconnected": str(offline),
            "clients/total": str(connected + offline),
            "messages/received": str(received),
            "messages/sent": str(sent),
            "publish/messages/received": str(received),
            "publish/messages/sent": str(sent),
            "bytes/received": str(bytes_in),
            "bytes/sent": str(bytes_out),
            "publish/messages/dropped": str(broker.router.dropped_no_subscribers),
            "subscriptions/count": str(broker.router.subscription_count()),
            "retained messages/count": str(len(broker.router.retained)),
        }
        for key, value in sorted(self._load.items()):
            direction, window = key.split("/")
            values[f"load/messages/{direction}/{window}"] = f"{value:.2f}"
        return values

    def publish_all(self) -> None:
        """`$SYS/broker/...` for this node's clients; in a cluster also `$SYS/broker/nodes/{node}/...`,
        which every node serves (the plain tree stays each node's own)."""
        self.rounds += 1
        broker, fabric = self.gateway.broker, self.gateway.fabric
        prefixes = ["$SYS/broker/"] + ([f"$SYS/broker/nodes/{fabric.node}/"] if fabric is not None else [])
        for name, value in self.values().items():
            for prefix in prefixes:
                broker.publish(SYSTEM, Message(prefix + name, value.encode(), 0, True, origin=ORIGIN))
