"""Which content format to ask a device for, and to write to it in (issue 18).

A device says what it can produce in ``ct`` on its ``</>;rt="oma.lwm2m"``
registration link (LwM2M 1.1 core, 6.2.1): ``ct=110`` or ``ct="110 112"``,
the first being the one it prefers. The server follows it:

- `preferred_formats(registration)`: the announced formats that carry
  resource values (TLV, LwM2M JSON, SenML JSON, SenML CBOR), in the device's
  order; without any, TLV for LwM2M 1.0 (its only mandatory multi-value
  format) and SenML CBOR, SenML JSON, TLV for 1.1 and later;
- `read_accept(registration, path)`: the Accept of a read or observe the
  command did not give one for (the preferred format; for a device that
  announced none, TLV on objects and instances of a 1.0 device, else no
  Accept), and the formats to try once more, one of them, if the device
  answers 4.06 Not Acceptable (its other formats, then text/plain for a
  single resource).

An Eclipse Wakaama client built without TLV answers a read without Accept
with 5.00 (it falls back to TLV, which it cannot write): hence an Accept on
every read of a device that announced its formats.
"""

from __future__ import annotations

from .formats import ContentFormat
from .paths import Path
from .registrations import Registration

__all__ = ["VALUE_FORMATS", "preferred_formats", "read_accept"]

VALUE_FORMATS = (ContentFormat.TLV, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON,
                 ContentFormat.LWM2M_JSON)
_FALLBACK_1_0 = (ContentFormat.TLV,)
_FALLBACK_1_1 = (ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV)


def _announced(registration: Registration) -> tuple[ContentFormat, ...]:
    formats: list[ContentFormat] = []
    for number in registration.content_formats:
        if number in VALUE_FORMATS and ContentFormat(number) not in formats:
            formats.append(ContentFormat(number))
    return tuple(formats)


def preferred_formats(registration: Registration | None) -> tuple[ContentFormat, ...]:
    """The multi-value formats to use with this device, most preferred first."""
    if registration is None:
        return _FALLBACK_1_0
    announced = _announced(registration)
    if announced:
        return announced
    return _FALLBACK_1_0 if registration.version == "1.0" else _FALLBACK_1_1


def read_accept(registration: Registration | None, path: Path) -> tuple[int | None, tuple[int, ...]]:
    """The Accept of a read/observe on `path`, and the formats a 4.06 may be retried with.

    A device that announced no format gets no Accept on a single resource (text/plain is
    every version's default, and LwM2M 1.0 clients such as lwm2m-node-lib cannot even parse
    an Accept of 11542) and, on an object or instance, TLV from a 1.0 device; a 1.1 device
    without ``ct`` and an unknown device choose themselves."""
    if registration is None:
        return None, ()
    if not _announced(registration):
        if len(path) < 3 and registration.version == "1.0":
            return int(ContentFormat.TLV), ()
        return None, ()
    formats = preferred_formats(registration)
    others = [int(f) for f in formats[1:]]
    if len(path) >= 3:
        others.append(int(ContentFormat.TEXT))
    return int(formats[0]), tuple(others)
