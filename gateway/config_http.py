"""``[http]``: the admin API's listener, its credentials and roles, read into `HTTPListenerConfig`."""

from __future__ import annotations

from typing import Any

from gateway.config_sections import ConfigError, HTTPListenerConfig


def read_http(sec: Any, default: HTTPListenerConfig) -> HTTPListenerConfig:
    """`sec` is a `Section` (gateway/config_reader.py) of ``[http]``. A user cannot be both admin and monitor."""
    token = sec.string("api_token", None)
    admins, monitors = user_names(sec, "admins"), user_names(sec, "monitors")
    both = sorted(set(admins) & set(monitors))
    if both:
        raise ConfigError(f"{sec.name}.monitors: {', '.join(both)} already in {sec.name}.admins "
                          "(an admin may read too)")
    result = HTTPListenerConfig(
        bool(sec.boolean("enabled", True)), sec.listen(default.listen), token or None, admins, monitors,
        header_timeout=sec.number("header_timeout", default.header_timeout, 0.5, 3600.0),
        max_body_size=sec.integer("max_body_size", default.max_body_size, 1024, 268_435_456),
        history_interval=sec.number("history_interval", default.history_interval, 0.01, 3600.0),
    )
    sec.done()
    return result


def user_names(sec: Any, key: str) -> tuple[str, ...]:
    """An array of user names of the password file (``["alice", "ops"]``), duplicates dropped."""
    value = sec._get(key, list, [])
    for item in value:
        if not isinstance(item, str) or not item or item != item.strip() or ":" in item:
            raise ConfigError(f'{sec.name}.{key}: expected user names like ["alice"], got {item!r}')
    return tuple(dict.fromkeys(value))
