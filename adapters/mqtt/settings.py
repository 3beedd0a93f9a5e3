"""Broker-side MQTT limits and features, as one value the connection reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from adapters.mqtt.enhanced_auth import AuthMethod
    from core.auth import Authenticator
    from core.login_backoff import LoginBackoff


@dataclass(frozen=True, slots=True)
class MQTTSettings:
    """What the server allows and advertises in CONNACK."""

    max_packet_size: int = 1024 * 1024
    receive_maximum: int = 100  # inbound QoS 1/2 publishes a client may have unacknowledged
    max_keepalive: int = 65535
    retain_available: bool = True
    max_qos: int = 2
    topic_alias_maximum: int = 10
    session_expiry_max: int = 0xFFFFFFFF
    connect_timeout: float = 10.0
    assigned_id_prefix: str = "rmq-"
    auth_methods: dict[str, Callable[[], "AuthMethod"]] = field(default_factory=dict)
    authenticator: "Authenticator | None" = None
    max_subscriptions: int = 0  # per client; 0: unlimited (SUBACK 0x97 / 0x80 past it)
    login_backoff: "LoginBackoff | None" = None  # shared by every listener: failures count per address
