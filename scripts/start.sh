#!/usr/bin/env bash
# The start command: bash scripts/start.sh [rosettamq run options...]
#
# On a fresh Debian 12 machine it creates a virtualenv with the gateway and the
# example clients' libraries in it (installing python3-venv if needed), then
# starts the gateway on its embedded defaults. Options are passed to
# `rosettamq run`, e.g. --config examples/rosettamq.toml or --mqtt 127.0.0.1:1884.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${ROSETTAMQ_VENV:-.venv}"
PYTHON="${ROSETTAMQ_PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

say() { printf 'start.sh: %s\n' "$*"; }
die() { printf 'start.sh: error: %s\n' "$*" >&2; exit 1; }

. scripts/lib.sh

ensure_venv
install_project "[examples,compile]"  # the gateway, what the example clients import (paho-mqtt, pika), mypyc
build_hot_path  # the compiled hot path when a C compiler is there, else pure Python (core/compiled.py)
say "starting: rosettamq run $*"
exec "$VENV/bin/rosettamq" run "$@"
