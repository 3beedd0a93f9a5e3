"""The URI query parameters of a CoAP request, parsed and checked (EMQX's names).

| parameter            | meaning                                                     |
|----------------------|-------------------------------------------------------------|
| ``clientid`` / ``c`` | client identity (observers keep it across NAT rebinding)    |
| ``username`` / ``u`` | username checked by the gateway's authenticator             |
| ``password`` / ``p`` | password for that username                                  |
| ``token`` / ``t``    | token of a connection opened with POST /mqtt/connection     |
| ``qos`` / ``q``      | 0, 1 or 2: publish QoS, or an observer's subscription QoS   |
| ``retain`` / ``r``   | ``true``/``false`` (or 1/0): retain the published message   |
| ``expiry``           | message expiry interval in whole seconds (1 .. 2^32-1)      |

A parameter given twice, an unknown parameter, a parameter without ``=`` or a
value out of range is a `BadOption` (4.00): a typo never passes silently.
An empty ``clientid``, ``username`` or ``token`` counts as absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Iterable

from core.message import QoS

from adapters.coap.errors import BadOption

__all__ = ["Query", "parse_query"]

_NAMES = {
    "clientid": "client_id", "c": "client_id",
    "username": "username", "u": "username",
    "password": "password", "p": "password",
    "token": "token", "t": "token",
    "qos": "qos", "q": "qos",
    "retain": "retain", "r": "retain",
    "expiry": "expiry",
}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
MAX_EXPIRY = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Query:
    """Parsed query parameters; None means not given."""

    client_id: str | None = None
    username: str | None = None
    password: bytes | None = None
    token: str | None = None
    qos: QoS | None = None
    retain: bool | None = None
    expiry: int | None = None


def parse_query(parts: Iterable[str]) -> Query:
    """Parse Uri-Query option values (``name=value`` each) into a `Query`; raises BadOption."""
    seen: dict[str, str] = {}
    for part in parts:
        name, equals, value = part.partition("=")
        field = _NAMES.get(name.lower())
        if field is None:
            raise BadOption(f"unknown query parameter {name!r}; known: {', '.join(sorted(_NAMES))}")
        if not equals:
            raise BadOption(f"query parameter {name!r} needs a value ({name}=...)")
        if field in seen:
            raise BadOption(f"query parameter {name!r} given twice")
        seen[field] = value
    return Query(
        client_id=seen.get("client_id") or None,
        username=seen.get("username") or None,
        password=None if "password" not in seen else seen["password"].encode("utf-8"),
        token=seen.get("token") or None,
        qos=_qos(seen.get("qos")),
        retain=_flag(seen.get("retain")),
        expiry=_expiry(seen.get("expiry")),
    )


_QOS: Final[dict[str, QoS]] = {"0": 0, "1": 1, "2": 2}


def _qos(value: str | None) -> QoS | None:
    if value is None:
        return None
    qos = _QOS.get(value)
    if qos is None:
        raise BadOption(f"qos must be 0, 1 or 2, got {value!r}")
    return qos


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadOption(f"retain must be true or false, got {value!r}")


def _expiry(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_EXPIRY:
        raise BadOption(f"expiry must be whole seconds from 1 to {MAX_EXPIRY}, got {value!r}")
    return int(value)
