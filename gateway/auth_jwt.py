"""OAuth 2.0 access tokens as logins (`[auth.jwt]`): the provider's keys and the token authenticator.

`JwksSource` holds the identity provider's public keys: fetched at start (from `jwks_url`,
or from the ``jwks_uri`` of ``{issuer}/.well-known/openid-configuration``), fetched again
every `refresh_interval` seconds in the background, and once more when a token names a
``kid`` it does not hold (key rotation), at most once per `refetch_interval` seconds.
Fetches are blocking HTTP GETs bounded by `timeout` and always run in a worker thread,
never on the event loop; a provider that is down or answers garbage leaves the cached keys
in place and logs one line saying what came back.

`TokenAuthenticator` is the `core.auth.Authenticator` of every listener: a password shaped
as a JWT is checked as an access token (`core.jwt_tokens.verify`), anything else goes to
`fallback` (the password file) or the anonymous rule. With the key cached the check is a
signature verification, cheap enough for the event loop (`quick_check`); an unknown key
answers None there, so the adapter runs `authenticate` in a thread, which may refetch.
Tokens never reach a log: refusals log the reason only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from core.auth import Answer, Authenticator, Credentials, Grant, quick_answer
from core.jwt_tokens import KeySet, KeySetError, TokenRefused, UnknownKey, looks_like_jwt, verify

from gateway.config_jwt import JwtSettings

log = logging.getLogger("rosettamq.auth")

MAX_DOCUMENT = 1024 * 1024  # bytes of a discovery or JWKS answer read at most
USERNAME_FREE = frozenset({"amqp"})  # RabbitMQ ignores AMQP's username with a token; so do we


class ProviderError(Exception):
    """The provider could not be reached or answered something unusable (the message says which)."""


def http_get_json(url: str, timeout: float) -> Any:
    """GET `url` and parse its JSON body; raises ProviderError saying what went wrong."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "rosettamq"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http/https checked at load)
            body = response.read(MAX_DOCUMENT + 1)
    except urllib.error.HTTPError as exc:
        raise ProviderError(f"{url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProviderError(f"{url} unreachable: {reason}") from None
    if len(body) > MAX_DOCUMENT:
        raise ProviderError(f"{url} answered more than {MAX_DOCUMENT} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise ProviderError(f"{url} answered something that is not JSON ({len(body)} bytes, "
                            f"starting {body[:40]!r})") from None


class JwksSource:
    """The provider's keys, cached; `refresh` and `refetch_for` block and belong in worker threads."""

    def __init__(self, settings: JwtSettings, get: Callable[[str, float], Any] = http_get_json) -> None:
        self.settings = settings
        self.keys = KeySet()
        self.fetches = 0  # attempts, for metrics and tests
        self.failures = 0
        self._get = get
        self._jwks_url = settings.jwks_url
        self._lock = threading.Lock()
        self._last_refetch = -float("inf")  # monotonic time of the last fetch for an unknown kid

    def refresh(self) -> bool:
        """Fetch the key set now; on failure keep the cached keys, log why and return False."""
        with self._lock:
            return self._fetch()

    def refetch_for(self, kid: str | None) -> bool:
        """Whether `kid` is known after at most one rate-limited fetch (threads asking meanwhile wait for it)."""
        with self._lock:
            if kid in self.keys:
                return True  # another thread's fetch brought it
            now = time.monotonic()
            if now - self._last_refetch < self.settings.refetch_interval:
                log.info("jwks: unknown kid=%r, not fetched again (last fetch %.1f s ago, refetch_interval %.0f s)",
                         kid, now - self._last_refetch, self.settings.refetch_interval)
                return False
            self._last_refetch = now
            log.info("jwks: token names unknown kid=%r; fetching the provider's keys again", kid)
            return self._fetch() and kid in self.keys

    def _fetch(self) -> bool:
        self.fetches += 1
        try:
            url = self._jwks_url or self._discover()
            keys = KeySet.from_jwks(self._get(url, self.settings.timeout))
        except (ProviderError, KeySetError) as exc:
            self.failures += 1
            log.error("jwks: fetch failed, keeping %d cached keys: %s", len(self.keys.keys), exc)
            return False
        except Exception as exc:  # a broken provider must never break logins that use cached keys
            self.failures += 1
            log.error("jwks: fetch failed, keeping %d cached keys: %r", len(self.keys.keys), exc)
            return False
        self._jwks_url = url
        if keys.kids != self.keys.kids:
            log.info("jwks: %d keys loaded from %s kids=%s", len(keys.keys), url, ",".join(map(str, keys.kids)))
        self.keys = keys  # one reference swap: a check sees the old set or the new one
        return True

    def _discover(self) -> str:
        issuer = self.settings.policy.issuer
        assert issuer is not None  # the config requires jwks_url or issuer
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get(url, self.settings.timeout)
        if not isinstance(document, dict) or not isinstance(document.get("jwks_uri"), str):
            raise ProviderError(f"{url} answered no jwks_uri (an OpenID provider's discovery document has one)")
        if document.get("issuer") != issuer:
            raise ProviderError(f"{url} names issuer {document.get('issuer')!r}, not the configured {issuer!r}")
        jwks_uri: str = document["jwks_uri"]
        if not jwks_uri.startswith(("https://", "http://")):
            raise ProviderError(f"{url} names jwks_uri {jwks_uri[:80]!r}, not an http(s) URL")
        return jwks_uri

    async def start(self) -> "asyncio.Task[None]":
        """Fetch the keys once in a worker thread (a provider that is down is logged, not fatal: tokens
        are refused until a fetch works), then refresh them in the background (cancel the task to stop)."""
        if self.settings.fetches_keys:
            await asyncio.get_running_loop().run_in_executor(None, self.refresh)
        return asyncio.create_task(self._refresh_forever(), name="jwks-refresh")

    async def _refresh_forever(self) -> None:
        interval = self.settings.refresh_interval
        if not self.settings.fetches_keys or interval <= 0:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            await loop.run_in_executor(None, self.refresh)


class TokenAuthenticator:
    """Access tokens as passwords, on every protocol; other passwords go to `fallback`."""

    def __init__(self, source: JwksSource, fallback: Authenticator | None, allow_anonymous: bool) -> None:
        self.source = source
        self.policy = source.settings.policy
        self.fallback = fallback  # gateway/auth.py reaches the password file through it (reload, SCRAM)
        self.allow_anonymous = allow_anonymous
        self.accepted = self.refused = 0

    def quick_check(self, credentials: Credentials) -> Answer | None:
        """The answer with the cached keys; None when a key must be fetched (or a password hashed)."""
        token = _token(credentials)
        if token is None:
            return self._other(credentials, quick=True)
        try:
            return self._accept(credentials, verify(token, self.source.keys, self.policy))
        except UnknownKey:
            return None
        except TokenRefused as exc:
            return self._refuse(credentials, str(exc))

    def authenticate(self, credentials: Credentials) -> Answer:
        """The answer, fetching the keys again once for an unknown kid (blocking: a worker thread's job)."""
        token = _token(credentials)
        if token is None:
            answer = self._other(credentials, quick=False)
            assert answer is not None
            return answer
        try:
            return self._accept(credentials, verify(token, self.source.keys, self.policy))
        except UnknownKey as exc:
            if not self.source.refetch_for(exc.kid):
                return self._refuse(credentials, str(exc))
        except TokenRefused as exc:
            return self._refuse(credentials, str(exc))
        try:
            return self._accept(credentials, verify(token, self.source.keys, self.policy))
        except TokenRefused as exc:
            return self._refuse(credentials, str(exc))

    def _other(self, credentials: Credentials, quick: bool) -> Answer | None:
        if self.fallback is not None:
            return quick_answer(self.fallback, credentials) if quick else self.fallback.authenticate(credentials)
        return credentials.username is None and credentials.password is None and self.allow_anonymous

    def _accept(self, credentials: Credentials, grant: Grant) -> Answer:
        presented = credentials.username
        if presented and presented != grant.username and credentials.protocol not in USERNAME_FREE:
            return self._refuse(credentials, f"username {presented!r} is not the token's {grant.username!r}")
        self.accepted += 1
        return grant

    def _refuse(self, credentials: Credentials, reason: str) -> bool:
        self.refused += 1
        log.warning("access token refused protocol=%s peer=%s client_id=%s reason=%s",
                    credentials.protocol, credentials.address, credentials.client_id, reason)
        return False


def bearer_check(authenticator: Authenticator | None) -> Callable[[str], bool] | None:
    """For a bearer token outside a login (the WebSocket upgrade): False when it is refused at once,
    True when it is an access token that the login is to check. None without `[auth.jwt]`."""
    if not isinstance(authenticator, TokenAuthenticator):
        return None
    checker = authenticator

    def check(token: str) -> bool:
        if not looks_like_jwt(token):
            return False
        return checker.quick_check(Credentials("ws", "", None, token.encode("ascii", "replace"))) is not False

    return check


def _token(credentials: Credentials) -> str | None:
    password = credentials.password
    return password.decode("ascii", "replace") if password is not None and looks_like_jwt(password) else None
