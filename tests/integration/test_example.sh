#!/usr/bin/env bash
# The example the README's run command deploys (examples/hello) converges on the local test
# image: applied with the CLI and reconciled by one-shot passes (no daemon), under a stack name
# of its own so that a user's `make run` stack is left alone.
set -euo pipefail
src=${AXION_SOURCE_DIR:?}
bin=${AXION_AGENT_BIN:?}
dir=$(mktemp -d /tmp/axt-example-XXXXXX)
stack=axtex
export AXION_AGENT__AGENT__STATE_DIR=$dir/state AXION_AGENT__AGENT__ID=axt-example-$$
export AXION_AGENT__LOCAL__SOCKET=$dir/agent.sock
: >"$dir/agent.toml"
agent() { "$bin" --config "$dir/agent.toml" "$@"; }
cleanup() {
    agent rm "$stack" >/dev/null 2>&1 && agent reconcile >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do
        docker network ls --format '{{.Name}}' | grep -q "^${stack}_" || break
        agent reconcile >/dev/null 2>&1 || true
        sleep 0.5
    done
    rm -rf "$dir"
}
trap cleanup EXIT

agent apply -f "$src/examples/hello/compose.yml" -n "$stack"
agent reconcile
state=""
for _ in $(seq 1 120); do
    agent reconcile >/dev/null || true
    state=$(agent status "$stack" | head -1)
    case "$state" in *converged*) break ;; esac
    sleep 0.5
done
echo "$state"
case "$state" in *converged*) ;; *) echo "example did not converge" >&2; agent status "$stack" >&2; exit 1 ;; esac
agent status "$stack" | grep -q "web .* 2/2 running" || { agent status "$stack" >&2; exit 1; }
# the web service answers with the page the config carries
cid=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_web" | head -1)
page=$(docker exec "$cid" wget -q -O - http://127.0.0.1:8080/)
[ "$page" = "<h1>hello from axion</h1>" ] || { echo "page: $page" >&2; exit 1; }
echo "example: converged and serving"
