# Shared by scripts/start.sh and scripts/test.sh: apt peers and the project's virtualenv.
# Expects VENV and PYTHON to be set, and say/die defined by the caller.

have() {  # a command on PATH, or in an sbin folder a non-root PATH may lack
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

missing_packages() {  # the packages of "$@" ("pkg:cmd1,cmd2" entries) with a command not on PATH
    local entry pkg cmd commands
    for entry in "$@"; do
        pkg="${entry%%:*}"
        IFS=, read -r -a commands <<<"${entry#*:}"
        for cmd in "${commands[@]}"; do
            if ! have "$cmd"; then printf '%s\n' "$pkg"; break; fi
        done
    done
}

apt_install() {  # apt-get install "$@"; on failure, one line naming the package that failed
    local sudo=() pkg reason
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install $* by hand, or set ROSETTAMQ_SKIP_APT=1"
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update -qq || die "apt-get update failed: check the network and /etc/apt/sources.list, then run again"
    if "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>"${TMPDIR:-/tmp}/rosettamq-apt.err"; then
        return 0
    fi
    # Find the package apt refused: simulate each one alone (no changes are made).
    for pkg in "$@"; do
        if ! reason="$(LC_ALL=C apt-get install -s -qq --no-install-recommends "$pkg" 2>&1 >/dev/null)"; then
            reason="$(printf '%s\n' "$reason" | grep -m1 -E 'Conflicts|Depends|Unable to locate|E:' || true)"
            die "apt-get cannot install $pkg (${reason:-see apt-get install $pkg}); install it by hand (or put its command on PATH), then run again"
        fi
    done
    die "apt-get install $* failed ($(grep -m1 'E:' "${TMPDIR:-/tmp}/rosettamq-apt.err" || echo 'no reason given')); run it by hand to see why"
}

install_missing_peers() {  # apt-get install the packages of "$@" whose commands are missing, only those
    local missing
    mapfile -t missing < <(missing_packages "$@")
    if [ "${#missing[@]}" -eq 0 ]; then
        say "peers: present"
    elif [ "${ROSETTAMQ_SKIP_APT:-0}" = 1 ]; then
        say "peers: missing ${missing[*]}; ROSETTAMQ_SKIP_APT=1, not installing"
    else
        say "peers: apt-get install ${missing[*]}"
        apt_install "${missing[@]}"
    fi
}

ensure_venv() {  # a working virtualenv at $VENV made by $PYTHON (>= 3.11)
    if ! command -v "$PYTHON" >/dev/null 2>&1 && [ "$PYTHON" = python3 ] && [ "${ROSETTAMQ_SKIP_APT:-0}" != 1 ]; then
        say "python: none found; apt-get install python3 python3-venv"
        apt_install python3 python3-venv
    fi
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (need Python >= 3.11)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is $("$PYTHON" -V 2>&1); RosettaMQ needs Python >= 3.11"
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        say "venv: reusing $VENV"
    else
        if [ -n "$(ls -A "$VENV" 2>/dev/null)" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
            die "$VENV exists and is not a virtualenv; remove it or set ROSETTAMQ_VENV"
        fi
        if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
            say "venv: $PYTHON lacks ensurepip; apt-get install python3-venv"
            if [ "${ROSETTAMQ_SKIP_APT:-0}" = 1 ]; then die "python3-venv needed but ROSETTAMQ_SKIP_APT=1"; fi
            apt_install python3-venv
        fi
        say "venv: creating $VENV with $("$PYTHON" -V 2>&1)"
        "$PYTHON" -m venv --clear "$VENV"  # --clear: repairs a half-made venv (no pip)
    fi
}

install_project() {  # pip install -e ".$1" ("" or "[a,b]") unless each of its extras is installed for this pyproject.toml and interpreter
    local extras="$1" want name names=() missing=0
    want="$(cat pyproject.toml; "$VENV/bin/python" -V 2>&1)"
    IFS=, read -r -a names <<<"${extras//[][]/}"
    names=(project "${names[@]}")  # one stamp per extra: "[test,examples]" also serves "[examples]" and ""
    for name in "${names[@]}"; do
        if [ ! -f "$VENV/.rosettamq-installed-$name" ] || [ "$(cat "$VENV/.rosettamq-installed-$name")" != "$want" ]; then
            missing=1
        fi
    done
    if [ "$missing" -eq 0 ]; then
        say "pip: project${extras} already installed"
        return 0
    fi
    say "pip: install -e '.${extras}'"
    "$VENV/bin/python" -m pip install -q -e ".${extras}"
    for name in "${names[@]}"; do
        printf '%s' "$want" >"$VENV/.rosettamq-installed-$name"
    done
}

build_hot_path() {  # compile the hot path with mypyc when a C compiler is there (core/compiled.py); pure Python otherwise
    "$VENV/bin/python" scripts/build_hot_path.py
}

runs_compiled() {  # true when the gateway in $VENV loads its compiled hot path
    "$VENV/bin/python" -c 'import sys, core.router, core.compiled as c; sys.exit(0 if c.running_compiled(core.router) else 1)'
}
