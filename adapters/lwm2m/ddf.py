"""OMA object definition (DDF) XML, as in the LwM2M registry (LWM2M.xsd).

``<LWM2M><Object><Name/><ObjectID/><ObjectURN/><MultipleInstances/>
<Mandatory/><Resources><Item ID=".."><Name/><Operations/><MultipleInstances/>
<Mandatory/><Type/><RangeEnumeration/><Units/></Item>...``

`parse_ddf` is pure (text in, definitions out). `load_object_dir` is the
package's one file-system touch: it reads the ``*.xml`` files of the folder
the configuration names, once, at start-up (like reading the config file).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable

from .objects import ObjectDef, Operations, ResourceDef
from .values import parse_type

__all__ = ["DdfError", "parse_ddf", "load_object_dir"]


class DdfError(ValueError):
    """An object definition file is not valid DDF XML; the message says where."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element: ET.Element, name: str, default: str | None = None) -> str:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    if default is None:
        raise DdfError(f"<{_local(element.tag)}> has no <{name}>")
    return default


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _flag(text: str, true_word: str, false_word: str, where: str) -> bool:
    lowered = text.strip().lower()
    if lowered == true_word.lower():
        return True
    if lowered == false_word.lower():
        return False
    raise DdfError(f"{where}: expected {true_word} or {false_word}, got {text!r}")


def _int(text: str, where: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise DdfError(f"{where}: {text!r} is not an integer id") from None
    if not 0 <= value <= 0xFFFF:
        raise DdfError(f"{where}: id {value} outside 0..65535")
    return value


def _resource(item: ET.Element, object_id: int) -> ResourceDef:
    rid = _int(item.get("ID", ""), f"object {object_id} <Item ID>")
    where = f"object {object_id} resource {rid}"
    try:
        return ResourceDef(
            id=rid,
            name=_child_text(item, "Name"),
            operations=Operations(_child_text(item, "Operations", "")),
            multiple=_flag(_child_text(item, "MultipleInstances", "Single"),
                           "Multiple", "Single", f"{where} <MultipleInstances>"),
            mandatory=_flag(_child_text(item, "Mandatory", "Optional"),
                            "Mandatory", "Optional", f"{where} <Mandatory>"),
            type=parse_type(_child_text(item, "Type", "")),
            units=_child_text(item, "Units", ""),
            range=_child_text(item, "RangeEnumeration", ""),
        )
    except ValueError as exc:
        if isinstance(exc, DdfError):
            raise
        raise DdfError(f"{where}: {exc}") from None


def _object(element: ET.Element) -> ObjectDef:
    oid = _int(_child_text(element, "ObjectID"), "<ObjectID>")
    resources_element = _child(element, "Resources")
    items = [] if resources_element is None else [
        _resource(item, oid) for item in resources_element if _local(item.tag) == "Item"]
    by_id = {}
    for res in items:
        if res.id in by_id:
            raise DdfError(f"object {oid}: resource {res.id} defined twice")
        by_id[res.id] = res
    return ObjectDef(
        id=oid,
        name=_child_text(element, "Name"),
        multiple=_flag(_child_text(element, "MultipleInstances", "Multiple"),
                       "Multiple", "Single", f"object {oid} <MultipleInstances>"),
        mandatory=_flag(_child_text(element, "Mandatory", "Optional"),
                        "Mandatory", "Optional", f"object {oid} <Mandatory>"),
        resources=by_id,
        urn=_child_text(element, "ObjectURN", ""),
        version=_child_text(element, "ObjectVersion", "1.0") or "1.0",
        lwm2m_version=_child_text(element, "LWM2MVersion", "1.0") or "1.0",
    )


def parse_ddf(text: str | bytes) -> list[ObjectDef]:
    """Every ``<Object>`` of one DDF document; DdfError when it is not DDF."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DdfError(f"not well-formed XML: {exc}") from None
    if _local(root.tag) == "Object":
        elements: Iterable[ET.Element] = [root]
    elif _local(root.tag) == "LWM2M":
        elements = [e for e in root if _local(e.tag) == "Object"]
    else:
        raise DdfError(f"root element <{_local(root.tag)}> is not <LWM2M>")
    objects = [_object(e) for e in elements]
    if not objects:
        raise DdfError("no <Object> in the document")
    return objects


def load_object_dir(folder: str | Path) -> list[ObjectDef]:
    """Parse every ``*.xml`` file of `folder` (sorted by name; later files win).

    DdfError names the file that failed; a missing folder raises DdfError too.
    """
    directory = Path(folder)
    if not directory.is_dir():
        raise DdfError(f"{directory}: no such folder of object definitions")
    objects: list[ObjectDef] = []
    for path in sorted(directory.glob("*.xml")):
        try:
            objects.extend(parse_ddf(path.read_bytes()))
        except DdfError as exc:
            raise DdfError(f"{path.name}: {exc}") from None
    return objects
