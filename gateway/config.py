"""RosettaMQ configuration: one TOML file read into frozen dataclasses.

Rules of this module:

- Every section and key is optional; the dataclass defaults (gateway.config_sections) are the
  embedded configuration (examples/rosettamq.toml documents each of them).
- Unknown sections or keys and wrongly typed values raise `ConfigError`
  naming ``section.key``: a typo never passes silently.
- Relative file paths written in a config file are resolved against that
  file's directory; files a listener or auth needs are checked at load.
- TLS listeners are off unless their section names a ``certfile``; any
  listener is off when its section says ``enabled = false``.
- A listener whose ``listen`` is not set binds loopback only (127.0.0.1 and ::1), as
  mosquitto 2 does until configured: other hosts are let in only by a
  ``listen`` (or a command-line flag) that names another address.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.outbox import OVERFLOW_POLICIES
from gateway.bridges.settings import BridgeSettings
from gateway.cluster.settings import ClusterSettings
from gateway.config_bridges import read_bridges
from gateway.config_cluster import read_cluster
from gateway.config_http import read_http
from gateway.config_jwt import read_jwt
from gateway.config_lwm2m import read_lwm2m
from gateway.config_reader import Section, reject_unknown
from gateway.config_sections import (
    ALL_INTERFACES,
    LOOPBACK,
    LOG_FORMATS,
    LOG_LEVELS,
    AMQPListenerConfig,
    AuthConfig,
    CoAPListenerConfig,
    CoAPSListenerConfig,
    ConfigError,
    HTTPListenerConfig,
    ListenAddress,
    ListenerConfig,
    LogConfig,
    LimitsConfig,
    LwM2MConfig,
    MQTTLimits,
    StoreConfig,
    SysConfig,
    TLSListenerConfig,
    WSListenerConfig,
    WSSListenerConfig,
    _addr,
    _toml_type,
    parse_listen,
)

__all__ = [
    "ALL_INTERFACES", "LOOPBACK", "LOG_FORMATS", "LOG_LEVELS", "AMQPListenerConfig", "AuthConfig", "CoAPListenerConfig",
    "CoAPSListenerConfig", "Config", "ConfigError", "HTTPListenerConfig", "LimitsConfig", "SysConfig",
    "ListenAddress",
    "ListenerConfig", "LogConfig", "LwM2MConfig", "MQTTLimits", "StoreConfig", "TLSListenerConfig", "WSListenerConfig",
    "WSSListenerConfig", "apply_cli_overrides", "config_from_dict", "load_config", "parse_listen",
]


@dataclass(frozen=True, slots=True)
class Config:
    """The whole gateway configuration; ``Config()`` is the embedded default."""
    mqtt: ListenerConfig = ListenerConfig(True, _addr(1883))
    mqtt_limits: MQTTLimits = MQTTLimits()
    ws: WSListenerConfig = WSListenerConfig(True, _addr(8083))
    amqp: AMQPListenerConfig = AMQPListenerConfig(True, _addr(5672))
    coap: CoAPListenerConfig = CoAPListenerConfig(True, _addr(5683))
    lwm2m: LwM2MConfig = LwM2MConfig()  # rides on the CoAP listener
    http: HTTPListenerConfig = HTTPListenerConfig(True, _addr(8080))
    mqtt_tls: TLSListenerConfig = TLSListenerConfig(False, _addr(8883))
    wss: WSSListenerConfig = WSSListenerConfig(False, _addr(8084))
    amqps: TLSListenerConfig = TLSListenerConfig(False, _addr(5671))
    coaps: CoAPSListenerConfig = CoAPSListenerConfig(False, _addr(5684))
    store: StoreConfig = StoreConfig()
    auth: AuthConfig = AuthConfig()
    log: LogConfig = LogConfig()
    sys: SysConfig = SysConfig()
    limits: LimitsConfig = LimitsConfig()
    cluster: ClusterSettings | None = None  # [cluster]: None is single-node mode
    bridges: tuple[BridgeSettings, ...] = ()  # [[bridge.mqtt]], [[bridge.amqp]], [[bridge.http]]
    reuse_port: bool = False  # not a config key: set for the workers of `run --workers N` (gateway/workers.py)

    def enabled_listeners(self) -> dict[str, ListenerConfig]:
        """Enabled listeners by section name, in declaration order."""
        out: dict[str, ListenerConfig] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ListenerConfig) and value.enabled:
                out[f.name] = value
        return out


# --- reading ---------------------------------------------------------------

def _ws_options(sec: Section, default: WSListenerConfig | WSSListenerConfig) -> dict[str, Any]:
    """The WebSocket keys shared by ``[ws]`` and ``[wss]``."""
    return {
        "path": sec.url_path("path", default.path),
        "allowed_origins": sec.origins("allowed_origins"),
        "trust_proxy": bool(sec.boolean("trust_proxy", default.trust_proxy)),
        "ping_interval": sec.integer("ping_interval", default.ping_interval, 0, 86400),
        "tokens_file": _tokens_file(sec),
    }


def _tokens_file(sec: Section) -> str | None:
    path = sec.path("tokens_file")
    sec.require_file("tokens_file", path)
    return path


def _listener(sec: Section, default: ListenerConfig) -> ListenerConfig:
    enabled, listen = sec.boolean("enabled", True), sec.listen(default.listen)
    if isinstance(default, WSListenerConfig):
        result: ListenerConfig = WSListenerConfig(enabled, listen, **_ws_options(sec, default))
    else:
        result = ListenerConfig(enabled, listen)
    sec.done()
    return result


def _coap(sec: Section, default: CoAPListenerConfig) -> CoAPListenerConfig:
    result = CoAPListenerConfig(
        bool(sec.boolean("enabled", True)), sec.listen(default.listen),
        observer_queue=sec.integer("observer_queue", default.observer_queue, 1, 1_000_000),
        max_observers=sec.integer("max_observers", default.max_observers, 1, 10_000_000),
        max_payload_size=sec.integer("max_payload_size", default.max_payload_size, 1, 268_435_456),
        heartbeat=sec.integer("heartbeat", default.heartbeat, 1, 86400),
        ack_timeout_ms=sec.integer("ack_timeout_ms", default.ack_timeout_ms, 1, 60_000),
        max_retransmit=sec.integer("max_retransmit", default.max_retransmit, 0, 20),
    )
    sec.done()
    return result


def _coaps(sec: Section, default: CoAPSListenerConfig) -> CoAPSListenerConfig:
    enabled, listen, psk_file = sec.boolean("enabled", None), sec.listen(default.listen), sec.path("psk_file")
    sec.done()
    if psk_file is None and enabled:
        raise ConfigError(f"{sec.name}.psk_file: required to enable CoAP over DTLS")
    on = psk_file is not None and enabled is not False
    if on:
        sec.require_file("psk_file", psk_file)
    return CoAPSListenerConfig(on, listen, psk_file)


def _amqp(sec: Section, default: AMQPListenerConfig) -> AMQPListenerConfig:
    vhosts = sec._get("vhosts", list, list(default.vhosts))
    if not vhosts or not all(isinstance(v, str) and 0 < len(v) <= 255 for v in vhosts):
        raise ConfigError(f"{sec.name}.vhosts: expected a non-empty array of names, got {vhosts!r}")
    result = AMQPListenerConfig(
        bool(sec.boolean("enabled", True)), sec.listen(default.listen),
        heartbeat=sec.integer("heartbeat", default.heartbeat, 0, 65535),
        frame_max=sec.integer("frame_max", default.frame_max, 4096, 16_777_216),
        channel_max=sec.integer("channel_max", default.channel_max, 1, 65535),
        vhosts=tuple(vhosts),
        origin_header=bool(sec.boolean("origin_header", default.origin_header)),
        max_held_messages=sec.integer("max_held_messages", default.max_held_messages, 0, 2**40),
        core_queue_max_length=sec.integer("core_queue_max_length", default.core_queue_max_length, 0, 2**40),
    )
    sec.done()
    return result


def _tls_listener(sec: Section, default: TLSListenerConfig) -> TLSListenerConfig:
    enabled, listen = sec.boolean("enabled", None), sec.listen(default.listen)
    files = {key: sec.path(key) for key in ("certfile", "keyfile", "cafile")}
    require = bool(sec.boolean("require_client_cert", False))
    identity = bool(sec.boolean("use_identity_as_username", False))
    is_wss = isinstance(default, WSSListenerConfig)
    ws = _ws_options(sec, default) if is_wss else {}  # type: ignore[arg-type]
    sec.done()
    if files["certfile"] is None:
        # enabled = true, or other TLS keys without enabled = false: a forgotten certfile
        hints = files["keyfile"] or files["cafile"] or require
        if enabled or (enabled is None and hints):
            raise ConfigError(f"{sec.name}.certfile: required to enable this TLS listener")
    on = files["certfile"] is not None and enabled is not False
    if on:
        for key, value in files.items():
            sec.require_file(key, value)
        if require and files["cafile"] is None:
            raise ConfigError(f"{sec.name}.require_client_cert: needs {sec.name}.cafile")
        if identity and not require:
            raise ConfigError(f"{sec.name}.use_identity_as_username: needs {sec.name}.require_client_cert = true")
    args = (on, listen, files["certfile"], files["keyfile"], files["cafile"], require, identity)
    return WSSListenerConfig(*args, **ws) if is_wss else TLSListenerConfig(*args)  # type: ignore[arg-type]


def _mqtt(sec: Section, default: Config) -> tuple[ListenerConfig, MQTTLimits]:
    d = default.mqtt_limits
    limits = MQTTLimits(
        max_packet_size=sec.integer("max_packet_size", d.max_packet_size, 16, 268_435_460),
        max_inflight=sec.integer("max_inflight", d.max_inflight, 1, 65535),
        max_queued_messages=sec.integer("max_queued_messages", d.max_queued_messages, 1, 2**31 - 1),
        max_queued_bytes=sec.integer("max_queued_bytes", d.max_queued_bytes, 0, 2**62),
        overflow=sec.choice("overflow", d.overflow, OVERFLOW_POLICIES),
        max_keepalive=sec.integer("max_keepalive", d.max_keepalive, 1, 65535),
        retain_available=bool(sec.boolean("retain_available", d.retain_available)),
        max_qos=sec.integer("max_qos", d.max_qos, 0, 2),
        session_expiry_max=sec.integer("session_expiry_max", d.session_expiry_max, 0, 4_294_967_295),
        topic_alias_maximum=sec.integer("topic_alias_maximum", d.topic_alias_maximum, 0, 65535),
        max_connections=sec.integer("max_connections", d.max_connections, 0, 10_000_000),
        max_connection_rate=sec.number("max_connection_rate", d.max_connection_rate, 0.0, 1e9),
        max_subscriptions=sec.integer("max_subscriptions", d.max_subscriptions, 0, 10_000_000),
    )
    return _listener(sec, default.mqtt), limits


def _limits(sec: Section) -> LimitsConfig:
    d = LimitsConfig()
    limits = LimitsConfig(max_memory=sec.integer("max_memory", d.max_memory, 0, 2**62),
                          max_message_size=sec.integer("max_message_size", d.max_message_size, 1, 2**62))
    sec.done()
    return limits


def _store(sec: Section) -> StoreConfig:
    value = sec.string("path", None)
    sec.done()
    if value is None or value in ("memory", ":memory:"):
        return StoreConfig() if value is None else StoreConfig(value)
    return StoreConfig(sec.resolve("path", value))


def _auth(sec: Section) -> AuthConfig:
    password_file, acl_file = sec.path("password_file"), sec.path("acl_file")
    jwt = read_jwt(Section(f"{sec.name}.jwt", sec._get("jwt", dict, {}), sec.base_dir))
    allow = sec.boolean("allow_anonymous", password_file is None and jwt is None)
    backoff_after = sec.integer("login_backoff_after", AuthConfig().login_backoff_after, 0, 1_000_000)
    backoff_max = sec.number("login_backoff_max", AuthConfig().login_backoff_max, 0.0, 86400.0)
    sec.done()
    sec.require_file("password_file", password_file)
    sec.require_file("acl_file", acl_file)
    return AuthConfig(password_file, acl_file, bool(allow), backoff_after, backoff_max, jwt)


def _log(sec: Section) -> LogConfig:
    levels = sec._get("levels", dict, {})
    for logger, level in levels.items():
        if level not in LOG_LEVELS:
            raise ConfigError(f"log.levels.{logger}: expected one of {', '.join(LOG_LEVELS)}, got {level!r}")
    result = LogConfig(sec.choice("level", "info", LOG_LEVELS),
                       sec.choice("format", "text", LOG_FORMATS), tuple(sorted(levels.items())), sec.path("file"))
    sec.done()
    if result.file is not None and not os.path.isdir(os.path.dirname(os.path.abspath(result.file))):
        raise ConfigError(f"{sec.name}.file: folder not found: {os.path.dirname(os.path.abspath(result.file))}")
    return result


def _sys(sec: Section) -> SysConfig:
    result = SysConfig(sec.integer("interval", SysConfig().interval, 0, 86400))
    sec.done()
    return result


_LISTENERS: dict[str, Any] = {"ws": _listener, "amqp": _amqp, "coap": _coap,
                              "http": read_http, "mqtt_tls": _tls_listener,
                              "wss": _tls_listener, "amqps": _tls_listener, "coaps": _coaps}
_SECTIONS = ("mqtt", *_LISTENERS, "lwm2m", "store", "auth", "log")
_SECTIONS += ("sys", "limits", "cluster", "bridge")


def config_from_dict(data: dict[str, Any], base_dir: str | os.PathLike[str] | None = None) -> Config:
    """Build a `Config` from parsed TOML; relative paths resolve against `base_dir`."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a table of sections, got {_toml_type(data)}")
    extra = [k for k in data if k not in _SECTIONS]
    if extra:
        reject_unknown("section", extra, list(_SECTIONS))
    base = Path(base_dir) if base_dir is not None else None
    default = Config()

    def section(name: str) -> Section:
        return Section(name, data.get(name, {}), base)

    values: dict[str, Any] = {name: build(section(name), getattr(default, name))
                              for name, build in _LISTENERS.items()}
    values["mqtt"], values["mqtt_limits"] = _mqtt(section("mqtt"), default)
    values["sys"] = _sys(section("sys"))
    values["limits"] = _limits(section("limits"))
    values["cluster"] = read_cluster(section("cluster"))
    values["bridges"] = read_bridges(section("bridge"), lambda name, table: Section(name, table, base))
    return Config(store=_store(section("store")), auth=_auth(section("auth")),
                  log=_log(section("log")), lwm2m=read_lwm2m(section("lwm2m")), **values)


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read a TOML config file; None gives the embedded defaults."""
    if path is None:
        return Config()
    file = Path(path)
    try:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {file}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    return config_from_dict(data, base_dir=file.parent)


def apply_cli_overrides(
    config: Config,
    *,
    mqtt_listen: str | ListenAddress | None = None,
    ws_listen: str | ListenAddress | None = None,
    amqp_listen: str | ListenAddress | None = None,
    coap_listen: str | ListenAddress | None = None,
    http_listen: str | ListenAddress | None = None,
    store_path: str | None = None,
) -> Config:
    """Return `config` with the given command-line values replacing the file's.

    A listen override changes only the address, not whether the listener is
    enabled. None leaves a setting as it is.
    """
    changes: dict[str, Any] = {}
    for name, value in (("mqtt", mqtt_listen), ("ws", ws_listen), ("amqp", amqp_listen),
                        ("coap", coap_listen), ("http", http_listen)):
        if value is not None:
            if not isinstance(value, ListenAddress):
                value = parse_listen(value, f"{name}.listen")
            changes[name] = dataclasses.replace(getattr(config, name), listen=value)
    if store_path is not None:
        if not store_path.strip():
            raise ConfigError("store.path: must not be empty")
        changes["store"] = StoreConfig(store_path)
    return dataclasses.replace(config, **changes)
