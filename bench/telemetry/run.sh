#!/usr/bin/env bash
# The telemetry benchmark: starts N idle containers (default 50, names axt-tel-bench-NN), then
# runs telemetry-bench, which measures one collection cycle of the agent and, in the same run,
# `docker stats --no-stream` for the same containers (client + dockerd + containerd + shims).
# Built without sanitizers, with optimisation. The Docker Engine is shared: run it under the lock
#   flock /tmp/axion-docker.lock bench/telemetry/run.sh [N] [telemetry-bench options]
# AXION_BENCH_FILES=1 also runs pread-cost (the cost of each file kind, about a minute).
set -euo pipefail

N=${1:-50}
shift || true
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${AXION_BENCH_BUILD:-$SRC/build-bench}
IMAGE=${AXION_TEST_IMAGE:-axion-test/busybox:1}

cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release \
    -DAXION_SANITIZE=OFF >/dev/null
cmake --build "$BUILD" --target telemetry-bench pread-cost >/dev/null
"$SRC/tests/env/docker-up.sh"

ours() { docker ps -aq --filter name='^axt-tel-bench-'; }
cleanup() {
    local ids
    ids=$(ours)
    [ -z "$ids" ] || docker rm -f $ids >/dev/null
    rm -f "${list:-}"
}
trap cleanup EXIT
cleanup

for i in $(seq -w 1 "$N"); do
    docker run -d --name "axt-tel-bench-$i" "$IMAGE" /bin/busybox sleep 3600 >/dev/null
done
list=$(mktemp)
docker inspect -f '{{.Id}} {{.State.Pid}} {{.Name}}' $(ours) >"$list"

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)," \
    "kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "docker: $(docker version --format '{{.Server.Version}}'), cgroup" \
    "$(docker info --format '{{.CgroupVersion}} ({{.CgroupDriver}} driver)')"
echo
# AXION_BENCH_WRAP="perf record -g -o /tmp/telemetry.perf" profiles the bench binary.
${AXION_BENCH_WRAP:-} "$BUILD/bench/telemetry-bench" "$@" <"$list"
# AXION_BENCH_FILES=1: then what one pread of each file kind costs (cgroup v1, cgroupfs layout).
if [ "${AXION_BENCH_FILES:-0}" = 1 ]; then
    echo
    "$BUILD/bench/pread-cost" <"$list"
fi
