"""LwM2M registrations as store records, so a device stays known across a restart.

The server writes one record per endpoint (kind ``lwm2m.registration``, key =
endpoint name) on Register and Update, and deletes it on De-register and
expiry. The value is JSON: the `Registration`'s fields, the device's address
(CoAP hostinfo, ``"127.0.0.1:56830"`` or ``"[::1]:56830"``) and its times.

Registration times run on the server's monotonic clock, which means nothing
after a restart; a record holds them as wall-clock seconds (``time.time()``)
instead. Both directions take the two clocks read at the same moment:

    value = encode_registration(registration, address, now=loop.time(), wall=time.time())
    stored = decode_registration(value, now=loop.time(), wall=time.time())
    if stored.expired: ...   # its lifetime (plus grace) ended while the server was down

Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .registration import ObjectLink
from .registrations import Registration

__all__ = ["KIND", "StoredRegistration", "encode_registration", "decode_registration"]

KIND = "lwm2m.registration"
_FORMAT = 1


@dataclass(frozen=True, slots=True)
class StoredRegistration:
    """A registration read back, its times on the reader's clock, and where the device was."""

    registration: Registration
    address: str | None
    expired: bool


def _pairs(items: Any) -> tuple[tuple[str, str | None], ...]:
    return tuple((str(key), None if value is None else str(value)) for key, value in items)


def encode_registration(registration: Registration, address: str | None, *, now: float, wall: float) -> bytes:
    """The record value of `registration` (times on the clock `now` is read from)."""
    shift = wall - now
    document = {
        "v": _FORMAT, "id": registration.id, "endpoint": registration.endpoint,
        "lifetime": registration.lifetime, "version": registration.version,
        "binding": registration.binding, "queue_mode": registration.queue_mode, "sms": registration.sms,
        "alternate_path": registration.alternate_path,
        "objects": [[list(link.path), [list(p) for p in link.attributes]] for link in registration.objects],
        "content_formats": list(registration.content_formats),
        "params": [list(p) for p in registration.params],
        "registered_at": registration.registered_at + shift, "updated_at": registration.updated_at + shift,
        "expires_at": registration.deadline + shift, "address": address, "owner": registration.owner,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_registration(data: bytes, *, now: float, wall: float) -> StoredRegistration:
    """A record value back as a `Registration` on the clock `now` is read from.

    ValueError (or KeyError, TypeError) for a value this version cannot read.
    """
    document = json.loads(data)
    if document.get("v") != _FORMAT:
        raise ValueError(f"LwM2M registration record of unknown format {document.get('v')!r}")
    shift = now - wall
    registration = Registration(
        id=str(document["id"]), endpoint=str(document["endpoint"]), lifetime=int(document["lifetime"]),
        version=str(document["version"]), binding=str(document["binding"]),
        queue_mode=bool(document["queue_mode"]), sms=document["sms"],
        alternate_path=str(document["alternate_path"]),
        objects=tuple(ObjectLink(tuple(int(i) for i in path), _pairs(attributes))
                      for path, attributes in document["objects"]),
        content_formats=tuple(int(f) for f in document["content_formats"]),
        params=_pairs(document["params"]),
        registered_at=float(document["registered_at"]) + shift,
        updated_at=float(document["updated_at"]) + shift,
        deadline=float(document["expires_at"]) + shift,
        owner=None if document.get("owner") is None else str(document["owner"]))  # absent before issue 24
    address = document["address"]
    return StoredRegistration(registration, None if address is None else str(address),
                              expired=registration.deadline <= now)
