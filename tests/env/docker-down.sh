#!/usr/bin/env bash
# Stops the dockerd that docker-up.sh started, if it started one; leaves any other alone.
set -uo pipefail
# Alive and not a zombie (PID 1 may reap an ended dockerd late; kill -0 succeeds on a zombie).
alive() { [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }
ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}
pidf="$ENV_DIR/dockerd.pid"
[ -f "$pidf" ] || exit 0
pid=$(cat "$pidf")
if alive "$pid"; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do alive "$pid" || break; sleep 0.5; done
    alive "$pid" && kill -KILL "$pid"
fi
rm -f "$pidf"
