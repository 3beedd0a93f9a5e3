"""The password file: one `username:$pbkdf2-sha256$<iterations>$<salt>$<hash>` line per user.

The hash is PBKDF2-HMAC-SHA256(password, salt, iterations), which is exactly
SCRAM-SHA-256's SaltedPassword (RFC 5802), so one file serves both plain
username/password logins and SCRAM (StoredKey and ServerKey derive from it).
Salt and hash are standard base64. Lines starting with `#` and blank lines are
kept as they are when the file is saved again. No password is ever stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import tempfile
from collections import Counter
from pathlib import Path
from typing import NamedTuple

SCHEME = "pbkdf2-sha256"
DEFAULT_ITERATIONS = 100_000
SALT_LENGTH = 16  # the same length as SCRAM's fake salts, so unknown users look alike
HASH_LENGTH = hashlib.sha256().digest_size
_FORMAT = f"username:${SCHEME}$<iterations>$<salt base64>$<hash base64>"


class PasswordFileError(ValueError):
    """A malformed password file; `lineno` is the 1-based line at fault (0: the whole file)."""

    def __init__(self, message: str, path: str | None = None, lineno: int = 0) -> None:
        where = f"{path or '<password file>'}" + (f":{lineno}" if lineno else "")
        super().__init__(f"{where}: {message}")
        self.lineno = lineno


class SaltedPassword(NamedTuple):
    """One user's stored secret: what SCRAM calls SaltedPassword, with its salt and cost."""

    salt: bytes
    iterations: int
    salted_password: bytes


def _derive(password: bytes, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password, salt, iterations)


def _as_bytes(password: str | bytes) -> bytes:
    return password.encode("utf-8") if isinstance(password, str) else password


def _encode(entry: SaltedPassword) -> str:
    salt = base64.b64encode(entry.salt).decode("ascii")
    digest = base64.b64encode(entry.salted_password).decode("ascii")
    return f"${SCHEME}${entry.iterations}${salt}${digest}"


def _new_entry(password: str | bytes, iterations: int, salt: bytes | None) -> SaltedPassword:
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    salt = secrets.token_bytes(SALT_LENGTH) if salt is None else salt
    if not salt:
        raise ValueError("salt must not be empty")
    return SaltedPassword(salt, iterations, _derive(_as_bytes(password), salt, iterations))


def hash_password(password: str | bytes, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """`$pbkdf2-sha256$<iterations>$<salt>$<hash>` for a password (random 16-byte salt by default)."""
    return _encode(_new_entry(password, iterations, salt))


def check_username(username: str) -> None:
    """Raise ValueError for a name the file format cannot hold."""
    if not username:
        raise ValueError("username must not be empty")
    if ":" in username or username.startswith("#") or username != username.strip():
        raise ValueError(f"username {username!r} must not contain ':', start with '#' or with/end in spaces")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in username):
        raise ValueError(f"username {username!r} must not contain control characters")


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _parse_hash(text: str) -> SaltedPassword | str:
    """The entry, or why the hash part is malformed."""
    parts = text.split("$")
    if len(parts) != 5 or parts[0] != "":
        return f"expected {_FORMAT}"
    _, scheme, iterations, salt_b64, hash_b64 = parts
    if scheme != SCHEME:
        return f"unsupported hash scheme {scheme!r} (only {SCHEME!r})"
    if not iterations.isascii() or not iterations.isdigit() or int(iterations) < 1:
        return f"iterations must be a positive integer, got {iterations!r}"
    salt, digest = _b64(salt_b64), _b64(hash_b64)
    if not salt:
        return "salt is not valid, non-empty base64"
    if digest is None or len(digest) != HASH_LENGTH:
        return f"hash is not {HASH_LENGTH} bytes of base64"
    return SaltedPassword(salt, int(iterations), digest)


class PasswordFile:
    """Users and their salted passwords, in file order, with the file's comments."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._users: dict[str, SaltedPassword] = {}
        self._layout: list[tuple[str, str]] = []  # ("user", name) or ("text", comment/blank line)
        self._dummy = SaltedPassword(secrets.token_bytes(SALT_LENGTH), DEFAULT_ITERATIONS, secrets.token_bytes(HASH_LENGTH))

    @classmethod
    def parse(cls, text: str, path: str | os.PathLike[str] | None = None) -> PasswordFile:
        """Parse file content; PasswordFileError names the first bad line."""
        result = cls(path)
        where = None if path is None else str(path)
        first_seen: dict[str, int] = {}
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()  # the final newline ends the last line; it does not start a new one
        for lineno, raw in enumerate(lines, start=1):
            line = raw.rstrip("\r")
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                result._layout.append(("text", line))
                continue
            username, sep, rest = stripped.partition(":")
            if not sep:
                raise PasswordFileError(f"expected {_FORMAT}", where, lineno)
            try:
                check_username(username)
            except ValueError as exc:
                raise PasswordFileError(str(exc), where, lineno) from None
            if username in first_seen:
                raise PasswordFileError(f"duplicate user {username!r} (first on line {first_seen[username]})", where, lineno)
            entry = _parse_hash(rest)
            if isinstance(entry, str):
                raise PasswordFileError(f"user {username!r}: {entry}", where, lineno)
            first_seen[username] = lineno
            result._users[username] = entry
            result._layout.append(("user", username))
        result._refresh_dummy()
        return result

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PasswordFile:
        """Read and parse a file (UTF-8); OSError if unreadable, PasswordFileError if malformed."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise PasswordFileError(f"not UTF-8 text ({exc.reason})", str(path)) from exc
        return cls.parse(text, path)

    def __contains__(self, username: object) -> bool:
        return username in self._users

    def __len__(self) -> int:
        return len(self._users)

    def usernames(self) -> list[str]:
        """The users, in file order."""
        return list(self._users)

    def verify(self, username: str, password: bytes) -> bool:
        """True if `password` is the user's; an unknown user costs the same PBKDF2 work."""
        entry = self._users.get(username)
        known = entry is not None
        if entry is None:
            entry = self._dummy
        matches = hmac.compare_digest(_derive(password, entry.salt, entry.iterations), entry.salted_password)
        return matches and known

    def scram_credentials(self, username: str) -> SaltedPassword | None:
        """(salt, iterations, salted_password) for SCRAM-SHA-256, or None for an unknown user."""
        return self._users.get(username)

    @property
    def typical_iterations(self) -> int:
        """The most common iteration count: what an unknown user pretends to have."""
        return self._dummy.iterations

    def set(self, username: str, password: str | bytes, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> None:
        """Add a user or change their password (a fresh salt unless one is given)."""
        check_username(username)
        if username not in self._users:
            self._layout.append(("user", username))
        self._users[username] = _new_entry(password, iterations, salt)
        self._refresh_dummy()

    def remove(self, username: str) -> None:
        """Delete a user; KeyError if there is no such user."""
        del self._users[username]
        self._layout.remove(("user", username))
        self._refresh_dummy()

    def dumps(self) -> str:
        """The file content: comments where they were, one line per user."""
        lines = [f"{value}:{_encode(self._users[value])}" if kind == "user" else value for kind, value in self._layout]
        return "".join(line + "\n" for line in lines)

    def save(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write atomically (temporary file, fsync, rename) with mode 0600."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no path to save to")
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(self.dumps())
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        self.path = target

    def _refresh_dummy(self) -> None:
        counts = Counter(entry.iterations for entry in self._users.values())
        iterations = counts.most_common(1)[0][0] if counts else DEFAULT_ITERATIONS
        if iterations != self._dummy.iterations:
            self._dummy = self._dummy._replace(iterations=iterations)
