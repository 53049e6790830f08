#!/usr/bin/env bash
# Stops the two test engines of engines-up.sh and removes all that was made for them: their
# processes (daemons, containerds, shims, task containers), network namespaces (and with them
# the veth pair), cgroups, files and $AXION_ENV_DIR/engines.env; then checks that no process,
# mount, namespace, interface or cgroup of theirs is left, and exits 1 (keeping the files for a
# look) when one is. Idempotent; the system engine is never touched.
#   AXION_ENV_DIR   where the engines live (default /tmp/axion-env)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ENG_SELF=engines-down
# shellcheck source=tests/env/engines-lib.sh
. "$here/engines-lib.sh"

[ "$(id -u)" = 0 ] || eng_die "must run as root"
eng_check_paths
mkdir -p "$ENG_ENV_DIR"
exec 8>"$ENG_LOCK"
flock 8
t_start=$(date +%s.%N)
rm -f "$ENG_ENV_FILE"

all_pids() {
    local e
    {
        for e in $ENG_ALL; do eng_pids "$e"; done
        eng_bin_pids
    } | sort -un
}

# 1. The task containers first, with SIGKILL (busybox as a container's pid 1 ignores SIGTERM,
#    and the daemon would wait out each stop timeout), then each daemon with SIGTERM: it stops
#    its containerd, whose shims end with their containers.
stopped=""
for e in $ENG_ALL; do
    for root in $(eng_all_roots); do
        cg=$root/$(eng_cgroup "$e")
        [ -d "$cg" ] || continue
        # shellcheck disable=SC2038 # (pids only)
        find "$cg" -mindepth 2 -name cgroup.procs -not -path "$cg/daemon/*" -exec cat {} + 2>/dev/null |
            xargs -r kill -KILL 2>/dev/null
    done
    if pid=$(eng_daemon_pid "$e"); then
        eng_log "engine $e: stopping the daemon (pid $pid)"
        kill -TERM "$pid" 2>/dev/null
        stopped="$stopped $e"
    fi
done

# 2. Wait for every process of theirs to end; after 10 s, SIGKILL what is left. Whatever
#    survives that stops here: the namespaces and files stay as they are for a look.
deadline=$(($(date +%s) + 10))
killed=0
while :; do
    left=$(all_pids)
    [ -z "$left" ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
        if [ "$killed" = 1 ]; then
            eng_log "processes survive SIGKILL: $(eng_words "$left"); NOT clean, files kept in $ENG_DIR"
            exit 1
        fi
        eng_log "SIGKILL to what did not stop: $(eng_words "$left")"
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null
        killed=1
        deadline=$(($(date +%s) + 5))
    fi
    sleep 0.05
done
[ -n "$stopped" ] && eng_log "engines stopped after $(eng_since "$t_start")s"

# 3. The network namespaces (deleting one destroys its end of the veth pair, and the pair), and
#    /run/netns when engines-up.sh made it and nobody else uses it.
for e in $ENG_ALL; do
    ns=$(eng_netns "$e")
    if [ -e "/run/netns/$ns" ]; then
        ip netns delete "$ns" || eng_log "could not delete network namespace $ns"
    fi
done
if [ -e "$ENG_ENV_DIR/engines.made-run-netns" ]; then
    if [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
        while mountpoint -q /run/netns; do umount /run/netns || break; done
        rmdir /run/netns 2>/dev/null
    fi
    [ -d /run/netns ] || rm -f "$ENG_ENV_DIR/engines.made-run-netns"
fi

# 4. The cgroups, deepest first (a cgroup with no process left can be removed).
for e in $ENG_ALL; do
    for root in $(eng_all_roots); do
        cg=$root/$(eng_cgroup "$e")
        [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
    done
done

# 5. Check: nothing of theirs may be left anywhere.
rc=0
left=$(all_pids)
[ -z "$left" ] || {
    eng_log "processes left: $(eng_words "$left")"
    rc=1
}
m=$(grep -lF -e " $ENG_DIR" -e " /run/netns/axion-eng-" /proc/[0-9]*/mountinfo 2>/dev/null)
[ -z "$m" ] || {
    eng_log "mounts of the engines still seen by: $(eng_words "$m")"
    rc=1
}
for e in $ENG_ALL; do
    [ ! -e "/run/netns/$(eng_netns "$e")" ] || {
        eng_log "network namespace $(eng_netns "$e") left"
        rc=1
    }
    for root in $(eng_all_roots); do
        [ ! -d "$root/$(eng_cgroup "$e")" ] || {
            eng_log "cgroup $root/$(eng_cgroup "$e") left"
            rc=1
        }
    done
done
if [ "$rc" != 0 ]; then
    eng_log "NOT clean; files kept in $ENG_DIR for a look"
    exit 1
fi

# 6. The files (data roots, binaries); the daemons' last logs stay beside them for a look.
for e in $ENG_ALL; do
    [ -f "$ENG_DIR/$e/engine.log" ] && mv -f "$ENG_DIR/$e/engine.log" "$ENG_ENV_DIR/engine-$e.last.log"
done
rm -rf "$ENG_DIR"
eng_log "down in $(eng_since "$t_start")s: no process, mount, namespace or cgroup left"
