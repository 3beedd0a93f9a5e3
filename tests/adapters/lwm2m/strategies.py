"""Shared test data: the registry with the fixture object, and hypothesis strategies."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

from adapters.lwm2m.ddf import load_object_dir
from adapters.lwm2m.objects import ObjectRegistry
from adapters.lwm2m.paths import format_path
from adapters.lwm2m.values import ObjLink, ResourceType

FIXTURES = Path(__file__).parent / "fixtures"
OBJECT_DIR = FIXTURES / "objects"
REGISTRY = ObjectRegistry.builtin().with_objects(load_object_dir(OBJECT_DIR))
TEST_OBJECT = 66  # the fixture's object: one resource of every value type

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
VALUES = {
    ResourceType.STRING: _text,
    ResourceType.CORELNK: _text,
    ResourceType.INTEGER: st.integers(-2**63, 2**63 - 1),
    ResourceType.TIME: st.integers(-2**63, 2**63 - 1),
    ResourceType.UNSIGNED_INTEGER: st.integers(0, 2**64 - 1),
    ResourceType.FLOAT: st.floats(allow_nan=False, allow_infinity=False),
    ResourceType.BOOLEAN: st.booleans(),
    ResourceType.OPAQUE: st.binary(max_size=300),
    ResourceType.OBJLNK: st.builds(ObjLink, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
}


@st.composite
def instance_content(draw, object_id: int = TEST_OBJECT, instance: int | None = None,
                     exclude: tuple[ResourceType, ...] = ()) -> dict:
    """Content for one instance of `object_id`: some of its valued resources."""
    obj = REGISTRY.get(object_id)
    inst = draw(st.integers(0, 0xFFFF)) if instance is None else instance
    content = {}
    for res in obj.resources.values():
        if res.type is ResourceType.NONE or res.type in exclude or not draw(st.booleans()):
            continue
        if res.multiple:
            ids = draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=4, unique=True))
            for rid in ids:
                content[format_path((object_id, inst, res.id, rid))] = draw(VALUES[res.type])
        else:
            content[format_path((object_id, inst, res.id))] = draw(VALUES[res.type])
    return content


@st.composite
def object_content(draw, object_id: int = TEST_OBJECT) -> dict:
    """Content spanning several instances of `object_id`."""
    instances = draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=3, unique=True))
    content = {}
    for inst in instances:
        content.update(draw(instance_content(object_id, inst)))
    return content


@st.composite
def single_value(draw, object_id: int = TEST_OBJECT) -> tuple[tuple[int, ...], object]:
    """One valued resource (or resource instance) path of `object_id` and a value for it."""
    obj = REGISTRY.get(object_id)
    res = draw(st.sampled_from([r for r in obj.resources.values()
                                if r.type is not ResourceType.NONE]))
    path = (object_id, draw(st.integers(0, 0xFFFF)), res.id)
    if res.multiple:
        path += (draw(st.integers(0, 0xFFFF)),)
    return path, draw(VALUES[res.type])
