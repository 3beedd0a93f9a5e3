"""Registration interface requests: ``POST /rd?ep=..&lt=..&lwm2m=..&b=..`` and updates.

Parsing is tolerant where real clients differ and strict where the server
could not work otherwise:

- ``ep`` is required (4.00) and must be usable as an MQTT topic level
  (no ``/``, ``+``, ``#`` or control characters);
- ``lwm2m`` may be absent (read as 1.0), ``1`` (EMQX's tests) or ``1.0.2``;
  a major/minor outside 1.0-1.2 is refused with 4.12 Precondition Failed;
- ``lt`` defaults to 86400 (applied by the registration table), ``b`` to ``U``;
  queue mode is a ``Q`` in the binding (1.0: ``UQ``) or the 1.1 ``Q`` flag;
- the payload is CoRE link format whatever the Content-Format says (missing,
  as lwm2m-node-lib sends it, or text/plain, as EMQX's tests do). The
  ``rt="oma.lwm2m"`` link gives the alternate path and the supported content
  formats (``ct``); other links whose path is not numeric are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from core.redact import SECRET_NAMES

from .errors import ContentError, RegistrationError, UnsupportedVersion
from .link_format import parse_link_format
from .paths import Path, format_path, parse_path

__all__ = [
    "ObjectLink", "RegisterRequest", "UpdateRequest", "parse_query", "parse_register",
    "parse_update", "parse_object_links", "normalize_version", "SUPPORTED_VERSIONS",
    "SENSITIVE_PARAMS",
]

SUPPORTED_VERSIONS = ("1.0", "1.1", "1.2")
SENSITIVE_PARAMS = SECRET_NAMES  # never published nor stored (core/redact.py: the same names kept out of logs)
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.\d+)?")
_BINDING = re.compile(r"[USNTQ]+")
_FORBIDDEN_IN_ENDPOINT = re.compile(r"[/+#\x00-\x1f\x7f]")
Params = tuple[tuple[str, "str | None"], ...]


@dataclass(frozen=True, slots=True)
class ObjectLink:
    """One object or object instance the client announced, e.g. ``</3303/0>;ver=1.1``."""

    path: Path
    attributes: Params = ()

    def __str__(self) -> str:
        return format_path(self.path)


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """A parsed Register request; `params` is every query parameter as sent."""

    endpoint: str
    lifetime: int | None
    version: str
    binding: str
    queue_mode: bool
    sms: str | None
    alternate_path: str
    objects: tuple[ObjectLink, ...]
    content_formats: tuple[int, ...]
    params: Params


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """A parsed Update request: None means "unchanged"."""

    lifetime: int | None = None
    binding: str | None = None
    queue_flag: bool = False         # the LwM2M 1.1 "Q" parameter
    sms: str | None = None
    alternate_path: str | None = None
    objects: tuple[ObjectLink, ...] | None = None
    content_formats: tuple[int, ...] | None = None
    params: Params = ()


def parse_query(query: str | Sequence[str]) -> list[tuple[str, str | None]]:
    """``"ep=a&lt=60&Q"`` or ``("ep=a", "lt=60", "Q")`` -> ``[("ep", "a"), ("lt", "60"), ("Q", None)]``."""
    items = query.split("&") if isinstance(query, str) else list(query)
    params = []
    for item in items:
        if not item:
            continue
        key, sep, value = item.partition("=")
        params.append((key, value if sep else None))
    return params


def normalize_version(text: str | None) -> str:
    """``None``/``"1"``/``"1.0.2"`` -> ``"1.0"``; 4.12 for unsupported, 4.00 for garbage."""
    if text is None:
        return "1.0"
    match = _VERSION.fullmatch(text.strip())
    if not match:
        raise RegistrationError(f"lwm2m={text!r} is not a version")
    version = f"{int(match.group(1))}.{int(match.group(2) or 0)}"
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersion(f"LwM2M {text} is not supported (1.0 to 1.2 are)")
    return version


def _lifetime(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        lifetime = int(value)
    except ValueError:
        raise RegistrationError(f"lt={value!r} is not a number of seconds") from None
    if lifetime < 0:
        raise RegistrationError(f"lt={lifetime} is negative")
    return lifetime


def _binding(value: str | None) -> str | None:
    if value is None:
        return None
    binding = value.strip().upper()
    if not _BINDING.fullmatch(binding):
        raise RegistrationError(f"b={value!r} is not a binding (letters U, S, N, T, Q)")
    return binding


def _content_formats(value: str | None) -> tuple[int, ...]:
    formats = []
    for item in (value or "").split():
        if item.isdigit():
            formats.append(int(item))
    return tuple(formats)


def parse_object_links(payload: bytes) -> tuple[str, tuple[ObjectLink, ...], tuple[int, ...]]:
    """The alternate path, announced objects and content formats of a link-format payload."""
    try:
        links = parse_link_format(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise RegistrationError("the object list is not UTF-8") from None
    except ContentError as exc:
        raise RegistrationError(f"the object list is not link format: {exc}") from None
    alternate, formats = "/", ()
    for link in links:
        if link.param("rt") == "oma.lwm2m":
            alternate = "/" + link.target.strip("/")
            formats = _content_formats(link.param("ct"))
    prefix = alternate.rstrip("/") + "/"
    objects = []
    for link in links:
        if link.param("rt") == "oma.lwm2m":
            continue
        target = link.target
        if alternate != "/" and target.startswith(prefix):
            target = target[len(prefix) - 1:]
        try:
            path = parse_path(target)
        except ValueError:
            continue
        if path:
            objects.append(ObjectLink(path, link.params))
    return alternate, tuple(objects), formats


def _endpoint(value: str | None) -> str:
    if not value:
        raise RegistrationError("the ep (endpoint name) parameter is required")
    if _FORBIDDEN_IN_ENDPOINT.search(value):
        raise RegistrationError(f"endpoint name {value!r} cannot be an MQTT topic level")
    return value


def parse_register(query: str | Sequence[str], payload: bytes,
                   content_format: int | None = None) -> RegisterRequest:
    """Parse a Register request (the Content-Format is not needed: see the module notes)."""
    params = parse_query(query)
    values = dict(params)
    alternate, objects, formats = parse_object_links(payload)
    binding = _binding(values.get("b")) or "U"
    return RegisterRequest(
        endpoint=_endpoint(values.get("ep")),
        lifetime=_lifetime(values.get("lt")),
        version=normalize_version(values.get("lwm2m")),
        binding=binding,
        queue_mode="Q" in binding or "Q" in values,
        sms=values.get("sms"),
        alternate_path=alternate,
        objects=objects,
        content_formats=formats,
        params=tuple(params),
    )


def parse_update(query: str | Sequence[str], payload: bytes,
                 content_format: int | None = None) -> UpdateRequest:
    """Parse an Update request: only what it carries changes the registration."""
    params = parse_query(query)
    values = dict(params)
    alternate = objects = formats = None
    if payload.strip():
        alternate, objects, formats = parse_object_links(payload)
    return UpdateRequest(
        lifetime=_lifetime(values.get("lt")),
        binding=_binding(values.get("b")),
        queue_flag="Q" in values,
        sms=values.get("sms"),
        alternate_path=alternate,
        objects=objects,
        content_formats=formats,
        params=tuple(params),
    )
