#!/usr/bin/env bash
# axion-agent encode / decode as a careless operator uses them (no broker, no Docker): a
# directory, a device, a named FIFO nobody writes to, an empty manifest, bytes that are no UTF-8,
# flags of another kind, oversize stdin: each a clear error naming the place and exit 1, never a
# hang. decode shows what may be a secret (variable values, attached files, a join token) as
# its size unless --show-secrets.
set -euo pipefail
bin=${AXION_AGENT_BIN:?}
dir=$(mktemp -d /tmp/axt-cli-envelope-XXXXXX)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
printf 'services:\n  web:\n    image: busybox\n    secrets: [k]\nsecrets:\n  k:\n    file: ./key\n' >c.yml
printf 'topsecret-file\n' >key
fails=0
# expect_fail PATTERN ARGS...: exit 1 within 10 s, stderr matching PATTERN
expect_fail() {
    local pattern=$1 rc=0
    shift
    timeout 10 "$bin" "$@" </dev/null >out.bin 2>err.txt || rc=$?
    if [ "$rc" != 1 ] || ! grep -q -- "$pattern" err.txt; then
        echo "FAIL: $* -> exit $rc, stderr: $(cat err.txt), want /$pattern/" >&2
        fails=$((fails + 1))
    fi
}
g=(-n web --generation 1)
expect_fail ".: a directory, not a file" encode deploy -f . "${g[@]}"
expect_fail "/dev/zero: not a regular file or a pipe" encode deploy -f /dev/zero "${g[@]}"
mkfifo fifo
expect_fail "fifo: empty" encode deploy -f fifo "${g[@]}"
: >empty.yml
expect_fail "empty.yml: empty" encode deploy -f empty.yml "${g[@]}"
expect_fail "missing.yml: No such file" encode deploy -f missing.yml "${g[@]}"
expect_fail "attach ./: a directory" encode deploy -f c.yml "${g[@]}" --attach k=./
printf 'services: {}\n\xff\n' >bad.yml
expect_fail "deploy.compose: not UTF-8 text" encode deploy -f bad.yml "${g[@]}"
expect_fail "deploy.variables\[0\].value: not UTF-8 text" encode deploy -f c.yml "${g[@]}" \
    --var "P=$(printf '\xff')"
expect_fail "--replicas is for scale only" encode stop -n web --replicas 3
expect_fail "--service is for scale, stop, start and restart only" encode deploy -f c.yml \
    "${g[@]}" --service web
expect_fail "--generation is for deploy and remove only" encode stop -n web --generation 2
expect_fail "--generation: expected a number" encode remove -n web --generation -1
expect_fail "--generation: expected a number" encode remove -n web --generation 9223372036854775808
expect_fail "unknown kind" encode launch -n web
expect_fail "decode: --type: expected" decode --type nope

# oversize stdin: refused by size, not read into memory without end
rc=0
head -c 17000000 /dev/zero | "$bin" decode >/dev/null 2>err.txt || rc=$?
if [ "$rc" != 1 ] || ! grep -q "stdin: larger than 16777216 bytes" err.txt; then
    echo "FAIL: oversize stdin -> exit $rc, $(cat err.txt)" >&2
    fails=$((fails + 1))
fi
rc=0
printf '\xff\x01 not a Command' | "$bin" decode >/dev/null 2>err.txt || rc=$?
if [ "$rc" != 1 ] || ! grep -q "do not decode as axion.agent.v1.Command" err.txt; then
    echo "FAIL: junk on stdin -> exit $rc, $(cat err.txt)" >&2
    fails=$((fails + 1))
fi

# secrets: not in decode's output unless asked
"$bin" encode deploy -f c.yml "${g[@]}" --var PASS=hunter2-value --attach key=key \
    --command-id s-1 >rec.bin 2>/dev/null
"$bin" decode <rec.bin >plain.json
if grep -q "hunter2-value\|topsecret-file\|dG9wc2VjcmV0" plain.json ||
    ! grep -q '"value": "<redacted: 13 bytes' plain.json ||
    ! grep -q '"content": "<redacted: 15 bytes' plain.json; then
    echo "FAIL: decode shows secrets by default:" >&2
    cat plain.json >&2
    fails=$((fails + 1))
fi
"$bin" decode --show-secrets <rec.bin >shown.json
if ! grep -q "hunter2-value" shown.json || ! grep -q "topsecret-file" shown.json; then
    echo "FAIL: decode --show-secrets hides them:" >&2
    cat shown.json >&2
    fails=$((fails + 1))
fi
[ "$fails" = 0 ] || exit 1
echo "ok: encode/decode errors and secrets"
