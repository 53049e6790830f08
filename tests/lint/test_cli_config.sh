#!/usr/bin/env bash
# `axion-agent config check` with the built binary: a good file prints every value with its
# origin and masks the token; a malformed file, an unknown key, a bad environment value and a
# missing --config file each exit 1 with the message on stderr. Global options are honoured
# after the command too, every command refuses what it does not understand, and a config
# "file" that is not a regular file (FIFO, directory, device) is refused without blocking.
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

# Global options after the command are honoured (issue 13.5: `config check --config FILE`
# checked the defaults and said all was well).
expect_fail "axion-agent: $tmp/bad.toml:2:13: expected a value" \
    "$bin" config check --config "$tmp/bad.toml"
expect_fail "axion-agent: $tmp/bad.toml:2:13: expected a value" \
    "$bin" config check -c "$tmp/bad.toml"
expect_fail "axion-agent: $tmp/bad.toml:2:13: expected a value" \
    "$bin" config --config="$tmp/bad.toml" check
out=$("$bin" config check --config "$tmp/agent.toml" --set reconcile.concurrency=9 \
    --state-dir /srv/axion --log-level warn --local) || fail "global options after the command"
for want in "concurrency = 9 # flag --set reconcile.concurrency" \
    "state_dir = \"/srv/axion\" # flag --set agent.state_dir" \
    "enabled = true # flag --set local.enabled" "token = \"****\" # file $tmp/agent.toml:3"; do
    grep -qF -- "$want" <<<"$out" || { echo "$out" >&2; fail "output lacks: $want"; }
done
# Before and after: the later one wins, as flags do.
out=$("$bin" --set reconcile.concurrency=2 config check --set reconcile.concurrency=3) ||
    fail "--set before and after"
grep -qF "concurrency = 3 # flag" <<<"$out" || fail "the later --set should win"

# Every command refuses what it does not understand: unknown options, extra arguments, bad
# global values, options without their value; nothing runs.
expect_fail "axion-agent version: unknown option '--bogus'" "$bin" version --bogus
expect_fail "axion-agent version: unexpected argument 'extra'" "$bin" version extra
expect_fail "axion-agent config: unexpected argument 'extra'" "$bin" config check extra
expect_fail "axion-agent config: unknown subcommand 'chek'" "$bin" config chek
expect_fail "axion-agent config: missing argument" "$bin" config
# (run is pointed at this test's own directories: should it start, it must not touch the node's)
run=("$bin" --state-dir "$tmp/s" --set "local.socket=$tmp/agent.sock")
expect_fail "axion-agent run: unexpected argument 'now'" "${run[@]}" run now
expect_fail "axion-agent run: unknown option '--reset' (did you mean '--reset-corrupt-store'?)" \
    "${run[@]}" run --reset
expect_fail "axion-agent: unknown option '--conf' (did you mean '--config'?)" \
    "$bin" --conf "$tmp/agent.toml" config check
expect_fail "axion-agent config: unknown option '--conf' (did you mean '--config'?)" \
    "$bin" config check --conf "$tmp/agent.toml"
expect_fail "axion-agent status: unknown option '-x'" "$bin" status -x
expect_fail "axion-agent status: unexpected argument 'b'" "$bin" --state-dir "$tmp/s" status a b
expect_fail "axion-agent status: option '--output' needs a value" "$bin" status --output
expect_fail "axion-agent events: unexpected argument 'web'" "$bin" events web
expect_fail "axion-agent events: option '-s' needs a value" "$bin" events -s
expect_fail "axion-agent rm: missing argument" "$bin" rm
expect_fail "axion-agent rm: unexpected argument 'b'" "$bin" rm a b
expect_fail "axion-agent scale: unknown option '--replicas'" "$bin" scale a/b=1 --replicas 2
expect_fail "axion-agent stop: unexpected argument 'b'" "$bin" stop a b
expect_fail "axion-agent restart: missing argument" "$bin" restart
expect_fail "axion-agent apply: unexpected argument 'extra'" "$bin" apply -f x -n y extra
expect_fail "axion-agent apply: unknown option '--atach'" "$bin" apply --atach a=b
expect_fail "axion-agent reconcile: unknown option '--dryrun'" "$bin" reconcile --dryrun
expect_fail "axion-agent top: unexpected argument 'now'" "$bin" top now
expect_fail "axion-agent help: unexpected argument 'b'" "$bin" help a b
expect_fail "axion-agent: unknown command 'nope'" "$bin" help nope
expect_fail "axion-agent: --log-level: expected error, warn, info or debug, got \"loud\"" \
    "$bin" version --log-level loud
expect_fail "axion-agent: unknown option '--bogus'" "$bin" --bogus version
expect_fail "axion-agent: option '--config' needs a value" "$bin" --config

# Anything not a regular file given as a file is refused at once, by what it is: nothing
# blocks on a FIFO (timeout: a hang is a failure, exit 124).
mkfifo "$tmp/fifo"
expect_fail "cannot read config file $tmp/fifo: is a FIFO, not a regular file" \
    timeout 10 "$bin" -c "$tmp/fifo" config check
expect_fail "cannot read config file $tmp: is a directory, not a regular file" \
    timeout 10 "$bin" config check -c "$tmp"
expect_fail "cannot read config file /dev/zero: is a character device, not a regular file" \
    timeout 10 "$bin" -c /dev/zero config check
long="/$(head -c 5000 /dev/zero | tr '\0' a)"
expect_fail "the path is longer than 4095 bytes (it is refused, not cut)" \
    "$bin" -c "$long" config check
expect_fail "--set agent.state_dir: expected an absolute path of at most 4095 bytes" \
    "$bin" --state-dir "$long" config check

echo "cli config: all checks passed"
