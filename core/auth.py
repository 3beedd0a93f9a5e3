"""Authentication interface shared by every adapter (one rule holds for every protocol)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
