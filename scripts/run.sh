#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, makes sure a Docker Engine in
# Swarm mode answers with the local test image, and runs the agent in local mode with its
# store in ./.state (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${AXION_BUILD:-build}

scripts/deps.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
tests/env/docker-up.sh

mkdir -p .state
exec "$BUILD/axion-agent" --local --state-dir "$PWD/.state" \
    --set local.socket="$PWD/.state/agent.sock" run
