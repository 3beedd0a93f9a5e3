"""Turn the `[auth]` section into the authenticator and MQTT 5 auth methods every listener uses.

- password file: `PasswordAuthenticator` (anonymous clients only if
  `allow_anonymous`), and SCRAM-SHA-256 enhanced auth from the same file;
- no password file, `allow_anonymous` true (the default): everyone gets in,
  with a loud warning;
- no password file, `allow_anonymous` false: everyone is refused.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

from adapters.mqtt.enhanced_auth import AuthMethod
from adapters.mqtt.scram import ScramCredentials, scram_method_factory
from adapters.mqtt.settings import MQTTSettings
from core.auth import Authenticator, DenyAll, PasswordAuthenticator

from gateway.config import AuthConfig

log = logging.getLogger("rosettamq.auth")


def build_authenticator(auth: AuthConfig) -> Authenticator | None:
    """The login rule for `auth`; None means everyone is let in."""
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
    """MQTT 5 enhanced-auth methods: SCRAM-SHA-256 whenever there is a password file."""
    if not isinstance(authenticator, PasswordAuthenticator):
        return {}
    fake_iterations = lambda: authenticator.password_file.typical_iterations  # noqa: E731
    return {"SCRAM-SHA-256": scram_method_factory(scram_lookup(authenticator), fake_iterations)}


def with_auth(settings: MQTTSettings, authenticator: Authenticator | None) -> MQTTSettings:
    """`settings` with the gateway's authenticator and methods (methods already set are kept)."""
    methods = {**auth_methods(authenticator), **settings.auth_methods}
    return dataclasses.replace(settings, authenticator=authenticator, auth_methods=methods)
