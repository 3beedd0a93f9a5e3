"""Authentication interface shared by every adapter (one rule holds for every protocol)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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


class Authenticator(Protocol):
    """Decides whether credentials are accepted."""

    def authenticate(self, credentials: Credentials) -> bool: ...


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
    """

    def __init__(self, password_file: PasswordFile | str | os.PathLike[str], allow_anonymous: bool) -> None:
        if isinstance(password_file, PasswordFile):
            self.path = password_file.path
            self.password_file = password_file
        else:
            self.path = Path(password_file)
            self.password_file = PasswordFile.load(self.path)
        self.allow_anonymous = allow_anonymous

    def authenticate(self, credentials: Credentials) -> bool:
        if credentials.username is None:
            return self.allow_anonymous
        if credentials.password is None:
            return False
        return self.password_file.verify(credentials.username, credentials.password)

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
        log.info("password file reloaded path=%s users=%d", self.path, len(fresh))
        return True
