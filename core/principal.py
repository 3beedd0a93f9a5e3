"""Who acts on the core: a `Principal`, made once at login and carried by every connection.

Every message enters the core through the door (`core.door`) on behalf of a principal,
and the door checks that principal's ACL. The gateway's own producers have principals
too: `SYSTEM` for `$SYS` and other status it publishes itself (no ACL applies), a
session's own principal for its will, a queue owner's for dead-lettering, and the
signed-in user's for the admin API.
"""

from __future__ import annotations

from typing import Final

from core.acl import Authorizer, ClientAccess
from core.message import Origin

_tuple_new: Final = tuple.__new__  # an Origin without the NamedTuple's Python-level __new__ (one per connection)


class Principal:
    """A user (or the gateway) acting through one protocol, with its ACL view.

    `access` is None when no ACL applies (no ACL file, or the gateway itself). `origin`
    is what messages it publishes are attributed to (protocol, client id, username).
    """

    __slots__ = ("protocol", "client_id", "username", "access", "address", "roles", "origin", "trusted")

    def __init__(self, protocol: str, client_id: str = "", username: str | None = None, *,
                 access: ClientAccess | None = None, address: str | None = None,
                 roles: frozenset[str] = frozenset(), trusted: bool = False) -> None:
        self.protocol = protocol
        self.client_id = client_id
        self.username = username
        self.access = access
        self.address = address
        self.roles = roles
        self.trusted = trusted  # the gateway itself: the door skips the ACL (never a client)
        self.origin: Origin = _tuple_new(Origin, (protocol, client_id, username))

    @classmethod
    def login(cls, authorizer: Authorizer, protocol: str, client_id: str, username: str | None,
              address: str | None = None) -> "Principal":
        """The principal of a client that has logged in: its ACL view comes from `authorizer`."""
        return cls(protocol, client_id, username, access=authorizer.for_client(client_id, username),
                   address=address)

    def __repr__(self) -> str:
        who = "gateway" if self.trusted else repr(self.username)
        return f"<Principal {self.protocol}:{self.client_id!r} user={who}>"


SYSTEM = Principal("internal", "rosettamq", None, trusted=True)
"""The gateway itself ($SYS topics, status): no ACL applies."""
