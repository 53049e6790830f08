#!/usr/bin/env bash
# The unit passes `systemd-analyze verify` and its exposure (`systemd-analyze security`) is at
# most 2.0.
set -euo pipefail
src="${AXION_SOURCE_DIR:?}/systemd"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify wants the ExecStart binary to exist: point it at the built one.
sed "s|/usr/local/bin/axion-agent|${AXION_AGENT_BIN:?}|" "$src/axion-agent.service" >"$tmp/axion-agent.service"

out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/axion-agent.service" 2>&1 || true)
# Outside a booted systemd (containers, CI) verify warns about things of the host, not the unit
# (missing docker.service, no D-Bus); anything that names our unit file is a failure.
if echo "$out" | grep -F "axion-agent.service:" | grep -v "docker.service" ; then
    echo "systemd-analyze verify found problems in the unit" >&2
    exit 1
fi

sec=$(systemd-analyze security --offline=yes --no-pager "$tmp/axion-agent.service" 2>&1)
score=$(echo "$sec" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "$sec" | tail -20 >&2; echo "could not read the exposure level" >&2; exit 1; }
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || { echo "$sec" | grep -E '✗' >&2; echo "exposure $score > 2.0" >&2; exit 1; }

for f in axion-agent.sysusers axion-agent.tmpfiles; do
    [ -s "$src/$f" ] || { echo "missing $f" >&2; exit 1; }
done
echo "systemd: unit verified, exposure $score"
