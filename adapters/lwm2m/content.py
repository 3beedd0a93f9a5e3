"""The one decoded representation every content format maps to and from.

`Content` is a dict from an LwM2M path string to a typed value:
``{"/3/0/0": "Open Mobile Alliance", "/3/0/7/0": 3800, "/3/0/7/1": 5000}``.
Single resources sit at depth 3; each instance of a multiple-instance resource
sits at depth 4. Insertion order is the order of the payload; encoders sort
paths numerically.

This module also renders `Content` as the JSON list of EMQX answers
(``[{"path": "/3/0/0", "value": "..."}]``) and reads the JSON values of write
and create commands, typed by the object definitions.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .errors import CommandError, LocalError
from .objects import ObjectRegistry
from .paths import Path, format_path, is_prefix, parse_path
from .values import ResourceType, Value, infer_type, parse_type, value_from_json, value_to_json

__all__ = [
    "Content", "content_items", "resource_type", "value_type", "content_to_json",
    "content_from_json", "resource_tree",
]

Content = dict[str, Value]


def content_items(content: Mapping[str, Value], base: Path = ()) -> list[tuple[Path, Value]]:
    """(path, value) pairs sorted numerically; LocalError for a bad or outside path."""
    items = []
    for key, value in content.items():
        try:
            path = parse_path(key)
        except ValueError as exc:
            raise LocalError(str(exc)) from None
        if len(path) < 3:
            raise LocalError(f"{key}: values live on resources (depth 3 or 4)")
        if not is_prefix(base, path):
            raise LocalError(f"{key} is not under {format_path(base)}")
        items.append((path, value))
    items.sort(key=lambda item: item[0])
    return items


def resource_type(registry: ObjectRegistry, path: Path) -> ResourceType | None:
    """The defined type of the resource a depth-3 or depth-4 path points into."""
    if len(path) < 3:
        return None
    return registry.resource_type(path[0], path[2])


def value_type(registry: ObjectRegistry, path: Path, value: Value) -> ResourceType:
    """The defined type, or the value's natural type when nothing defines it."""
    defined = resource_type(registry, path)
    if defined is ResourceType.NONE:
        raise LocalError(f"{format_path(path)} is executable and carries no value")
    return defined if defined is not None else infer_type(value)


def content_to_json(content: Mapping[str, Value]) -> list[dict[str, Any]]:
    """The ``content`` list of an MQTT answer, in payload order."""
    return [{"path": path, "value": value_to_json(value)} for path, value in content.items()]


def resource_tree(items: Iterable[tuple[Path, Value]]
                  ) -> dict[int, dict[int, dict[int, Value | dict[int, Value]]]]:
    """Nest the sorted items of one object as {instance: {resource: value | {instance: value}}}."""
    tree: dict[int, dict[int, dict[int, Any]]] = {}
    for path, value in items:
        resources = tree.setdefault(path[1], {})
        if len(path) == 3:
            if path[2] in resources:
                raise LocalError(f"{format_path(path)} given both as single and multiple")
            resources[path[2]] = value
        else:
            slot = resources.setdefault(path[2], {})
            if not isinstance(slot, dict):
                raise LocalError(f"{format_path(path)} given both as single and multiple")
            slot[path[3]] = value
    return tree


def _relative(base: Path, text: Any) -> Path:
    if text is None or text == "":
        return base
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    try:
        rel = parse_path(text)
    except ValueError as exc:
        raise CommandError(f"content path {text!r}: {exc}") from None
    if isinstance(text, str) and text.startswith("/") and rel[:len(base)] == base and len(rel) >= 3:
        return rel  # absolute: "/6/0/1" under basePath "/6"
    path = base + rel
    if len(path) > 4:
        raise CommandError(f"content path {text!r} under {format_path(base)} is too deep")
    return path


def _entry_value(path: Path, entry: Mapping[str, Any], registry: ObjectRegistry) -> Value:
    if "value" not in entry:
        raise CommandError(f"content entry for {format_path(path)} has no value")
    declared = entry.get("type")
    if declared is not None:
        try:
            rtype: ResourceType | None = parse_type(str(declared))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    else:
        rtype = resource_type(registry, path)
    if rtype is ResourceType.NONE:
        raise CommandError(f"{format_path(path)} is executable and takes no value")
    return value_from_json(entry["value"], rtype)


def content_from_json(base: Path, entries: Iterable[Any], registry: ObjectRegistry) -> Content:
    """Read the ``content`` list of a write or create command.

    Each entry is ``{"path": relative path, "type": optional type, "value": v}``;
    paths are relative to `base` even with a leading slash (EMQX: ``"/6/0"``
    under ``/3/0``), except a slashed path that starts with `base` and names a
    resource by itself (``"/6/0/1"`` under ``/6``), which is absolute. An
    empty path means `base` itself, and a later entry for the same path wins.
    The type defaults to the object definition's.
    """
    content: Content = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise CommandError(f"content entries are objects, not {entry!r}")
        path = _relative(base, entry.get("path"))
        if len(path) < 3:
            raise CommandError(f"content path {format_path(path)} does not name a resource")
        content[format_path(path)] = _entry_value(path, entry, registry)
    return content
