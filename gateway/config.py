"""RosettaMQ configuration: one TOML file read into frozen dataclasses.

Rules of this module:

- Every section and key is optional; the dataclass defaults below are the
  embedded configuration (examples/rosettamq.toml documents each of them).
- Unknown sections or keys and wrongly typed values raise `ConfigError`
  naming ``section.key``: a typo never passes silently.
- Relative file paths written in a config file are resolved against that
  file's directory; files a listener or auth needs are checked at load.
- TLS listeners are off unless their section names a ``certfile``; any
  listener is off when its section says ``enabled = false``.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import ssl
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

ALL_INTERFACES = "0.0.0.0"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the section and key."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where a listener binds; port 0 lets the OS pick a free port."""
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


_PORT = re.compile(r"[0-9]{1,5}")
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_IPV4ISH = re.compile(r"[0-9.]+")


def parse_listen(text: str, key: str = "listen") -> ListenAddress:
    """Parse ``host:port``, ``[v6addr]:port``, ``:port`` or a bare ``port``.

    ``:port`` and a bare port bind all IPv4 interfaces (0.0.0.0). `key` names
    the setting in error messages (e.g. ``mqtt.listen``).
    """

    def fail(why: str) -> NoReturn:
        raise ConfigError(f'{key}: {why} in {text!r}; expected "host:port", '
                          '"[::1]:port", ":port" or "port"')

    if not isinstance(text, str):
        raise ConfigError(f"{key}: expected a string, got {_toml_type(text)} {text!r}")
    s = text.strip()
    if s.startswith("["):
        host, closed, rest = s[1:].partition("]")
        if not closed or not rest.startswith(":"):
            fail("missing ']:port' after the IPv6 address")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            fail(f"invalid IPv6 address {host!r}")
        port = rest[1:]
    elif _PORT.fullmatch(s):
        host, port = ALL_INTERFACES, s
    elif ":" in s:
        host, _, port = s.rpartition(":")
        if ":" in host:
            fail("an IPv6 address needs brackets, like [::1]:1883,")
        host = host or ALL_INTERFACES
        if _IPV4ISH.fullmatch(host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                fail(f"invalid IPv4 address {host!r}")
        elif not _HOSTNAME.fullmatch(host):
            fail(f"invalid host {host!r}")
    else:
        fail("missing port")
    if not _PORT.fullmatch(port) or int(port) > 65535:
        fail(f"port {port!r} is not a number from 0 to 65535")
    return ListenAddress(host, int(port))


def _addr(port: int, host: str = ALL_INTERFACES) -> ListenAddress:
    return ListenAddress(host, port)


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """A plain listener: ``[mqtt]``, ``[amqp]``, ``[coap]``, ``[http]``."""
    enabled: bool
    listen: ListenAddress


@dataclass(frozen=True, slots=True)
class WSListenerConfig(ListenerConfig):
    """MQTT over WebSocket (``[ws]``); `path` is the HTTP upgrade path.

    `allowed_origins`: browser origins (``scheme://host[:port]``) allowed to
    connect; empty allows all, and requests without an Origin header
    (non-browser clients) are always allowed. `trust_proxy`: take the client
    address from X-Forwarded-For. `ping_interval`: seconds between WebSocket
    pings (0: none); a peer that misses a pong for as long is closed.
    """
    path: str = "/mqtt"
    allowed_origins: tuple[str, ...] = ()
    trust_proxy: bool = False
    ping_interval: int = 20


@dataclass(frozen=True, slots=True)
class TLSListenerConfig(ListenerConfig):
    """A TLS listener (``[mqtt_tls]``, ``[amqps]``); on only with a certfile.

    `keyfile` may be omitted when `certfile` holds key and chain (combined
    PEM). `cafile` verifies client certificates; `require_client_cert` makes
    one mandatory.
    """

    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None
    require_client_cert: bool = False

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context: client certs required, optional (cafile) or off."""
        if self.certfile is None:
            raise ConfigError("ssl_context() needs a certfile")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.certfile, self.keyfile)
        if self.cafile:
            ctx.load_verify_locations(cafile=self.cafile)
            ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        return ctx


@dataclass(frozen=True, slots=True)
class WSSListenerConfig(TLSListenerConfig):
    """MQTT over secure WebSocket (``[wss]``); the WebSocket keys are those of `WSListenerConfig`."""
    path: str = "/mqtt"
    allowed_origins: tuple[str, ...] = ()
    trust_proxy: bool = False
    ping_interval: int = 20


@dataclass(frozen=True, slots=True)
class MQTTLimits:
    """Broker-wide MQTT limits (keys of ``[mqtt]``); apply to TCP, TLS, WS, WSS."""
    max_packet_size: int = 1_048_576  # bytes, whole packet; MQTT 5 Maximum Packet Size
    max_inflight: int = 20  # our Receive Maximum and the outgoing QoS 1/2 window
    max_queued_messages: int = 1000  # per session, beyond the in-flight window
    max_keepalive: int = 65535  # seconds; the longest keep-alive a client may ask for
    retain_available: bool = True  # false: retained publishes are refused
    max_qos: int = 2  # highest QoS granted (MQTT 5 Maximum QoS)
    session_expiry_max: int = 4_294_967_295  # seconds; 4294967295 = never expires
    topic_alias_maximum: int = 10  # aliases a client may use towards us; 0 = none


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Persistence: an SQLite file path, or ``"memory"`` for none."""
    path: str = "rosettamq.db"

    @property
    def is_memory(self) -> bool:
        return self.path in ("memory", ":memory:")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Authentication and ACL files; anonymous allowed by default without passwords."""
    password_file: str | None = None
    acl_file: str | None = None
    allow_anonymous: bool = True


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Logging: `level` is one of LOG_LEVELS, `format` "text" or "json"."""
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole gateway configuration; ``Config()`` is the embedded default."""
    mqtt: ListenerConfig = ListenerConfig(True, _addr(1883))
    mqtt_limits: MQTTLimits = MQTTLimits()
    ws: WSListenerConfig = WSListenerConfig(True, _addr(8083))
    amqp: ListenerConfig = ListenerConfig(True, _addr(5672))
    coap: ListenerConfig = ListenerConfig(True, _addr(5683))
    http: ListenerConfig = ListenerConfig(True, _addr(8080, "127.0.0.1"))
    mqtt_tls: TLSListenerConfig = TLSListenerConfig(False, _addr(8883))
    wss: WSSListenerConfig = WSSListenerConfig(False, _addr(8084))
    amqps: TLSListenerConfig = TLSListenerConfig(False, _addr(5671))
    store: StoreConfig = StoreConfig()
    auth: AuthConfig = AuthConfig()
    log: LogConfig = LogConfig()

    def enabled_listeners(self) -> dict[str, ListenerConfig]:
        """Enabled listeners by section name, in declaration order."""
        out: dict[str, ListenerConfig] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ListenerConfig) and value.enabled:
                out[f.name] = value
        return out


# --- reading ---------------------------------------------------------------

_TOML_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string",
               dict: "table", list: "array"}


def _toml_type(value: object) -> str:
    return _TOML_TYPES.get(type(value), type(value).__name__)


def _unknown(kind: str, names: list[str], known: list[str]) -> NoReturn:
    parts = []
    for name in sorted(names):
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ConfigError(f"unknown {kind}: {', '.join(parts)}; known: {', '.join(known)}")


class _Section:
    """Typed reads from one TOML table; `done()` rejects keys never read."""

    def __init__(self, name: str, data: Any, base_dir: Path | None) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"[{name}]: expected a table, got {_toml_type(data)}")
        self.name, self.data, self.base_dir = name, data, base_dir
        self.known: list[str] = []

    def _get(self, key: str, kind: type, default: Any) -> Any:
        self.known.append(key)
        if key not in self.data:
            return default
        value = self.data[key]
        if type(value) is not kind:  # exact: a boolean is not an integer
            raise ConfigError(f"{self.name}.{key}: expected {_TOML_TYPES[kind]}, "
                              f"got {_toml_type(value)} {value!r}")
        return value

    def boolean(self, key: str, default: bool | None) -> bool | None:
        return self._get(key, bool, default)

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        value: int = self._get(key, int, default)
        if not lo <= value <= hi:
            raise ConfigError(f"{self.name}.{key}: must be from {lo} to {hi}, got {value}")
        return value

    def string(self, key: str, default: str | None) -> str | None:
        return self._get(key, str, default)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default).lower()  # type: ignore[union-attr]
        if value not in choices:
            raise ConfigError(f"{self.name}.{key}: must be one of {', '.join(choices)}, got {value!r}")
        return value

    def origins(self, key: str) -> tuple[str, ...]:
        """An array of web origins like ``"https://example.com:8443"`` (no path, no slash)."""
        value = self._get(key, list, [])
        for item in value:
            if not isinstance(item, str) or not _ORIGIN.fullmatch(item):
                raise ConfigError(f'{self.name}.{key}: expected origins like "https://example.com", got {item!r}')
        return tuple(value)

    def url_path(self, key: str, default: str) -> str:
        value: str = self.string(key, default)  # type: ignore[assignment]
        if not value.startswith("/"):
            raise ConfigError(f'{self.name}.{key}: must start with "/", got {value!r}')
        return value

    def listen(self, default: ListenAddress) -> ListenAddress:
        value = self.string("listen", None)
        return default if value is None else parse_listen(value, f"{self.name}.listen")

    def path(self, key: str) -> str | None:
        value = self.string(key, None)
        return None if value is None else self.resolve(key, value)

    def resolve(self, key: str, value: str) -> str:
        """Expand ``~`` and make a relative path relative to the config's folder."""
        if not value.strip():
            raise ConfigError(f"{self.name}.{key}: must not be empty")
        path = Path(os.path.expanduser(value))
        if self.base_dir is not None and not path.is_absolute():
            path = self.base_dir / path
        return str(path)

    def require_file(self, key: str, path: str | None) -> None:
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{self.name}.{key}: file not found: {path}")

    def done(self) -> None:
        extra = [k for k in self.data if k not in self.known]
        if extra:
            _unknown(f"key in [{self.name}]", extra, self.known)


def _ws_options(sec: _Section, default: WSListenerConfig | WSSListenerConfig) -> dict[str, Any]:
    """The WebSocket keys shared by ``[ws]`` and ``[wss]``."""
    return {
        "path": sec.url_path("path", default.path),
        "allowed_origins": sec.origins("allowed_origins"),
        "trust_proxy": bool(sec.boolean("trust_proxy", default.trust_proxy)),
        "ping_interval": sec.integer("ping_interval", default.ping_interval, 0, 86400),
    }


def _listener(sec: _Section, default: ListenerConfig) -> ListenerConfig:
    enabled, listen = sec.boolean("enabled", True), sec.listen(default.listen)
    if isinstance(default, WSListenerConfig):
        result: ListenerConfig = WSListenerConfig(enabled, listen, **_ws_options(sec, default))
    else:
        result = ListenerConfig(enabled, listen)
    sec.done()
    return result


def _tls_listener(sec: _Section, default: TLSListenerConfig) -> TLSListenerConfig:
    enabled, listen = sec.boolean("enabled", None), sec.listen(default.listen)
    files = {key: sec.path(key) for key in ("certfile", "keyfile", "cafile")}
    require = bool(sec.boolean("require_client_cert", False))
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
    args = (on, listen, files["certfile"], files["keyfile"], files["cafile"], require)
    return WSSListenerConfig(*args, **ws) if is_wss else TLSListenerConfig(*args)  # type: ignore[arg-type]


def _mqtt(sec: _Section, default: Config) -> tuple[ListenerConfig, MQTTLimits]:
    d = default.mqtt_limits
    limits = MQTTLimits(
        max_packet_size=sec.integer("max_packet_size", d.max_packet_size, 16, 268_435_460),
        max_inflight=sec.integer("max_inflight", d.max_inflight, 1, 65535),
        max_queued_messages=sec.integer("max_queued_messages", d.max_queued_messages, 1, 2**31 - 1),
        max_keepalive=sec.integer("max_keepalive", d.max_keepalive, 1, 65535),
        retain_available=bool(sec.boolean("retain_available", d.retain_available)),
        max_qos=sec.integer("max_qos", d.max_qos, 0, 2),
        session_expiry_max=sec.integer("session_expiry_max", d.session_expiry_max, 0, 4_294_967_295),
        topic_alias_maximum=sec.integer("topic_alias_maximum", d.topic_alias_maximum, 0, 65535),
    )
    return _listener(sec, default.mqtt), limits


def _store(sec: _Section) -> StoreConfig:
    value = sec.string("path", None)
    sec.done()
    if value is None or value in ("memory", ":memory:"):
        return StoreConfig() if value is None else StoreConfig(value)
    return StoreConfig(sec.resolve("path", value))


def _auth(sec: _Section) -> AuthConfig:
    password_file, acl_file = sec.path("password_file"), sec.path("acl_file")
    allow = sec.boolean("allow_anonymous", password_file is None)
    sec.done()
    sec.require_file("password_file", password_file)
    sec.require_file("acl_file", acl_file)
    return AuthConfig(password_file, acl_file, bool(allow))


def _log(sec: _Section) -> LogConfig:
    result = LogConfig(sec.choice("level", "info", LOG_LEVELS),
                       sec.choice("format", "text", LOG_FORMATS))
    sec.done()
    return result


_LISTENERS: dict[str, Any] = {"ws": _listener, "amqp": _listener, "coap": _listener,
                              "http": _listener, "mqtt_tls": _tls_listener,
                              "wss": _tls_listener, "amqps": _tls_listener}
_SECTIONS = ("mqtt", *_LISTENERS, "store", "auth", "log")


def config_from_dict(data: dict[str, Any], base_dir: str | os.PathLike[str] | None = None) -> Config:
    """Build a `Config` from parsed TOML; relative paths resolve against `base_dir`."""
    if not isinstance(data, dict):
        raise ConfigError(f"expected a table of sections, got {_toml_type(data)}")
    extra = [k for k in data if k not in _SECTIONS]
    if extra:
        _unknown("section", extra, list(_SECTIONS))
    base = Path(base_dir) if base_dir is not None else None
    default = Config()

    def section(name: str) -> _Section:
        return _Section(name, data.get(name, {}), base)

    values: dict[str, Any] = {name: build(section(name), getattr(default, name))
                              for name, build in _LISTENERS.items()}
    values["mqtt"], values["mqtt_limits"] = _mqtt(section("mqtt"), default)
    return Config(store=_store(section("store")), auth=_auth(section("auth")),
                  log=_log(section("log")), **values)


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
