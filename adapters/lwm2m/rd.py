"""The ``/rd`` resource as one pure function: a request in, a response and events out.

The wiring mounts a resource at ``/rd`` on the CoAP listener and, for each
request, calls::

    response, events = handle_rd(table, method, subpath, query, payload,
                                 content_format, now)

where `subpath` is the Uri-Path after ``rd`` (``()`` for Register, ``(id,)``
for Update and De-register). It sends `response` back and publishes each
`RdEvent` (``answers.lifecycle_message``). ``expire_events`` does the same
for registrations whose lifetime ran out.

| method        | subpath | operation   | success | errors                       |
|---------------|---------|-------------|---------|------------------------------|
| POST          | ()      | Register    | 2.01 + Location-Path rd/{id} | 4.00, 4.12 |
| POST (or PUT) | (id,)   | Update      | 2.04    | 4.00, 4.04                   |
| DELETE        | (id,)   | De-register | 2.02    | 4.04                         |
| other         |         |             |         | 4.05 (known path), 4.04      |

PUT for Update is tolerated because lwm2m-node-lib sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .coap import CoapResponse
from .errors import LwM2MError
from .registration import parse_register, parse_update
from .registrations import Registration, RegistrationTable

__all__ = ["RdEvent", "handle_rd", "expire_events"]


@dataclass(frozen=True, slots=True)
class RdEvent:
    """A lifecycle event to publish: register, update or deregister (with its reason)."""

    kind: str                 # "register" | "update" | "deregister"
    registration: Registration
    reason: str | None = None  # deregister: "deregister" | "expired" | "replaced"


def _error(code: str, text: str) -> tuple[CoapResponse, list[RdEvent]]:
    return CoapResponse(code, content_format=0, payload=text.encode("utf-8")), []


def handle_rd(table: RegistrationTable, method: str, subpath: Sequence[str],
              query: str | Sequence[str], payload: bytes, content_format: int | None,
              now: float, owner: str | None = None) -> tuple[CoapResponse, list[RdEvent]]:
    """Run one registration-interface request against `table` (a Register on behalf of `owner`)."""
    method = method.upper()
    try:
        if not subpath:
            if method != "POST":
                return _error("4.05", "POST /rd registers; nothing else is allowed here")
            registered = table.register(parse_register(query, payload, content_format), now, owner)
            new = registered.registration
            events = [RdEvent("register", new)]
            if registered.replaced is not None:
                events.insert(0, RdEvent("deregister", registered.replaced, "replaced"))
            return CoapResponse("2.01", location_path=new.location_path), events
        if len(subpath) != 1:
            return _error("4.04", "no such registration resource")
        reg_id = subpath[0]
        if method in ("POST", "PUT"):
            updated = table.update(reg_id, parse_update(query, payload, content_format), now)
            return CoapResponse("2.04"), [RdEvent("update", updated)]
        if method == "DELETE":
            removed = table.deregister(reg_id)
            return CoapResponse("2.02"), [RdEvent("deregister", removed, "deregister")]
        return _error("4.05", f"{method} is not allowed on a registration")
    except LwM2MError as exc:
        return _error(exc.code, str(exc))


def expire_events(table: RegistrationTable, now: float) -> list[RdEvent]:
    """Expire what is due and describe it as deregister events (reason "expired")."""
    return [RdEvent("deregister", registration, "expired")
            for registration in table.expire(now)]
