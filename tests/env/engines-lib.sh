# shellcheck shell=bash disable=SC2034
# Sourced (not run) by engines-up.sh, engines-down.sh and engines-run.sh: the names, paths and
# addresses of the two test Docker Engines A and B, and how to find everything that belongs to
# them. See docs/internals/engines-env.md.
#
# Everything carries an "axion" prefix so that nothing collides with the system engine or with
# other users of this machine:
#   network namespaces  axion-eng-a, axion-eng-b  (one veth pair between them, no route out)
#   veth ends           axion-eng-a0 10.231.0.1/24 (in axion-eng-a), axion-eng-b0 10.231.0.2/24
#   cgroups             /axion-engine-a, /axion-engine-b in every hierarchy (containers under
#                       them by --cgroup-parent; the daemon and its containerd in .../daemon)
#   files               $AXION_ENV_DIR/engines/{a,b}/ (socket, pid file, data and exec roots)
#   process names       axion-engined, axion-ctrd, axion-shim-runc-v2 (copies or hard links of
#                       dockerd, containerd, containerd-shim-runc-v2: `pgrep -x dockerd`,
#                       `pidof dockerd` and `pgrep -f containerd-shim` never see them)

ENG_ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}
ENG_DIR=$ENG_ENV_DIR/engines
ENG_BIN=$ENG_DIR/bin
ENG_ENV_FILE=$ENG_ENV_DIR/engines.env
ENG_LOCK=$ENG_ENV_DIR/engines.lock
ENG_ALL="a b"
ENG_SUBNET=10.231.0.0/24
ENG_PREFIX_LEN=24
# Overlay networks of a swarm the tests init (docker swarm init --default-addr-pool), and the
# engines' local networks (docker_gwbridge): both only ever exist inside the two namespaces.
ENG_SWARM_POOL=10.232.0.0/16
ENG_LOCAL_POOL=10.233.0.0/16
ENG_IMAGE=${AXION_TEST_IMAGE:-axion-test/busybox:1}
# The recipe of the image; the same recipe and label as tests/env/docker-up.sh.
ENG_IMAGE_RECIPE=2
ENG_DAEMON=axion-engined
ENG_CONTAINERD=axion-ctrd
ENG_SHIM=axion-shim-runc-v2

eng_addr() {
    case $1 in
    a) echo 10.231.0.1 ;;
    b) echo 10.231.0.2 ;;
    *) return 1 ;;
    esac
}
eng_netns() { echo "axion-eng-$1"; }
eng_ifname() { echo "axion-eng-${1}0"; }
eng_hostname() { echo "axion-eng-$1"; }
eng_cgroup() { echo "axion-engine-$1"; }
eng_sock() { echo "$ENG_DIR/$1/docker.sock"; }
eng_pidfile() { echo "$ENG_DIR/$1/docker.pid"; }

eng_log() { echo "${ENG_SELF:-engines}: $*" >&2; }
# The words of $1 (a list, one a line) on one line.
eng_words() { printf '%s\n' "$1" | paste -sd' '; }
eng_die() {
    eng_log "$*"
    exit 1
}

# Checks what the paths must satisfy: unix socket paths are limited to 107 bytes (containerd's
# socket lies deepest), and /run is replaced by an empty tmpfs inside each engine.
eng_check_paths() {
    case $ENG_DIR in
    /*) ;;
    *) eng_die "AXION_ENV_DIR must be an absolute path (is: $ENG_ENV_DIR)" ;;
    esac
    case $ENG_DIR/ in
    /run/* | /var/run/*) eng_die "AXION_ENV_DIR $ENG_ENV_DIR is under /run, which each engine masks; choose another" ;;
    esac
    local longest="$ENG_DIR/a/exec/containerd/containerd.sock.ttrpc"
    [ "${#longest}" -le 100 ] ||
        eng_die "AXION_ENV_DIR $ENG_ENV_DIR is too long: socket path $longest exceeds 100 bytes"
}

# The cgroup hierarchies the engines' processes are tracked in: the unified hierarchy when the
# machine runs cgroup v2 only, else the v1 hierarchies of the pids and memory controllers.
eng_track_roots() {
    if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
        echo /sys/fs/cgroup
        return
    fi
    awk '$3 == "cgroup" && $4 ~ /(^|,)(pids|memory)(,|$)/ { print $2 }' /proc/self/mounts
}

# Every cgroup hierarchy mounted here (containers get a cgroup under the parent in each).
eng_all_roots() {
    awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts
}

# The pids of every live process of engine $1: those in its cgroup subtrees (daemon,
# containerd, shims, containers) and those in its network namespace. Zombies are in neither.
eng_pids() {
    local e=$1 ns root
    ns=$(eng_netns "$e")
    {
        for root in $(eng_all_roots); do
            [ -d "$root/$(eng_cgroup "$e")" ] &&
                find "$root/$(eng_cgroup "$e")" -name cgroup.procs -exec cat {} + 2>/dev/null
        done
        [ -e "/run/netns/$ns" ] && ip netns pids "$ns" 2>/dev/null
        true
    } | sort -un
}

# The pids of every live process running one of the engines' renamed binaries (of either
# engine, wherever it escaped to).
eng_bin_pids() {
    # (find complains about processes that end while it looks: not an error here)
    { find /proc -mindepth 2 -maxdepth 2 -name exe -lname "$ENG_BIN/*" 2>/dev/null || true; } |
        awk -F/ '{ print $3 }'
}

# The pid of engine $1's daemon when it is alive (the pid file names a live axion-engined).
eng_daemon_pid() {
    local f pid
    f=$(eng_pidfile "$1")
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$ENG_DAEMON" ] || return 1
    grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && return 1
    echo "$pid"
}

# True when engine $1 answers on its socket.
eng_answers() {
    [ "$(curl -s -m 2 --unix-socket "$(eng_sock "$1")" http://engine/_ping 2>/dev/null)" = OK ]
}

# Seconds since $1 (a `date +%s.%N` value), two decimals.
eng_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

# Resident memory of engine $1's processes, in MiB (sum of VmRSS).
eng_rss_mib() {
    local p sum=0 kb
    for p in $(eng_pids "$1"); do
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || kb=0
        sum=$((sum + ${kb:-0}))
    done
    echo $((sum / 1024))
}
