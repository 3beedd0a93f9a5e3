"""``[auth.jwt]``: OAuth 2.0 access tokens as logins, read into `JwtSettings` (gateway/auth_jwt.py uses it).

Every mistake is a `ConfigError` naming ``auth.jwt.KEY``, at load, so a gateway never starts
with a token check that cannot work: no ``jwks_url`` nor ``issuer``; ``HS256`` without
``secret_file`` (or a secret file without ``HS256``); ``none`` or an unknown algorithm; a
URL that is not http(s).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.jwt_tokens import ASYMMETRIC_ALGORITHMS, DEFAULT_ALGORITHMS, HMAC_ALGORITHMS, TokenPolicy
from gateway.config_sections import ConfigError

log = logging.getLogger("rosettamq.auth")


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """`[auth.jwt]`: where the keys are, how often to fetch them, and what tokens must say."""

    policy: TokenPolicy
    jwks_url: str | None = None  # None: discovered from the issuer (or HS256 only: no keys to fetch)
    timeout: float = 5.0  # seconds one HTTP request to the provider may take
    refetch_interval: float = 10.0  # seconds between two fetches for unknown kids, at least
    refresh_interval: float = 300.0  # seconds between background refreshes; 0: never

    @property
    def fetches_keys(self) -> bool:
        return self.jwks_url is not None or self.policy.issuer is not None and any(
            alg in ASYMMETRIC_ALGORITHMS for alg in self.policy.algorithms)


def _url(sec: Any, key: str) -> str | None:
    value = sec.string(key, None)
    if value is not None and not value.startswith(("https://", "http://")):
        raise ConfigError(f"{sec.name}.{key}: expected an https:// (or http://) URL, got {value!r}")
    _warn_http(sec, key, value)
    return value


def _warn_http(sec: Any, key: str, value: str | None) -> None:
    host = urlsplit(value or "").hostname or ""
    if value and value.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
        log.warning("%s.%s is plain http: anyone on the path can hand the gateway keys of their own; "
                    "use https", sec.name, key)


def read_jwt(sec: Any) -> JwtSettings | None:
    """`sec`: a `Section` (gateway/config_reader.py) of ``[auth.jwt]``; None when the table is absent."""
    if not sec.data:
        sec.done()
        return None
    jwks_url, issuer = _url(sec, "jwks_url"), sec.string("issuer", None)
    if jwks_url is None:
        _warn_http(sec, "issuer", issuer)  # the keys come from its discovery document
    audience = sec.data.get("audience", [])
    sec.known.append("audience")
    if isinstance(audience, str):
        audience = [audience]
    if not isinstance(audience, list) or not all(isinstance(a, str) and a for a in audience):
        raise ConfigError(f"{sec.name}.audience: expected a string or an array of strings, got {audience!r}")
    algorithms = sec._get("algorithms", list, list(DEFAULT_ALGORITHMS))
    known = sorted(ASYMMETRIC_ALGORITHMS | HMAC_ALGORITHMS)
    for alg in algorithms:
        if alg not in known:
            raise ConfigError(f"{sec.name}.algorithms: {alg!r} is not allowed; choose from {', '.join(known)}")
    if not algorithms:
        raise ConfigError(f"{sec.name}.algorithms: must name at least one algorithm")
    secret_file = sec.path("secret_file")
    hmac = [alg for alg in algorithms if alg in HMAC_ALGORITHMS]
    policy_args = dict(
        username_claim=sec.string("username_claim", "sub") or "sub",
        leeway=sec.number("leeway", 0.0, 0.0, 3600.0),
        roles_claim=sec.string("roles_claim", "roles") or "roles",
        acl_claim=sec.string("acl_claim", "acl") or "acl",
        resource_server_id=sec.string("resource_server_id", "rabbitmq") or "rabbitmq",
    )
    settings_args = dict(
        timeout=sec.number("timeout", 5.0, 0.1, 60.0),
        refetch_interval=sec.number("refetch_interval", 10.0, 0.0, 86400.0),
        refresh_interval=sec.number("refresh_interval", 300.0, 0.0, 7 * 86400.0),
    )
    sec.done()
    if hmac and secret_file is None:
        raise ConfigError(f"{sec.name}.algorithms: {', '.join(hmac)} needs {sec.name}.secret_file (the shared "
                          "key); a provider's public keys never verify HS256 tokens")
    secret = None
    if secret_file is not None:
        if not hmac:
            raise ConfigError(f"{sec.name}.secret_file: set, but algorithms has no HS256 to use it with")
        sec.require_file("secret_file", secret_file)
        secret = Path(secret_file).read_bytes().strip()
        if len(secret) < 32:
            raise ConfigError(f"{sec.name}.secret_file: the key must be at least 32 bytes (RFC 7518 3.2), "
                              f"got {len(secret)}")
    asymmetric = [alg for alg in algorithms if alg in ASYMMETRIC_ALGORITHMS]
    if asymmetric and jwks_url is None and issuer is None:
        raise ConfigError(f"{sec.name}: set jwks_url (the provider's jwks_uri) or issuer (its keys are then "
                          "found through /.well-known/openid-configuration)")
    if jwks_url is None and issuer is not None and not issuer.startswith(("https://", "http://")):
        raise ConfigError(f"{sec.name}.issuer: discovery needs an https:// issuer URL, got {issuer!r}")
    if not audience:
        log.warning("[auth.jwt] has no audience: tokens the provider issued for any API are accepted")
    policy = TokenPolicy(issuer=issuer, audience=tuple(audience), algorithms=tuple(algorithms),
                         secret=secret, **policy_args)  # type: ignore[arg-type]
    return JwtSettings(policy, jwks_url, **settings_args)  # type: ignore[arg-type]
