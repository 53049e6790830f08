#!/usr/bin/env bash
# The Kafka ingest benchmark (see bench.py): builds a Release agent and kafka-bench in
# build-bench/ if needed, starts a broker of its own (tests/env/kafka-up.sh on a separate port
# block and state dir, so that it never meets a test run's broker), runs bench.py, and stops
# the broker. Extra arguments go to bench.py (-n N, --one-stack, --json FILE, --keep).
#
#   bench/kafka/run.sh -n 5000
#
# Environment: AXION_BENCH_BUILD (build dir, default build-bench), AXION_BENCH_KAFKA_PORT
# (first port of the broker's block, default 29192), AXION_BENCH_ENV_DIR (default
# /tmp/axion-env-bench). No Docker is needed: the agent's Docker socket points nowhere, so
# only the ingest is measured.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${AXION_BENCH_BUILD:-build-bench}
if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang >/dev/null
fi
cmake --build "$BUILD" --target axion-agent kafka-bench >/dev/null
PATH="$(tests/env/venv.sh)/bin:$PATH"
export PATH
export AXION_ENV_DIR=${AXION_BENCH_ENV_DIR:-/tmp/axion-env-bench}
export AXION_KAFKA_PORT=${AXION_BENCH_KAFKA_PORT:-29192}
tests/env/kafka-up.sh
trap 'tests/env/kafka-down.sh || true' EXIT
python3 bench/kafka/bench.py --build "$BUILD" "$@"
