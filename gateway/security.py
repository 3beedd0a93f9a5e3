"""The gateway's protection, built once from the config and shared by every listener.

- `authenticator` (gateway/auth.py) and `authorizer` (core/acl.py, `[auth]
  acl_file`): one login rule and one topic ACL for every protocol;
- `login_backoff`: failed logins per source address and user name slow down later ones
  (`[auth] login_backoff_after` / `login_backoff_max`), across listeners;
- roles (`[http] admins`, `monitors`): `is_admin(user)`, `is_monitor(user)`;
- `gate(name)`: per-listener admission (`[mqtt] max_connections`) with one
  per-address rate limiter (`[mqtt] max_connection_rate`) shared by all
  listeners, so changing transport does not buy a fresh budget.

`reload()` (SIGHUP) re-reads the password file and the ACL file; a broken
file keeps the old rules and logs an error. Connections are never dropped:
logins and checks made after the reload use the new rules.

How another adapter (AMQP, CoAP, LwM2M) plugs in, with `security = gateway.security`:

1. Accept: `security.gate(name).admit(peer, loop.time())` -> a `Refusal` means
   close now; `gate.release()` when an admitted connection ends (CoAP: call
   `security.rate_limiter.allow(host, loop.time())` for a new client instead).
2. Login: `core.auth.quick_answer(authenticator, Credentials(...))`; None means
   run `authenticator.authenticate` in `loop.run_in_executor`, the state
   machine waiting. Before it, `security.login_backoff.hold(peer, now)`; on a
   failure, `login_backoff.failed(peer, now)` gives the seconds to hold the
   refusal (a deadline in the state machine; times are `loop.time()`).
3. Topics (MQTT form): `access = broker.authorizer.for_client(client_id,
   username)` once per login (None: no ACL), then `access.can_publish(topic)`,
   `access.can_subscribe(filter)` and, per delivery to a subscriber that is not
   a core `Session`, `access.can_read(topic)`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from adapters.mqtt.server import ListenerGuard
from adapters.mqtt.settings import MQTTSettings
from core.acl import Authorizer
from core.auth import Authenticator, passwords_of
from core.limits import ConnectionGate, RateLimiter
from core.login_backoff import LoginBackoff

from gateway.auth import build_authenticator, with_auth
from gateway.config import Config, TLSListenerConfig

log = logging.getLogger("rosettamq.auth")


@dataclass
class Security:
    """Authentication, ACL and limits of one gateway process."""

    authenticator: Authenticator | None
    authorizer: Authorizer
    login_backoff: LoginBackoff | None
    rate_limiter: RateLimiter | None = None
    max_connections: int = 0
    gates: dict[str, ConnectionGate] = field(default_factory=dict)
    admins: frozenset[str] = frozenset()  # `[http] admins`: see is_admin
    monitors: frozenset[str] = frozenset()  # `[http] monitors`: see is_monitor

    def is_admin(self, username: str | None) -> bool:
        """Whether `username` is one of `[http] admins`: they may use every admin API action and every
        AMQP queue and exchange whatever the ACL file says (adapters/amqp/permissions.py). An
        anonymous client never is."""
        return username is not None and username in self.admins

    def is_monitor(self, username: str | None) -> bool:
        """Whether `username` is one of `[http] monitors`: they may read the admin API (GET), not act."""
        return username is not None and username in self.monitors

    def set_roles(self, config: Config) -> None:
        """Take `[http] admins` and `monitors` from `config` (at start and on SIGHUP)."""
        self.admins, self.monitors = frozenset(config.http.admins), frozenset(config.http.monitors)

    @classmethod
    def from_config(cls, config: Config) -> "Security":
        """Raises PasswordFileError / AclFileError / OSError for files that cannot be used."""
        auth, limits = config.auth, config.mqtt_limits
        backoff = None
        if auth.login_backoff_after > 0:
            backoff = LoginBackoff(free_failures=auth.login_backoff_after, max_delay=auth.login_backoff_max)
        rate = RateLimiter(limits.max_connection_rate) if limits.max_connection_rate > 0 else None
        return cls(
            authenticator=build_authenticator(auth),
            authorizer=Authorizer(auth.acl_file),
            login_backoff=backoff,
            rate_limiter=rate,
            max_connections=limits.max_connections,
            admins=frozenset(config.http.admins),
            monitors=frozenset(config.http.monitors),
        )

    def gate(self, listener: str) -> ConnectionGate:
        """The admission gate of one listener (its counters feed metrics)."""
        gate = self.gates.get(listener)
        if gate is None:
            gate = self.gates[listener] = ConnectionGate(self.max_connections, self.rate_limiter)
        return gate

    def guard(self, listener: str, section: object = None) -> ListenerGuard:
        """Admission and, for a TLS section with `use_identity_as_username`, certificate identity."""
        identity = isinstance(section, TLSListenerConfig) and section.use_identity_as_username
        return ListenerGuard(self.gate(listener), identity)

    def mqtt_settings(self, settings: MQTTSettings, config: Config) -> MQTTSettings:
        """`settings` with the authenticator, SCRAM, the login backoff and the subscription quota."""
        settings = with_auth(settings, self.authenticator)
        return dataclasses.replace(
            settings, login_backoff=self.login_backoff, max_subscriptions=config.mqtt_limits.max_subscriptions
        )

    def reload(self) -> bool:
        """Re-read the password file and the ACL file; False if either kept its old content."""
        ok = True
        passwords = passwords_of(self.authenticator)
        if passwords is not None:
            ok = passwords.reload() and ok
        ok = self.authorizer.reload() and ok
        log.info("security reload %s", "done" if ok else "incomplete: see the errors above")
        return ok
