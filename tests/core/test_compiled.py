"""The compiled hot path (core/compiled.py, scripts/build_hot_path.py): which build a process runs."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

from core.compiled import GROUP, HOT_MODULES, PURE_ENV, ROOT, build_is_current, group_manifest, running_compiled

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def loaded_from() -> dict[str, bool]:
    return {name: running_compiled(importlib.import_module(name)) for name in HOT_MODULES}


def can_compile() -> bool:
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        return False
    return shutil.which("cc") is not None


def test_the_suite_runs_the_build_the_test_command_made() -> None:
    """scripts/test.sh compiles the hot path when it can, and runs the suite on it; with
    ROSETTAMQ_PURE=1 (its second pass over tests/core and tests/adapters) every module is source."""
    modes = loaded_from()
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        assert not any(modes.values()), modes
    elif can_compile():
        assert build_is_current(), "the hot path is not built or older than its sources: run scripts/build_hot_path.py"
        assert all(modes.values()), modes
    else:
        assert not any(modes.values()), modes


def test_rosettamq_pure_loads_every_hot_module_from_source_beside_a_build() -> None:
    code = ("import importlib, json, core.compiled as c; "
            "print(json.dumps([c.running_compiled(importlib.import_module(n)) for n in c.HOT_MODULES]))")
    env = {**os.environ, PURE_ENV: "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[" + ", ".join(["false"] * len(HOT_MODULES)) + "]"


def fake_tree(root: Path) -> None:
    for name in HOT_MODULES:
        source = root.joinpath(*name.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("")
    for name in (*HOT_MODULES, GROUP + "__mypyc"):
        base = root.joinpath(*name.split("."))
        base.with_name(base.name + SUFFIX).write_bytes(b"")
    for path in root.rglob(f"*{SUFFIX}"):  # built after the sources
        os.utime(path, (2_000_000_000, 2_000_000_000))
    group_manifest(root).write_text("\n".join(HOT_MODULES) + "\n")


def test_a_build_is_current_only_when_whole_and_newer_than_every_source(tmp_path: Path) -> None:
    assert not build_is_current(tmp_path)  # nothing built
    fake_tree(tmp_path)
    assert build_is_current(tmp_path)
    edited = tmp_path / "core" / "router.py"
    os.utime(edited, (2_000_000_100, 2_000_000_100))  # an edit after the build: all from source
    assert not build_is_current(tmp_path)
    os.utime(edited, (1_000_000_000, 1_000_000_000))
    assert build_is_current(tmp_path)
    (tmp_path / "adapters" / "mqtt" / f"decoder{SUFFIX}").unlink()  # a partial build
    assert not build_is_current(tmp_path)
    fake_tree(tmp_path)
    (tmp_path / "core" / f"hotpath__mypyc{SUFFIX}").unlink()  # the modules' shared library is missing
    assert not build_is_current(tmp_path)
    fake_tree(tmp_path)
    group_manifest(tmp_path).write_text("\n".join(HOT_MODULES[:-1]) + "\n")  # built from another module list
    assert not build_is_current(tmp_path)
