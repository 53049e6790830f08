#!/usr/bin/env bash
# The idle benchmark (see idle.py): an idle daemon holding 30 stacks x 10 services, and one
# no-change pass, for a baseline build (BEFORE) and this tree (AFTER), in one run.
#
#   bench/reconcile/idle.sh [--baseline REV] [idle.py arguments: --window 60 --passes 20 ...]
#
# BEFORE is built from REV (default: the commit where this branch left main, `git merge-base
# HEAD main`) out of `git archive`, in $TMPDIR/axion-idle-base-<sha>/ (kept for the next run);
# AFTER is this tree, Release, in build-bench/. Both with clang, as scripts/test.sh builds.
# Holding the Docker lock, makes sure Docker answers in Swarm mode, then runs idle.py.
#
# Environment: AXION_BENCH_BUILD (default build-bench), AXION_DOCKER_LOCK (default
# /tmp/axion-docker.lock).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${AXION_BENCH_BUILD:-build-bench}

rev=""
if [ "${1:-}" = "--baseline" ]; then
    rev=$2
    shift 2
fi
if [ -z "$rev" ]; then
    rev=$(git merge-base HEAD main) || { echo "idle.sh: no main branch here; pass --baseline REV" >&2; exit 1; }
fi
sha=$(git rev-parse --verify "$rev^{commit}")
short=$(git rev-parse --short "$sha")

base=${TMPDIR:-/tmp}/axion-idle-base-$sha
if [ ! -x "$base/build/axion-agent" ]; then
    rm -rf "$base"
    mkdir -p "$base/src"
    git archive "$sha" | tar -x -C "$base/src"
    cmake -S "$base/src" -B "$base/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_COMPILER=clang >/dev/null
    cmake --build "$base/build" -j2 --target axion-agent >/dev/null
fi

if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang >/dev/null
fi
cmake --build "$BUILD" -j2 --target axion-agent >/dev/null
head=$(git rev-parse --short HEAD)
dirty=$(git diff --quiet HEAD -- . 2>/dev/null || echo "+changes")

exec flock "${AXION_DOCKER_LOCK:-/tmp/axion-docker.lock}" \
    sh -c 'tests/env/docker-up.sh && exec python3 bench/reconcile/idle.py "$@"' idle.sh \
    --before "$base/build/axion-agent" --before-name "main@$short" \
    --after "$BUILD/axion-agent" --after-name "$head$dirty" "$@"
