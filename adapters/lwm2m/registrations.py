"""The registrations of the LwM2M server, with lifetime deadlines and no timers.

`RegistrationTable` keeps one `Registration` per endpoint, found by its
location id (``/rd/{id}``) or its endpoint name. Time is passed in (`now`,
seconds on any monotonic clock); the table exposes `next_deadline()` and the
caller runs `expire(now)` when that moment comes, as the design's connection
state machines do. A registration lives for its lifetime plus `grace` after
its last Register or Update:

    table = RegistrationTable(grace=30)
    registered = table.register(parse_register(query, payload), now)
    ...
    for registration in table.expire(clock()):   # when clock() >= next_deadline()
        publish_deregister(registration, reason="expired")

Re-registering an endpoint replaces its old registration (returned in
`Registered.replaced`), under a new location id: a stale client still
updating the old location gets 4.04 and registers again.
"""

from __future__ import annotations

import heapq
import secrets
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from .errors import RegistrationNotFound
from .registration import ObjectLink, Params, RegisterRequest, UpdateRequest

__all__ = ["Registration", "Registered", "RegistrationTable", "DEFAULT_LIFETIME"]

DEFAULT_LIFETIME = 86400  # LwM2M's default for a Register without lt


@dataclass(frozen=True, slots=True)
class Registration:
    """One registered client, as of its last Register or Update."""

    id: str
    endpoint: str
    lifetime: int
    version: str
    binding: str
    queue_mode: bool
    sms: str | None
    alternate_path: str
    objects: tuple[ObjectLink, ...]
    content_formats: tuple[int, ...]
    params: Params
    registered_at: float
    updated_at: float
    deadline: float
    owner: str | None = None  # the identity that registered it (adapters/lwm2m/access.py); None: anonymous

    @property
    def location_path(self) -> tuple[str, ...]:
        """The Location-Path options of the 2.01 answer: ``("rd", id)``."""
        return ("rd", self.id)

    @property
    def location(self) -> str:
        return "/rd/" + self.id

    def path_prefix(self) -> tuple[str, ...]:
        """Uri-Path segments to put before an object path (the alternate path)."""
        return tuple(s for s in self.alternate_path.split("/") if s)

    def has_object(self, object_id: int) -> bool:
        return any(link.path[0] == object_id for link in self.objects)


@dataclass(frozen=True, slots=True)
class Registered:
    """The result of a Register: the new registration and the one it replaced, if any."""

    registration: Registration
    replaced: Registration | None = None


def _new_id() -> str:
    """A registration's location id: 96 random bits, unguessable (it authorizes Update and De-register)."""
    return secrets.token_urlsafe(12)


def _merged(old: Params, new: Params) -> Params:
    keys = {key for key, _ in new}
    return tuple(item for item in old if item[0] not in keys) + new


class RegistrationTable:
    """Registrations by location id and endpoint, with lifetime deadlines."""

    def __init__(self, *, grace: float = 30.0, min_lifetime: int = 1,
                 max_lifetime: int | None = None, default_lifetime: int = DEFAULT_LIFETIME,
                 new_id: Callable[[], str] = _new_id) -> None:
        self.grace = grace
        self.min_lifetime = min_lifetime
        self.max_lifetime = max_lifetime
        self.default_lifetime = default_lifetime
        self._new_id = new_id
        self._by_id: dict[str, Registration] = {}
        self._by_endpoint: dict[str, str] = {}
        self._deadlines: list[tuple[float, str]] = []

    # --- lookups --------------------------------------------------------------

    def get(self, reg_id: str) -> Registration | None:
        return self._by_id.get(reg_id)

    def by_endpoint(self, endpoint: str) -> Registration | None:
        reg_id = self._by_endpoint.get(endpoint)
        return self._by_id.get(reg_id) if reg_id is not None else None

    def __iter__(self) -> Iterator[Registration]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    # --- operations -----------------------------------------------------------

    def _lifetime(self, requested: int | None) -> int:
        if requested is None:
            lifetime = self.default_lifetime
        elif requested == 0:  # EMQX reads lt=0 as "as long as allowed"
            lifetime = self.max_lifetime or self.default_lifetime
        else:
            lifetime = requested
        lifetime = max(lifetime, self.min_lifetime)
        if self.max_lifetime is not None:
            lifetime = min(lifetime, self.max_lifetime)
        return lifetime

    def _schedule(self, registration: Registration) -> None:
        heapq.heappush(self._deadlines, (registration.deadline, registration.id))

    def register(self, request: RegisterRequest, now: float, owner: str | None = None) -> Registered:
        """Add a registration (of `owner`); an existing one of the same endpoint is replaced."""
        replaced = self.by_endpoint(request.endpoint)
        if replaced is not None:
            del self._by_id[replaced.id]
        reg_id = self._new_id()
        while reg_id in self._by_id:
            reg_id = self._new_id()
        lifetime = self._lifetime(request.lifetime)
        registration = Registration(
            id=reg_id, endpoint=request.endpoint, lifetime=lifetime,
            version=request.version, binding=request.binding,
            queue_mode=request.queue_mode, sms=request.sms,
            alternate_path=request.alternate_path, objects=request.objects,
            content_formats=request.content_formats, params=request.params,
            registered_at=now, updated_at=now, deadline=now + lifetime + self.grace, owner=owner)
        self._by_id[reg_id] = registration
        self._by_endpoint[request.endpoint] = reg_id
        self._schedule(registration)
        return Registered(registration, replaced)

    def update(self, reg_id: str, request: UpdateRequest, now: float) -> Registration:
        """Apply an Update and restart the lifetime; 4.04 for an unknown location."""
        old = self._by_id.get(reg_id)
        if old is None:
            raise RegistrationNotFound(f"no registration at /rd/{reg_id}")
        lifetime = self._lifetime(request.lifetime) if request.lifetime is not None \
            else old.lifetime
        binding = request.binding if request.binding is not None else old.binding
        if request.queue_flag or "Q" in binding:
            queue_mode = True
        elif request.binding is not None and old.version == "1.0":
            queue_mode = False  # a 1.0 client leaves queue mode with a binding without Q
        else:
            queue_mode = old.queue_mode
        new = replace(
            old, lifetime=lifetime, binding=binding, queue_mode=queue_mode,
            sms=request.sms if request.sms is not None else old.sms,
            alternate_path=request.alternate_path or old.alternate_path,
            objects=request.objects if request.objects is not None else old.objects,
            content_formats=request.content_formats or old.content_formats,
            params=_merged(old.params, request.params),
            updated_at=now, deadline=now + lifetime + self.grace)
        self._by_id[reg_id] = new
        self._schedule(new)
        return new

    def restore(self, registration: Registration) -> None:
        """Put back a registration read from the store, under its own location id, so the
        device's next Update of ``/rd/{id}`` finds it after a restart."""
        if registration.id in self._by_id:
            raise ValueError(f"location /rd/{registration.id} is taken")
        replaced = self.by_endpoint(registration.endpoint)
        if replaced is not None:
            del self._by_id[replaced.id]
        self._by_id[registration.id] = registration
        self._by_endpoint[registration.endpoint] = registration.id
        self._schedule(registration)

    def deregister(self, reg_id: str) -> Registration:
        """Remove a registration (De-register); 4.04 for an unknown location."""
        registration = self._by_id.pop(reg_id, None)
        if registration is None:
            raise RegistrationNotFound(f"no registration at /rd/{reg_id}")
        if self._by_endpoint.get(registration.endpoint) == reg_id:
            del self._by_endpoint[registration.endpoint]
        return registration

    # --- deadlines ------------------------------------------------------------

    def _drop_stale_heads(self) -> None:
        while self._deadlines:
            deadline, reg_id = self._deadlines[0]
            current = self._by_id.get(reg_id)
            if current is not None and current.deadline == deadline:
                return
            heapq.heappop(self._deadlines)

    def next_deadline(self) -> float | None:
        """When the next registration expires (None when there is none)."""
        self._drop_stale_heads()
        return self._deadlines[0][0] if self._deadlines else None

    def expire(self, now: float) -> list[Registration]:
        """Remove and return every registration whose deadline is at or before `now`."""
        expired = []
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, reg_id = heapq.heappop(self._deadlines)
            expired.append(self.deregister(reg_id))
        return expired
