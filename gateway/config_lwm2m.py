"""The [lwm2m] section: topic prefix, object definitions, auto-observe, republish and bootstrap."""

from __future__ import annotations

from adapters.lwm2m.bootstrap import BootstrapConfigError, parse_bootstrap_config
from adapters.lwm2m.ddf import DdfError, load_object_dir
from adapters.lwm2m.paths import format_path, parse_path
from gateway.config_reader import Section
from gateway.config_sections import ConfigError, LwM2MConfig


def read_lwm2m(sec: Section) -> LwM2MConfig:
    d = LwM2MConfig()
    prefix: str = sec.string("topic_prefix", d.topic_prefix)  # type: ignore[assignment]
    if not prefix or not _valid_topic(prefix):
        raise ConfigError(f"{sec.name}.topic_prefix: must be topic levels without wildcards, got {prefix!r}")
    object_dir = sec.path("object_dir")
    if object_dir is not None:
        try:
            load_object_dir(object_dir)
        except DdfError as exc:
            raise ConfigError(f"{sec.name}.object_dir: {exc}") from None
    paths = sec._get("auto_observe", list, [])
    for path in paths:
        if not isinstance(path, str) or not _valid_lwm2m_path(path):
            raise ConfigError(f'{sec.name}.auto_observe: expected paths like "/3303/0/5700", got {path!r}')
    republish: dict[str, str] = {}
    for path, topic in sec._get("republish", dict, {}).items():
        if not _valid_lwm2m_path(path) or len(parse_path(path)) != 3:
            raise ConfigError(f'{sec.name}.republish: keys are resource paths like "/3303/0/5700", got {path!r}')
        if not isinstance(topic, str) or not _valid_topic(topic.replace("{ep}", "ep")):
            raise ConfigError(f"{sec.name}.republish.{path}: expected a topic without wildcards, got {topic!r}")
        republish[format_path(parse_path(path))] = topic
    bootstrap = None
    if sec._get("bootstrap", dict, None) is not None:
        try:
            bootstrap = parse_bootstrap_config(sec._get("bootstrap", dict, {}))
        except BootstrapConfigError as exc:
            raise ConfigError(f"{sec.name}.bootstrap: {exc}") from None
    result = LwM2MConfig(
        enabled=bool(sec.boolean("enabled", d.enabled)),
        topic_prefix=prefix,
        object_dir=object_dir,
        lifetime_grace=sec.number("lifetime_grace", d.lifetime_grace, 0.0, 86400.0),
        min_lifetime=sec.integer("min_lifetime", d.min_lifetime, 1, 2**31 - 1),
        max_lifetime=sec.integer("max_lifetime", d.max_lifetime, 1, 2**31 - 1),
        command_timeout=sec.number("command_timeout", d.command_timeout, 0.001, 86400.0),
        queue_ttl=sec.number("queue_ttl", d.queue_ttl, 0.001, 31_536_000.0),
        awake_window=sec.number("awake_window", d.awake_window, 0.0, 86400.0),
        max_queued=sec.integer("max_queued", d.max_queued, 1, 1_000_000),
        auto_observe=tuple(paths),
        republish=tuple(republish.items()),
        qos=sec.integer("qos", d.qos, 0, 2),
        endpoint_pattern=sec.string("endpoint_pattern", d.endpoint_pattern) or "",
        bootstrap=bootstrap, bootstrap_dir=sec.path("bootstrap_dir"),
    )
    sec.done()
    if result.min_lifetime > result.max_lifetime:
        raise ConfigError(f"{sec.name}.min_lifetime: {result.min_lifetime} is above max_lifetime {result.max_lifetime}")
    return result


def _valid_topic(topic: str) -> bool:
    return bool(topic) and not any(c in topic for c in "+#\0") and all(topic.split("/"))


def _valid_lwm2m_path(text: str) -> bool:
    try:
        return 1 <= len(parse_path(text)) <= 4
    except ValueError:
        return False
