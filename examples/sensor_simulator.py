"""Simulated sensors for the dashboard: drifting temperature and humidity over MQTT/TCP.

Each sensor publishes ``sensors/{id}/temperature`` (°C) and
``sensors/{id}/humidity`` (%RH) as plain numbers, so the browser dashboard
(http://127.0.0.1:8080/dashboard/ on a default gateway) shows them live:

    python examples/sensor_simulator.py --host 127.0.0.1 --port 1883 --interval 1

It waits for the gateway when it is not up yet, and reconnects (1 s, then up to
30 s apart) when kicked or when the gateway restarts, printing one line each
time; readings made while disconnected are skipped. Ctrl-C stops it.

Needs paho-mqtt 2.x (``pip install paho-mqtt``; ``bash scripts/start.sh`` installs it).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class Sensor:
    """A random walk pulled back towards a comfortable indoor climate."""

    id: str
    temperature: float
    humidity: float

    def step(self, rng: random.Random) -> None:
        self.temperature += rng.gauss(0, 0.15) + (21.0 - self.temperature) * 0.02
        self.humidity += rng.gauss(0, 0.6) + (45.0 - self.humidity) * 0.03
        self.humidity = min(100.0, max(0.0, self.humidity))

    def readings(self) -> dict[str, str]:
        return {
            f"sensors/{self.id}/temperature": f"{self.temperature:.2f}",
            f"sensors/{self.id}/humidity": f"{self.humidity:.1f}",
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="gateway MQTT host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1883, help="gateway MQTT port (default 1883)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between readings (default 1)")
    parser.add_argument("--count", type=int, default=0, help="readings per sensor, then exit (default 0: forever)")
    parser.add_argument("--sensors", type=int, default=3, help="number of sensors t1..tN (default 3)")
    parser.add_argument("--qos", type=int, choices=(0, 1, 2), default=0, help="publish QoS (default 0)")
    parser.add_argument("--retain", action="store_true", help="publish retained (new dashboards see values at once)")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable values")
    return parser.parse_args(argv)


class Link:
    """The MQTT connection as paho's network thread sees it: it connects, and reconnects on its own."""

    def __init__(self, client: mqtt.Client, where: str) -> None:
        self.where = where
        self.up = threading.Event()
        self.ever = False
        client.on_connect = self.on_connect
        client.on_disconnect = self.on_disconnect
        client.on_connect_fail = lambda *_: None  # paho retries; "waiting" was said once

    def on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            print(f"refused by {self.where}: {reason}; retrying", file=sys.stderr, flush=True)
            return
        print(f"{'reconnected' if self.ever else 'connected'} to {self.where}", flush=True)
        self.ever = True
        self.up.set()

    def on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                      props: object) -> None:
        if self.up.is_set():
            print(f"disconnected from {self.where} ({reason}); reconnecting", file=sys.stderr, flush=True)
        self.up.clear()


def publish(client: mqtt.Client, topic: str, value: str, args: argparse.Namespace) -> None:
    """Publish and wait for the broker (QoS 1/2); a connection lost meanwhile just drops the reading."""
    info = client.publish(topic, value, qos=args.qos, retain=args.retain)
    if info.rc == mqtt.MQTT_ERR_SUCCESS:
        try:
            info.wait_for_publish(10)
        except (RuntimeError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    sensors = [Sensor(f"t{i}", rng.uniform(19, 23), rng.uniform(35, 55)) for i in range(1, args.sensors + 1)]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sensor-simulator-{rng.randrange(1 << 32):08x}")
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    link = Link(client, f"{args.host}:{args.port}")
    client.connect_async(args.host, args.port, keepalive=30)
    client.loop_start()  # paho's thread connects, and reconnects after any loss
    stop = threading.Event()
    try:
        if not link.up.wait(2):
            print(f"waiting for the gateway at {link.where}", file=sys.stderr, flush=True)
        print(f"publishing {len(sensors)} sensors to {link.where} every {args.interval} s", flush=True)
        sent = 0
        while args.count == 0 or sent < args.count:
            while not link.up.wait(1):
                pass  # short waits: Ctrl-C stays responsive
            for sensor in sensors:
                sensor.step(rng)
                for topic, value in sensor.readings().items():
                    publish(client, topic, value, args)
            sent += 1
            if args.count == 0 or sent < args.count:
                stop.wait(args.interval)  # interruptible by Ctrl-C, unlike a busy loop
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
