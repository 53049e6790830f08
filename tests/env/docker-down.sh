#!/usr/bin/env bash
# Stops the dockerd that docker-up.sh started, if it started one; leaves any other alone.
set -uo pipefail
ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}
pidf="$ENV_DIR/dockerd.pid"
[ -f "$pidf" ] || exit 0
pid=$(cat "$pidf")
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
fi
rm -f "$pidf"
