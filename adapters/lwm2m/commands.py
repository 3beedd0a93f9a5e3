"""MQTT command JSON -> the CoAP request to send to the device (EMQX's command format).

``{"reqID": 1, "msgType": "read", "data": {"path": "/3/0/0"}}`` on
``lwm2m/{ep}/dn``. Every top-level field other than ``data`` is echoed in the
answer (EMQX users send ``reqID``, ``requestID``, ``cacheID``...).

| msgType        | data                                               | CoAP request                     |
|----------------|----------------------------------------------------|----------------------------------|
| read           | path                                               | GET                              |
| discover       | path                                               | GET, Accept link-format (40)     |
| observe        | path                                               | GET, Observe 0                   |
| cancel-observe | path                                               | GET, Observe 1                   |
| write          | path, value, type? (one resource)                  | PUT, text/plain or opaque        |
| write          | basePath, content [{path, value, type?}], mode?    | PUT (replace) / POST (partial update of an instance), TLV or SenML |
| write-attr     | path, pmin?, pmax?, gt?, lt?, st?, epmin?, epmax?  | PUT with the attributes as query |
| execute        | path, args?                                        | POST, args as text/plain         |
| create         | basePath (an object), content                      | POST                             |
| delete         | path                                               | DELETE                           |
| read-composite, observe-composite, cancel-observe-composite, write-composite: see `composite` |

``type`` defaults to the object definition's; ``contentFormat`` (a number or
a name such as "senml+cbor") picks the payload format of write/create or
the Accept of read/observe; without it, the device's preferred format
(`negotiation`) is both, and a read the device answers with 4.06 is tried
once more in its next format (`Command.alternates`). Create takes both of
EMQX's shapes: ``"basePath": "/6"`` with content paths ``"0/1"``
(instance/resource, relative) or ``"/6/0/1"`` (absolute); the answer's
``location`` is the new instance (the device's Location-Path, else the one
instance the content names). A write on an object instance is a partial update
(POST) unless ``"mode": "replace"``. A path may carry a query (``/3/0?x=1``),
sent as Uri-Query as EMQX does. A top-level ``"ttl"`` (seconds) bounds how
long a command may wait for a queue-mode device (`queue_mode.ttl_of`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Mapping

from .coap import CoapRequest
from .composite import COMPOSITE_TYPES, composite_request
from .content import Content, content_from_json
from .errors import CommandError, LwM2MError
from .formats import ContentFormat, encode_content, parse_format
from .negotiation import preferred_formats, read_accept
from .objects import ObjectRegistry
from .paths import Path, format_path, parse_path
from .registrations import Registration
from .values import ResourceType

__all__ = ["Command", "MSG_TYPES", "ATTRIBUTES", "parse_command", "translate_command",
           "choose_format"]

MSG_TYPES = ("read", "discover", "write", "write-attr", "execute", "create", "delete",
             "observe", "cancel-observe") + COMPOSITE_TYPES
ATTRIBUTES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax")


@dataclass(frozen=True, slots=True)
class Command:
    """A translated command: what to send, and what to echo in its answer."""

    msg_type: str
    path: Path                 # the target (path or basePath), alternate path excluded
    req_path: str              # reqPath of the answer: the path as written, query removed
    request: CoapRequest
    raw: Mapping[str, Any]     # the command JSON object
    alternates: tuple[int, ...] = ()  # Accepts to retry a read with once, if the device answers 4.06
    paths: tuple[Path, ...] = ()      # the paths of a composite operation (`composite`); path is ()

    def retried(self, code: str) -> "Command | None":
        """The same read in the device's next format when it answered `code` 4.06 (once)."""
        if code != "4.06" or not self.alternates:
            return None
        return replace(self, request=replace(self.request, accept=self.alternates[0]), alternates=())


def parse_command(payload: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """The command JSON object; CommandError when it is not a JSON object with data."""
    if isinstance(payload, Mapping):
        document: Any = dict(payload)
    else:
        try:
            document = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandError(f"command is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CommandError("a command is a JSON object")
    if not isinstance(document.get("data"), dict):
        raise CommandError('a command needs a "data" object')
    return document


def _split(text: Any, field: str) -> tuple[str, Path, tuple[str, ...]]:
    if not isinstance(text, str):
        raise CommandError(f'data.{field} must be a path string such as "/3/0/0"')
    bare, _, query = text.partition("?")
    try:
        path = parse_path(bare)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not path:
        raise CommandError(f"data.{field} must name at least an object")
    return bare, path, tuple(q for q in query.split("&") if q)


def choose_format(content: Mapping[str, Any], base: Path, registration: Registration | None,
                  override: Any = None) -> ContentFormat:
    """The payload format of a write or create.

    An explicit ``contentFormat`` wins; one value written to its own path
    goes as text/plain (opaque for bytes), which every LwM2M version
    requires; otherwise the device's preferred format (`negotiation`: the
    first value format of ``ct`` on its ``rt="oma.lwm2m"`` link, else TLV
    for LwM2M 1.0 and SenML CBOR for 1.1 and later).
    """
    if override is not None:
        try:
            return parse_format(override)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    if len(content) == 1 and len(base) >= 3 and format_path(base) in content:
        value = content[format_path(base)]
        return ContentFormat.OPAQUE if isinstance(value, bytes) else ContentFormat.TEXT
    return preferred_formats(registration)[0]


def _write_content(data: Mapping[str, Any], registry: ObjectRegistry
                   ) -> tuple[str, Path, tuple[str, ...], Content]:
    base_text = data.get("basePath")
    if base_text is not None and base_text != "/":
        req_path, base, query = _split(base_text, "basePath")
        entries = data.get("content")
        if not isinstance(entries, list):
            raise CommandError('data.content must be a list of {"path", "value"} entries')
        return req_path, base, query, content_from_json(base, entries, registry)
    req_path, path, query = _split(data.get("path"), "path")
    if len(path) < 3:
        raise CommandError("a single write needs a resource path; use basePath and content")
    return req_path, path, query, content_from_json(path, [{**data, "path": ""}], registry)


def _attributes(data: Mapping[str, Any]) -> tuple[str, ...]:
    query = []
    for name in ATTRIBUTES:
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise CommandError(f"attribute {name} must be a number, not {value!r}")
        query.append(f"{name}={value}")
    return tuple(query)


def _accept(data: Mapping[str, Any], registration: Registration | None,
            path: Path) -> tuple[int | None, tuple[int, ...]]:
    if data.get("contentFormat") is None:
        return read_accept(registration, path)
    try:
        return int(parse_format(data["contentFormat"])), ()
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _create_target(base: Path, content: Content) -> tuple[Path, Path]:
    """(the object to POST to, the new instance when the content names exactly one)."""
    if len(base) != 1:
        raise CommandError('create takes the object as basePath, e.g. "/6", and instance/resource '
                           'content paths ("0/1", or "/6/0/1")')
    instances = {parse_path(key)[:2] for key in content}
    return base, instances.pop() if len(instances) == 1 else base


def translate_command(command: Mapping[str, Any], registration: Registration | None = None,
                      registry: ObjectRegistry | None = None) -> Command:
    """Translate a parsed command for the device of `registration` (its alternate path,
    announced formats); CommandError when the command cannot be sent."""
    registry = registry or ObjectRegistry.builtin()
    msg_type = command.get("msgType")
    if msg_type not in MSG_TYPES:
        raise CommandError(f"msgType {msg_type!r} is not one of {', '.join(MSG_TYPES)}")
    data = command["data"]
    if msg_type in COMPOSITE_TYPES:
        paths, request = composite_request(msg_type, data, registration, registry)
        return Command(msg_type, (), "/", request, command, paths=paths)
    prefix = registration.path_prefix() if registration else ()
    content_format = None
    payload = b""
    accept = observe = None
    alternates: tuple[int, ...] = ()
    if msg_type in ("write", "create"):
        req_path, path, query, content = _write_content(data, registry)
        target = path
        if msg_type == "create":
            target, path = _create_target(path, content)
        elif len(path) < 2:
            raise CommandError("write needs an object instance or a resource path")
        fmt = choose_format(content, target, registration, data.get("contentFormat"))
        try:
            payload = encode_content(fmt, content, target, registry)
        except LwM2MError as exc:
            raise CommandError(f"cannot write these values as {fmt.name}: {exc}") from None
        content_format = int(fmt)
        replace = data.get("mode", "update" if len(path) == 2 else "replace") == "replace"
        method = "PUT" if msg_type == "write" and replace else "POST"
        request_path = target
    else:
        req_path, path, query = _split(data.get("path"), "path")
        request_path = path
        method = {"delete": "DELETE", "execute": "POST", "write-attr": "PUT"}.get(msg_type, "GET")
        if msg_type == "discover":
            accept = int(ContentFormat.LINK_FORMAT)
        elif msg_type in ("read", "observe", "cancel-observe"):
            accept, alternates = _accept(data, registration, path)
            if msg_type == "cancel-observe":
                alternates = ()  # its token is spent on the first try
            observe = {"observe": 0, "cancel-observe": 1}.get(msg_type)
        elif msg_type == "write-attr":
            query += _attributes(data)
        elif msg_type == "execute":
            if len(path) != 3:
                raise CommandError("execute needs a resource path such as /3/0/4")
            defined = registry.resource(path[0], path[2])
            if defined is not None and defined.type is not ResourceType.NONE:
                raise CommandError(f"{format_path(path)} is not an executable resource")
            args = data.get("args")
            if args not in (None, "", "undefined"):
                payload = str(args).encode("utf-8")
                content_format = int(ContentFormat.TEXT)
    request = CoapRequest(method=method, path=prefix + tuple(str(i) for i in request_path),
                          query=query, content_format=content_format, accept=accept,
                          payload=payload, observe=observe)
    return Command(msg_type, path, req_path, request, command, alternates)
