#!/usr/bin/env bash
# Starts every service the tests need. Each piece is idempotent and records what it started.
set -euo pipefail
here=$(dirname "$0")
"$here/docker-up.sh"
# Two more engines of the tests' own, in network namespaces (swarm membership tests).
"$here/engines-up.sh"
"$here/kafka-up.sh"
