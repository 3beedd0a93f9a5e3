"""Who may configure, write and read which queue and exchange: RabbitMQ's permissions (issue 24).

Each operation needs a permission on a resource, as RabbitMQ's channel asks them:

| operation                  | needs                                                          |
|----------------------------|----------------------------------------------------------------|
| exchange.declare / delete  | configure on the exchange (a passive declare: any of the three) |
| queue.declare              | configure on the queue (passive: any); a new queue with         |
|                            | x-dead-letter-exchange also read on itself and write on that    |
|                            | exchange, see `check_dead_letter_target`                        |
| queue.bind / unbind        | write on the queue, read on the exchange                        |
| queue.purge / delete       | configure on the queue (RabbitMQ asks only read to purge;       |
|                            | purging destroys what the owner's consumers wait for)           |
| basic.get / consume        | read on the queue                                               |
| basic.publish              | write on the exchange; on the default exchange, write on the    |
|                            | queue its routing key names                                     |
| a dead letter              | the queue owner's write on the dead-letter exchange (default    |
|                            | exchange: on the queue), at every dead letter                   |

Who is allowed, the first that applies:

1. everyone, when no ACL file is configured (the principal has no `access`), as before
   issue 24; and the gateway itself;
2. admins (`[http] admins`, through `is_admin`);
3. a connection on its own exclusive queue (a server-named exclusive queue is always declared);
4. the user's `queue` / `exchange` rules of the ACL file (core/acl_resources.py), when it has
   any of that kind: they alone decide;
5. ownership: a user uses the queues and exchanges it declared (the owner's username is
   stored with durable ones); a name nobody holds may be declared, the declarer owning it;
   the built-in exchanges are everyone's. What an older version stored has no owner.

A refusal is 403 ACCESS_REFUSED on the channel, with RabbitMQ's text. A refusal by rule 5
takes away what an older gateway allowed, so the first one of each user logs a warning that
says how to grant it back. No I/O here: the vhost and the method handlers ask.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Callable

from core.acl import Authorizer
from core.acl_resources import CONFIGURE, READ, WRITE
from core.principal import Principal

from adapters.amqp import errors
from adapters.amqp.bridge import SHARED_EXCHANGE
from adapters.amqp.durable import Owner
from adapters.amqp.mapping import routing_key_to_topic

if TYPE_CHECKING:
    from adapters.amqp.queues import Queue
    from adapters.amqp.vhost import VirtualHost

log = logging.getLogger("rosettamq.amqp")

QUEUE, EXCHANGE = "queue", "exchange"
ANY = CONFIGURE | WRITE | READ  # a passive declare: any one of them
_WORDS = {CONFIGURE: "configure", WRITE: "write", READ: "read", ANY: "configure"}  # RabbitMQ names ANY's last try
_ALLOWED, _BY_RULES, _BY_OWNERSHIP = 0, 1, 2


class Permissions:
    """The permission checks of every vhost of one AMQP broker."""

    def __init__(self, authorizer: Authorizer | None = None,
                 is_admin: Callable[[str | None], bool] | None = None) -> None:
        self.authorizer = authorizer
        self.is_admin: Callable[[str | None], bool] = is_admin or (lambda username: False)
        self.refused = 0
        self._told: set[str | None] = set()  # users told they lost a right

    def principal(self, username: str | None) -> Principal:
        """Who acts for a resource whose stored owner is `username` (dead letters pass the door as it)."""
        access = None if self.authorizer is None else self.authorizer.for_client("", username)
        return Principal("amqp", "", username, access=access)

    def require(self, vhost: "VirtualHost", principal: Principal, permission: int, kind: str, name: str,
                connection: object = None) -> None:
        """Raise 403 unless `principal` (through `connection`) has `permission` on the `kind` `name`."""
        if principal.access is None:
            return  # no ACL file: the hot path of every publish stops here
        resource = (vhost.queues if kind == QUEUE else vhost.exchanges).get(name)
        verdict = self._decide(principal, permission, kind, name, resource, connection)
        if verdict == _ALLOWED:
            return
        self.refused += 1
        if verdict == _BY_OWNERSHIP:
            self._tell(principal.username, permission, kind, name, vhost.name)
        raise errors.resource_refused(_WORDS[permission], kind, name, vhost.name, principal.username)

    def _decide(self, principal: Principal, permission: int, kind: str, name: str, resource: Any,
                connection: object) -> int:
        access = principal.access
        if access is None or principal.trusted or self.is_admin(principal.username):
            return _ALLOWED
        if kind == QUEUE and connection is not None and resource is not None \
                and resource.exclusive_owner is connection:
            return _ALLOWED
        ruled = access.resource_access(kind, name, permission)
        if ruled is not None:
            return _ALLOWED if ruled else _BY_RULES
        if resource is None or getattr(resource, "builtin", False):
            return _ALLOWED
        owner = resource.owner
        if isinstance(owner, Principal) and owner.username == principal.username:
            return _ALLOWED
        return _BY_OWNERSHIP

    def _tell(self, username: str | None, permission: int, kind: str, name: str, vhost: str) -> None:
        """One warning per user: a right it had before issue 24 is gone, and how to grant it."""
        if username in self._told:
            return
        self._told.add(username)
        word = "read" if permission == ANY else _WORDS[permission]
        who = "anonymous clients" if username is None else f"user {username}"
        where = "before the first `user` line" if username is None else f"under `user {username}`"
        log.warning("%s may no longer %s %s '%s' in vhost '%s' (issue 24 ownership rules: without `%s` rules "
                    "a user uses only the %ss it declared); grant it with `%s %s %s` %s in the ACL file",
                    who, "use" if permission == ANY else word, kind, name, vhost, kind, kind, kind, word,
                    re.escape(name), where)

    # -- dead letters ----------------------------------------------------------------------

    def check_dead_letter_target(self, vhost: "VirtualHost", principal: Principal, queue: "Queue",
                                 connection: object = None) -> None:
        """At the declaration of a new queue: may its declarer (its owner) send dead letters where they go?

        As RabbitMQ: read on the queue and write on the dead-letter exchange; and, where
        x-dead-letter-routing-key names the target, the topic ACL's write on it (amq.topic) or
        write on the queue it names (the default exchange)."""
        exchange = queue.dead_letter_exchange
        if exchange is None:
            return
        self.require(vhost, principal, READ, QUEUE, queue.name, connection)
        key = queue.dead_letter_routing_key
        if exchange == "":
            if key is not None:
                self.require(vhost, principal, WRITE, QUEUE, key, connection)
            return
        self.require(vhost, principal, WRITE, EXCHANGE, exchange, connection)
        if exchange == SHARED_EXCHANGE and key is not None and principal.access is not None:
            topic = routing_key_to_topic(key)
            if topic is not None and not principal.access.can_publish(topic):
                raise errors.topic_refused("write", topic, vhost.name, principal.username)

    def check_dead_letter(self, vhost: "VirtualHost", owner: Principal, exchange: str, routing_key: str) -> None:
        """At each dead letter: the queue owner's write on where it goes (its rights may have changed
        since the declaration); 403 without the warning of `require`, as no client asked."""
        kind, name = (QUEUE, routing_key) if exchange == "" else (EXCHANGE, exchange)
        resource = (vhost.queues if kind == QUEUE else vhost.exchanges).get(name)
        if self._decide(owner, WRITE, kind, name, resource, None) != _ALLOWED:
            raise errors.resource_refused("write", kind, name, vhost.name, owner.username)


def owner_record(principal: Principal | None) -> Owner | None:
    """What the store keeps of who declared a queue or exchange."""
    return None if principal is None else Owner(principal.username)
