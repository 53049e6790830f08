#!/usr/bin/env bash
# The two test engines of tests/env/engines-up.sh work as two swarm nodes and come and go
# cleanly. With the docker CLI on A and B: A inits a swarm advertised on its namespace address
# (1 s dispatcher heartbeat), B joins as a worker (the token through the Engine API from stdin,
# never in argv), A lists B Ready, a 2-replica dnsrr service with a spread placement preference
# runs one task on each node and its overlay network carries traffic from B to A, B leaves and A
# sees it Down, A leaves; both engines are back to "inactive". Then the environment itself:
# engines-up.sh when up changes nothing, engines-down.sh leaves no process, mount, namespace,
# interface, cgroup or file, a second engines-down.sh does nothing, and engines-up.sh brings
# them back. The system engine is the same before and after.
# Engines that were up are left up and outside any swarm, also when a step fails; engines that
# were not up are brought up here and taken down at the end.
set -euo pipefail
src=${AXION_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
envsh=$src/tests/env
export AXION_ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}
ENG_SELF=test_engines_env
# shellcheck source=tests/env/engines-lib.sh
. "$envsh/engines-lib.sh"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "== $*"; }
# wait_for SECONDS WHAT COMMAND...: runs COMMAND until it succeeds, or fails the test.
wait_for() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + secs))
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "$what: not within ${secs}s"
        sleep 0.1
    done
}
da() { docker -H "$AXION_ENGINE_A_HOST" "$@"; }
db() { docker -H "$AXION_ENGINE_B_HOST" "$@"; }
sysd() { DOCKER_HOST=unix:///var/run/docker.sock docker "$@"; }
load_env() {
    [ -s "$ENG_ENV_FILE" ] || fail "$ENG_ENV_FILE is missing after engines-up.sh"
    set -a
    # shellcheck disable=SC1090
    . "$ENG_ENV_FILE"
    set +a
}
state() { docker -H "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }

# Takes engine $1 (a DOCKER_HOST) out of any swarm, with what the swarm left on it.
reset_engine() {
    local h=$1 s _
    for _ in 1 2 3; do
        s=$(state "$h") || return 1
        [ "$s" = inactive ] && break
        docker -H "$h" swarm leave --force >/dev/null 2>&1 || true
    done
    docker -H "$h" ps -aq --filter label=com.docker.swarm.task | xargs -r docker -H "$h" rm -f >/dev/null 2>&1
    docker -H "$h" network rm docker_gwbridge >/dev/null 2>&1 || true
    [ "$(state "$h")" = inactive ]
}

brought_up=0
sys_before=$(sysd info --format '{{.ID}} {{.Swarm.NodeID}}' 2>/dev/null || true)
cleanup() {
    local rc=$?
    set +e
    trap - EXIT
    if [ -s "$ENG_ENV_FILE" ] && eng_answers a && eng_answers b; then
        reset_engine "$AXION_ENGINE_A_HOST" || echo "cleanup: engine A is not inactive" >&2
        reset_engine "$AXION_ENGINE_B_HOST" || echo "cleanup: engine B is not inactive" >&2
    elif [ "$brought_up" = 0 ]; then
        echo "cleanup: bringing the engines back up" >&2
        "$envsh/engines-up.sh" || rc=1
    fi
    if [ "$brought_up" = 1 ]; then "$envsh/engines-down.sh" || rc=1; fi
    exit "$rc"
}
trap cleanup EXIT

if [ -s "$ENG_ENV_FILE" ] && eng_answers a && eng_answers b; then
    echo "engines are up ($ENG_ENV_FILE)"
else
    echo "engines are not up: bringing them up for this test"
    brought_up=1
    "$envsh/engines-up.sh"
fi
load_env

step "two engines of their own, outside any swarm"
for e in a b; do
    E=${e^^}
    h=AXION_ENGINE_${E}_HOST ns=AXION_ENGINE_${E}_NETNS
    info=$(docker -H "${!h}" info --format '{{.Name}} {{.DockerRootDir}} {{.Swarm.LocalNodeState}}')
    [ "$info" = "$(eng_hostname "$e") $ENG_DIR/$e/data inactive" ] ||
        fail "engine $e: name, data root, swarm state: $info (a previous test left a swarm?)"
    docker -H "${!h}" image inspect "$AXION_ENGINE_IMAGE" >/dev/null || fail "engine $e lacks $AXION_ENGINE_IMAGE"
    [ -z "$(ip -n "${!ns}" route show default)" ] || fail "namespace ${!ns} has a default route"
    pid=$(eng_daemon_pid "$e") || fail "engine $e: no live daemon in its pid file"
    for p in $(pgrep -x dockerd) $(pidof dockerd); do
        [ "$p" != "$pid" ] || fail "pgrep/pidof dockerd sees engine $e's daemon"
    done
done
[ "$(da info --format '{{.ID}}')" != "$(db info --format '{{.ID}}')" ] || fail "A and B have the same engine ID"

step "A inits a swarm on $AXION_ENGINE_A_ADDR (dispatcher heartbeat $AXION_ENGINE_HEARTBEAT)"
da swarm init --advertise-addr "$AXION_ENGINE_A_ADDR" --listen-addr "$AXION_ENGINE_A_ADDR:2377" \
    --default-addr-pool "$AXION_ENGINE_SWARM_POOL" --dispatcher-heartbeat "$AXION_ENGINE_HEARTBEAT" >/dev/null
[ "$(da info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')" = "active true" ] ||
    fail "A is not an active manager"

step "B joins as a worker"
token=$(da swarm join-token -q worker)
# printf is a shell builtin: the token reaches curl on stdin, never in an argv.
code=$(printf '{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"%s","RemoteAddrs":["%s:2377"],"JoinToken":"%s"}' \
    "$AXION_ENGINE_B_ADDR" "$AXION_ENGINE_A_ADDR" "$token" |
    curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$AXION_ENGINE_B_SOCKET" -X POST \
        -H 'Content-Type: application/json' --data-binary @- http://engine/v1.41/swarm/join)
[ "$code" = 200 ] || fail "POST /swarm/join on B: HTTP $code"
b_ready() { da node ls --format '{{.Hostname}} {{.Status}}' | grep -qx "$AXION_ENGINE_B_HOSTNAME Ready"; }
wait_for 30 "A lists B Ready" b_ready
[ "$(db info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')" = "active false" ] ||
    fail "B is not an active worker"
da node ls

step "a 2-replica dnsrr service with a spread placement runs one task on each node"
t=$(date +%s.%N)
da network create -d overlay --attachable axion-engtest-net >/dev/null
da service create -d --name axion-engtest --replicas 2 --endpoint-mode dnsrr \
    --placement-pref spread=node.id --network axion-engtest-net --no-resolve-image \
    --stop-signal KILL --stop-grace-period 1s "$AXION_ENGINE_IMAGE" sleep 3600 >/dev/null
running() {
    [ "$(da service ps axion-engtest --filter desired-state=running --format '{{.CurrentState}}' |
        grep -c '^Running')" = 2 ]
}
wait_for 60 "2 tasks running" running
nodes=$(da service ps axion-engtest --filter desired-state=running --format '{{.Node}}' | sort | paste -sd' ')
[ "$nodes" = "$AXION_ENGINE_A_HOSTNAME $AXION_ENGINE_B_HOSTNAME" ] || fail "tasks on: $nodes"
echo "tasks running on $nodes after $(eng_since "$t")s"
ca=$(da ps -q --filter label=com.docker.swarm.service.name=axion-engtest)
cb=$(db ps -q --filter label=com.docker.swarm.service.name=axion-engtest)
[ -n "$ca" ] && [ -n "$cb" ] || fail "no task container on A ($ca) or B ($cb)"
ip_a=$(da inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$ca")
db exec "$cb" ping -c 1 -W 5 "$ip_a" >/dev/null || fail "B's task cannot reach A's task at $ip_a over the overlay"
echo "overlay: B's task reaches A's task at $ip_a"
echo "memory with a task each: A $(eng_rss_mib a) MiB, B $(eng_rss_mib b) MiB resident"
da service rm axion-engtest >/dev/null
no_tasks() { [ -z "$(db ps -aq --filter label=com.docker.swarm.task)" ]; }
wait_for 30 "B's task container removed" no_tasks

step "B leaves; A sees it Down"
b_id=$(db info --format '{{.Swarm.NodeID}}')
t=$(date +%s.%N)
db swarm leave >/dev/null
b_down() { [ "$(da node inspect "$b_id" --format '{{.Status.State}}')" = down ]; }
wait_for 30 "A sees B down" b_down
echo "A sees B down $(eng_since "$t")s after it left"
da node rm "$b_id" >/dev/null
[ "$(state "$AXION_ENGINE_B_HOST")" = inactive ] || fail "B is not inactive after leaving"

step "A leaves (forced: the last manager)"
da network rm axion-engtest-net >/dev/null
da swarm leave --force >/dev/null
reset_engine "$AXION_ENGINE_A_HOST" || fail "A is not inactive after leaving"
reset_engine "$AXION_ENGINE_B_HOST" || fail "B is not inactive"

step "engines-up.sh on running engines changes nothing"
pids_before="$(eng_daemon_pid a) $(eng_daemon_pid b)"
"$envsh/engines-up.sh"
[ "$(eng_daemon_pid a) $(eng_daemon_pid b)" = "$pids_before" ] || fail "engines-up.sh restarted an engine"

step "engines-down.sh leaves nothing behind"
"$envsh/engines-down.sh"
check_clean() {
    local m p
    [ ! -e "$ENG_ENV_FILE" ] || fail "$ENG_ENV_FILE left"
    [ ! -e "$ENG_DIR" ] || fail "$ENG_DIR left"
    # mounts, in any mount namespace
    m=$(grep -lF -e " $ENG_DIR" -e " /run/netns/axion-eng-" /proc/[0-9]*/mountinfo 2>/dev/null || true)
    [ -z "$m" ] || fail "mounts of the engines left, seen by: $m"
    ! grep -qE 'axion-eng|axion-engine' /proc/mounts || fail "/proc/mounts: $(grep -E 'axion-eng' /proc/mounts)"
    # network namespaces and interfaces
    ! ip netns list | grep -q '^axion-eng-' || fail "network namespaces left: $(ip netns list)"
    ! ip -o link show | grep -q 'axion-eng' || fail "interfaces left: $(ip -o link show | grep axion-eng)"
    # cgroups
    m=$(find /sys/fs/cgroup -maxdepth 2 -name 'axion-engine-*' 2>/dev/null)
    [ -z "$m" ] || fail "cgroups left: $m"
    # processes: by name and by binary (a zombie holds nothing but its pid: PID 1 on some
    # machines reaps the daemons, which it inherits, only a while after they end)
    p=$(ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 ~ /^axion-(engined|ctrd|shim)/')
    [ -z "$p" ] || fail "processes left: $p"
    for p in /proc/[0-9]*; do
        case $(readlink "$p/exe" 2>/dev/null) in "$ENG_DIR"/*) fail "process ${p#/proc/} runs a binary of the engines" ;; esac
    done
}
check_clean
echo "clean: no process, mount, namespace, interface, cgroup or file left"
"$envsh/engines-down.sh"
check_clean

step "engines-up.sh brings them back"
"$envsh/engines-up.sh"
load_env
for h in "$AXION_ENGINE_A_HOST" "$AXION_ENGINE_B_HOST"; do
    [ "$(state "$h")" = inactive ] || fail "$h: not inactive after engines-up.sh"
    docker -H "$h" image inspect "$AXION_ENGINE_IMAGE" >/dev/null || fail "$h lacks $AXION_ENGINE_IMAGE"
done

if [ -n "$sys_before" ]; then
    [ "$(sysd info --format '{{.ID}} {{.Swarm.NodeID}}' 2>/dev/null)" = "$sys_before" ] ||
        fail "the system engine changed: was $sys_before"
fi
echo "engines env: ok"
