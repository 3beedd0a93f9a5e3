"""MQTT 5 enhanced authentication (AUTH packet): the pluggable method interface.

A method is a small state machine: `start` takes the Authentication Data of
the CONNECT (or of a re-authenticating AUTH), `step` each following AUTH; each
returns whether to continue (send AUTH 0x18 with `data`), or that the client
succeeded or failed. The connection drives it; no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class AuthStep:
    """One answer of an authentication method."""

    status: Literal["continue", "success", "failure"]
    data: bytes | None = None
    username: str | None = None


CONTINUE: Literal["continue"] = "continue"
SUCCESS: Literal["success"] = "success"
FAILURE: Literal["failure"] = "failure"


class AuthMethod(Protocol):
    """One exchange of an enhanced-authentication method (a fresh object per exchange)."""

    def start(self, data: bytes | None) -> AuthStep: ...

    def step(self, data: bytes | None) -> AuthStep: ...
