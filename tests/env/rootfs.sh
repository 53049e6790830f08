#!/usr/bin/env bash
# A throwaway Debian bookworm root with systemd, as a Docker image of our own (docker import of
# a debootstrap root), for the install test (tests/static/test_install.sh): prints the
# image's name. The debootstrap root is made once and cached as a tarball under
# ${AXION_CACHE_DIR:-$HOME/.cache/axion-agent}/rootfs/ (about 2.5 minutes and 70 MB the first
# time); the image is imported from it when the Engine does not have it (a few seconds).
# Packages come from Debian's mirror (AXION_DEBIAN_MIRROR overrides it).
#
#   rootfs.sh            the image's name on stdout (made when missing)
#   rootfs.sh --prepare  only the cached tarball (no Docker needed: scripts/test.sh runs it
#                        before it takes the Docker lock)
set -euo pipefail
suite=bookworm
mirror=${AXION_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# systemd as PID 1 (systemd-sysv: /sbin/init), what install.sh runs (bash, coreutils, diffutils,
# mawk, passwd, util-linux are in minbase), procps for the test's look at processes.
include=systemd,systemd-sysv,procps
key=$(printf '%s\n' "$suite" "$include" "v1" | sha256sum | cut -c1-12)
cache=${AXION_CACHE_DIR:-$HOME/.cache/axion-agent}/rootfs
tarball=$cache/$suite-systemd-$key.tar.gz
image=axion-test/systemd:$suite-$key

if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "rootfs: debootstrap is missing (scripts/deps.sh)" >&2; exit 1; }
    mkdir -p "$cache"
    work=$(mktemp -d "$cache/.work-XXXXXX")
    trap 'rm -rf "$work"' EXIT
    echo "rootfs: debootstrap $suite ($include) from $mirror, once" >&2
    if ! debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        tail -20 "$work/debootstrap.log" >&2
        echo "rootfs: debootstrap failed (log above)" >&2
        exit 1
    fi
    # No apt lists or caches in the image; a machine-id made at first boot.
    rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
    : >"$work/root/etc/machine-id"
    tar -C "$work/root" --numeric-owner -czf "$work/root.tar.gz" .
    mv "$work/root.tar.gz" "$tarball"
fi
[ "${1:-}" != --prepare ] || exit 0
if ! docker image inspect "$image" >/dev/null 2>&1; then
    docker import --change 'CMD ["/sbin/init"]' --change 'ENV container=docker' \
        "$tarball" "$image" >/dev/null
fi
echo "$image"
