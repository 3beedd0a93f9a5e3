#!/usr/bin/env bash
# The test command: bash scripts/test.sh [pytest arguments...]
#
# On a fresh Debian 12 machine (root, or a user with sudo) it installs the real
# peers the interop tests talk to, creates a virtualenv with the project and
# its test extra, then runs pytest. Re-runs skip whatever is already in place.
#
# Environment:
#   ROSETTAMQ_VENV      virtualenv folder (default .venv, relative to the repo root)
#   ROSETTAMQ_PYTHON    interpreter that creates it (default python3, must be >= 3.11)
#   ROSETTAMQ_SKIP_APT  set to 1 to never call apt-get (missing peers are then reported)
#   ROSETTAMQ_PURE      set to 1 to build nothing and run everything on the pure-Python modules
# Paths given to pytest are relative to the repo root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${ROSETTAMQ_VENV:-.venv}"
PYTHON="${ROSETTAMQ_PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

say() { printf 'test.sh: %s\n' "$*"; }
die() { printf 'test.sh: error: %s\n' "$*" >&2; exit 1; }

. scripts/lib.sh
. scripts/peers.sh

# 1. Debian peers: only the packages whose commands are missing (a node/npm from elsewhere stays)
# shellcheck disable=SC2086
install_missing_peers $DEBIAN_PEERS

# 2. Python virtualenv with the project, its test extra and the examples extra (the README's quick starts run)
ensure_venv
install_project "[test,examples,compile]"
build_hot_path  # mypyc's compiled codecs, trie, router and sessions; the suite runs against them

# 3. Node peers (amqplib, lwm2m-node-lib) from tests/e2e/node's lock file, only when missing or older than the lock
NODE_DIR=tests/e2e/node
if [ -f "$NODE_DIR/node_modules/.package-lock.json" ] \
        && [ ! "$NODE_DIR/package-lock.json" -nt "$NODE_DIR/node_modules/.package-lock.json" ]; then
    say "npm: $NODE_DIR up to date"
else
    say "npm: ci in $NODE_DIR"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

# 4. pytest; "no tests collected" (exit 5) is a failure too
say "pytest: $VENV/bin/python -m pytest -q $*"
status=0
"$VENV/bin/python" -m pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
    say "pytest collected no tests: failing"
    exit 1
fi
# 5. the protocol and core tests again against the pure-Python modules, the reference and the fallback
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ] && runs_compiled; then
    say "pytest (pure Python): ROSETTAMQ_PURE=1 $VENV/bin/python -m pytest -q tests/core tests/adapters"
    ROSETTAMQ_PURE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/core tests/adapters || status=$?
fi
exit "$status"
