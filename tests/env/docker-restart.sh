#!/usr/bin/env bash
# Restarts the dockerd the tests use (the fault tests of drivers/docker): stops the running one
# (the one docker-up.sh started, by $AXION_ENV_DIR/dockerd.pid, else whatever `pidof dockerd`
# finds), then starts it again exactly as docker-up.sh does (which updates the pid file) and
# waits until it answers and the swarm is active. Run it only under the docker lock.
set -euo pipefail
# Alive and not a zombie (PID 1 may reap an ended dockerd late; kill -0 succeeds on a zombie).
alive() { [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }
here=$(cd "$(dirname "$0")" && pwd)
ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}
mkdir -p "$ENV_DIR"
pidf="$ENV_DIR/dockerd.pid"

pid=""
if [ -f "$pidf" ] && alive "$(cat "$pidf")"; then
    pid=$(cat "$pidf")
else
    pid=$(pidof dockerd || true)
fi
if [ -n "$pid" ]; then
    echo "docker-restart: stopping dockerd (pid $pid)" >&2
    kill -TERM $pid
    for _ in $(seq 1 120); do
        alive=0
        for p in $pid; do alive "$p" && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.25
    done
    for p in $pid; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
    for p in $pid; do
        while alive "$p"; do sleep 0.1; done
    done
fi
rm -f "$pidf"
# docker-up.sh starts dockerd when none answers, writes the pid file and waits for the swarm.
"$here/docker-up.sh"
state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
[ "$state" = active ] || { echo "docker-restart: swarm is $state after the restart" >&2; exit 1; }
echo "docker-restart: dockerd is back (pid $(cat "$pidf" 2>/dev/null || echo '?'))" >&2
