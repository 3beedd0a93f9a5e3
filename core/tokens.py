"""Bearer tokens: a file of `username:sha256-hex-of-token` lines, for clients that authenticate
with a token instead of a password (the WebSocket upgrade's `Authorization: Bearer ...`).

Tokens are random and long (`new_token`), so an unsalted SHA-256 is enough to keep
the file from holding usable secrets; lookups go by hash, so no comparison leaks
timing about a stored token. Blank lines and `#` comments are allowed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path


class TokenFileError(ValueError):
    """A line of the token file that is not `username:64 hex digits`."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh token: 256 random bits, URL-safe (it may travel as a query parameter)."""
    return secrets.token_urlsafe(32)


class TokenFile:
    """Users by token hash, read from and written to a file."""

    def __init__(self, path: str | os.PathLike[str], users: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self._user_by_hash: dict[str, str] = dict(users or {})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "TokenFile":
        users: dict[str, str] = {}
        text = Path(path).read_text(encoding="utf-8") if Path(path).exists() else ""
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            username, sep, digest = line.rpartition(":")
            if not sep or not username or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise TokenFileError(f"{path}:{lineno}: expected username:<sha256 hex of the token>")
            users[digest] = username
        return cls(path, users)

    def reload(self) -> None:
        """Read the file again (SIGHUP); TokenFileError (or OSError) leaves the current tokens."""
        self._user_by_hash = TokenFile.load(self.path)._user_by_hash

    def user_for(self, token: str) -> str | None:
        """The user a token belongs to, or None."""
        return self._user_by_hash.get(token_hash(token))

    def add(self, username: str) -> str:
        """Make a new token for `username`, keep only its hash, and return it (shown once)."""
        if not username or ":" in username:
            raise TokenFileError("a username must be non-empty and contain no ':'")
        token = new_token()
        self._user_by_hash[token_hash(token)] = username
        return token

    def save(self) -> None:
        """Write atomically, readable by the owner only."""
        lines = [f"{user}:{digest}\n" for digest, user in self._user_by_hash.items()]
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
        os.replace(tmp, self.path)
