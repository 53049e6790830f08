#!/usr/bin/env bash
# The daemon refuses to start with a private key that group or others may read, or with a
# config that holds the token and that everyone may read, and says why; with the modes
# install.sh sets (key 0600, config 0640) it starts. No Docker Engine needed: the daemon
# starts without one (docker.socket points nowhere) and is stopped with SIGTERM.
set -euo pipefail
bin=${AXION_AGENT_BIN:?}
dir=$(mktemp -d /tmp/axt-modes-XXXXXX)
pid=
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
mkdir -m 0700 "$dir/state"
export AXION_AGENT__AGENT__STATE_DIR=$dir/state AXION_AGENT__LOCAL__SOCKET=$dir/agent.sock
export AXION_AGENT__DOCKER__SOCKET=$dir/no-docker.sock AXION_AGENT__LOCAL__ENABLED=true
fail() { echo "FAIL: $*" >&2; exit 1; }

# refused: expect exit 1 and a message containing $2
refused() {
    local what=$1 says=$2 out
    if out=$(timeout 20 "$bin" --config "$dir/agent.toml" run 2>&1); then
        fail "$what: the daemon started"
    fi
    grep -qF -- "$says" <<<"$out" || fail "$what: expected \"$says\" in: $out"
    echo "ok: $what: $(grep -F -- "$says" <<<"$out" | head -1)"
}

# starts: the daemon runs (its first log line after set-up), then stops on SIGTERM
starts() {
    local what=$1
    "$bin" --config "$dir/agent.toml" run 2>"$dir/run.log" &
    pid=$!
    for _ in $(seq 1 100); do
        grep -q "agent running" "$dir/run.log" && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/run.log" >&2; fail "$what: the daemon exited"; }
        sleep 0.1
    done
    grep -q "agent running" "$dir/run.log" || { cat "$dir/run.log" >&2; fail "$what: not running"; }
    kill -TERM "$pid"
    wait "$pid" || fail "$what: exit $? after SIGTERM"
    pid=
    echo "ok: $what: starts"
}

# a config that holds the token
printf '[agent]\ntoken = "s3cret-token"\n' >"$dir/agent.toml"
chmod 0644 "$dir/agent.toml"
refused "config 0644 with a token" "mode 0644 lets anyone read agent.token"
chmod 0640 "$dir/agent.toml"
starts "config 0640 with a token"
chmod 0666 "$dir/agent.toml"
refused "config 0666" "lets anyone change the agent's config"
chmod 0640 "$dir/agent.toml"

# a private key in the state dir (the gRPC identity's agent-key-*.pem, the secrets *.key)
for f in agent-key-1700000000000.pem secrets.key; do
    printf 'not really a key\n' >"$dir/state/$f"
    chmod 0644 "$dir/state/$f"
    refused "$f 0644" "$dir/state/$f (a private key in agent.state_dir): mode 0644 lets group and others read the private key"
    chmod 0640 "$dir/state/$f"
    refused "$f 0640" "mode 0640 lets its group read the private key"
    chmod 0600 "$dir/state/$f"
done
starts "keys 0600"

# a key file the config names
printf 'not really a key\n' >"$dir/client.key"
chmod 0604 "$dir/client.key"
printf '[agent]\ntoken = "s3cret-token"\n[kafka]\nkey_file = "%s"\n' "$dir/client.key" >"$dir/agent.toml"
chmod 0640 "$dir/agent.toml"
refused "kafka.key_file 0604" "$dir/client.key (kafka.key_file): mode 0604 lets others read"
chmod 0600 "$dir/client.key"
starts "kafka.key_file 0600"
# the secret never appears in what the daemon says
! grep -q "s3cret-token" "$dir/run.log" || fail "the token was logged"
echo "file modes: refused and explained, accepted when right"
