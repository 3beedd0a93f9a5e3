"""``[[bridge.mqtt]]``, ``[[bridge.amqp]]``, ``[[bridge.http]]``: what each bridge connects to and carries.

gateway/config_bridges.py reads the TOML into these; the bridges (gateway/bridges/) take them.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from core.outbox import OutboxLimits

KINDS = ("mqtt", "amqp", "http")
OVERFLOWS = ("drop_oldest", "drop_new")  # a bridge has no client to disconnect


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """TLS towards the upstream: verification is on unless `insecure`; `ca` adds a trusted CA file,
    `cert`/`key` a client certificate."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca)
        if self.cert:
            context.load_cert_chain(self.cert, self.key)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeSettings:
    """What every bridge has: a name, an upstream URL, the local filters sent out, its queue and backoff."""

    kind: str
    name: str
    url: str
    out: tuple[str, ...] = ()
    qos: int = 1  # the most a message keeps going out: QoS >= 1 is kept until the upstream acknowledges it
    queue: OutboxLimits = OutboxLimits(max_messages=100_000, max_bytes=64 * 1024 * 1024)
    reconnect_min: float = 1.0  # seconds before the first retry; doubles (with jitter) up to reconnect_max
    reconnect_max: float = 60.0
    tls: TLSSettings = field(default_factory=TLSSettings)
    inflight: int = 100  # messages sent and not yet acknowledged, at most

    @property
    def parts(self) -> SplitResult:
        return urlsplit(self.url)

    @property
    def secure(self) -> bool:
        return self.parts.scheme.endswith("s")

    def public_url(self) -> str:
        """The URL without its password (for logs, the API and the console)."""
        parts = self.parts
        if parts.password is None:
            return self.url
        netloc = parts.netloc.rsplit("@", 1)[1]
        return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()


@dataclass(frozen=True, slots=True, kw_only=True)
class MQTTBridgeSettings(BridgeSettings):
    """An upstream MQTT broker (paho-mqtt)."""

    client_id: str = ""
    version: int = 5  # 3 (3.1.1) or 5
    in_: tuple[str, ...] = ()  # local filters brought in (the upstream is asked for remote_prefix + filter)
    remote_prefix: str = ""
    username: str | None = None
    password: str | None = None
    keepalive: int = 60
    clean_start: bool = True
    session_expiry: int = 0  # MQTT 5, with clean_start = false: seconds the upstream keeps our session


@dataclass(frozen=True, slots=True, kw_only=True)
class AMQPBridgeSettings(BridgeSettings):
    """An existing RabbitMQ (aio-pika)."""

    exchange: str = "amq.topic"
    in_queue: str | None = None
    in_prefix: str = ""
    prefetch: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPBridgeSettings(BridgeSettings):
    """A webhook (aiohttp's client): one POST per message, or per batch."""

    headers: tuple[tuple[str, str], ...] = ()
    batch: int = 1  # messages per POST: 1 posts one JSON object, more posts an array of what is waiting
    timeout: float = 10.0
