#!/usr/bin/env bash
# Stops what up.sh started (and only that).
set -uo pipefail
here=$(dirname "$0")
rc=0
"$here/engines-down.sh" || rc=1
"$here/kafka-down.sh" || rc=1
"$here/docker-down.sh" || rc=1
exit $rc
