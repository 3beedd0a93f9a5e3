"""`rosettamq passwd FILE USER`: add a user, change a password, or `--delete` a user.

The password is prompted for twice (hidden), or read as one line from stdin
with `--password-stdin` (for scripts). The file is created if missing and is
always rewritten atomically with mode 0600.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from core.passwords import DEFAULT_ITERATIONS, PasswordFile, PasswordFileError


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    passwd = commands.add_parser("passwd", help="add a user to a password file, change or delete one")
    passwd.add_argument("file", help="password file (created if missing)")
    passwd.add_argument("user", help="user name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    passwd.add_argument("--delete", action="store_true", help="remove the user instead")
    passwd.add_argument(
        "--iterations", type=int, default=DEFAULT_ITERATIONS,
        help=f"PBKDF2 iterations for the new hash (default {DEFAULT_ITERATIONS})",
    )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    first = getpass.getpass("Password: ")
    if getpass.getpass("Reenter password: ") != first:
        raise ValueError("passwords do not match")
    return first


def run(args: argparse.Namespace) -> int:
    """Apply the change and save; 0 on success, 1 with a message on stderr otherwise."""
    try:
        try:
            users = PasswordFile.load(args.file)
        except FileNotFoundError:
            if args.delete:
                raise ValueError(f"{args.file}: no such file") from None
            users = PasswordFile(args.file)
        if args.delete:
            if args.user not in users:
                raise ValueError(f"no user {args.user!r} in {args.file}")
            users.remove(args.user)
        else:
            password = _read_password(args.password_stdin).removesuffix("\r")
            if not password:
                raise ValueError("empty password refused")
            users.set(args.user, password, iterations=args.iterations)
        users.save(args.file)
    except (OSError, PasswordFileError, ValueError) as exc:
        print(f"rosettamq passwd: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("rosettamq passwd: cancelled", file=sys.stderr)
        return 1
    return 0
