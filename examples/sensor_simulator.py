"""Simulated sensors for the dashboard: drifting temperature and humidity over MQTT/TCP.

Each sensor publishes ``sensors/{id}/temperature`` (°C) and
``sensors/{id}/humidity`` (%RH) as plain numbers, so the browser dashboard
(http://127.0.0.1:8080/dashboard/ on a default gateway) shows them live:

    python examples/sensor_simulator.py --host 127.0.0.1 --port 1883 --interval 1

Needs paho-mqtt 2.x (``pip install paho-mqtt``).
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    sensors = [Sensor(f"t{i}", rng.uniform(19, 23), rng.uniform(35, 55)) for i in range(1, args.sensors + 1)]
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sensor-simulator-{rng.randrange(1 << 32):08x}")
    client.on_connect = lambda *_: connected.set()
    client.connect(args.host, args.port, keepalive=30)
    client.loop_start()
    stop = threading.Event()
    try:
        if not connected.wait(10):
            print(f"no CONNACK from {args.host}:{args.port}", file=sys.stderr)
            return 1
        print(f"publishing {len(sensors)} sensors to {args.host}:{args.port} every {args.interval} s", flush=True)
        sent = 0
        while args.count == 0 or sent < args.count:
            for sensor in sensors:
                sensor.step(rng)
                for topic, value in sensor.readings().items():
                    client.publish(topic, value, qos=args.qos, retain=args.retain).wait_for_publish(10)
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
