"""OAuth 2.0 access tokens (JWTs) checked against a key set, with PyJWT: no I/O here.

`verify(token, keys, policy)` answers a `core.auth.Grant` (the username claim, the token's
rules and roles, its expiry) or raises `TokenRefused` saying why in words safe to log
(never the token). `UnknownKey` is the refusal the caller may cure by fetching the
provider's keys again (gateway/auth_jwt.py does, rate-limited).

Rules, in order: the header names an algorithm of `policy.algorithms` (``none`` never
is); HS256/384/512 only with the configured secret, every other algorithm only with a
key of the set whose ``kid`` (or, for a set of one key without kids, the only key) and
algorithm match; then PyJWT checks the signature, ``exp`` (required), ``nbf``, ``iat``,
``iss`` and ``aud`` with `policy.leeway`. The username claim must be a non-empty string.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt import PyJWK

from core.acl_tokens import TokenRules, TokenRulesError, parse_acl_claim, parse_scopes
from core.auth import Grant

log = logging.getLogger("rosettamq.auth")

DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512", "EdDSA"})


class TokenRefused(Exception):
    """The token is not accepted; the message is safe to log (it never holds the token)."""


class UnknownKey(TokenRefused):
    """The token names a key (``kid``) the key set does not hold."""

    def __init__(self, kid: str | None) -> None:
        super().__init__(f"unknown signing key kid={kid!r}")
        self.kid = kid


class KeySetError(ValueError):
    """A JWKS document that holds no usable public key; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What a token must say to be accepted, and which claims name its user, roles and rules."""

    issuer: str | None = None
    audience: tuple[str, ...] = ()  # empty: `aud` is not checked
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    username_claim: str = "sub"
    leeway: float = 0.0
    roles_claim: str = "roles"  # a dotted path: Keycloak's realm roles are "realm_access.roles"
    acl_claim: str = "acl"
    resource_server_id: str = "rabbitmq"  # RabbitMQ's scope prefix
    secret: bytes | None = field(default=None, repr=False)  # the HS256 key (`secret_file`), never logged


@dataclass(frozen=True, slots=True)
class KeySet:
    """The provider's public keys by ``kid`` (a key without one is kept under None)."""

    keys: tuple[PyJWK, ...] = ()

    @classmethod
    def from_jwks(cls, document: Any) -> "KeySet":
        """The usable signing keys of a JWKS document (dict or JSON text); raises KeySetError."""
        if isinstance(document, (str, bytes)):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise KeySetError(f"not JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise KeySetError('expected a JSON object with a "keys" array')
        usable, skipped = [], 0
        for entry in document["keys"]:
            key = _public_key(entry)
            if key is None:
                skipped += 1
            else:
                usable.append(key)
        if not usable:
            raise KeySetError(f"no usable public signing key among {len(document['keys'])} keys")
        if skipped:
            log.info("jwks: %d keys skipped (not public signing keys of a supported algorithm)", skipped)
        return cls(tuple(usable))

    def find(self, kid: str | None, algorithm: str) -> PyJWK | None:
        matching = [k for k in self.keys if k.algorithm_name == algorithm]
        if kid is None:
            return matching[0] if len(matching) == 1 and matching[0].key_id is None else None
        return next((k for k in matching if k.key_id == kid), None)

    def __contains__(self, kid: object) -> bool:
        return any(k.key_id == kid for k in self.keys)

    @property
    def kids(self) -> tuple[str | None, ...]:
        return tuple(k.key_id for k in self.keys)


def _public_key(entry: Any) -> PyJWK | None:
    """One JWK as a verification key, or None: symmetric keys, encryption keys and unknown types are skipped."""
    if not isinstance(entry, dict) or entry.get("kty") == "oct" or entry.get("use", "sig") != "sig":
        return None
    try:
        key = PyJWK(entry)
    except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError):
        return None
    return key if key.algorithm_name in ASYMMETRIC_ALGORITHMS else None


def looks_like_jwt(credential: bytes | str | None) -> bool:
    """Whether a password is shaped as a JWS compact token: three base64url parts, a JSON header."""
    if not credential:
        return False
    text = credential.decode("ascii", "replace") if isinstance(credential, bytes) else credential
    parts = text.split(".")
    return len(parts) == 3 and text.startswith("eyJ") and all(parts[:2])


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``); None when absent."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def verify(token: str, keys: KeySet, policy: TokenPolicy) -> Grant:
    """The grant of a valid token; raises UnknownKey or TokenRefused."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRefused("malformed token") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if algorithm not in policy.algorithms:
        raise TokenRefused(f"algorithm {str(algorithm)[:20]!r} not allowed")
    try:  # garbage is refused here, before it could make anyone fetch keys
        jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRefused("malformed token") from None
    if algorithm in HMAC_ALGORITHMS:
        if policy.secret is None:
            raise TokenRefused(f"algorithm {algorithm} needs secret_file")
        key: Any = policy.secret
    else:
        key = keys.find(kid if isinstance(kid, str) else None, algorithm)
        if key is None:
            raise UnknownKey(kid if isinstance(kid, str) else None)
    try:
        claims = jwt.decode(
            token, key, algorithms=[algorithm], audience=list(policy.audience) or None, issuer=policy.issuer,
            leeway=policy.leeway,
            options={"require": ["exp"], "verify_aud": bool(policy.audience)},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("token expired") from None
    except jwt.InvalidAudienceError:
        raise TokenRefused("wrong audience") from None
    except jwt.InvalidIssuerError:
        raise TokenRefused("wrong issuer") from None
    except jwt.InvalidSignatureError:
        raise TokenRefused("bad signature") from None
    except jwt.PyJWTError as exc:
        raise TokenRefused(f"invalid token: {type(exc).__name__}") from None
    return grant(claims, policy)


def grant(claims: dict[str, Any], policy: TokenPolicy) -> Grant:
    """The grant of verified claims: username, roles, rules and expiry; raises TokenRefused."""
    username = claim(claims, policy.username_claim)
    if not isinstance(username, str) or not username:
        raise TokenRefused(f"claim {policy.username_claim!r} missing or not a string")
    roles_value = claim(claims, policy.roles_claim)
    roles = {r for r in roles_value if isinstance(r, str)} if isinstance(roles_value, list) else set()
    resources, tag_roles = parse_scopes(claims.get("scope", claims.get("scp", "")), policy.resource_server_id)
    rules = TokenRules(resources=resources)
    acl = claims.get(policy.acl_claim)
    if acl is not None:
        try:
            topics, allow_list = parse_acl_claim(acl)
        except TokenRulesError as exc:
            raise TokenRefused(str(exc)) from None
        rules = TokenRules(topics, allow_list, resources)
    return Grant(username, float(claims["exp"]) + policy.leeway, None if rules.empty else rules, frozenset(roles | tag_roles))
