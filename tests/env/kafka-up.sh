#!/usr/bin/env bash
# Brings up the real Apache Kafka the tests talk to: one combined broker+controller (KRaft) on
# 127.0.0.1, from the Maven Central jars (org.apache.kafka:kafka_2.13 and its runtime
# dependencies, fetched with mvn once and cached), with a fresh data directory, a test CA and
# certificates made with openssl, and waits until it really answers (metadata, a topic
# created, described and written to over plaintext, metadata over TLS with a client
# certificate). Idempotent: a broker this script started that still answers is left running.
# It records what it started in $AXION_ENV_DIR/kafka/kafka.pid, so kafka-down.sh stops only that.
#
# Listeners (all on 127.0.0.1; AXION_KAFKA_PORT moves the block):
#   19092  PLAINTEXT
#   19093  SSL, client certificate required (broker certificate for IP 127.0.0.1 and localhost)
#   19094  CONTROLLER (KRaft, not for clients)
#   19095  SSL, client certificate required, with a broker certificate from the test CA made
#          for another name (wrong-name.invalid): a client that verifies the server name
#          must refuse it
# Auto-creation of topics is off: tests create theirs (tests/support/kafka_peer.py).
# Messages up to 32 MiB are accepted (message.max.bytes), so tests can send oversize ones.
#
# What tests read: $AXION_ENV_DIR/kafka.env, KEY=VALUE lines a shell can source and
# kafka_peer.load_env() parses, written when the broker is ready and removed by kafka-down.sh:
#   KAFKA_BOOTSTRAP                 127.0.0.1:19092 (plaintext)
#   KAFKA_BOOTSTRAP_TLS             127.0.0.1:19093 (TLS, client certificate required)
#   KAFKA_BOOTSTRAP_TLS_WRONG_NAME  127.0.0.1:19095 (TLS, broker certificate for another name)
#   KAFKA_TLS_CA                    the test CA (PEM) that signed the broker and client certs
#   KAFKA_TLS_CLIENT_CERT, KAFKA_TLS_CLIENT_KEY            a client the broker accepts
#   KAFKA_TLS_OTHER_CA                                     another CA, unknown to the broker
#   KAFKA_TLS_OTHER_CLIENT_CERT, KAFKA_TLS_OTHER_CLIENT_KEY  a client from that other CA
#   KAFKA_VERSION, KAFKA_PID, KAFKA_DIR (config, data, logs/server.log, tls/)
# The certificate files live in $AXION_ENV_DIR/kafka/tls/: ca.pem, client.pem, client.key,
# other-ca.pem, other-client.pem, other-client.key (and the broker's own files).
#
# Usage: kafka-up.sh [--keep-data]
#   --keep-data  start on the store and certificates of the last broker (after kafka-down.sh or
#                a kill): topics, messages, offsets and the CA stay, for tests that restart the
#                broker. Without it (and when there is no store yet) the store and the
#                certificates are new.
#
# Env (all optional):
#   AXION_ENV_DIR            state of the test services (default /tmp/axion-env)
#   AXION_CACHE_DIR          download cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/axion-agent);
#                            the jars are in $AXION_CACHE_DIR/kafka/<version>/lib
#   AXION_KAFKA_VERSION      Apache Kafka version (default 4.1.1; 4.4.0 works too)
#   AXION_KAFKA_PORT         first port of the block of four (default 19092; below the
#                            ephemeral range of net.ipv4.ip_local_port_range)
#   AXION_KAFKA_HEAP         JVM heap options (default "-Xms32m -Xmx160m")
#   AXION_KAFKA_START_TIMEOUT  seconds to wait for the broker to answer (default 120)
# Needs java (17+), mvn (first run only), openssl, and the test virtualenv (tests/env/venv.sh)
# for the readiness probe. Prints a summary line with the time it took to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
keep=0
case "${1:-}" in
--keep-data) keep=1 ;;
"") ;;
*) echo "usage: kafka-up.sh [--keep-data]" >&2; exit 2 ;;
esac
t0=$(date +%s%N)
log() { echo "kafka-up: $*" >&2; }
elapsed() { echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms"; }

ENV_DIR=${AXION_ENV_DIR:-/tmp/axion-env}
CACHE=${AXION_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/axion-agent}/kafka
VERSION=${AXION_KAFKA_VERSION:-4.1.1}
LOG4J_VERSION=2.24.3
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
HOST=127.0.0.1
PORT=${AXION_KAFKA_PORT:-19092}
case "$PORT" in
'' | *[!0-9]* | 0*) log "AXION_KAFKA_PORT=$PORT: expected a port number"; exit 1 ;;
esac
[ "$PORT" -le 65532 ] || { log "AXION_KAFKA_PORT=$PORT: the block of four ends past 65535"; exit 1; }
TLS_PORT=$((PORT + 1))
CONTROLLER_PORT=$((PORT + 2))
WRONG_NAME_PORT=$((PORT + 3))
HEAP=${AXION_KAFKA_HEAP:--Xms32m -Xmx160m}
START_TIMEOUT=${AXION_KAFKA_START_TIMEOUT:-120}

DIR=$ENV_DIR/kafka
TLS=$DIR/tls
CONF=$DIR/server.properties
PIDFILE=$DIR/kafka.pid
ENVFILE=$ENV_DIR/kafka.env
LIB=$CACHE/$VERSION/lib

case "$ENV_DIR$CACHE" in
*[[:space:]\"\'\\\$]*) log "AXION_ENV_DIR and AXION_CACHE_DIR may not contain blanks, quotes, \\ or \$"; exit 1 ;;
esac
for tool in java openssl; do
    command -v $tool >/dev/null || { log "$tool not found (scripts/deps.sh installs it)"; exit 1; }
done

# ---- the readiness probe: the test client (tests/support/kafka_peer.py) from the test venv ----
if python3 -c 'import confluent_kafka' 2>/dev/null; then
    PY=python3
else
    PY="$("$here/venv.sh")/bin/python3"
fi
PEER="$here/../support/kafka_peer.py"
probe() { # $1 deadline in seconds, $2 broker pid
    "$PY" "$PEER" --env-file "$ENVFILE.new" ready --deadline "$1" --pid "$2"
}

# The pid of the broker started from $CONF, if it is running.
our_pid() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $CONF" || return 1
    echo "$pid"
}

write_env() { # $1 pid; writes $ENVFILE.new (the probe reads it), kafka-up renames it when ready
    cat >"$ENVFILE.new" <<EOF
# Written by tests/env/kafka-up.sh; see its header. Removed by kafka-down.sh.
KAFKA_BOOTSTRAP=$HOST:$PORT
KAFKA_BOOTSTRAP_TLS=$HOST:$TLS_PORT
KAFKA_BOOTSTRAP_TLS_WRONG_NAME=$HOST:$WRONG_NAME_PORT
KAFKA_TLS_CA=$TLS/ca.pem
KAFKA_TLS_CLIENT_CERT=$TLS/client.pem
KAFKA_TLS_CLIENT_KEY=$TLS/client.key
KAFKA_TLS_OTHER_CA=$TLS/other-ca.pem
KAFKA_TLS_OTHER_CLIENT_CERT=$TLS/other-client.pem
KAFKA_TLS_OTHER_CLIENT_KEY=$TLS/other-client.key
KAFKA_VERSION=$VERSION
KAFKA_PID=$1
KAFKA_DIR=$DIR
EOF
}

mkdir -p "$ENV_DIR"

# ---- 1. already running? ---------------------------------------------------------------------
if pid=$(our_pid); then
    write_env "$pid"
    if probe 30 "$pid"; then
        mv -f "$ENVFILE.new" "$ENVFILE"
        log "already running (pid $pid), answers on $HOST:$PORT and $HOST:$TLS_PORT"
        exit 0
    fi
    log "broker pid $pid runs but does not answer; stop it with tests/env/kafka-down.sh (log: $DIR/logs/server.log)"
    exit 1
fi
rm -f "$PIDFILE" "$ENVFILE" "$ENVFILE.new"
# A port in the ephemeral range can be taken by any outgoing connection, even by a client that
# connects to it while the broker is not listening yet (a TCP self-connect: seen with 39092).
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
for p in $PORT $TLS_PORT $CONTROLLER_PORT $WRONG_NAME_PORT; do
    if [ "$p" -ge "$eph_lo" ] && [ "$p" -le "$eph_hi" ]; then
        log "port $p is in the ephemeral port range $eph_lo-$eph_hi (net.ipv4.ip_local_port_range); choose an AXION_KAFKA_PORT below $((eph_lo - 3))"
        exit 1
    fi
done
for p in $PORT $TLS_PORT $CONTROLLER_PORT $WRONG_NAME_PORT; do
    if (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then
        log "port $p on $HOST is in use by another process (set AXION_KAFKA_PORT to move the block of four)"
        exit 1
    fi
done

# ---- 2. the jars, from Maven Central through mvn, cached per version -------------------------
if [ ! -f "$LIB/.complete" ]; then
    command -v mvn >/dev/null || { log "mvn not found (scripts/deps.sh installs maven)"; exit 1; }
    mkdir -p "$CACHE"
    # One download at a time per cache (several worktrees may share it). The lock fd is
    # closed before anything long-lived starts.
    exec 8>"$CACHE/.lock"
    flock 8
    if [ ! -f "$LIB/.complete" ]; then
        log "fetching Apache Kafka $VERSION and its runtime dependencies into $LIB"
        mkdir -p "$CACHE/$VERSION"
        cat >"$CACHE/$VERSION/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>axion.test</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version>
    </dependency>
    <!-- Kafka logs through slf4j; without a binding it logs nothing at all. -->
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
        rm -rf "$LIB.tmp"
        if ! mvn -B -q -Dstyle.color=never -f "$CACHE/$VERSION/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
            "$DEP_PLUGIN:copy-dependencies" -DincludeScope=runtime -DoutputDirectory="$LIB.tmp" \
            >"$CACHE/$VERSION/mvn.log" 2>&1; then
            tail -n 30 "$CACHE/$VERSION/mvn.log" >&2
            log "mvn could not fetch Kafka $VERSION (whole log: $CACHE/$VERSION/mvn.log)"
            exit 1
        fi
        ls "$LIB.tmp"/kafka_2.13-"$VERSION".jar >/dev/null
        touch "$LIB.tmp/.complete"
        rm -rf "$LIB"
        mv "$LIB.tmp" "$LIB"
        log "fetched $(ls "$LIB" | wc -l) jars ($(du -sh "$LIB" | cut -f1)) in $(elapsed)"
    fi
    exec 8>&-
fi

# ---- 3. certificates (new with every new store) ------------------------------------------------
# EC P-256 keys in PKCS#8 PEM (Kafka's PEM key store reads only PKCS#8). Valid for 30 days.
if [ $keep = 1 ] && [ -f "$DIR/data/meta.properties" ] && [ -f "$TLS/.complete" ] &&
    openssl x509 -checkend 86400 -noout -in "$TLS/broker.pem" >/dev/null 2>&1; then
    fresh=0
else
    fresh=1
fi
if [ $fresh = 1 ]; then (
    rm -rf "$TLS"
    mkdir -p "$TLS"
    cd "$TLS"
    ossl() { openssl "$@" 2>>openssl.log || { cat openssl.log >&2; exit 1; }; }
    key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
    ca() { # $1 name, $2 subject
        key "$1.key"
        ossl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "$2" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    }
    leaf() { # $1 name, $2 CA, $3 subject, $4 extendedKeyUsage, $5 subjectAltName (optional)
        key "$1.key"
        ossl req -new -key "$1.key" -out "$1.csr" -subj "$3"
        {
            echo "basicConstraints=critical,CA:FALSE"
            echo "keyUsage=critical,digitalSignature"
            echo "extendedKeyUsage=$4"
            [ -z "${5:-}" ] || echo "subjectAltName=$5"
        } >"$1.ext"
        ossl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 30 \
            -extfile "$1.ext" -out "$1.pem"
        rm -f "$1.csr" "$1.ext"
    }
    ca ca "/O=axion-agent tests/CN=axion test CA"
    ca other-ca "/O=axion-agent tests/CN=axion other test CA"
    leaf broker ca "/O=axion-agent tests/CN=localhost" serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
    leaf wrong-name ca "/O=axion-agent tests/CN=wrong-name.invalid" serverAuth "DNS:wrong-name.invalid"
    leaf client ca "/O=axion-agent tests/CN=axion-test-client" clientAuth
    leaf other-client other-ca "/O=axion-agent tests/CN=axion-other-client" clientAuth
    # Kafka's PEM key store: the private key and the certificate chain in one file.
    cat broker.key broker.pem >broker-keystore.pem
    cat wrong-name.key wrong-name.pem >wrong-name-keystore.pem
    chmod 600 ./*.key ./*-keystore.pem
    touch .complete
); fi

# ---- 4. configuration and a fresh KRaft store -------------------------------------------------
if [ $fresh = 1 ]; then rm -rf "$DIR/data"; fi
mkdir -p "$DIR/data" "$DIR/logs"
cat >"$CONF" <<EOF
# Written by tests/env/kafka-up.sh: one combined broker+controller for the tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$PORT,SSL://$HOST:$TLS_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT,WRONGNAME://$HOST:$WRONG_NAME_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT,SSL://$HOST:$TLS_PORT,WRONGNAME://$HOST:$WRONG_NAME_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT,WRONGNAME:SSL
inter.broker.listener.name=PLAINTEXT

listener.name.ssl.ssl.client.auth=required
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$TLS/broker-keystore.pem
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$TLS/ca.pem
listener.name.wrongname.ssl.client.auth=required
listener.name.wrongname.ssl.keystore.type=PEM
listener.name.wrongname.ssl.keystore.location=$TLS/wrong-name-keystore.pem
listener.name.wrongname.ssl.truststore.type=PEM
listener.name.wrongname.ssl.truststore.location=$TLS/ca.pem

log.dirs=$DIR/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
# A consumer group starts at once; synchronous commits are not held back by a linger.
group.initial.rebalance.delay.ms=0
group.coordinator.append.linger.ms=0
message.max.bytes=33554432
# A broker restarted after a kill waits until its previous registration has expired: 9 s by
# default, 3 s here (heartbeats every 0.5 s).
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000

# Small: few threads, a 4 MiB log-cleaner buffer instead of 128 MiB (about half the RSS).
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=4194304
EOF
cat >"$DIR/log4j2.properties" <<EOF
status = warn
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $DIR/logs/server.log
appender.file.append = false
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
# shellcheck disable=SC2206 # HEAP is a list of options
JAVA_OPTS=($HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=32m
    -XX:MaxMetaspaceSize=128m -XX:MaxDirectMemorySize=96m -Djdk.nio.maxCachedBufferSize=262144
    -Xss512k -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Xlog:cds=off,cds+dynamic=off
    "-Dlog4j2.configurationFile=$DIR/log4j2.properties" "-Dkafka.logs.dir=$DIR/logs")

# Class data sharing: the classes a JVM loaded are archived when it exits, and later JVMs map
# the archive instead of loading the jars again (broker start ~3.1 s -> ~2.2 s, format 1.5 s ->
# 0.5 s, RSS -10 MB). One archive per Kafka version and JVM build, in the cache. The first
# broker writes it to a temporary name; kafka-down.sh renames it after a clean exit (a killed
# JVM leaves nothing). A JVM that cannot use an archive runs without one.
CDS=$CACHE/$VERSION/cds-$(java -version 2>&1 | cksum | cut -d' ' -f1)
mkdir -p "$CDS"
cds_opt() { # $1 archive name: how the next JVM uses it (the archive, or making it)
    if [ -s "$CDS/$1.jsa" ]; then
        echo "-XX:SharedArchiveFile=$CDS/$1.jsa"
    else
        echo "-XX:ArchiveClassesAtExit=$CDS/$1.jsa.$$.tmp"
    fi
}

if [ ! -f "$DIR/data/meta.properties" ]; then
    opt=$(cds_opt format)
    cluster_id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    if ! java "${JAVA_OPTS[@]}" "$opt" -cp "$LIB/*" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$CONF" >"$DIR/logs/format.log" 2>&1; then
        cat "$DIR/logs/format.log" >&2
        log "formatting the KRaft store in $DIR/data failed"
        rm -f "$CDS/format.jsa.$$.tmp"
        exit 1
    fi
    if [ -s "$CDS/format.jsa.$$.tmp" ]; then mv -f "$CDS/format.jsa.$$.tmp" "$CDS/format.jsa"; fi
fi
broker_cds=$(cds_opt broker)
rm -f "$DIR/cds-pending"
case "$broker_cds" in
*.tmp) echo "${broker_cds#*=} $CDS/broker.jsa" >"$DIR/cds-pending" ;;
esac

# ---- 5. start, then wait until it answers -----------------------------------------------------
# The broker gets no fd but 0-2: an inherited lock fd (the tests run under flock) held by a
# long-lived broker would hold the lock forever.
(
    for fd in /proc/$BASHPID/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-"; fi
    done
    exec setsid java "${JAVA_OPTS[@]}" "$broker_cds" -cp "$LIB/*" kafka.Kafka "$CONF" \
        >"$DIR/logs/stdout.log" 2>&1 </dev/null
) &
pid=$!
echo "$pid" >"$PIDFILE"
write_env "$pid"
rc=0
probe "$START_TIMEOUT" "$pid" || rc=$?
if [ $rc != 0 ]; then
    state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    if [ -n "$state" ] && [ "${state:0:1}" != Z ]; then
        log "broker (pid $pid) did not answer within ${START_TIMEOUT}s; stopping it"
    else
        log "broker (pid $pid) exited during startup"
    fi
    tail -n 20 "$DIR/logs/stdout.log" "$DIR/logs/server.log" >&2 2>/dev/null || true
    "$here/kafka-down.sh" || true
    exit 1
fi
mv -f "$ENVFILE.new" "$ENVFILE"
rss=$(awk '/^VmRSS/ {print int($2 / 1024) " MB"}' "/proc/$pid/status" 2>/dev/null || echo '?')
log "Kafka $VERSION ready in $(elapsed) (pid $pid, RSS $rss): $HOST:$PORT plaintext, $HOST:$TLS_PORT TLS; env: $ENVFILE"
