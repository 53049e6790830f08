#!/usr/bin/env bash
# Brings up the real Docker Engine the agent and its tests talk to: dockerd answering on
# /var/run/docker.sock (started here when none answers), a single-node Swarm advertised on
# 127.0.0.1, and the local test image axion-test/busybox:1 made with `docker import` from
# Debian's busybox-static (no registry is reachable). Idempotent; a daemon that already ran is
# left alone. When it starts dockerd it writes its pid to $AXION_ENV_DIR/dockerd.pid so
# docker-down.sh stops only what was started here.
set -euo pipefail

ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}
IMAGE=${AXION_TEST_IMAGE:-axion-test/busybox:1}
mkdir -p "$ENV_DIR"

docker_answers() { timeout 5 docker version >/dev/null 2>&1; }
# Alive and not a zombie: a dockerd just stopped may wait a moment to be reaped, and kill -0
# succeeds on a zombie, which would keep its pid file and make the new dockerd refuse to start.
alive() { [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }

if ! docker_answers; then
    command -v dockerd >/dev/null || { echo "docker-up: dockerd not installed (scripts/deps.sh)" >&2; exit 1; }
    # A dockerd killed without cleanup leaves its pid files behind.
    for f in /var/run/docker.pid /run/docker/containerd/containerd.pid; do
        if [ -f "$f" ] && ! alive "$(cat "$f")"; then rm -f "$f"; fi
    done
    echo "docker-up: starting dockerd (log: $ENV_DIR/dockerd.log)" >&2
    # dockerd gets no fd but 0-2: an inherited lock fd (tests run under flock) held by a
    # long-lived dockerd would hold the lock forever. No registry is reachable: swarm tasks use
    # the local image instead of trying to pull it.
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
        done
        exec env DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 setsid dockerd \
            >"$ENV_DIR/dockerd.log" 2>&1 </dev/null
    ) &
    echo $! >"$ENV_DIR/dockerd.pid"
    for _ in $(seq 1 120); do
        docker_answers && break
        sleep 0.5
    done
    docker_answers || { echo "docker-up: dockerd did not answer; log:" >&2; tail -20 "$ENV_DIR/dockerd.log" >&2; exit 1; }
fi

state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
if [ "$state" != "active" ]; then
    echo "docker-up: initialising a single-node swarm on 127.0.0.1" >&2
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi
# A swarm restored from disk may need a moment before the node is ready.
for _ in $(seq 1 60); do
    [ "$(docker node ls --format '{{.Status}}' 2>/dev/null | head -1)" = "Ready" ] && break
    sleep 0.5
done

# The image carries the version of its recipe: an image made by an older recipe is made again.
RECIPE=2
have=$(docker image inspect -f '{{index .Config.Labels "io.axion.test-image"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" != "$RECIPE" ]; then
    echo "docker-up: making $IMAGE from busybox-static" >&2
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/tmp" "$root/etc"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' \
        -c "LABEL io.axion.test-image=$RECIPE" - "$IMAGE" >/dev/null
fi
echo "docker-up: ready (swarm active, image $IMAGE)" >&2
