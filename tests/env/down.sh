#!/usr/bin/env bash
# Stops what up.sh started (and only that).
set -uo pipefail
here=$(dirname "$0")
"$here/kafka-down.sh"
"$here/docker-down.sh"
