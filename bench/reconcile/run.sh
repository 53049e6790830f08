#!/usr/bin/env bash
# The reconciler benchmark: axion-agent against `docker stack deploy` on a generated 30-service
# stack (see bench.py for what is measured and how). Builds a Release agent in build-bench/ if
# needed, then, holding the Docker lock, makes sure Docker answers in Swarm mode and runs the
# measurements. Extra arguments go to bench.py (--reps N, --services N, --json FILE, --keep).
#
#   bench/reconcile/run.sh [--reps 3]
#
# Environment: AXION_BENCH_BUILD (build dir, default build-bench), AXION_DOCKER_LOCK (default
# /tmp/axion-docker.lock).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${AXION_BENCH_BUILD:-build-bench}

if [ ! -f "$BUILD/build.ninja" ]; then
    # clang, as in scripts/test.sh: GCC 12 rejects the tree with -Werror (see docs/BENCHMARKS.md)
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang >/dev/null
fi
cmake --build "$BUILD" --target axion-agent >/dev/null

# docker-up.sh inside the lock: a test run that finished meanwhile may have stopped the dockerd
# it had started.
exec flock "${AXION_DOCKER_LOCK:-/tmp/axion-docker.lock}" \
    sh -c 'tests/env/docker-up.sh && exec python3 bench/reconcile/bench.py --agent "$0/axion-agent" "$@"' \
    "$BUILD" "$@"
