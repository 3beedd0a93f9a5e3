"""The `rosettamq` command: `run` (the gateway), `passwd`, `token`, `cert`, `status`, `clients` and `bridges`.

Each subcommand is one module here with `add_parser(commands)` and `run(args) -> exit code`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from gateway.cli import admin, cert, passwd, run, token
from gateway.version import gateway_version

COMMANDS = {"run": run, "passwd": passwd, "token": token, "cert": cert, "status": admin, "clients": admin,
            "bridges": admin}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rosettamq", description="Multi-protocol IoT gateway")
    parser.add_argument("--version", action="version", version=f"rosettamq {gateway_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in dict.fromkeys(COMMANDS.values()):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
