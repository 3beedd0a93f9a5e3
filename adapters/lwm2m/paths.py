"""LwM2M paths: ``/object/instance/resource/resource-instance`` as int tuples.

A path is a tuple of 0 to 4 ids in 0..65535; ``()`` is the root ``/``. The
text form always starts with ``/`` and never ends with one; parsing tolerates
a trailing slash (``/3/0/``), as EMQX users write it.
"""

from __future__ import annotations

__all__ = ["Path", "parse_path", "format_path", "is_prefix", "MAX_ID"]

Path = tuple[int, ...]
MAX_ID = 0xFFFF


def parse_path(text: str) -> Path:
    """Parse ``"/3/0/7"`` into ``(3, 0, 7)``; ValueError on anything else."""
    if not isinstance(text, str):
        raise ValueError(f"a path must be a string, not {type(text).__name__}")
    stripped = text.strip().strip("/")
    if not stripped:
        return ()
    ids = []
    for segment in stripped.split("/"):
        if not segment.isdigit() or not segment.isascii():
            raise ValueError(f"{text!r} is not an LwM2M path (segment {segment!r})")
        value = int(segment)
        if value > MAX_ID:
            raise ValueError(f"{text!r} has an id above {MAX_ID}")
        ids.append(value)
    if len(ids) > 4:
        raise ValueError(f"{text!r} is deeper than object/instance/resource/instance")
    return tuple(ids)


def format_path(path: Path) -> str:
    """Format ``(3, 0, 7)`` as ``"/3/0/7"`` and ``()`` as ``"/"``."""
    return "/" + "/".join(str(i) for i in path)


def is_prefix(prefix: Path, path: Path) -> bool:
    """True when `path` is `prefix` or lies below it."""
    return path[:len(prefix)] == prefix
