#!/usr/bin/env bash
# `axion-agent config check` with the built binary: a good file prints every value with its
# origin and masks the token; a malformed file, an unknown key, a bad environment value and a
# missing --config file each exit 1 with the message on stderr.
set -euo pipefail
bin="${AXION_AGENT_BIN:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Only what this test sets may reach the agent.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^AXION_AGENT__' || true)

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_fail WANT_STDERR_SUBSTRING COMMAND...: exit code 1, message on stderr, nothing on stdout.
expect_fail() {
    local want=$1; shift
    local rc=0
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" -eq 1 ] || { cat "$tmp/err" >&2; fail "exit $rc, expected 1: $*"; }
    grep -qF -- "$want" "$tmp/err" || { cat "$tmp/err" >&2; fail "stderr lacks: $want"; }
    [ ! -s "$tmp/out" ] || fail "stdout not empty: $(cat "$tmp/out")"
}

cat >"$tmp/agent.toml" <<'TOML'
# test config
[agent]
token = "super-secret-token"
log_level = "debug"

[control_plane]
grpc_url = "https://127.0.0.1:8443"
heartbeat_interval = "1m30s"

[kafka]
brokers = ["127.0.0.1:9092"]
TOML
chmod 0640 "$tmp/agent.toml" # it holds the token: the agent refuses it readable by all

# A good file: exit 0, origins, token masked.
out=$(AXION_AGENT__RECONCILE__CONCURRENCY=8 "$bin" --config "$tmp/agent.toml" \
    --set kafka.brokers=a:9092,b:9092 config check) || fail "config check on a good file failed"
grep -qF "super-secret-token" <<<"$out" && fail "the token is printed in clear"
for want in \
    "token = \"****\" # file $tmp/agent.toml:3" \
    "log_level = \"debug\" # file $tmp/agent.toml:4" \
    "heartbeat_interval = \"1m30s\" # file $tmp/agent.toml:8" \
    "concurrency = 8 # env AXION_AGENT__RECONCILE__CONCURRENCY" \
    "brokers = [\"a:9092\", \"b:9092\"] # flag --set kafka.brokers" \
    "state_dir = \"/var/lib/axion\" # default" \
    "# default (hostname)"; do
    grep -qF -- "$want" <<<"$out" || { echo "$out" >&2; fail "output lacks: $want"; }
done

# The token from the environment is masked too, and names its variable.
out=$(AXION_AGENT__AGENT__TOKEN=env-secret "$bin" -c "$tmp/agent.toml" config check)
grep -qF "env-secret" <<<"$out" && fail "the env token is printed in clear"
grep -qxF 'token = "****" # env AXION_AGENT__AGENT__TOKEN' <<<"$out" || fail "env token line"

# A malformed file.
printf '[agent]\nlog_level = yes\n' >"$tmp/bad.toml"
expect_fail "axion-agent: $tmp/bad.toml:2:13: expected a value (string, integer, boolean or array), got \"yes\"" \
    "$bin" --config "$tmp/bad.toml" config check

# A malformed secret: the place, never the value.
printf '[agent]\ntoken = s3cr3t-value\n' >"$tmp/badtok.toml"
expect_fail "axion-agent: $tmp/badtok.toml:2:9: the value of agent.token is not valid TOML (not shown: the key holds a secret); write it as a quoted string" \
    "$bin" --config "$tmp/badtok.toml" config check

# An unknown key, with a hint.
printf '[agent]\ntoken = "x"\n\ntokn = "y"\n' >"$tmp/unknown.toml"
expect_fail "$tmp/unknown.toml:4:1: unknown key \"agent.tokn\" (did you mean \"agent.token\"?)" \
    "$bin" --config "$tmp/unknown.toml" config check

# A bad environment value names the variable.
expect_fail 'AXION_AGENT__RECONCILE__CONCURRENCY: expected an integer, got "lots"' \
    env AXION_AGENT__RECONCILE__CONCURRENCY=lots "$bin" -c "$tmp/agent.toml" config check

# An unknown variable, with a hint.
expect_fail 'AXION_AGENT__AGENT__TOKN: unknown variable (did you mean AXION_AGENT__AGENT__TOKEN?)' \
    env AXION_AGENT__AGENT__TOKN=x "$bin" -c "$tmp/agent.toml" config check

# A bad flag.
expect_fail '--set reconcile.concurrency: expected an integer from 1 to 64, got 0' \
    "$bin" -c "$tmp/agent.toml" --set reconcile.concurrency=0 config check

# An explicit config file must exist.
expect_fail "cannot read config file $tmp/nonexistent.toml: No such file or directory" \
    "$bin" --config "$tmp/nonexistent.toml" config check

echo "cli config: all checks passed"
