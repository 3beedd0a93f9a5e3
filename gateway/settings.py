"""What the core and each listener are built with, read from the config: one function per part.

`gateway.app` builds the running gateway with them; `gateway.reload` builds them again on SIGHUP.
"""

from __future__ import annotations

from typing import Callable

from adapters.amqp.settings import AMQPSettings
from adapters.coap.settings import CoAPSettings
from adapters.lwm2m.ddf import load_object_dir
from adapters.lwm2m.objects import ObjectRegistry
from adapters.lwm2m.settings import LwM2MSettings
from adapters.mqtt.settings import MQTTSettings
from adapters.ws.settings import WSSettings
from core.auth import Authenticator
from core.login_backoff import LoginBackoff
from core.session_parts import SessionLimits
from core.tokens import TokenFile

from gateway.auth_jwt import bearer_check
from gateway.config import Config, WSListenerConfig, WSSListenerConfig
from gateway.security import Security


def mqtt_settings(config: Config) -> MQTTSettings:
    """MQTT limits from the config (authentication and quotas are added by `gateway.security`)."""
    limits = config.mqtt_limits
    return MQTTSettings(
        max_packet_size=limits.max_packet_size,
        receive_maximum=limits.max_inflight,
        max_keepalive=limits.max_keepalive,
        retain_available=limits.retain_available,
        max_qos=limits.max_qos,
        topic_alias_maximum=limits.topic_alias_maximum,
        session_expiry_max=limits.session_expiry_max,
    )


def ws_settings(config: Config, section: WSListenerConfig | WSSListenerConfig,
                tokens: TokenFile | None = None, authenticator: Authenticator | None = None) -> WSSettings:
    """The WebSocket listener's options; a frame may carry at most one maximum-size MQTT packet.
    `tokens`: the listener's token file, kept by the gateway so that SIGHUP reloads it;
    `authenticator`: with `[auth.jwt]`, access tokens are bearer tokens of the upgrade too."""
    return WSSettings(
        path=section.path,
        allowed_origins=section.allowed_origins,
        trust_proxy=section.trust_proxy,
        max_frame_size=config.mqtt_limits.max_packet_size,
        ping_interval=float(section.ping_interval),
        token_user=tokens.user_for if tokens is not None else None,
        access_token=bearer_check(authenticator),
    )


def coap_settings(config: Config, security: Security) -> CoAPSettings:
    """[coap] plus the shared protection: authenticator, per-address rate, login backoff, max connections."""
    section = config.coap
    return CoAPSettings(
        max_payload_size=section.max_payload_size, observer_queue=section.observer_queue,
        max_observers=section.max_observers, heartbeat=float(section.heartbeat),
        ack_timeout=section.ack_timeout_ms / 1000, max_retransmit=section.max_retransmit,
        authenticator=security.authenticator, rate_limiter=security.rate_limiter,
        login_backoff=security.login_backoff, max_connections=security.max_connections,
    )


def lwm2m_settings(config: Config) -> LwM2MSettings:
    """The LwM2M server's settings from [lwm2m]; the object registry includes `object_dir`'s files."""
    section = config.lwm2m
    registry = ObjectRegistry.builtin()
    if section.object_dir is not None:
        registry = registry.with_objects(load_object_dir(section.object_dir))
    return LwM2MSettings(
        prefix=section.topic_prefix, registry=registry, lifetime_grace=section.lifetime_grace,
        min_lifetime=section.min_lifetime, max_lifetime=section.max_lifetime,
        command_timeout=section.command_timeout, queue_ttl=section.queue_ttl,
        awake_window=section.awake_window, max_queued=section.max_queued,
        auto_observe=section.auto_observe, republish=dict(section.republish), qos=section.qos,
        endpoint_pattern=section.endpoint_pattern, bootstrap=section.bootstrap,
        bootstrap_dir=section.bootstrap_dir,
    )


def amqp_settings(config: Config, authenticator: Authenticator | None,
                  login_backoff: LoginBackoff | None = None,
                  is_admin: Callable[[str | None], bool] | None = None) -> AMQPSettings:
    """AMQP broker settings from [amqp] (shared by the [amqps] listener); `is_admin`: Security.is_admin."""
    section = config.amqp
    return AMQPSettings(
        heartbeat=section.heartbeat, frame_max=section.frame_max, channel_max=section.channel_max,
        vhosts=section.vhosts, origin_header=section.origin_header,
        max_held_messages=section.max_held_messages, core_queue_max_length=section.core_queue_max_length,
        authenticator=authenticator, login_backoff=login_backoff, is_admin=is_admin,
        durable_queues=config.cluster is None or config.cluster.durable_queues == "local",
    )


def logins_are_checked(config: Config, authenticator: Authenticator | None) -> bool:
    """Whether a username is an identity someone proved (a password, a certificate, a token): then
    sessions belong to their user. With anonymous access and no identities at all, a username is
    only what the client typed, and a client id stays anyone's to resume, as in mosquitto."""
    if authenticator is not None:
        return True
    listeners = (config.mqtt_tls, config.wss, config.amqps)
    return (any(getattr(listener, "use_identity_as_username", False) for listener in listeners)
            or any(getattr(listener, "tokens_file", None) for listener in (config.ws, config.wss)))


def session_limits(config: Config) -> SessionLimits:
    limits = config.mqtt_limits
    return SessionLimits(max_queued=limits.max_queued_messages, max_inflight=limits.max_inflight,
                         max_queued_bytes=limits.max_queued_bytes, overflow=limits.overflow)
