"""examples/rosettamq.service is a unit systemd accepts, whose command the gateway understands.

`systemd-analyze verify` (package systemd, from scripts/peers.sh) reads the unit offline, no running
systemd needed. The unit names /opt/rosettamq, where its header installs the gateway; the test
points that at this checkout (whose .venv has the rosettamq command) and changes nothing else.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from gateway.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "examples" / "rosettamq.service"
INSTALL_DIR = "/opt/rosettamq"


def service_keys() -> dict[str, str]:
    section, keys = "", {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#") and section == "Service":
            key, _, value = line.partition("=")
            keys[key] = value
    return keys


def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze missing: bash scripts/test.sh installs it (package systemd)"
    assert (ROOT / ".venv" / "bin" / "rosettamq").exists()
    unit = tmp_path / "rosettamq.service"
    unit.write_text(UNIT.read_text().replace(INSTALL_DIR, str(ROOT)))
    done = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "rosettamq.service" not in done.stderr + done.stdout, done.stderr  # unknown keys are only warnings


def test_the_unit_runs_the_gateway_as_systemd_expects_it() -> None:
    keys = service_keys()
    command = shlex.split(keys["ExecStart"])
    assert command[0] == f"{INSTALL_DIR}/.venv/bin/rosettamq"
    args = build_parser().parse_args(command[1:])  # every flag exists
    assert args.command == "run" and args.config and args.store
    assert keys["Type"] == "notify"  # READY=1 once every listener is bound (gateway/systemd.py)
    assert keys["ExecReload"] == "/bin/kill -HUP $MAINPID"  # SIGHUP reloads (gateway/reload.py)

