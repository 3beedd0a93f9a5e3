"""Connection mode: a CoAP client opens a connection, keeps it alive and closes it (EMQX's API).

| request                                                     | answer                        |
|-------------------------------------------------------------|-------------------------------|
| POST ``/mqtt/connection?clientid=C&username=U&password=P``  | 2.01, payload = the token     |
| PUT ``/mqtt/connection?clientid=C&token=T`` (heartbeat)     | 2.04, or 4.01 (unknown token) |
| DELETE ``/mqtt/connection?clientid=C&token=T``              | 2.02, or 4.01                 |

The connection authenticates once; later requests name it with
``clientid=C&token=T`` instead of a password (no password hashing per
request). A connection that sees no heartbeat for `heartbeat` seconds expires.
The observers a client registered end with its connection: the connection owns
them. Opening a connection for a clientid that has one replaces it (new token).
At most `max_connections` are open (0: no limit); opening one more raises
`Overloaded` (5.03, Max-Age = `RETRY_AFTER`) and counts it in `refused`.

No I/O and no timers: `next_deadline()` says when `expire(now)` must run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from adapters.coap.errors import Overloaded

__all__ = ["Connection", "ConnectionRegistry"]

RETRY_AFTER = 30  # seconds (Max-Age) a client refused at the connection limit is told to wait


@dataclass(slots=True)
class Connection:
    client_id: str
    username: str | None
    token: str
    expires_at: float
    grant: Any = None  # an access token's `core.auth.Grant`: the connection ends when it expires
    auth_until: float | None = None  # that expiry, on the registry's clock


class ConnectionRegistry:
    """Open connections by clientid."""

    def __init__(self, heartbeat: float, *, new_token: Callable[[], str] = lambda: secrets.token_hex(8),
                 max_connections: int = 0) -> None:
        self.heartbeat = heartbeat
        self.max_connections = max_connections
        self.refused = 0
        self._new_token = new_token
        self._connections: dict[str, Connection] = {}

    def __len__(self) -> int:
        return len(self._connections)

    def open(self, client_id: str, username: str | None, now: float, grant: Any = None,
             auth_until: float | None = None) -> Connection:
        """A new connection (replacing `client_id`'s); raises Overloaded past `max_connections`."""
        if self.max_connections and client_id not in self._connections \
                and len(self._connections) >= self.max_connections:
            self.refused += 1
            raise Overloaded(f"connection limit of {self.max_connections} reached", retry_after=RETRY_AFTER)
        until = now + self.heartbeat if auth_until is None else min(now + self.heartbeat, auth_until)
        connection = Connection(client_id, username, self._new_token(), until, grant, auth_until)
        self._connections[client_id] = connection
        return connection

    def check(self, client_id: str | None, token: str | None, now: float) -> Connection | None:
        """The live connection `client_id` holds with `token`, or None."""
        if not client_id or not token:
            return None
        connection = self._connections.get(client_id)
        if connection is None or not secrets.compare_digest(connection.token, token) or connection.expires_at <= now:
            return None
        return connection

    def keep_alive(self, client_id: str | None, token: str | None, now: float) -> bool:
        connection = self.check(client_id, token, now)
        if connection is None:
            return False
        connection.expires_at = now + self.heartbeat
        if connection.auth_until is not None:  # never past its access token's expiry
            connection.expires_at = min(connection.expires_at, connection.auth_until)
        return True

    def close(self, client_id: str | None, token: str | None, now: float) -> bool:
        connection = self.check(client_id, token, now)
        if connection is None:
            return False
        del self._connections[connection.client_id]
        return True

    def drop(self, client_id: str) -> bool:
        """End a connection now (admin action); False if there is none."""
        return self._connections.pop(client_id, None) is not None

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._connections.values()))

    def next_deadline(self) -> float | None:
        return min((c.expires_at for c in self._connections.values()), default=None)

    def expire(self, now: float) -> list[str]:
        """Forget connections past their deadline; returns their clientids."""
        gone = [client_id for client_id, c in self._connections.items() if c.expires_at <= now]
        for client_id in gone:
            del self._connections[client_id]
        return gone
