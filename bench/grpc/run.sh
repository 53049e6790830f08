#!/usr/bin/env bash
# The gRPC channel's benchmark: Scale latency through the agent against `docker service scale`,
# and the agent's RSS with the stream idle and with a Logs stream (see bench.py). Builds a
# Release agent in build-bench/ if needed, then, holding the Docker lock, makes sure Docker
# answers in Swarm mode and runs the measurements with the test virtualenv's Python (grpcio for
# the Control Plane simulator). Extra arguments go to bench.py (--reps N, --json FILE).
#
#   bench/grpc/run.sh [--reps 5]
#
# Environment: AXION_BENCH_BUILD (build dir, default build-bench), AXION_DOCKER_LOCK (default
# /tmp/axion-docker.lock).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${AXION_BENCH_BUILD:-build-bench}

if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang >/dev/null
fi
cmake --build "$BUILD" --target axion-agent >/dev/null
PY="$(tests/env/venv.sh)/bin/python3"

exec flock "${AXION_DOCKER_LOCK:-/tmp/axion-docker.lock}" \
    sh -c 'py=$1; shift; tests/env/docker-up.sh && exec "$py" bench/grpc/bench.py --agent "$0/axion-agent" "$@"' \
    "$BUILD" "$PY" "$@"
