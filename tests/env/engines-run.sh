#!/usr/bin/env bash
# The inside half of engines-up.sh: engines-up.sh starts it as
#   nsenter --net=/run/netns/axion-eng-E -- unshare --mount --uts --propagation private -- \
#       engines-run.sh E
# that is in engine E's network namespace and in a mount and UTS namespace of its own. It makes
# that mount namespace hold nothing of the host's runtime state, names the host, and execs the
# renamed dockerd. Not meant to be run by hand.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ENG_SELF=engines-run
# shellcheck source=tests/env/engines-lib.sh
. "$here/engines-lib.sh"

e=${1:?usage: engines-run.sh a|b}
addr=$(eng_addr "$e") || eng_die "unknown engine '$e'"
d=$ENG_DIR/$e
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] ||
    eng_die "not in a mount namespace of its own: start the engines with engines-up.sh"

# 1. Drop this namespace's copies of the host's mounts that the engine does not need. A copy
#    outlives the host's unmount ("/" is private here) and would pin what it shows: the system
#    engine's container root filesystems and network namespaces, other engines' namespace
#    files, other tests' mounts. Kept: the root, /proc, /sys, /dev, system files and
#    directories, and the mounts that hold $ENG_DIR.
keep_mount() {
    case $1 in
    / | /proc | /proc/* | /sys | /sys/* | /dev | /dev/* | /etc/* | /usr | /usr/* | /lib* | /bin | /sbin) return 0 ;;
    esac
    case $ENG_DIR/ in "$1"/*) return 0 ;; esac
    return 1
}
while read -r m; do
    m=$(printf '%b' "$m") # mountinfo escapes blanks as \040
    keep_mount "$m" || umount -l "$m" 2>/dev/null || true
done < <(awk '{ print $5 }' /proc/self/mountinfo | sort -ru)

# 2. Mask the host's runtime state and data with directories of this engine's own. dockerd
#    20.10, whatever --exec-root and --data-root say, creates /run/docker/plugins, loads or makes
#    /etc/docker/key.json, and (swarm network attachments) writes /var/lib/docker/network/files;
#    containerd's runc shim puts its sockets under /run/containerd/s. So: an empty tmpfs on
#    /run, and /etc/docker, /var/lib/docker, /var/lib/containerd bound to directories under $d
#    (the key, hence the engine ID, lives as long as the engine's directory).
mount -t tmpfs -o mode=755,size=16m axion-eng-run /run
for p in /etc/docker /var/lib/docker /var/lib/containerd; do
    [ -d "$p" ] || continue
    mkdir -p "$d/mask${p//\//-}"
    mount --bind "$d/mask${p//\//-}" "$p"
done

# 3. A sysfs of this network namespace (so /sys/class/net lists its interfaces, as under `ip
#    netns exec`), keeping the cgroup mounts, which `ip netns exec` would lose.
mkdir -p "$d/cgroup-move"
mount --rbind /sys/fs/cgroup "$d/cgroup-move"
umount -l /sys
mount -t sysfs axion-eng-sysfs /sys
mount --move "$d/cgroup-move" /sys/fs/cgroup
rmdir "$d/cgroup-move"

# 4. The node's name in the swarm.
hostname "$(eng_hostname "$e")"

# 5. The renamed containerd and shim are found through PATH under their usual names (wrappers
#    in $ENG_BIN); swarm tasks never try to pull (no registry is reachable).
export PATH="$ENG_BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_CONFIG NOTIFY_SOCKET
eng_log "engine $e: starting in $(eng_netns "$e") ($addr)"
exec "$ENG_BIN/$ENG_DAEMON" \
    --host "unix://$d/docker.sock" \
    --pidfile "$d/docker.pid" \
    --data-root "$d/data" \
    --exec-root "$d/exec" \
    --storage-driver overlay2 \
    --bridge none \
    --userland-proxy=false \
    --default-address-pool "base=$ENG_LOCAL_POOL,size=24" \
    --cgroup-parent "/$(eng_cgroup "$e")" \
    --shutdown-timeout 2 \
    --label "io.axion.test-engine=$e"
