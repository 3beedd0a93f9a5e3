"""Object definitions and the registry the codecs type their values with.

`ObjectRegistry.builtin()` holds the OMA objects 0 to 7 and the common IPSO
sensor objects (`builtin_objects`); `with_objects` layers more definitions on
top (later ones win), for example those `ddf.load_object_dir` reads from the
configured folder. A registry is immutable: build a new one to change it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Iterator, Mapping

from .values import ResourceType

__all__ = ["Operations", "ResourceDef", "ObjectDef", "ObjectRegistry"]


class Operations(str):
    """A DDF ``<Operations>`` value: "", "R", "W", "RW" or "E"."""

    __slots__ = ()
    ALLOWED = ("", "R", "W", "RW", "E")

    def __new__(cls, text: str) -> Operations:
        value = text.strip().upper()
        if value == "NONE":
            value = ""
        if value == "WR":
            value = "RW"
        if value not in cls.ALLOWED:
            raise ValueError(f"unknown operations {text!r} (expected R, W, RW, E or empty)")
        return super().__new__(cls, value)

    @property
    def readable(self) -> bool:
        return "R" in self

    @property
    def writable(self) -> bool:
        return "W" in self

    @property
    def executable(self) -> bool:
        return self == "E"


@dataclass(frozen=True, slots=True)
class ResourceDef:
    """One ``<Item>`` of an object definition."""

    id: int
    name: str
    operations: Operations
    multiple: bool
    mandatory: bool
    type: ResourceType
    units: str = ""
    range: str = ""


@dataclass(frozen=True, slots=True)
class ObjectDef:
    """One ``<Object>``: its id, name, instance rules and resources by id."""

    id: int
    name: str
    multiple: bool
    mandatory: bool
    resources: Mapping[int, ResourceDef] = field(default_factory=dict)
    urn: str = ""
    version: str = "1.0"
    lwm2m_version: str = "1.0"

    def __post_init__(self) -> None:
        object.__setattr__(self, "resources", MappingProxyType(dict(self.resources)))

    def resource(self, resource_id: int) -> ResourceDef | None:
        return self.resources.get(resource_id)


class ObjectRegistry:
    """Object definitions by id; lookups used by every codec to type values."""

    __slots__ = ("_objects",)

    def __init__(self, objects: Iterable[ObjectDef] = ()) -> None:
        table: dict[int, ObjectDef] = {}
        for obj in objects:
            table[obj.id] = obj
        self._objects = MappingProxyType(table)

    @classmethod
    def builtin(cls) -> ObjectRegistry:
        """OMA objects 0-7 and the IPSO objects listed in `builtin_objects` (one shared copy)."""
        return _builtin()

    def with_objects(self, objects: Iterable[ObjectDef]) -> ObjectRegistry:
        """A new registry where `objects` add to or replace these definitions."""
        return ObjectRegistry([*self._objects.values(), *objects])

    def get(self, object_id: int) -> ObjectDef | None:
        return self._objects.get(object_id)

    def resource(self, object_id: int, resource_id: int) -> ResourceDef | None:
        obj = self._objects.get(object_id)
        return obj.resources.get(resource_id) if obj else None

    def resource_type(self, object_id: int, resource_id: int) -> ResourceType | None:
        """The value type of a resource, None when no definition knows it."""
        res = self.resource(object_id, resource_id)
        return res.type if res else None

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects

    def __iter__(self) -> Iterator[ObjectDef]:
        return iter(sorted(self._objects.values(), key=lambda o: o.id))

    def __len__(self) -> int:
        return len(self._objects)


@functools.cache
def _builtin() -> ObjectRegistry:
    from .builtin_objects import builtin_definitions
    return ObjectRegistry(builtin_definitions())
