"""Turn the `[auth]` section into the authenticator and MQTT 5 auth methods every listener uses.

- password file: `PasswordAuthenticator` (anonymous clients only if
  `allow_anonymous`), and SCRAM-SHA-256 enhanced auth from the same file;
- no password file, `allow_anonymous` true (the default): everyone gets in,
  with a loud warning;
- no password file, `allow_anonymous` false: everyone is refused;
- `[auth.jwt]`: a `TokenAuthenticator` in front of whichever of those applies, so a
  password shaped as a JWT is checked as an OAuth 2.0 access token on every protocol
  (gateway/auth_jwt.py), and MQTT 5 gets the OAUTHBEARER method for re-authentication.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

from adapters.mqtt.enhanced_auth import AuthMethod
from adapters.mqtt.scram import ScramCredentials, scram_method_factory
from adapters.mqtt.settings import MQTTSettings
from adapters.mqtt.oauthbearer import OAUTHBEARER, OAuthBearer
from core.auth import Authenticator, DenyAll, PasswordAuthenticator, passwords_of

from gateway.auth_jwt import JwksSource, TokenAuthenticator
from gateway.config import AuthConfig

log = logging.getLogger("rosettamq.auth")


def build_authenticator(auth: AuthConfig) -> Authenticator | None:
    """The login rule for `auth`; None means everyone is let in."""
    if auth.jwt is not None:
        fallback = build_authenticator(dataclasses.replace(auth, jwt=None)) if auth.password_file else None
        log.info("access tokens accepted as passwords issuer=%s jwks_url=%s audience=%s algorithms=%s",
                 auth.jwt.policy.issuer, auth.jwt.jwks_url or "(discovered)", ",".join(auth.jwt.policy.audience) or "-",
                 ",".join(auth.jwt.policy.algorithms))
        return TokenAuthenticator(JwksSource(auth.jwt), fallback, auth.allow_anonymous)
    if auth.password_file is not None:
        authenticator = PasswordAuthenticator(auth.password_file, auth.allow_anonymous)
        log.info(
            "password file loaded path=%s users=%d anonymous=%s",
            auth.password_file, len(authenticator.password_file), "allowed" if auth.allow_anonymous else "refused",
        )
        return authenticator
    if auth.allow_anonymous:
        log.warning(
            "anonymous access allowed: no [auth] password_file is configured, so any client can connect; "
            "create one with 'rosettamq passwd FILE USER'"
        )
        return None
    log.warning("no [auth] password_file and allow_anonymous = false: every client will be refused")
    return DenyAll()


def scram_lookup(authenticator: PasswordAuthenticator) -> Callable[[str], ScramCredentials | None]:
    """SCRAM keys derived from the authenticator's current password file (follows reloads)."""

    def lookup(username: str) -> ScramCredentials | None:
        entry = authenticator.password_file.scram_credentials(username)
        return None if entry is None else ScramCredentials.from_salted_password(*entry)

    return lookup


def auth_methods(authenticator: Authenticator | None) -> dict[str, Callable[[], AuthMethod]]:
    """MQTT 5 enhanced-auth methods: SCRAM-SHA-256 whenever there is a password file, OAUTHBEARER
    (RFC 7628: the access token as Authentication Data) with `[auth.jwt]`."""
    methods: dict[str, Callable[[], AuthMethod]] = {}
    if isinstance(authenticator, TokenAuthenticator):
        methods[OAUTHBEARER] = OAuthBearer
    passwords = passwords_of(authenticator)
    if passwords is not None:
        fake_iterations = lambda: passwords.password_file.typical_iterations  # noqa: E731
        methods["SCRAM-SHA-256"] = scram_method_factory(scram_lookup(passwords), fake_iterations)
    return methods


def with_auth(settings: MQTTSettings, authenticator: Authenticator | None) -> MQTTSettings:
    """`settings` with the gateway's authenticator and methods (methods already set are kept)."""
    methods = {**auth_methods(authenticator), **settings.auth_methods}
    return dataclasses.replace(settings, authenticator=authenticator, auth_methods=methods)
