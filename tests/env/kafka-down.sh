#!/usr/bin/env bash
# Stops the broker kafka-up.sh started (by $AXION_ENV_DIR/kafka/kafka.pid, and only if that pid
# still is that broker), and removes $AXION_ENV_DIR/kafka.env. Idempotent. SIGTERM first (a
# controlled shutdown); SIGKILL when it has not exited within AXION_KAFKA_STOP_TIMEOUT seconds
# (default 30). The broker's config, data and logs stay in $AXION_ENV_DIR/kafka for a look after
# the run, and for `kafka-up.sh --keep-data`; kafka-up.sh without it starts on a new store.
set -uo pipefail
ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}
DIR=$ENV_DIR/kafka
CONF=$DIR/server.properties
PIDFILE=$DIR/kafka.pid
STOP_TIMEOUT=${AXION_KAFKA_STOP_TIMEOUT:-30}
log() { echo "kafka-down: $*" >&2; }
# kill -0 also succeeds on a zombie (a broker that died as kafka-up.sh's child, not yet reaped).
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${s:0:1}" != Z ]; }

rm -f "$ENV_DIR/kafka.env" "$ENV_DIR/kafka.env.new"
pid=$(cat "$PIDFILE" 2>/dev/null || true)
# Only our broker: the pid may have been reused since.
if [ -z "$pid" ] || ! tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $CONF"; then
    # Not running (killed by a test, or never started): a class archive it may have begun is
    # not trusted.
    if [ -f "$DIR/cds-pending" ] && read -r tmp _ <"$DIR/cds-pending"; then rm -f "$tmp"; fi
    rm -f "$PIDFILE" "$DIR/cds-pending"
    exit 0
fi
t0=$(date +%s%N)
kill -TERM "$pid" 2>/dev/null
killed=""
end=$((SECONDS + STOP_TIMEOUT))
while alive "$pid" && [ $SECONDS -lt $end ]; do sleep 0.1; done
if alive "$pid"; then
    log "broker (pid $pid) still runs ${STOP_TIMEOUT}s after SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null
    killed=1
    end=$((SECONDS + 10))
    while alive "$pid" && [ $SECONDS -lt $end ]; do sleep 0.1; done
fi
rm -f "$PIDFILE"
# The class archive the broker wrote at its exit (kafka-up.sh): kept only after a clean exit.
if [ -f "$DIR/cds-pending" ] && read -r tmp final <"$DIR/cds-pending"; then
    if [ -z "$killed" ] && [ -s "$tmp" ]; then mv -f "$tmp" "$final"; else rm -f "$tmp"; fi
    rm -f "$DIR/cds-pending"
fi
log "stopped the broker (pid $pid) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
