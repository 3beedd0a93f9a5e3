"""LwM2M bootstrap server, the pure part: configurations, the requests to send, the events.

A client that knows only its bootstrap server POSTs ``/bs?ep=NAME`` (LwM2M 1.1 adds
``pct=``, the content format it prefers: wakaama sends ``pct=110`` when built SenML-only).
The server answers 2.04, then writes its configuration to the client and ends with
Bootstrap-Finish (`bootstrap_requests`):

    DELETE /          (Bootstrap-Delete of each path in "delete"; default: "/")
    PUT /0/{i}        (Bootstrap-Write of each Security instance)
    PUT /1/{i}        (Bootstrap-Write of each Server instance)
    POST /bs          (Bootstrap-Finish)

A configuration is JSON (a per-endpoint file, or ``[lwm2m.bootstrap]`` for all)::

    {"security": {"0": {"uri": "coap://gateway:5683", "bootstrap": false, "mode": 3,
                        "shortId": 1}},
     "server": {"0": {"shortId": 1, "lifetime": 300, "binding": "U"}}}

Security fields: uri (0), bootstrap (1), mode (2: 0 PSK, 2 certificate, 3 NoSec),
identity (3), serverPublicKey (4), secretKey (5) (text, UTF-8), shortId (10).
Server fields: shortId (0), lifetime (1), defaultMinPeriod (2), defaultMaxPeriod (3),
notifStoring (6), binding (7). Writes go in ``pct`` when the client gave one
(a value format), else TLV (LwM2M 1.0's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .coap import CoapRequest
from .errors import RegistrationError
from .formats import ContentFormat, encode_content, parse_format
from .negotiation import VALUE_FORMATS
from .objects import ObjectRegistry
from .paths import Path, format_path, parse_path
from .registration import parse_query
from .values import Value

__all__ = ["BOOTSTRAP_PATH", "BootstrapConfig", "BootstrapConfigError", "parse_bootstrap_config",
           "parse_bootstrap_request", "bootstrap_requests", "bootstrap_message"]

BOOTSTRAP_PATH = ("bs",)
_FIELDS: dict[int, dict[str, tuple[int, type]]] = {
    0: {"uri": (0, str), "bootstrap": (1, bool), "mode": (2, int), "identity": (3, bytes),
        "serverPublicKey": (4, bytes), "secretKey": (5, bytes), "shortId": (10, int)},
    1: {"shortId": (0, int), "lifetime": (1, int), "defaultMinPeriod": (2, int), "defaultMaxPeriod": (3, int),
        "notifStoring": (6, bool), "binding": (7, str)},
}
_OBJECTS = {"security": 0, "server": 1}


class BootstrapConfigError(ValueError):
    """A bootstrap configuration that cannot be written to a client (a configuration mistake)."""


@dataclass(frozen=True, slots=True)
class BootstrapConfig:
    """What to delete, then each instance to write with its resource values."""

    delete: tuple[Path, ...] = ((),)
    writes: tuple[tuple[Path, tuple[tuple[str, Value], ...]], ...] = ()


def _value(name: str, value: Any, kind: type) -> Value:
    if kind is bytes:
        if not isinstance(value, str):
            raise BootstrapConfigError(f"{name} must be text, not {value!r}")
        return value.encode("utf-8")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise BootstrapConfigError(f"{name} must be an integer, not {value!r}")
    if kind is not int and not isinstance(value, kind):
        raise BootstrapConfigError(f"{name} must be {kind.__name__}, not {value!r}")
    return value


def parse_bootstrap_config(document: Mapping[str, Any]) -> BootstrapConfig:
    """Read a configuration (see the module notes); BootstrapConfigError on any mistake."""
    if not isinstance(document, Mapping):
        raise BootstrapConfigError("a bootstrap configuration is a JSON object")
    unknown = set(document) - {"delete", *_OBJECTS}
    if unknown:
        raise BootstrapConfigError(f"unknown keys {sorted(unknown)}; expected delete, security, server")
    try:
        delete = tuple(parse_path(p) for p in document.get("delete", ["/"]))
    except (ValueError, TypeError) as exc:
        raise BootstrapConfigError(f"delete: {exc}") from None
    writes = []
    for key, object_id in _OBJECTS.items():
        instances = document.get(key, {})
        if not isinstance(instances, Mapping):
            raise BootstrapConfigError(f'{key} maps instance ids to resources, e.g. {{"0": {{...}}}}')
        for instance, fields in sorted(instances.items(), key=lambda item: str(item[0])):
            if not str(instance).isdigit() or int(instance) > 0xFFFF or not isinstance(fields, Mapping):
                raise BootstrapConfigError(f"{key}.{instance}: expected an instance id and an object of fields")
            values = []
            for name, value in fields.items():
                if name not in _FIELDS[object_id]:
                    raise BootstrapConfigError(f"{key}.{instance}.{name}: unknown; "
                                               f"known: {', '.join(_FIELDS[object_id])}")
                resource, kind = _FIELDS[object_id][name]
                path = format_path((object_id, int(instance), resource))
                values.append((path, _value(f"{key}.{instance}.{name}", value, kind)))
            writes.append(((object_id, int(instance)), tuple(values)))
    if not writes:
        raise BootstrapConfigError("a bootstrap configuration writes at least one security or server instance")
    return BootstrapConfig(delete, tuple(writes))


def parse_bootstrap_request(query: Sequence[str]) -> tuple[str, ContentFormat | None]:
    """The endpoint name and preferred format (``pct``) of a Bootstrap-Request; 4.00 without ``ep``."""
    values = dict(parse_query(query))
    endpoint = values.get("ep")
    if not endpoint or any(c in endpoint for c in "/+#") or endpoint.startswith("."):
        raise RegistrationError("a Bootstrap-Request needs ep, an endpoint name usable as a topic level")
    pct = values.get("pct")
    try:
        fmt = parse_format(pct) if pct else None
    except ValueError:
        raise RegistrationError(f"pct={pct!r} is not a content format") from None
    return endpoint, fmt if fmt in VALUE_FORMATS else None


def bootstrap_requests(config: BootstrapConfig, fmt: ContentFormat | None,
                       registry: ObjectRegistry) -> list[CoapRequest]:
    """Bootstrap-Delete, -Write of each instance, then -Finish, in order."""
    fmt = fmt or ContentFormat.TLV
    requests = [CoapRequest("DELETE", tuple(str(i) for i in path)) for path in config.delete]
    for instance, values in config.writes:
        payload = encode_content(fmt, dict(values), instance, registry)
        requests.append(CoapRequest("PUT", tuple(str(i) for i in instance), content_format=int(fmt),
                                    payload=payload))
    requests.append(CoapRequest("POST", BOOTSTRAP_PATH))
    return requests


def bootstrap_message(status: str, **data: Any) -> dict[str, Any]:
    """What ``{prefix}/{ep}/up/bootstrap`` says: "requested", "finished" or "failed" (+ where, code)."""
    return {"msgType": "bootstrap", "data": {"status": status, **data}}
