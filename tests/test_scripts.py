"""The test and start scripts ask apt only for what is missing (scripts/lib.sh, scripts/peers.sh).

Each test runs the real shell functions with a fake `apt-get` first on PATH that records its
arguments, so nothing is installed and the peer selection is what is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FAKE_APT = """#!/bin/sh
echo "$*" >> "{log}"
case "$1" in update) exit 0;; esac
for arg in "$@"; do
    if [ "$arg" = "{refuse}" ]; then
        echo "The following packages have unmet dependencies:" >&2
        echo " nodejs : Conflicts: npm" >&2
        echo "E: Unable to correct problems, you have held broken packages." >&2
        exit 100
    fi
done
exit 0
"""


def run_lib(tmp_path: Path, script: str, present: list[str], refuse: str = "-") -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `script` after sourcing lib.sh and peers.sh, with only `present` (plus the shell's basics) on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    apt = bin_dir / "apt-get"
    apt.write_text(FAKE_APT.format(log=log, refuse=refuse))
    apt.chmod(0o755)
    for name in present:
        fake = bin_dir / name
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
    # Only what the functions themselves use: the shell's tools, from their own folder.
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("id", "grep", "cat", "env", "sh", "bash", "printf"):
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if real.startswith("/"):
            (tools / tool).symlink_to(real)
    prelude = 'say() { printf "t: %s\\n" "$*"; }; die() { printf "t: error: %s\\n" "$*" >&2; exit 1; }; '
    prelude += f". {ROOT}/scripts/lib.sh; . {ROOT}/scripts/peers.sh; "
    env = {"PATH": f"{bin_dir}:{tools}", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, env=env, timeout=30)
    calls = log.read_text().splitlines() if log.exists() else []
    return proc, calls


def installed(calls: list[str]) -> list[str]:
    """The package arguments of the (non-simulated) apt-get install calls."""
    packages: list[str] = []
    for call in calls:
        words = call.split()
        if words and words[0] == "install" and "-s" not in words:
            packages += [w for w in words[1:] if not w.startswith("-")]
    return packages


def test_only_packages_with_a_missing_command_are_requested(tmp_path: Path) -> None:
    proc, calls = run_lib(
        tmp_path,
        "install_missing_peers pkg-a:cmd-a pkg-b:cmd-b pkg-c:cmd-c,cmd-c2 pkg-d:cmd-d,cmd-d2",
        present=["cmd-a", "cmd-c", "cmd-d", "cmd-d2"],
    )
    assert proc.returncode == 0, proc.stderr
    assert calls[0].startswith("update")
    assert installed(calls) == ["pkg-b", "pkg-c"]


def test_nothing_is_asked_of_apt_when_every_peer_is_present(tmp_path: Path) -> None:
    proc, calls = run_lib(tmp_path, "install_missing_peers pkg-a:cmd-a", present=["cmd-a"])
    assert proc.returncode == 0, proc.stderr
    assert calls == []
    assert "peers: present" in proc.stdout


def test_node_and_npm_from_elsewhere_are_never_requested(tmp_path: Path) -> None:
    """The real peer list, on a machine whose node and npm come from outside Debian."""
    proc, calls = run_lib(tmp_path, "install_missing_peers $DEBIAN_PEERS", present=["node", "npm"])
    assert proc.returncode == 0, proc.stderr
    requested = installed(calls)
    assert "mosquitto-clients" in requested and "libcoap3-bin" in requested
    assert "nodejs" not in requested and "npm" not in requested


def test_a_refused_package_is_named_in_one_line(tmp_path: Path) -> None:
    proc, _ = run_lib(tmp_path, "install_missing_peers nodejs:node-x npm:npm-x", present=[], refuse="npm")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("t: error:")]
    assert len(errors) == 1
    assert "apt-get cannot install npm" in errors[0]
    assert "Conflicts" in errors[0]


def test_skip_apt_reports_without_installing(tmp_path: Path) -> None:
    proc, calls = run_lib(tmp_path, "ROSETTAMQ_SKIP_APT=1 install_missing_peers pkg-b:cmd-b", present=[])
    assert proc.returncode == 0
    assert calls == []
    assert "missing pkg-b" in proc.stdout


def test_the_test_command_uses_the_selective_install() -> None:
    text = (ROOT / "scripts" / "test.sh").read_text()
    assert "install_missing_peers $DEBIAN_PEERS" in text
    assert "apt_install \"${packages" not in text
    assert os.access(ROOT / ".ci" / "run", os.R_OK)


FAKE_PYTHON = """#!/bin/sh
if [ "$1" = "-V" ]; then echo "Python 3.11.2"; exit 0; fi
echo "$*" >> "{log}"
"""


def run_install(tmp_path: Path, script: str) -> list[str]:
    """Run `script` with install_project on a fake venv whose python records its pip calls."""
    (tmp_path / "venv" / "bin").mkdir(parents=True, exist_ok=True)
    python = tmp_path / "venv" / "bin" / "python"
    python.write_text(FAKE_PYTHON.format(log=tmp_path / "pip.log"))
    python.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    if not (project / "pyproject.toml").exists():
        (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    prelude = 'say() { printf "t: %s\\n" "$*"; }; die() { exit 1; }; '
    prelude += f". {ROOT}/scripts/lib.sh; cd {project}; VENV={tmp_path / 'venv'}; "
    done = subprocess.run(["bash", "-c", prelude + script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    log = tmp_path / "pip.log"
    return log.read_text().splitlines() if log.exists() else []


def test_one_install_of_several_extras_serves_each_of_them(tmp_path: Path) -> None:
    calls = run_install(tmp_path, 'install_project "[test,examples]"; install_project "[examples]"; '
                                  'install_project "[test]"; install_project ""')
    assert calls == ["-m pip install -q -e .[test,examples]"]
    assert run_install(tmp_path, 'install_project "[examples]"') == calls  # nothing new
    (tmp_path / "project" / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    assert run_install(tmp_path, 'install_project "[examples]"')[1:] == ["-m pip install -q -e .[examples]"]


def test_the_start_command_installs_the_examples_extra_and_it_covers_their_imports() -> None:
    """Every module an example imports is the standard library's, the gateway's own dependencies'
    or the examples extra's: `bash scripts/start.sh` then leaves nothing to install by hand."""
    import ast
    import importlib.metadata
    import re
    import tomllib

    assert 'install_project "[examples,compile]"' in (ROOT / "scripts" / "start.sh").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = {re.split(r"[<>=;\[ ]", spec)[0].lower().replace("_", "-")
               for spec in project["dependencies"] + project["optional-dependencies"]["examples"]}
    providers = importlib.metadata.packages_distributions()
    for example in sorted((ROOT / "examples").glob("*.py")):
        for node in ast.walk(ast.parse(example.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                dists = {d.lower().replace("_", "-") for d in providers.get(top, [])}
                assert dists & allowed, f"{example.name} imports {top} ({dists or 'not installed'}), not in the examples extra"
