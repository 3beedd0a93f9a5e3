"""`rosettamq token FILE USER`: make a bearer token for the WebSocket listener's `tokens_file`.

The token is printed once; the file keeps only its SHA-256 (core/tokens.py).
"""

from __future__ import annotations

import argparse
import sys

from core.tokens import TokenFile, TokenFileError


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    token = commands.add_parser("token", help="make a bearer token for [ws]/[wss] tokens_file")
    token.add_argument("file", help="token file (created if missing)")
    token.add_argument("user", help="the MQTT username the token stands for")


def run(args: argparse.Namespace) -> int:
    try:
        tokens = TokenFile.load(args.file)
        token = tokens.add(args.user)
        tokens.save()
    except (TokenFileError, OSError) as exc:
        print(f"rosettamq token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0
