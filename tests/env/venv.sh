#!/usr/bin/env bash
# Makes (or refreshes) the Python virtualenv of the test peers and harness scripts from
# tests/requirements.txt, pinned, and prints its directory. Idempotent: a venv whose stamp
# matches the requirements is left alone. Packages come from PyPI.
#   AXION_VENV  where it lives (default ${XDG_CACHE_HOME:-$HOME/.cache}/axion-agent/venv)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
req="$here/../requirements.txt"
VENV=${AXION_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/axion-agent/venv}
stamp="$VENV/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$VENV/bin/python3" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$VENV"
    exit 0
fi
mkdir -p "$(dirname "$VENV")"
# Two test runs at once (two checkouts) must not build the same venv together.
exec 8>"$VENV.lock"
flock 8
if [ -x "$VENV/bin/python3" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$VENV"
    exit 0
fi
echo "venv: making $VENV from tests/requirements.txt" >&2
python3 -m venv "$VENV" >&2
"$VENV/bin/python3" -m pip install -q --disable-pip-version-check -r "$req" >&2
echo "$want" >"$stamp"
echo "$VENV"
