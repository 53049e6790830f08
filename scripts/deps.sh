#!/usr/bin/env bash
# Installs what axion-agent needs to build, run and test on Debian bookworm, when missing.
# Idempotent: a machine that has everything is left alone (no apt-get update either).
set -euo pipefail

pkgs=(
    build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
    libev-dev libgrpc-dev libprotobuf-c-dev protobuf-c-compiler librdkafka-dev
    libyaml-dev libcurl4-openssl-dev libjansson-dev libssl-dev libsqlite3-dev libcmocka-dev
    docker.io busybox-static systemd python3 python3-venv python3-yaml socat curl iproute2 procps sqlite3
    # the test engines (tests/env/engines-up.sh): docker.io's own dependencies that they run by
    # name, nsenter/unshare/flock/setsid/mountpoint, mount/umount
    containerd runc iptables util-linux mount
    # the Kafka broker (tests/env/kafka-up.sh): Java, Maven for its jars, openssl for its certs
    openjdk-17-jre-headless maven openssl
    # the fully static binary (-DAXION_STATIC=ON, scripts/test.sh builds it): the static archives
    # of what Debian's libcurl, libgrpc and librdkafka depend on (libc6-dev, libstdc++ come with
    # build-essential), and the headers of the libraries agent/static_link.c stands in for
    libnghttp2-dev libidn2-dev libunistring-dev libssh2-1-dev libpsl-dev libzstd-dev
    libbrotli-dev zlib1g-dev liblz4-dev libabsl-dev libre2-dev libc-ares-dev
    libkrb5-dev libsasl2-dev librtmp-dev libldap-dev
    # the install test (tests/static/test_install.sh): a Debian root with systemd, debootstrapped
    debootstrap
)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: need root to install packages (run as root or install: ${missing[*]})" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
