"""The dependency direction is gateway -> adapters -> core, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"core": {"adapters", "gateway"}, "adapters": {"gateway"}}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_layers_below_it(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_top_levels(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_protocol_code_does_no_io() -> None:
    """Codecs and state machines import neither asyncio nor socket (only the server and driver layers do)."""
    io_modules = {"asyncio", "socket", "ssl", "selectors"}
    offenders = {}
    for path in (ROOT / "adapters").rglob("*.py"):
        if path.name in {"server.py", "driver.py", "__init__.py"}:  # the thin asyncio layers
            continue
        used = imported_top_levels(path) & io_modules
        if used:
            offenders[str(path.relative_to(ROOT))] = sorted(used)
    assert offenders == {}


def test_one_topic_matcher_serves_the_gateway() -> None:
    """Routing, retained lookup, shared subscriptions, the ACL and bridges match MQTT topics with
    the subscription trie (`core.trie`, or `core.filter_index` on it); `topic_matches` is the
    reference the trie is tested against, not used by the gateway itself."""
    users = sorted(
        str(path.relative_to(ROOT))
        for package in ("core", "adapters", "gateway")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "topics.py" and "topic_matches" in imported_names(path)
    )
    assert users == []


def imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
