#!/usr/bin/env bash
# Size and memory of the static axion-agent against the dynamic build (bench/static/rss.py says
# what is measured). Builds both from this tree (GCC, RelWithDebInfo: what scripts/test.sh and
# `make run` build): the dynamic one in build-bench-dynamic/, the static one in
# build-bench-static/; holding the Docker lock, makes sure Docker answers in Swarm mode and the
# test Kafka broker runs (stopped again if this script started it), then runs rss.py.
#
#   bench/static/rss.sh [rss.py arguments: --reps 2 --window 10 --json FILE --agent-set K=V ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export AXION_ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}

cmake -S . -B build-bench-dynamic -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-bench-dynamic -j2 --target axion-agent >/dev/null
cmake -S . -B build-bench-static -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAXION_STATIC=ON >/dev/null
cmake --build build-bench-static -j2 --target axion-agent static_peers >/dev/null
PATH="$(tests/env/venv.sh)/bin:$PATH"
export PATH

exec 9>"${AXION_DOCKER_LOCK:-/tmp/axion-docker.lock}"
flock 9
tests/env/docker-up.sh 9>&-
started_kafka=false
if [ ! -f "$AXION_ENV_DIR/kafka.env" ]; then
    tests/env/kafka-up.sh 9>&- >/dev/null
    started_kafka=true
fi
cleanup() { if $started_kafka; then "$ROOT"/tests/env/kafka-down.sh >/dev/null || true; fi; }
trap cleanup EXIT
python3 bench/static/rss.py --dynamic build-bench-dynamic/axion-agent \
    --static build-bench-static/axion-agent --peers build-bench-static/tests/static_peers "$@" 9>&-
