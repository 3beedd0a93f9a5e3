"""The configuration's value types: one frozen dataclass per section, and listen addresses.

`gateway.config` reads TOML into these; everything here is re-exported from
there, so callers import from `gateway.config` alone. Defaults written here
are the embedded configuration (examples/rosettamq.toml documents each key).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from adapters.lwm2m.bootstrap import BootstrapConfig

if TYPE_CHECKING:
    from gateway.config_jwt import JwtSettings

ALL_INTERFACES = "0.0.0.0"  # what ":port" and a bare port mean, as in mosquitto's `listener PORT`
# Where a listener binds when its listen is not set: local only, as mosquitto 2, on both stacks
# (127.0.0.1 and ::1, one port; 127.0.0.1 alone without IPv6): see adapters/net/server.py.
LOOPBACK = "localhost"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")

_TOML_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string",
               dict: "table", list: "array"}


def _toml_type(value: object) -> str:
    return _TOML_TYPES.get(type(value), type(value).__name__)


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

    ``:port`` and a bare port bind all IPv4 interfaces (0.0.0.0); ``[::]:port`` binds
    every interface of both stacks, ``localhost:port`` both loopbacks. `key` names
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


def _addr(port: int, host: str = LOOPBACK) -> ListenAddress:
    return ListenAddress(host, port)


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """A plain listener: ``[mqtt]``, ``[amqp]``, ``[coap]``, ``[http]``."""
    enabled: bool
    listen: ListenAddress


@dataclass(frozen=True, slots=True)
class AMQPListenerConfig(ListenerConfig):
    """The AMQP 0-9-1 listener (``[amqp]``; ``[amqps]`` uses the same broker settings).

    `heartbeat` (s), `frame_max` and `channel_max`: what connection.tune offers.
    `vhosts`: the virtual hosts clients may open; "/" shares amq.topic with the
    other protocols. `origin_header`: add x-origin-client-id to messages from
    other protocols. `max_held_messages`: queued messages above which
    publishers get connection.blocked (0: no limit). `core_queue_max_length`: the bound of a
    queue fed through amq.topic from other protocols when it sets no x-max-length of its own
    (its oldest messages are dropped, or dead-lettered, past it, as with x-max-length; 0: none).
    """
    heartbeat: int = 60
    frame_max: int = 131072
    channel_max: int = 2047
    vhosts: tuple[str, ...] = ("/",)
    origin_header: bool = False
    max_held_messages: int = 1_000_000
    core_queue_max_length: int = 100_000


@dataclass(frozen=True, slots=True)
class CoAPListenerConfig(ListenerConfig):
    """The CoAP listener (``[coap]``, UDP; LwM2M shares it).

    `observer_queue`: notifications queued per observer before the oldest is
    dropped. `max_observers`: observe registrations of the listener (5.03
    past it). `max_payload_size`: bytes of one publish, block-wise included
    (4.13 past it). `heartbeat`: seconds a POST /mqtt/connection connection
    lives without a heartbeat. `ack_timeout_ms` and `max_retransmit`: RFC 7252
    transmission parameters of CON notifications; an observer that answers
    none of them is dropped.
    """
    observer_queue: int = 100
    max_observers: int = 10_000
    max_payload_size: int = 1_048_576
    heartbeat: int = 120
    ack_timeout_ms: int = 2000
    max_retransmit: int = 4


@dataclass(frozen=True, slots=True)
class CoAPSListenerConfig(ListenerConfig):
    """CoAP over DTLS (``[coaps]``, default port 5684): the ``[coap]`` listener's resources, limits and
    credentials rules, on a second UDP socket; on only with a `psk_file` (and ``[coap]`` on).

    `psk_file`: one ``identity:key`` a line (``hex:...`` for a binary key); a client that does
    not know one of these pairs never completes the DTLS handshake. Needs the ``DTLSSocket``
    package (pip extra ``dtls``).
    """
    psk_file: str | None = None


@dataclass(frozen=True, slots=True)
class LwM2MConfig:
    """The LwM2M server (``[lwm2m]``), served on the CoAP listener's ``/rd``; on with ``[coap]``.

    Topics are ``{topic_prefix}/{ep}/dn`` (commands) and ``.../up/resp|notify|register|update|deregister``.
    `object_dir`: a folder of OMA object XML (DDF) files added to the built-in objects.
    A registration lives its lifetime plus `lifetime_grace` seconds; requested lifetimes are
    clamped to `min_lifetime`..`max_lifetime`. `command_timeout`: seconds a device has to answer
    before the command gets a coap_timeout answer. Queue mode: a device counts as awake for
    `awake_window` seconds after it last spoke; commands wait at most `queue_ttl` seconds (a
    command's "ttl" wins), `max_queued` per device. `auto_observe`: paths observed on every
    registration that announces their object. `republish`: path -> topic (``{ep}`` is the
    endpoint) where each observed value of that resource is also published as a plain number.
    `qos`: QoS of everything the server publishes. `bootstrap`, `bootstrap_dir`: the bootstrap
    server on ``/bs`` (adapters/lwm2m/bootstrap.py), off when neither is set.
    """
    enabled: bool = True
    topic_prefix: str = "lwm2m"
    object_dir: str | None = None
    lifetime_grace: float = 30.0
    min_lifetime: int = 15
    max_lifetime: int = 86400
    command_timeout: float = 30.0
    queue_ttl: float = 86400.0
    awake_window: float = 93.0
    max_queued: int = 100
    auto_observe: tuple[str, ...] = ()
    republish: tuple[tuple[str, str], ...] = ()
    qos: int = 0
    endpoint_pattern: str = "%u"
    bootstrap: BootstrapConfig | None = None  # [lwm2m.bootstrap]: what /bs writes to every client
    bootstrap_dir: str | None = None  # per-endpoint bootstrap configurations, {ep}.json (JSON of the same shape)


@dataclass(frozen=True, slots=True)
class WSListenerConfig(ListenerConfig):
    """MQTT over WebSocket (``[ws]``); `path` is the HTTP upgrade path.

    `allowed_origins`: browser origins (``scheme://host[:port]``) allowed to
    connect; empty allows all, and requests without an Origin header
    (non-browser clients) are always allowed. `trust_proxy`: take the client
    address from X-Forwarded-For. `ping_interval`: seconds between WebSocket
    pings (0: none); a peer that misses a pong for as long is closed.
    `tokens_file`: bearer tokens (``rosettamq token FILE USER``) accepted on the
    upgrade as ``Authorization: Bearer TOKEN`` or ``?access_token=TOKEN``; the
    token's user is the MQTT username and CONNECT credentials are not asked.
    """
    path: str = "/mqtt"
    allowed_origins: tuple[str, ...] = ()
    trust_proxy: bool = False
    ping_interval: int = 20
    tokens_file: str | None = None


@dataclass(frozen=True, slots=True)
class TLSListenerConfig(ListenerConfig):
    """A TLS listener (``[mqtt_tls]``, ``[amqps]``); on only with a certfile.

    `keyfile` may be omitted when `certfile` holds key and chain (combined
    PEM). `cafile` verifies client certificates; `require_client_cert` makes
    one mandatory. `use_identity_as_username` (Mosquitto's name; needs
    `require_client_cert`) makes the certificate's CN the username: no
    password is asked and ACLs apply to the CN. TLS 1.2 is the minimum.
    """

    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None
    require_client_cert: bool = False
    use_identity_as_username: bool = False

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context: client certs required, optional (cafile) or off; TLS 1.2 at least."""
        if self.certfile is None:
            raise ConfigError("ssl_context() needs a certfile")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # explicit: never follow a looser system default
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
    tokens_file: str | None = None


@dataclass(frozen=True, slots=True)
class MQTTLimits:
    """Broker-wide MQTT limits (keys of ``[mqtt]``); apply to TCP, TLS, WS, WSS."""
    max_packet_size: int = 1_048_576  # bytes, whole packet; MQTT 5 Maximum Packet Size
    max_inflight: int = 20  # our Receive Maximum and the outgoing QoS 1/2 window
    max_queued_messages: int = 1000  # per session outbox, beyond the in-flight window
    max_keepalive: int = 65535  # seconds; the longest keep-alive a client may ask for
    retain_available: bool = True  # false: retained publishes are refused
    max_qos: int = 2  # highest QoS granted (MQTT 5 Maximum QoS)
    session_expiry_max: int = 4_294_967_295  # seconds; 4294967295 = never expires
    topic_alias_maximum: int = 10  # aliases a client may use towards us; 0 = none
    max_connections: int = 0  # per MQTT listener (TCP, TLS, WS, WSS); 0 = unlimited
    max_connection_rate: float = 0.0  # new connections per second per source address; 0 = unlimited
    max_subscriptions: int = 0  # per client; 0 = unlimited
    max_queued_bytes: int = 0  # per session outbox, bytes; 0 = bounded by messages only
    overflow: str = "drop_oldest"  # QoS 1/2 past the bound: drop_oldest, drop_new or disconnect (0x97)


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Gateway-wide limits (``[limits]``): the memory budget of every outbox, the largest message."""
    max_memory: int = 1024 * 1024 * 1024  # bytes queued for subscribers before publishers are paused; 0 = none
    max_message_size: int = 256 * 1024 * 1024  # bytes of one message's payload, any protocol


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Persistence: an SQLite file path, or ``"memory"`` for none."""
    path: str = "rosettamq.db"

    @property
    def is_memory(self) -> bool:
        return self.path in ("memory", ":memory:")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Authentication and ACL files; anonymous allowed by default without passwords.

    After `login_backoff_after` failed logins from one address, each refusal
    (and each later login from there) is held back 1, 2, 4... seconds, up to
    `login_backoff_max`.
    """
    password_file: str | None = None
    acl_file: str | None = None
    allow_anonymous: bool = True
    login_backoff_after: int = 5  # failed logins per address answered at once; 0 = no backoff
    login_backoff_max: float = 30.0  # seconds: the longest a refusal or a login is held back
    jwt: "JwtSettings | None" = None  # [auth.jwt]: OAuth 2.0 access tokens as logins (gateway/config_jwt.py)


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Logging: `level` is one of LOG_LEVELS, `format` "text" or "json";
    `levels` sets a level per logger, e.g. ``{"rosettamq.mqtt" = "debug"}``;
    `file`: write there instead of stderr (reopened when logrotate moves it, and on SIGHUP)."""
    level: str = "info"
    format: str = "text"
    levels: tuple[tuple[str, str], ...] = ()
    file: str | None = None


@dataclass(frozen=True, slots=True)
class HTTPListenerConfig(ListenerConfig):
    """``[http]``: the admin API and console. `api_token` is the bearer token the API accepts (an
    administrator's); of the password file's users, `admins` may use all of the API and `monitors`
    may only read it (GET). A client that has not sent its whole request head `header_timeout`
    seconds after connecting (or after its last answer) is closed; a body over `max_body_size`
    bytes is refused (413). The management UI's metrics history is sampled every
    `history_interval` seconds (an hour of samples is kept in memory)."""
    api_token: str | None = None
    admins: tuple[str, ...] = ()
    monitors: tuple[str, ...] = ()
    header_timeout: float = 10.0
    max_body_size: int = 1_048_576
    history_interval: float = 10.0


@dataclass(frozen=True, slots=True)
class SysConfig:
    """``[sys]``: `$SYS/broker/...` topics are published every `interval` seconds (0 = off)."""
    interval: int = 10
