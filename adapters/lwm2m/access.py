"""Who may register, update and de-register an LwM2M endpoint (issue 24). Pure: no I/O.

An endpoint belongs to the identity that registered it:

- the DTLS PSK identity on ``coaps://``, or the user of credentials given the way the
  CoAP listener takes them (``u``/``username`` and ``p``/``password`` Uri-Query
  parameters, stripped before the registration is parsed, stored or published), or
  nobody (anonymous, when the gateway allows anonymous clients);
- a logged-in identity may register only endpoint names matching `[lwm2m]
  endpoint_pattern` (``%u`` by default: its own user name; ``*`` globs, ``""`` any);
- a registered endpoint name cannot be taken by another identity (4.03);
- Update and De-register presenting an identity must present the owner's (4.03);
  without one, knowing the registration's location (96 random bits) is the proof,
  as devices resend no credentials on Update.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Sequence

LOGIN_KEYS = frozenset({"u", "username", "p", "password"})
DEFAULT_ENDPOINT_PATTERN = "%u"


def split_login_query(query: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(login parameters, the registration's own parameters) of a Uri-Query."""
    login: list[str] = []
    rest: list[str] = []
    for part in query:
        (login if part.partition("=")[0] in LOGIN_KEYS else rest).append(part)
    return tuple(login), tuple(rest)


def query_value(query: Sequence[str], name: str) -> str | None:
    for part in query:
        key, _, value = part.partition("=")
        if key == name:
            return value
    return None


def dtls_identity(remote: Any) -> str | None:
    """The PSK identity a ``coaps://`` peer completed its handshake with, or None for plain CoAP."""
    for claim in getattr(remote, "authenticated_claims", None) or ():
        identity = getattr(claim, "client_identity", None)
        if isinstance(identity, bytes):
            return identity.decode("utf-8", "replace")
        if isinstance(claim, str) and claim.startswith(":"):
            try:
                return bytes.fromhex(claim[1:]).decode("utf-8", "replace")
            except ValueError:
                continue
    return None


def endpoint_allowed(pattern: str, owner: str | None, endpoint: str) -> bool:
    """May `owner` (None: anonymous) register `endpoint` by name? Anonymous clients are bound by
    ownership only; a pattern using ``%u`` never matches for them otherwise."""
    if owner is None or not pattern:
        return True
    if any(c in owner for c in "*?["):
        return endpoint == pattern.replace("%u", owner)  # a user name with glob characters matches only itself
    return fnmatch.fnmatchcase(endpoint, pattern.replace("%u", owner))


def register_refusal(pattern: str, owner: str | None, endpoint: str, current_owner: str | None,
                     registered: bool) -> str | None:
    """Why `owner` may not register `endpoint` (a 4.03), or None."""
    if not endpoint_allowed(pattern, owner, endpoint):
        return f"{_who(owner)} may not register endpoint {endpoint!r} (allowed: {pattern.replace('%u', owner or '')!r})"
    if registered and current_owner != owner:
        return f"endpoint {endpoint!r} is registered by another identity"
    return None


def change_refusal(presented: bool, owner: str | None, registration_owner: str | None) -> str | None:
    """Why an Update or De-register may not touch a registration (a 4.03), or None."""
    if presented and owner != registration_owner:
        return "this registration belongs to another identity"
    return None


def _who(owner: str | None) -> str:
    return "an anonymous client" if owner is None else f"user {owner!r}"
