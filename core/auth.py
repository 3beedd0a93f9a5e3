"""Authentication interface shared by every adapter (one rule holds for every protocol).

An `Authenticator` may be slow (PBKDF2 costs ~35 ms per check at 100,000
iterations): adapters first call `quick_answer`, which answers at once when
that is cheap (anonymous clients, a missing password, a login this process
already verified), and otherwise run `authenticate` off the event loop
(`loop.run_in_executor`), their connection state machine waiting meanwhile.

An answer is a bool, or a `Grant` (truthy) when the credential names its own
identity: an OAuth 2.0 access token (gateway/auth_jwt.py) gives the username
from its claims, maybe its own ACL rules and roles, and when the login ends.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.passwords import PasswordFile, PasswordFileError

log = logging.getLogger("rosettamq.auth")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a client presented: protocol, client id, username, password and address."""

    protocol: str
    client_id: str
    username: str | None
    password: bytes | None
    address: str = ""


@dataclass(frozen=True, slots=True)
class Grant:
    """An accepted login whose credential says who it is: username, ACL rules, roles and expiry.

    `rules`: the token's own ACL (core/acl_tokens.py `TokenRules`), None when the ACL file
    applies to `username`; `expires_at`: wall-clock seconds (`time.time()`), None for never.
    """

    username: str
    expires_at: float | None = None
    rules: Any = None
    roles: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return True


Answer = bool | Grant


class Authenticator(Protocol):
    """Decides whether credentials are accepted (a `Grant` accepts them with its own identity)."""

    def authenticate(self, credentials: Credentials) -> Answer: ...


def login_name(answer: Answer, presented: str | None) -> str | None:
    """The username a login acts as: the grant's, else the one the client presented."""
    return answer.username if isinstance(answer, Grant) else presented


def passwords_of(authenticator: object) -> "PasswordAuthenticator | None":
    """The password-file authenticator, alone or behind a token authenticator's `fallback`."""
    if isinstance(authenticator, PasswordAuthenticator):
        return authenticator
    fallback = getattr(authenticator, "fallback", None)
    return fallback if isinstance(fallback, PasswordAuthenticator) else None


def quick_answer(authenticator: Authenticator, credentials: Credentials) -> Answer | None:
    """The decision if it is cheap to make now; None: call `authenticate` off the event loop.

    An authenticator without a `quick_check` method is taken to be cheap.
    """
    quick = getattr(authenticator, "quick_check", None)
    if quick is None:
        return authenticator.authenticate(credentials)
    result: Answer | None = quick(credentials)
    return result


class AllowAnonymous:
    """Accepts everyone: the embedded default when no password file is configured."""

    def authenticate(self, credentials: Credentials) -> bool:
        return True


class DenyAll:
    """Refuses everyone: no password file and anonymous access turned off."""

    def authenticate(self, credentials: Credentials) -> bool:
        return False


class PasswordAuthenticator:
    """Checks usernames and passwords against a password file, for every protocol.

    A client without a username gets in only when `allow_anonymous`; a client
    with one must present that user's password. `reload()` swaps in a freshly
    read file, or keeps the current users if the file is broken.

    Successful verifications are remembered, so a device reconnecting costs
    one HMAC (~2 us) instead of PBKDF2 (~35 ms): the key is HMAC-SHA256 of
    username and password under a random per-process secret (never the
    password itself), valid only for the password file it was checked
    against, so a reload forgets them all. Failures are never remembered.
    `authenticate` is safe to call from worker threads.
    """

    CACHE_SIZE = 10_000

    def __init__(self, password_file: PasswordFile | str | os.PathLike[str], allow_anonymous: bool) -> None:
        if isinstance(password_file, PasswordFile):
            self.path = password_file.path
            self.password_file = password_file
        else:
            self.path = Path(password_file)
            self.password_file = PasswordFile.load(self.path)
        self.allow_anonymous = allow_anonymous
        self._secret = secrets.token_bytes(32)
        self._verified: dict[bytes, PasswordFile] = {}  # key -> the file the login was verified against

    def quick_check(self, credentials: Credentials) -> bool | None:
        """The answer without PBKDF2 work, or None when `authenticate` must run."""
        if credentials.username is None:
            return self.allow_anonymous
        if credentials.password is None:
            return False
        if self._verified.get(self._key(credentials.username, credentials.password)) is self.password_file:
            return True
        return None

    def authenticate(self, credentials: Credentials) -> bool:
        quick = self.quick_check(credentials)
        if quick is not None:
            return quick
        assert credentials.username is not None and credentials.password is not None
        users = self.password_file  # the file this check runs against, even if a reload swaps it meanwhile
        if not users.verify(credentials.username, credentials.password):
            return False
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[self._key(credentials.username, credentials.password)] = users
        return True

    def _key(self, username: str, password: bytes) -> bytes:
        name = username.encode("utf-8", "surrogatepass")
        message = len(name).to_bytes(4, "big") + name + password
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def reload(self) -> bool:
        """Re-read the file; on any error log it, keep the old users and return False."""
        if self.path is None:
            log.error("password file reload impossible: no path")
            return False
        try:
            fresh = PasswordFile.load(self.path)
        except (OSError, PasswordFileError) as exc:
            log.error("password file reload failed, keeping %d users: %s", len(self.password_file), exc)
            return False
        self.password_file = fresh  # one reference swap: a login sees the old file or the new one
        self._verified.clear()  # remembered logins were checked against the old file
        log.info("password file reloaded path=%s users=%d", self.path, len(fresh))
        return True
