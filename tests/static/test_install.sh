#!/usr/bin/env bash
# scripts/install.sh for real, in a throwaway Debian bookworm root with systemd as PID 1: a
# container of our own (tests/env/rootfs.sh: debootstrap, docker import) that gets the static
# axion-agent. The Docker Engine the installed agent drives is the tests' system dockerd (the
# single-node swarm on 127.0.0.1): its socket is bind-mounted into the container as
# /run/docker.sock, and the container's `docker` group gets the socket's group id, as on a host
# where docker.io was installed before the agent.
#
# Install (token from standard input), the unit active under systemd, users, files, modes and
# owners; a second run changes nothing; the agent in local mode converges examples/hello
# (the daemon's loop: CLI apply as user axion, status from the store); the agent refuses a key
# readable by others, under systemd too; the IPAddressDeny drop-in from the config, enforced;
# --upgrade replaces the binary and restarts with the store kept (the Swarm services are not
# re-created); --uninstall leaves nothing but the state dir, a new install takes it up again;
# --uninstall --purge leaves nothing.
set -euo pipefail
src=${AXION_SOURCE_DIR:?}
bin=${AXION_STATIC_AGENT_BIN:?the static axion-agent (-DAXION_STATIC=ON)}
stack=axtinst
name=axt-install-$$
sock=/var/run/docker.sock
t0=$(date +%s)
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { echo "--- $(($(date +%s) - t0))s: $*"; }

ldd_out=$(ldd "$bin" 2>&1 || true)
grep -q "not a dynamic executable" <<<"$ldd_out" || fail "$bin is not a static executable: $ldd_out"
image=$("$src/tests/env/rootfs.sh")
work=$(mktemp -d /tmp/axt-install-XXXXXX)
cleanup() {
    set +e
    if [ -n "${KEEP:-}" ]; then
        echo "kept container $name" >&2
        return
    fi
    docker rm -f "$name" >/dev/null 2>&1
    for s in $(docker service ls -q --filter "label=com.docker.stack.namespace=$stack"); do
        docker service rm "$s" >/dev/null
    done
    for _ in $(seq 1 40); do
        docker network ls -q --filter "label=com.docker.stack.namespace=$stack" | grep -q . || break
        docker network ls -q --filter "label=com.docker.stack.namespace=$stack" | xargs -r docker network rm >/dev/null 2>&1
        sleep 0.5
    done
    docker config ls -q --filter "label=com.docker.stack.namespace=$stack" | xargs -r docker config rm >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# Every capability this host lets us have (docker's --privileged asks for all of them and fails
# where the bounding set lacks one, as CAP_SYS_RESOURCE in some sandboxes).
caps=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
    LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
    SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
    SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
    MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ)
# (0 to 37: the Engine of Debian bookworm, 20.10, knows no later ones)
bnd=$((16#$(awk '/^CapBnd/ { print $2 }' /proc/self/status)))
capargs=()
for i in "${!caps[@]}"; do
    if (((bnd >> i) & 1)); then capargs+=(--cap-add "${caps[$i]}"); fi
done

step "container $name from $image (systemd as PID 1)"
cp "$bin" "$work/axion-agent"
# The upgrade: the same program, other bytes (trailing data an ELF loader ignores).
cp "$bin" "$work/axion-agent.new"
printf 'axion-upgrade-test\n' >>"$work/axion-agent.new"
docker run -d --name "$name" --hostname axt-install "${capargs[@]}" \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    -v "$sock:/run/docker.sock" -v "$src:/src:ro" -v "$work:/pkg:ro" \
    --add-host cp.axion.test:127.0.0.5 --add-host kafka-1.axion.test:127.0.0.6 \
    "$image" /sbin/init >/dev/null
cx() { docker exec -i "$name" "$@"; }
cxs() { docker exec -i "$name" bash -c "$1"; }
state=""
for _ in $(seq 1 120); do
    state=$(cx systemctl is-system-running 2>/dev/null || true)
    case "$state" in running | degraded) break ;; esac
    sleep 0.5
done
case "$state" in running | degraded) ;; *) fail "systemd in the container: $state" ;; esac
[ "$(cx cat /proc/1/comm)" = systemd ] || fail "PID 1 is not systemd"

# docker.io was here first: its group has the socket's group id.
gid=$(stat -c %g "$sock")
cxs "groupadd -g $gid docker 2>/dev/null || groupadd -o -g $gid docker"
# What the root holds before the agent comes (to compare after --uninstall).
snapshot() {
    cxs 'find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
        -o -path /var/log/journal -o -path /var/lib/systemd -o -path /var/cache \) -prune \
        -o -print | sort; md5sum /etc/passwd /etc/group /etc/shadow /etc/gshadow'
}
snapshot >"$work/before.txt"

step "refusals: what install.sh will not do, and says why"
refused() { # expected-message args...
    local want=$1 out
    shift
    if out=$(cx /src/scripts/install.sh --binary /pkg/axion-agent "$@" 2>&1 </dev/null); then
        fail "install.sh $* succeeded"
    fi
    grep -qF -- "$want" <<<"$out" || fail "install.sh $*: expected \"$want\", got: $out"
    echo "  $*: $(grep -F -- "$want" <<<"$out" | head -1)"
}
refused "never given on the command line" --token s3cret --local
refused "a token is needed" --grpc-url https://cp.axion.test
refused "go with an install, not --upgrade" --upgrade --token-file /dev/null
refused "no token in it" --token-file - --local
cxs 'printf "tok\"en\n" >/tmp/badtoken'
refused "other than printable ASCII" --token-file /tmp/badtoken --local
refused "not installed here" --upgrade
# nothing of it stayed
cx test ! -e /etc/axion/agent.toml || fail "a refused install left a config"

step "install (token from standard input)"
token=axt-token-$$-$RANDOM
install() { cx /src/scripts/install.sh --binary /pkg/axion-agent --token-file - --local "$@"; }
echo "$token" | install >"$work/install1.out" || { cat "$work/install1.out"; fail "install.sh failed"; }
cat "$work/install1.out"
cx systemctl is-active --quiet axion-agent || fail "axion-agent is not active"
cx systemctl is-enabled --quiet axion-agent || fail "axion-agent is not enabled"
cx systemctl status --no-pager axion-agent | head -5
cx systemctl status --no-pager axion-agent | grep -q "Active: active (running)" || fail "systemctl status"
[ "$(cx systemctl show -P Type axion-agent)" = notify ] || fail "unit type"
[ "$(cx ps -o user= -p "$(cx systemctl show -P MainPID axion-agent)")" = axion ] || fail "the daemon does not run as axion"
ids=$(cx id axion)
grep -q "(docker)" <<<"$ids" || fail "axion is not in group docker: $ids"
grep -q "groups=.*$gid(docker)" <<<"$ids" || fail "axion's docker group is not the socket's: $ids"

step "files, modes, owners"
expect_stat() { # path mode owner:group
    local got
    got=$(cx stat -c '%a %U:%G' "$1") || fail "$1 missing"
    [ "$got" = "$2 $3" ] || fail "$1: $got, want $2 $3"
    echo "  $1 $got"
}
expect_stat /usr/local/bin/axion-agent 755 root:root
expect_stat /etc/systemd/system/axion-agent.service 644 root:root
expect_stat /usr/lib/sysusers.d/axion-agent.conf 644 root:root
expect_stat /usr/lib/tmpfiles.d/axion-agent.conf 644 root:root
expect_stat /etc/axion 750 root:axion
expect_stat /etc/axion/agent.toml 640 root:axion
expect_stat /var/lib/axion 700 axion:axion
expect_stat /var/lib/axion/store.db 600 axion:axion
cx grep -q "^token = \"$token\"$" /etc/axion/agent.toml || fail "the token is not in the config"
# the token reached the config through standard input only, and nothing logs it
! grep -q "$token" "$work/install1.out" || fail "install.sh printed the token"
! cx journalctl --no-pager -u axion-agent | grep -q "$token" || fail "the token is in the journal"
cx axion-agent version | grep -q "axion-agent" || fail "axion-agent version"
# what systemd thinks of the installed unit (tests/lint/test_systemd.sh checks the source)
verify=$(cx systemd-analyze verify /etc/systemd/system/axion-agent.service 2>&1 || true)
! grep -F "axion-agent.service:" <<<"$verify" || fail "systemd-analyze verify: $verify"
exposure=$(cx systemd-analyze security --no-pager axion-agent.service | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
awk -v s="$exposure" 'BEGIN { exit !(s != "" && s <= 2.0) }' || fail "exposure $exposure > 2.0"
echo "  exposure of the running unit: $exposure"

step "a second run changes nothing"
pid1=$(cx systemctl show -P MainPID axion-agent)
echo "$token" | install >"$work/install2.out" || { cat "$work/install2.out"; fail "second install.sh failed"; }
cat "$work/install2.out"
! grep -Eq "installed|wrote|restarting|starting" "$work/install2.out" || fail "the second run changed something"
[ "$(cx systemctl show -P MainPID axion-agent)" = "$pid1" ] || fail "the second run restarted the agent"

step "local mode: the daemon converges examples/hello"
cli() { cx runuser -u axion -- axion-agent "$@"; }
cli apply -f /src/examples/hello/compose.yml -n "$stack"
st=""
for _ in $(seq 1 240); do
    st=$(cli status "$stack" 2>/dev/null | head -1 || true)
    case "$st" in *converged*) break ;; esac
    sleep 0.5
done
echo "  $st"
case "$st" in *converged*) ;; *) cli status "$stack" >&2 || true; fail "the example did not converge" ;; esac
cli status "$stack" | grep -q "web .* 2/2 running" || fail "web is not 2/2"
cid=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_web" | head -1)
[ "$(docker exec "$cid" wget -q -O - http://127.0.0.1:8080/)" = "<h1>hello from axion</h1>" ] ||
    fail "the web service does not serve the page"
svc_ids=$(docker service ls -q --filter "label=com.docker.stack.namespace=$stack" | sort)
cx journalctl --no-pager -u axion-agent | grep -q "stack $stack is converged" || fail "the journal has no convergence"

step "a private key readable by others: the agent refuses to start, and says why"
cxs 'umask 022; echo not-a-key >/var/lib/axion/axt-test.key; chown axion:axion /var/lib/axion/axt-test.key; chmod 0644 /var/lib/axion/axt-test.key'
if cx systemctl restart axion-agent 2>/dev/null; then fail "the agent started with a 0644 key"; fi
for _ in $(seq 1 40); do
    cx journalctl --no-pager -u axion-agent | grep -q "axt-test.key (a private key in agent.state_dir): mode 0644" && break
    sleep 0.25
done
cx journalctl --no-pager -u axion-agent | grep "axt-test.key" | tail -1
cx journalctl --no-pager -u axion-agent | grep -q "axt-test.key (a private key in agent.state_dir): mode 0644 lets group and others read the private key" ||
    fail "the journal does not say why"
cxs 'chmod 0600 /var/lib/axion/axt-test.key && systemctl reset-failed axion-agent && systemctl start axion-agent'
cx systemctl is-active --quiet axion-agent || fail "not active with the key 0600"
cxs 'rm /var/lib/axion/axt-test.key'

step "the IPAddressDeny drop-in, generated from the config"
echo "$token" | install --grpc-url https://cp.axion.test:8443 \
    --kafka-brokers kafka-1.axion.test:9093,127.0.0.1:19093 --restrict-ip --ip-allow ::1 \
    >"$work/install3.out" || { cat "$work/install3.out"; fail "install.sh --restrict-ip failed"; }
cat "$work/install3.out"
cx cat /etc/systemd/system/axion-agent.service.d/ip-restrict.conf | grep -v '^#'
allow=$(cx systemctl show -P IPAddressAllow axion-agent)
deny=$(cx systemctl show -P IPAddressDeny axion-agent)
echo "  IPAddressAllow=$allow IPAddressDeny=$deny"
for a in 127.0.0.5 127.0.0.6 127.0.0.1 ::1; do
    grep -qw -- "$a" <<<"$allow" || fail "IPAddressAllow lacks $a"
done
[ -n "$deny" ] || fail "IPAddressDeny is empty"
cx systemctl is-active --quiet axion-agent || fail "not active with the drop-in"
# Enforced here: a service with the same properties reaches an allowed address (refused: no
# one listens) but not another (the packets are dropped: no answer at all).
cxs "cat >/run/systemd/system/axt-probe@.service <<EOF
[Service]
Type=oneshot
IPAddressDeny=any
IPAddressAllow=$allow
ExecStart=/usr/bin/timeout 3 /bin/bash -c 'exec 3<>/dev/tcp/%i/9'
EOF
systemctl daemon-reload"
probe() {
    cx systemctl start "axt-probe@$1.service" 2>/dev/null || true
    cx journalctl --no-pager -u "axt-probe@$1.service"
}
out=$(probe 127.0.0.5)
grep -q "Connection refused" <<<"$out" || fail "an allowed address: $out"
out=$(probe 127.0.0.7)
! grep -q "Connection refused" <<<"$out" || fail "a denied address was reached: $out"
grep -q "status=124" <<<"$out" || fail "a denied address: $out"
echo "  allowed 127.0.0.5: refused by the peer; 127.0.0.7: dropped"
echo "$token" | install --no-restrict-ip >/dev/null
cx test ! -e /etc/systemd/system/axion-agent.service.d/ip-restrict.conf || fail "--no-restrict-ip left the drop-in"

step "upgrade: a new binary, restarted, the store kept"
pid1=$(cx systemctl show -P MainPID axion-agent)
cx /src/scripts/install.sh --upgrade --binary /pkg/axion-agent.new | tee "$work/upgrade.out"
[ "$(cx sha256sum /usr/local/bin/axion-agent | cut -d' ' -f1)" = "$(sha256sum "$work/axion-agent.new" | cut -d' ' -f1)" ] ||
    fail "the binary was not replaced"
[ "$(cx systemctl show -P MainPID axion-agent)" != "$pid1" ] || fail "the agent was not restarted"
cx systemctl is-active --quiet axion-agent || fail "not active after the upgrade"
cx grep -q "^token = \"$token\"$" /etc/axion/agent.toml || fail "the upgrade lost the config"
for _ in $(seq 1 60); do
    st=$(cli status "$stack" 2>/dev/null | head -1 || true)
    case "$st" in *"generation 1"*converged*) break ;; esac
    sleep 0.5
done
case "$st" in *"generation 1"*converged*) echo "  $st" ;; *) fail "after the upgrade: $st" ;; esac
[ "$(docker service ls -q --filter "label=com.docker.stack.namespace=$stack" | sort)" = "$svc_ids" ] ||
    fail "the upgrade re-created the Swarm services"
out=$(cx /src/scripts/install.sh --upgrade --binary /pkg/axion-agent.new)
grep -q "already up to date" <<<"$out" || fail "a second --upgrade with the same binary: $out"

step "the stack removed (the Swarm is left clean), then --uninstall"
cli rm "$stack"
for _ in $(seq 1 120); do
    docker service ls -q --filter "label=com.docker.stack.namespace=$stack" | grep -q . || break
    sleep 0.5
done
! docker service ls -q --filter "label=com.docker.stack.namespace=$stack" | grep -q . || fail "the stack was not pruned"
cx /src/scripts/install.sh --uninstall | tee "$work/uninstall.out"
cx systemctl cat axion-agent >/dev/null 2>&1 && fail "the unit is still there"
! cx getent passwd axion >/dev/null || fail "the user axion is still there"
cx test -f /var/lib/axion/store.db || fail "the state dir was not kept"
snapshot >"$work/after.txt"
left=$(diff "$work/before.txt" "$work/after.txt" | grep '^[<>]' || true)
echo "  left behind: $(echo "$left" | tr '\n' ' ')"
# the state dir, and the backups and lock file of the user database (sysusers, userdel)
bad=$(grep -v -E '^> (/var/lib/axion(/|$)|/etc/(passwd|group|shadow|gshadow)-$|/etc/\.pwd\.lock$)' <<<"$left" | grep . || true)
[ -z "$bad" ] || fail "--uninstall left more than the state dir: $bad"

step "a new install takes the state dir up; --uninstall --purge leaves nothing"
echo "$token" | install >/dev/null
cx systemctl is-active --quiet axion-agent || fail "not active after a re-install"
cli events --stack "$stack" --limit 200 | grep -q "$stack" || fail "the re-installed agent does not know the store"
expect_stat /var/lib/axion/store.db 600 axion:axion
cx /src/scripts/install.sh --uninstall --purge >/dev/null
snapshot >"$work/after-purge.txt"
left=$(diff "$work/before.txt" "$work/after-purge.txt" | grep '^[<>]' || true)
bad=$(grep -v -E '^> (/etc/(passwd|group|shadow|gshadow)-$|/etc/\.pwd\.lock$)' <<<"$left" | grep . || true)
[ -z "$bad" ] || fail "--uninstall --purge left something: $bad"
echo "install: $(($(date +%s) - t0))s, all steps passed"
