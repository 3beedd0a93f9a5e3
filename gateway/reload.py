"""SIGHUP: re-read the config file and apply what can change while every connection stays open.

Applied at once (`gateway.config` then holds them):

- ``[log]``: level, per-logger levels, format, and the file, which is reopened (logrotate);
- ``[mqtt]`` limits: new connections get the new packet limits and quotas, new sessions the
  new outbox bounds; ``max_connections`` and ``max_connection_rate`` count from now on;
- ``[auth] login_backoff_after`` / ``login_backoff_max``; ``[limits]`` (the memory budget, the
  largest message);
- ``[http]`` ``api_token``, ``admins`` and ``monitors`` (the admin API's credential and roles);
- the password file and the ACL file (re-read, as before: gateway/security.py).

Anything else that changed (listeners, the store, TLS files, AMQP, CoAP, LwM2M, turning the
rate limit or the login backoff on or off, ``max_packet_size``, which also sizes WebSocket
frames) is named in one warning: it needs a restart. A file that no longer parses changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Callable

from gateway.settings import mqtt_settings, session_limits
from gateway.config import Config, ConfigError
from gateway.logs import configure_logging

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("rosettamq")

# Fields of Config applied live; a key is "section.field" (MQTTLimits are keys of [mqtt]).
LIVE = {
    "log": {"level", "format", "levels", "file"},
    "mqtt": {"max_inflight", "max_queued_messages", "max_queued_bytes", "overflow", "max_keepalive",
             "retain_available", "max_qos", "session_expiry_max", "topic_alias_maximum", "max_connections",
             "max_connection_rate", "max_subscriptions"},
    "auth": {"login_backoff_after", "login_backoff_max"},
    "limits": {"max_memory", "max_message_size"},
    "http": {"api_token", "admins", "monitors"},
}
SECTION_OF = {"mqtt_limits": "mqtt"}


def changed_keys(old: Config, new: Config) -> list[str]:
    """"section.key" of every setting that differs ("section" alone for a section that is not a table)."""
    keys: list[str] = []
    for f in dataclasses.fields(Config):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before == after:
            continue
        section = SECTION_OF.get(f.name, f.name)
        if dataclasses.is_dataclass(before) and type(before) is type(after):
            keys += [f"{section}.{g.name}" for g in dataclasses.fields(before)
                     if getattr(before, g.name) != getattr(after, g.name)]
        else:
            keys.append(section)
    return keys


def needs_restart(key: str, old: Config, new: Config) -> bool:
    section, _, name = key.partition(".")
    if name not in LIVE.get(section, ()):
        return True
    if key == "mqtt.max_connection_rate":  # on <-> off changes who holds a limiter (CoAP, LwM2M): restart
        return (old.mqtt_limits.max_connection_rate > 0) != (new.mqtt_limits.max_connection_rate > 0)
    if key == "auth.login_backoff_after":
        return (old.auth.login_backoff_after > 0) != (new.auth.login_backoff_after > 0)
    return False


def in_force(old: Config, new: Config, live: list[str]) -> Config:
    """`old` with the `live` keys taken from `new`: the configuration the gateway now runs."""
    changes: dict[str, dict[str, Any]] = {}
    for key in live:
        section, _, name = key.partition(".")
        field_name = next((f for f, s in SECTION_OF.items() if s == section), section)
        changes.setdefault(field_name, {})[name] = getattr(getattr(new, field_name), name)
    return dataclasses.replace(old, **{f: dataclasses.replace(getattr(old, f), **values)
                                       for f, values in changes.items()})


def apply_limits(gateway: "Gateway", config: Config) -> None:
    """Hand the limits of `config` to the running gateway's parts."""
    limits, security = config.mqtt_limits, gateway.security
    gateway.live_mqtt_settings = security.mqtt_settings(mqtt_settings(config), config)
    gateway.broker.mqtt_sessions.limits = session_limits(config)
    security.max_connections = limits.max_connections
    for gate in security.gates.values():
        gate.max_connections = limits.max_connections
    if security.rate_limiter is not None and limits.max_connection_rate > 0:
        security.rate_limiter.rate = limits.max_connection_rate
        security.rate_limiter.burst = max(1.0, limits.max_connection_rate)
    if security.login_backoff is not None and config.auth.login_backoff_after > 0:
        security.login_backoff.free_failures = config.auth.login_backoff_after
        security.login_backoff.max_delay = config.auth.login_backoff_max
    security.set_roles(config)
    gateway.broker.budget.set_limit(config.limits.max_memory)
    gateway.broker.door.max_message_bytes = config.limits.max_message_size


class Reloader:
    """What SIGHUP does in `rosettamq run`; `load` reads the config file and applies the flags again."""

    def __init__(self, gateway: "Gateway", load: Callable[[], Config],
                 log_level: str | None = None, log_format: str | None = None) -> None:
        self.gateway, self.load = gateway, load
        self.log_level, self.log_format = log_level, log_format

    def reload(self) -> bool:
        """True when everything in the file is in force (the security files too)."""
        old = self.gateway.config
        try:
            new = self.load()
        except ConfigError as exc:
            log.error("reload refused, nothing changed: configuration error: %s", exc)
            self.gateway.reload()  # the password and ACL files are read all the same (their own SIGHUP)
            return False
        keys = changed_keys(old, new)
        restart = [key for key in keys if needs_restart(key, old, new)]
        live = [key for key in keys if key not in restart]
        try:  # always: the log file is reopened (and created again if logrotate moved it away)
            configure_logging(new, self.log_level, self.log_format)
        except OSError as exc:
            log.error("reload: log.file: %s; logging unchanged", exc)
            restart += [key for key in live if key.startswith("log.")]
            live = [key for key in live if not key.startswith("log.")]
        config = in_force(old, new, live)
        apply_limits(self.gateway, config)
        self.gateway.config = config
        log.info("reload applied changed=%s", ",".join(live) or "-")
        if restart:
            log.warning("reload: restart to apply changed=%s", ",".join(restart))
        return self.gateway.reload() and not restart
