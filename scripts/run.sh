#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, makes sure a Docker Engine in
# Swarm mode answers with the local test image, runs the agent in local mode with its store in
# ./.state, applies examples/hello/compose.yml and shows it converging. Ctrl-C stops the agent
# (the stack stays; `build/axion-agent --local --state-dir "$PWD/.state" rm hello` removes it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${AXION_BUILD:-build}
STATE=$PWD/.state

scripts/deps.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
tests/env/docker-up.sh

mkdir -p "$STATE"
agent() {
    "$BUILD/axion-agent" --local --state-dir "$STATE" --set local.socket="$STATE/agent.sock" "$@"
}

agent run &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 1 100); do
    [ -S "$STATE/agent.sock" ] && break
    kill -0 $pid 2>/dev/null || { echo "run: the agent did not start" >&2; exit 1; }
    sleep 0.1
done

agent apply -f examples/hello/compose.yml -n hello
for _ in $(seq 1 120); do
    line=$(agent status hello | head -1)
    echo "$line"
    case "$line" in *converged*) break ;; esac
    sleep 1
done
agent status hello
echo
echo "The agent runs in local mode (pid $pid). Try: build/axion-agent --local --state-dir .state status"
echo "Ctrl-C stops it."
wait $pid
