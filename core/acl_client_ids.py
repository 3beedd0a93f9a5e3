"""``clientid`` lines of the ACL file: which client ids a user may connect with.

In a section of the ACL file (core/acl_file.py), or for everyone as a ``pattern``::

    user alice
    clientid alice-*            # alice may connect as alice-1, alice-kitchen, ...
    clientid dashboard

    pattern clientid %u-*       # every logged-in user: ids made of its name, '-' and anything

A managed IoT broker's policy names the client ids an identity may use; this is that. PATTERN is
a shell-style glob (``*`` any run of characters, ``?`` one, ``[...]`` a set: `fnmatch`), matched
against the whole client id, case-sensitively; ``%u`` stands for the user name. Rules before the
first ``user`` line are the anonymous clients'. A ``%u`` pattern never applies to an anonymous
client, nor to a user whose name holds a glob character (``* ? [ ]``), which would widen it.

When no ``clientid`` line applies to a client it may use any client id, as before. When one does,
a CONNECT (MQTT, MQTT over WebSocket) or a CoAP connection with any other id is refused: MQTT 5
CONNACK 0x87 Not authorized, 3.1.1 return code 5, CoAP 4.03. Either way a session belongs to the
user who created it (core/session_registry.py): these rules narrow what a user may use, they
never hand it another user's session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Mapping

GLOB_CHARACTERS = re.compile(r"[*?\[\]]")  # what a user name must not hold to be put into a pattern


def parse_client_id_rule(rest: str) -> str:
    """The glob after ``clientid``; raises ValueError saying what is wrong."""
    pattern = rest.strip()
    if not pattern:
        raise ValueError("'clientid' needs a client id or a glob pattern")
    if " " in pattern or "\t" in pattern:
        raise ValueError(f"'clientid' takes one pattern, not {pattern!r}")
    return pattern


@dataclass(frozen=True, slots=True)
class ClientIdRules:
    """Every ``clientid`` line of a file: per section (None: anonymous) and the patterns for all."""

    own: Mapping[str | None, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    patterns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return sum(map(len, self.own.values())) + len(self.patterns)

    def globs_for(self, username: str | None) -> tuple[str, ...] | None:
        """The globs that apply to `username`'s clients, or None when none does (any id goes)."""
        globs = list(self.own.get(username, ()))
        if username is not None and not GLOB_CHARACTERS.search(username):
            globs.extend(pattern.replace("%u", username) for pattern in self.patterns)
        else:
            globs.extend(pattern for pattern in self.patterns if "%u" not in pattern)
        return tuple(globs) or None


def client_id_allowed(globs: tuple[str, ...] | None, client_id: str) -> bool:
    """True when no rule applies (`globs` None) or one of them matches the whole `client_id`."""
    return globs is None or any(fnmatchcase(client_id, glob) for glob in globs)


NO_CLIENT_ID_RULES = ClientIdRules()
