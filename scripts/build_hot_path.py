"""Compile the hot path with mypyc, in place, when a C compiler is there (core/compiled.py).

    .venv/bin/python scripts/build_hot_path.py [--force]

scripts/test.sh and scripts/start.sh run it after installing the project (its `compile` extra
brings mypy, whose mypyc does the work). It does nothing when the build is current; without a C
compiler, or with ROSETTAMQ_PURE=1, it says so and the gateway runs its pure-Python modules.
A failed build removes what it left half-done, says why in one line, and exits 0: the pure
modules are the fallback, and the test of the compiled build reports the failure.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.compiled import GROUP, HOT_MODULES, PURE_ENV, build_is_current, group_manifest, source_path  # noqa: E402


def say(text: str) -> None:
    print(f"build_hot_path: {text}", flush=True)


def compiler() -> str | None:
    configured = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(os.environ.get("CC", configured)) or shutil.which("cc")


def remove_build() -> None:
    """Every extension a build left in the packages (also of a module since dropped from the list)."""
    for package in {module.split(".")[0] for module in HOT_MODULES}:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            for path in (ROOT / package).rglob(f"*{suffix}"):
                path.unlink()
    group_manifest().unlink(missing_ok=True)


def build() -> bool:
    """Build in a temporary folder, then rename each extension into place: a running gateway keeps
    the file it mapped (a copy over it would change the code under its feet)."""
    sources = [str(source_path(module).relative_to(ROOT)) for module in HOT_MODULES]
    with tempfile.TemporaryDirectory(prefix="rosettamq-mypyc-") as work:
        lib = Path(work) / "lib"
        # setup() in a child process: setuptools and mypyc keep global state, and a crash stays there.
        script = (
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            f"setup(name='rosettamq-hot-path', script_args=['build_ext', '--build-lib', {str(lib)!r},\n"
            f"                                               '--build-temp', {work!r}],\n"
            f"      ext_modules=mypycify(['--ignore-missing-imports', '--follow-imports=silent', *{sources!r}],\n"
            f"                           opt_level='3', group_name={GROUP!r}, target_dir={work!r}))\n"
        )
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
        built = sorted(lib.rglob("*.so")) if done.returncode == 0 else []
        if len(built) != len(HOT_MODULES) + 1:
            lines = [line for line in (done.stdout + done.stderr).splitlines() if "error" in line.lower()]
            say(f"mypyc failed, running pure Python: {(lines or ['(no error line)'])[0][:300]}")
            remove_build()
            return False
        remove_build()  # a module dropped from the list must not keep a stale extension
        for path in built:
            staged = ROOT / path.relative_to(lib)
            shutil.copyfile(path, staged.with_name(staged.name + ".new"))
            os.replace(staged.with_name(staged.name + ".new"), staged)
        group_manifest().write_text("\n".join(HOT_MODULES) + "\n")
    return True


def main() -> int:
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        say(f"{PURE_ENV} is set: not compiling, the gateway runs its pure-Python modules")
        return 0
    if build_is_current() and "--force" not in sys.argv:
        say("compiled hot path is up to date")
        return 0
    if compiler() is None:
        say("no C compiler (apt-get install build-essential python3-dev): the gateway runs pure Python")
        return 0
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        say("mypyc is missing (pip install -e '.[compile]'): the gateway runs pure Python")
        return 0
    say(f"compiling {len(HOT_MODULES)} modules with mypyc (about a minute)")
    if build():
        say("compiled hot path built")
    return 0


if __name__ == "__main__":
    sys.exit(main())
