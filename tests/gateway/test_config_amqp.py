"""The [amqp] section: broker settings with defaults, bounds and types checked."""

from __future__ import annotations

import pytest

from gateway.settings import amqp_settings
from gateway.config import AMQPListenerConfig, ConfigError, config_from_dict


def test_the_amqp_defaults_are_rabbitmqs() -> None:
    section = config_from_dict({}).amqp
    assert isinstance(section, AMQPListenerConfig)
    assert (section.heartbeat, section.frame_max, section.channel_max) == (60, 131072, 2047)
    assert section.vhosts == ("/",) and section.origin_header is False
    assert section.listen.port == 5672


def test_amqp_keys_reach_the_broker_settings() -> None:
    config = config_from_dict({"amqp": {"heartbeat": 10, "frame_max": 8192, "channel_max": 16,
                                        "vhosts": ["/", "lab"], "origin_header": True, "max_held_messages": 500}})
    settings = amqp_settings(config, None)
    assert (settings.heartbeat, settings.frame_max, settings.channel_max) == (10, 8192, 16)
    assert settings.vhosts == ("/", "lab") and settings.origin_header is True
    assert settings.max_held_messages == 500


@pytest.mark.parametrize("values", [
    {"frame_max": 100}, {"heartbeat": -1}, {"vhosts": []}, {"vhosts": [1]}, {"origin_header": "yes"},
    {"unknown_key": 1},
])
def test_bad_amqp_values_are_config_errors(values: dict) -> None:
    with pytest.raises(ConfigError):
        config_from_dict({"amqp": values})
