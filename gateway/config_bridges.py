"""``[[bridge.mqtt]]``, ``[[bridge.amqp]]``, ``[[bridge.http]]``: read into gateway.bridges.settings.

`read_bridges(sec, make_section)` takes the config's ``[bridge]`` section and the config's own
section reader (`make_section(name, table)`, typed reads that reject unknown keys), so every
bridge key gets the same checks and error messages (``bridge.mqtt[0].url: ...``) as the rest.
"""

from __future__ import annotations

import re
from typing import Any, Callable
from urllib.parse import SplitResult, unquote, urlsplit

from core.outbox import OutboxLimits
from core.topics import InvalidTopic, parse_shared_filter
from gateway.bridges.settings import (
    KINDS, OVERFLOWS, AMQPBridgeSettings, BridgeSettings, HTTPBridgeSettings, MQTTBridgeSettings, TLSSettings,
)
from gateway.config_sections import ConfigError, _toml_type

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SCHEMES = {"mqtt": ("mqtt", "mqtts"), "amqp": ("amqp", "amqps"), "http": ("http", "https")}
_DEFAULTS = BridgeSettings(kind="mqtt", name="-", url="-")


def read_bridges(sec: Any, make_section: Callable[[str, Any], Any]) -> tuple[BridgeSettings, ...]:
    """Every bridge of every kind, in file order per kind; names are unique across kinds."""
    bridges: list[BridgeSettings] = []
    for kind in KINDS:
        if isinstance(sec.data.get(kind), dict):
            raise ConfigError(f"{sec.name}.{kind}: write [[{sec.name}.{kind}]] (an array of tables, one per bridge)")
        tables = sec._get(kind, list, [])
        for index, table in enumerate(tables):
            entry = make_section(f"{sec.name}.{kind}[{index}]", table)
            bridges.append(_READERS[kind](entry))
            entry.done()
    sec.done()
    seen: set[str] = set()
    for bridge in bridges:
        if bridge.name in seen:
            raise ConfigError(f"{sec.name}: two bridges are named {bridge.name!r}; names must be unique")
        seen.add(bridge.name)
    return tuple(bridges)


def _url(sec: Any, kind: str) -> SplitResult:
    url = sec.string("url", None)
    if url is None:
        raise ConfigError(f"{sec.name}.url: required")
    schemes = _SCHEMES[kind]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"{sec.name}.url: {exc} in {url!r}") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f'{sec.name}.url: expected "{schemes[0]}://host:port" or "{schemes[1]}://...", got {url!r}')
    return parts


def _filters(sec: Any, key: str, shared: bool = True) -> tuple[str, ...]:
    value = sec._get(key, list, [])
    for item in value:
        if not isinstance(item, str):
            raise ConfigError(f"{sec.name}.{key}: expected an array of topic filters, got {_toml_type(item)} {item!r}")
        try:
            group, _ = parse_shared_filter(item)
        except InvalidTopic as exc:
            raise ConfigError(f"{sec.name}.{key}: {exc}") from None
        if group is not None and not shared:
            raise ConfigError(f"{sec.name}.{key}: a shared subscription ({item!r}) cannot be brought in")
    return tuple(value)


def _common(sec: Any, kind: str, max_qos: int) -> dict[str, Any]:
    """The keys every kind has."""
    name = sec.string("name", None)
    if name is None or not _NAME.fullmatch(name):
        raise ConfigError(f"{sec.name}.name: required, 1 to 64 letters, digits, '.', '-' or '_', got {name!r}")
    parts = _url(sec, kind)
    d = _DEFAULTS
    queue = OutboxLimits(sec.integer("queue_max_messages", d.queue.max_messages, 1, 100_000_000),
                         sec.integer("queue_max_bytes", d.queue.max_bytes, 0, 2**62),
                         sec.choice("overflow", d.queue.overflow, OVERFLOWS))
    low = sec.number("reconnect_min", d.reconnect_min, 0.01, 3600.0)
    high = sec.number("reconnect_max", max(d.reconnect_max, low), low, 86400.0)
    tls = TLSSettings(sec.path("ca"), sec.path("cert"), sec.path("key"), bool(sec.boolean("insecure", False)))
    for key in ("ca", "cert", "key"):
        sec.require_file(key, getattr(tls, key))
    if tls.key and not tls.cert:
        raise ConfigError(f"{sec.name}.key: a client key needs its cert")
    return dict(kind=kind, name=name, url=parts.geturl(), out=_filters(sec, "out"),
                qos=sec.integer("qos", 1, 0, max_qos), queue=queue, reconnect_min=low, reconnect_max=high, tls=tls,
                inflight=sec.integer("inflight", d.inflight, 1, 65535))


def _mqtt(sec: Any) -> MQTTBridgeSettings:
    common = _common(sec, "mqtt", 2)
    parts = urlsplit(common["url"])
    prefix: str = sec.string("remote_prefix", "")  # type: ignore[assignment]
    if "+" in prefix or "#" in prefix or "\x00" in prefix:
        raise ConfigError(f"{sec.name}.remote_prefix: must not hold wildcards, got {prefix!r}")
    username = sec.string("username", None)
    password = sec.string("password", None)
    if username is None and parts.username:
        username = unquote(parts.username)
        password = password if password is not None else (unquote(parts.password) if parts.password else None)
    settings = MQTTBridgeSettings(
        **common, client_id=sec.string("client_id", None) or f"rosettamq-{common['name']}",
        version=_version(sec), in_=_filters(sec, "in", shared=not prefix), remote_prefix=prefix,
        username=username, password=password, keepalive=sec.integer("keepalive", 60, 5, 65535),
        clean_start=bool(sec.boolean("clean_start", True)),
        session_expiry=sec.integer("session_expiry", 0, 0, 0xFFFFFFFF),
    )
    if not settings.out and not settings.in_:
        raise ConfigError(f"{sec.name}: a bridge needs out or in filters")
    return settings


def _version(sec: Any) -> int:
    version: int = sec.integer("version", 5, 3, 5)
    if version == 4:
        raise ConfigError(f"{sec.name}.version: 3 (MQTT 3.1.1) or 5, got 4")
    return version


def _amqp(sec: Any) -> AMQPBridgeSettings:
    common = _common(sec, "amqp", 1)
    exchange: str = sec.string("exchange", "amq.topic")  # type: ignore[assignment]
    in_queue = sec.string("in_queue", None)
    settings = AMQPBridgeSettings(**common, exchange=exchange, in_queue=in_queue or None,
                                  in_prefix=sec.string("in_prefix", "") or "",
                                  prefetch=sec.integer("prefetch", 100, 1, 65535))
    if "+" in settings.in_prefix or "#" in settings.in_prefix:
        raise ConfigError(f"{sec.name}.in_prefix: must not hold wildcards, got {settings.in_prefix!r}")
    if not settings.out and not settings.in_queue:
        raise ConfigError(f"{sec.name}: a bridge needs out filters or an in_queue")
    return settings


def _http(sec: Any) -> HTTPBridgeSettings:
    common = _common(sec, "http", 1)
    headers = sec._get("headers", dict, {})
    for name, value in headers.items():
        if not isinstance(value, str) or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) or "\n" in value:
            raise ConfigError(f"{sec.name}.headers.{name}: expected a header name and a string value")
    settings = HTTPBridgeSettings(**common, headers=tuple(headers.items()),
                                  batch=sec.integer("batch", 1, 1, 10_000),
                                  timeout=sec.number("timeout", 10.0, 0.1, 3600.0))
    if not settings.out:
        raise ConfigError(f"{sec.name}.out: a webhook needs out filters")
    return settings


_READERS: dict[str, Callable[[Any], BridgeSettings]] = {"mqtt": _mqtt, "amqp": _amqp, "http": _http}
