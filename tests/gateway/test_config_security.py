"""The config keys of authentication, ACL and limits: [mqtt] limits, [auth] backoff, TLS identity."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from gateway.config import ConfigError, config_from_dict


def test_the_protective_limits_are_off_by_default_and_the_backoff_on() -> None:
    config = config_from_dict({})
    limits = config.mqtt_limits
    assert (limits.max_connections, limits.max_connection_rate, limits.max_subscriptions) == (0, 0.0, 0)
    assert (config.auth.login_backoff_after, config.auth.login_backoff_max) == (5, 30.0)
    assert not config.mqtt_tls.use_identity_as_username


def test_the_limits_are_read_from_mqtt_and_a_rate_may_be_an_integer_or_a_float() -> None:
    limits = config_from_dict({"mqtt": {"max_connections": 100, "max_connection_rate": 5, "max_subscriptions": 10}})
    assert (limits.mqtt_limits.max_connections, limits.mqtt_limits.max_connection_rate) == (100, 5.0)
    assert limits.mqtt_limits.max_subscriptions == 10
    assert config_from_dict({"mqtt": {"max_connection_rate": 0.5}}).mqtt_limits.max_connection_rate == 0.5


@pytest.mark.parametrize(
    ("section", "why"),
    [
        ({"mqtt": {"max_connection_rate": "fast"}}, "mqtt.max_connection_rate: expected float, got string"),
        ({"mqtt": {"max_connection_rate": -1}}, "mqtt.max_connection_rate: must be from 0.0"),
        ({"mqtt": {"max_connections": -1}}, "mqtt.max_connections: must be from 0"),
        ({"auth": {"login_backoff_after": -1}}, "auth.login_backoff_after: must be from 0"),
        ({"auth": {"login_backoff_max": "long"}}, "auth.login_backoff_max: expected float"),
    ],
)
def test_a_bad_limit_names_its_key(section: dict, why: str) -> None:
    with pytest.raises(ConfigError, match=why.replace(".", r"\.")):
        config_from_dict(section)


def test_the_backoff_keys_are_read_from_auth() -> None:
    auth = config_from_dict({"auth": {"login_backoff_after": 0, "login_backoff_max": 2.5}}).auth
    assert (auth.login_backoff_after, auth.login_backoff_max) == (0, 2.5)


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True,
    )
    return tmp_path


def test_certificate_identity_needs_client_certificates_to_be_required(certificate: Path) -> None:
    tls = {"certfile": "cert.pem", "keyfile": "key.pem", "cafile": "cert.pem", "use_identity_as_username": True}
    with pytest.raises(ConfigError, match=r"mqtt_tls\.use_identity_as_username: needs mqtt_tls\.require_client_cert"):
        config_from_dict({"mqtt_tls": tls}, base_dir=certificate)
    config = config_from_dict({"mqtt_tls": {**tls, "require_client_cert": True}}, base_dir=certificate)
    assert config.mqtt_tls.use_identity_as_username
    wss = config_from_dict({"wss": {**tls, "require_client_cert": True}}, base_dir=certificate).wss
    assert wss.use_identity_as_username and wss.path == "/mqtt"


def test_every_tls_context_requires_tls_1_2_at_least(certificate: Path) -> None:
    config = config_from_dict({"mqtt_tls": {"certfile": "cert.pem", "keyfile": "key.pem"}}, base_dir=certificate)
    assert config.mqtt_tls.ssl_context().minimum_version == ssl.TLSVersion.TLSv1_2
