#!/usr/bin/env bash
# The README's test command: installs what is missing, builds with ASan+UBSan, starts the
# services the tests need, runs every test through ctest, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${AXION_TEST_BUILD:-build-test}
export AXION_ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}

scripts/deps.sh

# The fully static axion-agent (issue 14; GCC, optimised, only the binary and the static test
# client): the tests of the main build run the local-mode smoke test and the reconcile tests a
# second time against it, and the install test (systemd in a container) and the DNS test use it.
cmake -S . -B "$BUILD-static" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAXION_STATIC=ON >/dev/null
cmake --build "$BUILD-static" -j "$(nproc)" --target axion-agent static_peers
STATIC_DIR=$(cd "$BUILD-static" && pwd)
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
    -DAXION_SANITIZE=ON -DAXION_STATIC_DIR="$STATIC_DIR" >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
# The run command builds with the system compiler (GCC, optimised): that build must work too.
cmake -S . -B "$BUILD-gcc" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD-gcc" -j "$(nproc)"
# The Debian root of the install test (debootstrap once, then cached): made before the lock.
tests/env/rootfs.sh --prepare
# Test peers and harness scripts in Python run from a pinned virtualenv.
PATH="$(tests/env/venv.sh)/bin:$PATH"
export PATH

# The services (dockerd, ...) are shared by every test run on this machine: one run at a time
# brings them up, runs the tests and stops what it started, under one lock, so that one run's
# clean-up never stops a service under another run's tests.
exec 9>"${AXION_DOCKER_LOCK:-/tmp/axion-docker.lock}"
flock 9
cleanup() {
    "$ROOT"/tests/env/down.sh || true
}
trap cleanup EXIT
tests/env/up.sh 9>&-

cd "$BUILD"
ctest --output-on-failure --no-tests=error -j "$(nproc)" "$@" 9>&-
