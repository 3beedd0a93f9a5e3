"""The [lwm2m] section: defaults like EMQX's LwM2M gateway, values checked, and what reaches the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import lwm2m_settings
from gateway.config import ConfigError, LwM2MConfig, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[2]
DDF = """<?xml version="1.0" encoding="utf-8"?>
<LWM2M><Object ObjectType="MODefinition"><Name>Valve</Name><ObjectID>33000</ObjectID>
<ObjectURN>urn:oma:lwm2m:x:33000</ObjectURN><MultipleInstances>Multiple</MultipleInstances>
<Mandatory>Optional</Mandatory><Resources>
<Item ID="1"><Name>Open</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
<Mandatory>Mandatory</Mandatory><Type>Boolean</Type><RangeEnumeration></RangeEnumeration><Units></Units>
<Description></Description></Item>
</Resources><Description1></Description1></Object></LWM2M>
"""


def test_lwm2m_is_on_by_default_with_the_lwm2m_topic_prefix() -> None:
    section = config_from_dict({}).lwm2m
    assert section == LwM2MConfig()
    assert section.enabled and section.topic_prefix == "lwm2m"
    assert (section.min_lifetime, section.max_lifetime, section.lifetime_grace) == (15, 86400, 30.0)
    assert section.auto_observe == () and section.republish == ()


def test_lwm2m_keys_reach_the_server_settings(tmp_path: Path) -> None:
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "valve.xml").write_text(DDF)
    config = config_from_dict({"lwm2m": {
        "topic_prefix": "site/lwm2m", "object_dir": "objects", "lifetime_grace": 0, "min_lifetime": 1,
        "max_lifetime": 600, "command_timeout": 0.5, "queue_ttl": 60, "awake_window": 0, "max_queued": 5,
        "auto_observe": ["/3303/0/5700"], "republish": {"/3303/0/5700/": "sensors/{ep}/temperature"}, "qos": 1,
    }}, base_dir=tmp_path)
    settings = lwm2m_settings(config)
    assert settings.prefix == "site/lwm2m"
    assert (settings.lifetime_grace, settings.min_lifetime, settings.max_lifetime) == (0.0, 1, 600)
    assert (settings.command_timeout, settings.queue_ttl, settings.awake_window, settings.max_queued) == (0.5, 60.0, 0.0, 5)
    assert settings.auto_observe == ("/3303/0/5700",)
    assert settings.republish == {"/3303/0/5700": "sensors/{ep}/temperature"}
    assert settings.qos == 1
    assert settings.registry.resource(33000, 1) is not None  # the folder's object definitions are loaded
    assert settings.registry.resource(3303, 5700) is not None  # on top of the built-in ones


@pytest.mark.parametrize("values", [
    {"topic_prefix": "lwm2m/#"}, {"topic_prefix": ""}, {"topic_prefix": "a//b"},
    {"auto_observe": ["3303/x"]}, {"auto_observe": "/3303/0/5700"},
    {"republish": {"/3303/0": "t"}}, {"republish": {"/3303/0/5700": "sensors/+/t"}},
    {"min_lifetime": 100, "max_lifetime": 10}, {"command_timeout": 0}, {"qos": 3},
    {"object_dir": "no-such-folder"}, {"lifetime": 60},
])
def test_bad_lwm2m_values_are_config_errors(values: dict) -> None:
    with pytest.raises(ConfigError, match="lwm2m"):
        config_from_dict({"lwm2m": values})


def test_a_broken_object_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.xml").write_text("<LWM2M><Object>")
    with pytest.raises(ConfigError, match="bad.xml"):
        config_from_dict({"lwm2m": {"object_dir": str(tmp_path)}})


def test_the_example_config_documents_the_lwm2m_defaults() -> None:
    assert load_config(ROOT / "examples" / "rosettamq.toml").lwm2m == LwM2MConfig()
