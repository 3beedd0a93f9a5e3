"""`[auth.jwt]` is read at load, and every mistake stops the gateway with a line naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.auth import PasswordAuthenticator, passwords_of
from core.passwords import PasswordFile
from gateway.auth import auth_methods, build_authenticator
from gateway.auth_jwt import TokenAuthenticator
from gateway.config import ConfigError, config_from_dict, load_config

URL = "https://idp.example.com/realms/iot/protocol/openid-connect/certs"


def jwt_config(tmp_path: Path | None = None, **keys: Any) -> Any:
    return config_from_dict({"auth": {"jwt": keys}}, base_dir=tmp_path)


def test_defaults_are_the_issue_s() -> None:
    jwt = jwt_config(jwks_url=URL, audience="rosettamq").auth.jwt
    assert jwt.jwks_url == URL
    assert jwt.policy.algorithms == ("RS256", "ES256", "EdDSA")
    assert jwt.policy.username_claim == "sub" and jwt.policy.leeway == 0.0
    assert jwt.policy.audience == ("rosettamq",)


def test_an_issuer_alone_is_enough_its_keys_are_discovered() -> None:
    jwt = jwt_config(issuer="https://idp.example.com/realms/iot", audience=["a", "b"]).auth.jwt
    assert jwt.jwks_url is None and jwt.fetches_keys and jwt.policy.audience == ("a", "b")


def test_anonymous_logins_are_off_by_default_once_tokens_are_configured() -> None:
    assert jwt_config(jwks_url=URL).auth.allow_anonymous is False
    assert config_from_dict({}).auth.allow_anonymous is True


@pytest.mark.parametrize("keys, message", [
    ({"jwks_url": URL, "algorithms": ["RS256", "HS256"]},
     "auth.jwt.algorithms: HS256 needs auth.jwt.secret_file"),
    ({"audience": "x"}, "auth.jwt: set jwks_url (the provider's jwks_uri) or issuer"),
    ({"jwks_url": "idp.example.com/certs"}, "auth.jwt.jwks_url: expected an https:// (or http://) URL"),
    ({"jwks_url": URL, "algorithms": ["none"]}, "auth.jwt.algorithms: 'none' is not allowed"),
    ({"jwks_url": URL, "algorithms": []}, "auth.jwt.algorithms: must name at least one algorithm"),
    ({"jwks_url": URL, "audience": 5}, "auth.jwt.audience: expected a string or an array of strings"),
    ({"jwks_url": URL, "leeway": 7200}, "auth.jwt.leeway: must be from 0.0 to 3600.0"),
    ({"jwks_url": URL, "audiance": "x"}, "unknown key in [auth.jwt]: 'audiance' (did you mean 'audience'?)"),
    ({"issuer": "idp.example.com"}, "auth.jwt.issuer: discovery needs an https:// issuer URL"),
])
def test_config_mistakes_are_clear_errors(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        jwt_config(**keys)
    assert message in str(error.value)


def test_hs256_without_secret_file_is_refused_in_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "rosettamq.toml"
    path.write_text('[auth.jwt]\nissuer = "https://idp.test"\nalgorithms = ["HS256"]\n')
    with pytest.raises(ConfigError, match="HS256 needs auth.jwt.secret_file"):
        load_config(path)


def test_a_secret_file_is_read_relative_to_the_config_and_must_be_long_enough(tmp_path: Path) -> None:
    (tmp_path / "short").write_text("tooshort\n")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        jwt_config(tmp_path, issuer="https://idp.test", algorithms=["HS256"], secret_file="short")
    with pytest.raises(ConfigError, match="secret_file: file not found"):
        jwt_config(tmp_path, issuer="https://idp.test", algorithms=["HS256"], secret_file="missing")
    with pytest.raises(ConfigError, match="algorithms has no HS256"):
        jwt_config(tmp_path, jwks_url=URL, secret_file="short")
    (tmp_path / "key").write_text("k" * 40 + "\n")
    jwt = jwt_config(tmp_path, issuer="https://idp.test", algorithms=["HS256"], secret_file="key").auth.jwt
    assert jwt.policy.secret == b"k" * 40 and not jwt.fetches_keys
    assert "kkkk" not in repr(jwt)  # the secret never shows in a printed config


def test_the_token_authenticator_keeps_the_password_file_behind_it(tmp_path: Path) -> None:
    users = PasswordFile()
    users.set("alice", "pw", iterations=1000)
    users.save(tmp_path / "passwd")
    config = config_from_dict({"auth": {"password_file": str(tmp_path / "passwd"), "jwt": {"jwks_url": URL}}})
    authenticator = build_authenticator(config.auth)
    assert isinstance(authenticator, TokenAuthenticator)
    assert isinstance(passwords_of(authenticator), PasswordAuthenticator)  # reload and SCRAM reach it
    assert set(auth_methods(authenticator)) == {"OAUTHBEARER", "SCRAM-SHA-256"}


def test_the_keycloak_example_config_loads() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "examples" / "oauth2-keycloak.toml")
    assert config.auth.jwt is not None and config.auth.jwt.policy.roles_claim == "realm_access.roles"
    assert config.auth.jwt.jwks_url is None and config.auth.jwt.fetches_keys  # discovered from the issuer
