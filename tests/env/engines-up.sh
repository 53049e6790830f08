#!/usr/bin/env bash
# Brings up two throw-away Docker Engines of the tests' own, A and B, beside the system engine
# (which is never touched): each in a network namespace this script creates (A 10.231.0.1, B
# 10.231.0.2 on one veth pair, no route out), with its own data root, exec root, socket, pid
# file, managed containerd and cgroup parent, and the local test image loaded. The engines start
# outside any swarm. Writes what tests need to $AXION_ENV_DIR/engines.env. Idempotent: engines
# that answer are left alone. Undone by engines-down.sh. Layout and pitfalls:
# docs/internals/engines-env.md.
#   AXION_ENV_DIR             where the engines live (default /tmp/axion-env)
#   AXION_ENGINES_UP_TIMEOUT  seconds to wait for an engine to answer (default 60)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ENG_SELF=engines-up
# shellcheck source=tests/env/engines-lib.sh
. "$here/engines-lib.sh"

[ "$(id -u)" = 0 ] || eng_die "must run as root (network namespaces, mounts, cgroups)"
for c in dockerd containerd containerd-shim-runc-v2 runc docker ip nsenter unshare setsid \
    curl busybox flock; do
    command -v "$c" >/dev/null || eng_die "$c is not installed (scripts/deps.sh installs it)"
done
eng_check_paths
timeout_s=${AXION_ENGINES_UP_TIMEOUT:-60}
t_start=$(date +%s.%N)

mkdir -p "$ENG_ENV_DIR"
exec 8>"$ENG_LOCK"
flock 8

# 1. The renamed binaries: hard links (copies when $ENG_DIR is on another file system), so
#    that /proc/PID/exe and the process name are axion-*; and wrappers under the names dockerd
#    and containerd look for in PATH.
mkdir -p "$ENG_BIN"
for pair in dockerd:$ENG_DAEMON containerd:$ENG_CONTAINERD containerd-shim-runc-v2:$ENG_SHIM; do
    src=$(readlink -f "$(command -v "${pair%%:*}")")
    dst=$ENG_BIN/${pair#*:}
    if ! [ "$dst" -ef "$src" ] && ! cmp -s "$src" "$dst"; then
        ln -f "$src" "$dst.new" 2>/dev/null || cp -f "$src" "$dst.new"
        mv -f "$dst.new" "$dst"
    fi
done
for pair in containerd:$ENG_CONTAINERD containerd-shim-runc-v2:$ENG_SHIM; do
    w=$ENG_BIN/${pair%%:*}
    want=$(printf '#!/bin/sh\nexec %s/%s "$@"\n' "$ENG_BIN" "${pair#*:}")
    if [ "$(cat "$w" 2>/dev/null)" != "$want" ]; then
        printf '%s\n' "$want" >"$w.new"
        chmod 755 "$w.new"
        mv -f "$w.new" "$w"
    fi
done

# 2. The network: two namespaces, one veth pair, addresses, no default route.
[ -d /run/netns ] || touch "$ENG_ENV_DIR/engines.made-run-netns" # engines-down.sh removes it then
for e in $ENG_ALL; do
    ns=$(eng_netns "$e")
    if ! ip -n "$ns" link show lo >/dev/null 2>&1; then
        rm -f "/run/netns/$ns" 2>/dev/null || true # a name left without its namespace
        ip netns add "$ns"
    fi
    ip -n "$ns" link set lo up
done
if ! ip -n "$(eng_netns a)" link show "$(eng_ifname a)" >/dev/null 2>&1 ||
    ! ip -n "$(eng_netns b)" link show "$(eng_ifname b)" >/dev/null 2>&1; then
    ip -n "$(eng_netns a)" link del "$(eng_ifname a)" 2>/dev/null || true
    ip -n "$(eng_netns b)" link del "$(eng_ifname b)" 2>/dev/null || true
    ip -n "$(eng_netns a)" link add "$(eng_ifname a)" type veth \
        peer name "$(eng_ifname b)" netns "$(eng_netns b)"
fi
for e in $ENG_ALL; do
    ip -n "$(eng_netns "$e")" addr replace "$(eng_addr "$e")/$ENG_PREFIX_LEN" dev "$(eng_ifname "$e")"
    ip -n "$(eng_netns "$e")" link set "$(eng_ifname "$e")" up
done

# 3. The engines. One that answers is left alone, but it must live in its namespace (its
#    namespace's name may have been deleted and made anew under it).
declare -A launched=()
for e in $ENG_ALL; do
    d=$ENG_DIR/$e ns=$(eng_netns "$e")
    if pid=$(eng_daemon_pid "$e"); then
        [ "$(readlink "/proc/$pid/ns/net")" = "net:[$(stat -Lc %i "/run/netns/$ns")]" ] ||
            eng_die "engine $e (pid $pid) runs outside network namespace $ns: run engines-down.sh first"
        eng_answers "$e" && continue
        eng_log "engine $e (pid $pid) runs but does not answer yet: waiting for it"
        continue
    fi
    # The names are per machine: engines of another AXION_ENV_DIR may not be taken for ours.
    for p in $(ip netns pids "$ns" 2>/dev/null); do
        exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
        case $exe in
        "$ENG_BIN"/*) ;;
        */"$ENG_DAEMON") eng_die "engine $e of another AXION_ENV_DIR runs in $ns (pid $p, $exe): take it down with its engines-down.sh first" ;;
        esac
    done
    # Leftovers of an engine that died (containerd and shims of a killed daemon, tasks).
    left=$(eng_pids "$e")
    if [ -n "$left" ]; then
        eng_log "engine $e: killing what its dead daemon left: $(eng_words "$left")"
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null || true
        deadline=$(($(date +%s) + 10))
        while [ -n "$(eng_pids "$e")" ]; do
            [ "$(date +%s)" -lt "$deadline" ] || eng_die "engine $e: leftovers survive SIGKILL: $(eng_words "$(eng_pids "$e")")"
            sleep 0.1
        done
    fi
    mkdir -p "$d"
    rm -f "$d/docker.sock" "$d/docker.pid"
    # The daemon (and so its containerd and shims) lives in a cgroup of its own under the
    # engine's cgroup parent, where the containers go too: one subtree holds all of engine e.
    for root in $(eng_track_roots); do
        mkdir -p "$root/$(eng_cgroup "$e")/daemon"
    done
    eng_log "engine $e: starting in $ns ($(eng_addr "$e")), log $d/engine.log"
    (
        # No fd but 0-2 reaches the daemon: an inherited lock fd would hold its lock forever.
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
        done
        for root in $(eng_track_roots); do
            echo "$BASHPID" >"$root/$(eng_cgroup "$e")/daemon/cgroup.procs"
        done
        export AXION_ENV_DIR=$ENG_ENV_DIR
        exec setsid nsenter --net="/run/netns/$ns" -- \
            unshare --mount --uts --propagation private -- "$here/engines-run.sh" "$e" \
            >>"$d/engine.log" 2>&1 </dev/null
    ) &
    launched[$e]=$!
done

# 4. The test image's root file system, made like tests/env/docker-up.sh makes it (Debian's
#    busybox-static, same config and label), while the daemons start.
tarball=$ENG_DIR/image-$ENG_IMAGE_RECIPE.tar
if [ ! -s "$tarball" ]; then
    root=$(mktemp -d "$ENG_DIR/image-root.XXXXXX")
    chmod 755 "$root"
    mkdir -p "$root/bin" "$root/tmp" "$root/etc"
    cp "$(readlink -f "$(command -v busybox)")" "$root/bin/busybox"
    (
        cd "$root/bin"
        for applet in $(./busybox --list); do
            [ "$applet" = busybox ] || ln -sf busybox "$applet"
        done
    )
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    tar -C "$root" -cf "$tarball.new" .
    mv -f "$tarball.new" "$tarball"
    rm -rf "$root"
fi

# 5. Wait until each answers (or its daemon is gone: then say why).
deadline=$(($(date +%s) + timeout_s))
for e in $ENG_ALL; do
    d=$ENG_DIR/$e
    until eng_answers "$e"; do
        if [ -n "${launched[$e]:-}" ] && ! kill -0 "${launched[$e]}" 2>/dev/null; then
            eng_log "engine $e: the daemon exited before answering; end of $d/engine.log:"
            tail -n 30 "$d/engine.log" >&2
            exit 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            eng_log "engine $e: no answer on $(eng_sock "$e") within ${timeout_s}s; end of $d/engine.log:"
            tail -n 30 "$d/engine.log" >&2
            exit 1
        fi
        sleep 0.05
    done
    [ -n "${launched[$e]:-}" ] && eng_log "engine $e: answers $(eng_since "$t_start")s after the start"
done

# 6. The image in each engine (both at once).
imports=()
for e in $ENG_ALL; do
    have=$(docker -H "unix://$(eng_sock "$e")" image inspect \
        -f '{{index .Config.Labels "io.axion.test-image"}}' "$ENG_IMAGE" 2>/dev/null || true)
    [ "$have" = "$ENG_IMAGE_RECIPE" ] && continue
    docker -H "unix://$(eng_sock "$e")" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' \
        -c "LABEL io.axion.test-image=$ENG_IMAGE_RECIPE" "$tarball" "$ENG_IMAGE" >/dev/null &
    imports+=("$!:$e")
done
for i in "${imports[@]}"; do
    wait "${i%%:*}" || eng_die "engine ${i#*:}: docker import of $ENG_IMAGE failed"
    eng_log "engine ${i#*:}: imported $ENG_IMAGE"
done

# 7. What the tests need.
{
    echo "# Written by tests/env/engines-up.sh; removed by engines-down.sh. KEY=value lines;"
    echo "# in a shell: set -a; . $ENG_ENV_FILE; set +a. See docs/internals/engines-env.md."
    for e in $ENG_ALL; do
        E=${e^^}
        echo "AXION_ENGINE_${E}_HOST=unix://$(eng_sock "$e")"
        echo "AXION_ENGINE_${E}_SOCKET=$(eng_sock "$e")"
        echo "AXION_ENGINE_${E}_ADDR=$(eng_addr "$e")"
        echo "AXION_ENGINE_${E}_NETNS=$(eng_netns "$e")"
        echo "AXION_ENGINE_${E}_HOSTNAME=$(eng_hostname "$e")"
        echo "AXION_ENGINE_${E}_PIDFILE=$(eng_pidfile "$e")"
        echo "AXION_ENGINE_${E}_LOG=$ENG_DIR/$e/engine.log"
    done
    echo "AXION_ENGINE_SUBNET=$ENG_SUBNET"
    echo "AXION_ENGINE_SWARM_POOL=$ENG_SWARM_POOL"
    echo "AXION_ENGINE_HEARTBEAT=1s"
    echo "AXION_ENGINE_IMAGE=$ENG_IMAGE"
} >"$ENG_ENV_FILE.new"
mv -f "$ENG_ENV_FILE.new" "$ENG_ENV_FILE"

summary=""
for e in $ENG_ALL; do summary="$summary, $e $(eng_rss_mib "$e") MiB"; done
eng_log "ready in $(eng_since "$t_start")s (resident memory${summary#,}); $ENG_ENV_FILE"
