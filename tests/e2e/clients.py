"""Real MQTT peers for interop tests: paho-mqtt in-process, mosquitto_pub/mosquitto_sub as processes.

Every wait has a timeout and waits on an event, a condition or a queue, never
on a fixed sleep. A subscriber (paho or mosquitto_sub) hands out what it
received as `Received` values in arrival order.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

HOST = "127.0.0.1"
TIMEOUT = 10.0

PAHO_PROTOCOLS = {"31": mqtt.MQTTv31, "311": mqtt.MQTTv311, "5": mqtt.MQTTv5}


@dataclass(frozen=True)
class Received:
    """One PUBLISH as a client saw it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: dict[str, Any] = field(default_factory=dict, compare=False)  # MQTT 5 ones paho saw


class Inbox:
    """Received messages in arrival order, read with timeouts."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Received] = queue.Queue()

    def put(self, message: Received) -> None:
        self._queue.put(message)

    def get(self, timeout: float = TIMEOUT) -> Received:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message arrived within {timeout} s") from None

    def take(self, count: int, timeout: float = TIMEOUT) -> list[Received]:
        return [self.get(timeout) for _ in range(count)]

    def until(self, predicate: Callable[[Received], bool], timeout: float = TIMEOUT) -> list[Received]:
        """Everything received up to and including the first message `predicate` accepts."""
        seen: list[Received] = []
        while True:
            message = self.get(timeout)
            seen.append(message)
            if predicate(message):
                return seen

    def until_topic(self, topic: str, timeout: float = TIMEOUT) -> list[Received]:
        return self.until(lambda m: m.topic == topic, timeout)

    def pending(self) -> list[Received]:
        """What has already arrived and not been read (no waiting)."""
        items: list[Received] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items


class PahoClient:
    """A paho-mqtt 2.x client driven by its own network thread; every call waits for the broker's answer."""

    def __init__(
        self, port: int, client_id: str = "", version: str = "5", *, clean: bool = True, max_inflight: int = 20
    ) -> None:
        self.port = port
        self.version = version
        self.protocol = PAHO_PROTOCOLS[version]
        kwargs: dict[str, Any] = {"client_id": client_id, "protocol": self.protocol}
        if self.protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = clean
        self.clean = clean
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
        self.client.max_inflight_messages_set(max_inflight)
        self.inbox = Inbox()
        self.connack: tuple[Any, Any, Any] | None = None
        self._connected = threading.Event()
        self._acks: dict[int, list[Any]] = {}
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_ack
        self.client.on_unsubscribe = self._on_ack
        self.client.on_log = self._on_log
        self._log: list[str] = []

    # -- callbacks (paho's network thread) ---------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self.connack = (flags, reason_code, properties)
        self._connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        props: dict[str, Any] = {}
        if self.protocol == mqtt.MQTTv5 and msg.properties is not None:
            attributes = (name.replace(" ", "") for name in msg.properties.names)
            props = {name: getattr(msg.properties, name) for name in attributes if hasattr(msg.properties, name)}
        self.inbox.put(Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), props))

    def _on_ack(self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        with self._cond:
            self._acks[mid] = [int(code.value) for code in reason_codes]
            self._cond.notify_all()

    def _on_log(self, client: Any, userdata: Any, level: int, text: str) -> None:
        with self._cond:
            self._log.append(text)
            self._cond.notify_all()

    def wait_for_log(self, text: str, count: int = 1) -> None:
        """Block until paho logged `count` lines containing `text` (e.g. "Received PINGRESP")."""
        with self._cond:
            if not self._cond.wait_for(lambda: sum(text in line for line in self._log) >= count, TIMEOUT):
                raise AssertionError(f"paho never logged {text!r} {count} times")

    # -- the test's interface --------------------------------------------------------

    def connect(self, keepalive: int = 60) -> "PahoClient":
        if self.protocol == mqtt.MQTTv5:
            self.client.connect(HOST, self.port, keepalive, clean_start=self.clean)
        else:
            self.client.connect(HOST, self.port, keepalive)
        self.client.loop_start()
        if not self._connected.wait(TIMEOUT):
            raise AssertionError("no CONNACK from the gateway")
        _, reason_code, _ = self.connack  # type: ignore[misc]
        if reason_code.is_failure:
            raise AssertionError(f"connection refused: {reason_code}")
        return self

    @property
    def connack_properties(self) -> Any:
        assert self.connack is not None
        return self.connack[2]

    def _wait_ack(self, mid: int) -> list[int]:
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._acks, TIMEOUT):
                raise AssertionError(f"no acknowledgement for message id {mid}")
            return self._acks.pop(mid)

    def subscribe(self, topic_filter: str, qos: int = 0) -> list[int]:
        """SUBSCRIBE and wait for the SUBACK; returns its codes (granted QoS or failure)."""
        result, mid = self.client.subscribe(topic_filter, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS, result
        return self._wait_ack(mid)

    def unsubscribe(self, topic_filter: str) -> list[int]:
        """UNSUBSCRIBE and wait for the UNSUBACK; returns its v5 reason codes."""
        result, mid = self.client.unsubscribe(topic_filter)
        assert result == mqtt.MQTT_ERR_SUCCESS, result
        return self._wait_ack(mid)

    def publish(self, topic: str, payload: bytes = b"", qos: int = 0, retain: bool = False) -> None:
        """PUBLISH and wait until its flow is complete (written for QoS 0, PUBACK / PUBCOMP otherwise)."""
        info = self.client.publish(topic, payload, qos, retain)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published(), f"publish to {topic!r} not completed"

    def publish_many(self, items: list[tuple[str, bytes]], qos: int) -> None:
        """Queue several publishes at once (paho keeps their order), then wait for them all."""
        infos = [self.client.publish(topic, payload, qos) for topic, payload in items]
        for info in infos:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published()

    def close(self) -> None:
        try:
            if self.client.is_connected():
                self.client.disconnect()
        finally:
            self.client.loop_stop()


class MosquittoSub:
    """`mosquitto_sub -d` in a process; its debug output tells when the SUBACK came back.

    Messages are printed as `MSG topic qos retain length hexpayload`, so
    binary and empty payloads come through exactly.
    """

    MARK = "MSG "

    def __init__(self, port: int, topics: list[str], qos: int = 0, version: str = "5", *, extra: tuple[str, ...] = ()) -> None:
        args = ["stdbuf", "-oL", "mosquitto_sub", "-h", HOST, "-p", str(port), "-V", version,
                "-q", str(qos), "-d", "-F", self.MARK + "%t %q %r %l %x", *extra]
        for topic in topics:
            args += ["-t", topic]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.inbox = Inbox()
        self.granted: list[int] | None = None
        self.client_id: str | None = None  # as libmosquitto knows it after CONNACK (assigned ids too)
        self._lines: list[str] = []
        self._lines_cond = threading.Condition()
        self._subscribed = threading.Event()
        self._ended = threading.Event()
        self._reader = threading.Thread(target=self._read, name="mosquitto_sub-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                with self._lines_cond:
                    self._lines.append(line)
                    self._lines_cond.notify_all()
                if line.startswith("Client ") and " received CONNACK" in line:
                    self.client_id = line.split(" ", 2)[1]
                if line.startswith(self.MARK):
                    topic, qos, retain, length, hexed = line[len(self.MARK):].rsplit(" ", 4)
                    payload = bytes.fromhex(hexed)
                    assert len(payload) == int(length)
                    self.inbox.put(Received(topic, payload, int(qos), retain == "1"))
                elif line.startswith("Subscribed (mid:"):
                    self.granted = [int(code) for code in line.split(":", 2)[2].split(",")]
                    self._subscribed.set()
        finally:
            self._ended.set()

    def wait_subscribed(self) -> list[int]:
        """Block until mosquitto_sub printed its SUBACK; returns the granted QoS per filter."""
        deadline_hit = not self._subscribed.wait(TIMEOUT)
        if deadline_hit or self.granted is None:
            raise AssertionError(f"mosquitto_sub never subscribed: {self._stderr()}")
        return self.granted

    def wait_for_output(self, text: str, count: int = 1) -> None:
        """Block until `count` lines of debug output contain `text`."""
        with self._lines_cond:
            if not self._lines_cond.wait_for(lambda: sum(text in line for line in self._lines) >= count, TIMEOUT):
                raise AssertionError(f"mosquitto_sub never printed {text!r} {count} times")

    def _stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "(still running)"
        return self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover - only if terminate is ignored
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        self._ended.wait(TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def mosquitto_pub(
    port: int,
    topic: str,
    payload: bytes | None,
    *,
    qos: int = 0,
    version: str = "5",
    retain: bool = False,
    lines: bool = False,
) -> None:
    """Run mosquitto_pub to completion. `payload` None or b"" sends an empty message; with
    `lines`, every line of `payload` is its own message, in order."""
    args = ["mosquitto_pub", "-h", HOST, "-p", str(port), "-V", version, "-q", str(qos), "-t", topic]
    if retain:
        args.append("-r")
    if lines:
        args.append("-l")
    elif not payload:
        args.append("-n")
    else:
        args.append("-s")
    done = subprocess.run(args, input=payload or b"", capture_output=True, timeout=30)
    assert done.returncode == 0, f"mosquitto_pub failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
