#!/usr/bin/env python3
"""The tests' own Kafka client (confluent-kafka from the test venv), for the real broker that
tests/env/kafka-up.sh starts. Tests import it:

    sys.path.insert(0, os.path.join(os.environ["AXION_SOURCE_DIR"], "tests", "support"))
    import kafka_peer as kp
    env = kp.load_env()                        # $AXION_ENV_DIR/kafka.env, or EnvNotUp
    conf = kp.client_config(env, tls=True)     # librdkafka config: plaintext or TLS
    topic = kp.unique_topic("deploy")
    kp.create_topics(conf, [topic], partitions=1)
    kp.produce(conf, topic, [(b"key", b"value")])
    recs = kp.consume(conf, topic, count=1)    # from the beginning, with a deadline

Every wait has a deadline (seconds) and ends in a TimeoutError that says what was missing.
Run as a script it is also the small helper of the env scripts and of hand checks:

    kafka_peer.py [--env-file F] ready [--deadline S] [--pid P]     (kafka-up.sh's probe)
    kafka_peer.py create-topic NAME [--partitions N] [--config K=V] [--tls]
    kafka_peer.py produce TOPIC [--key K] [--tls] < value
    kafka_peer.py consume TOPIC [--count N] [--deadline S] [--tls]  (one JSON line a message)
"""

import argparse
import json
import os
import sys
import time
import uuid
from collections import namedtuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

DEADLINE = 30.0
MAX_MESSAGE = 32 * 1024 * 1024  # the broker's message.max.bytes (kafka-up.sh)

Record = namedtuple("Record", "topic partition offset key value headers timestamp")


class EnvNotUp(RuntimeError):
    pass


def env_path():
    return os.path.join(os.environ.get("AXION_ENV_DIR", "/tmp/axion-env"), "kafka.env")


def load_env(path=None):
    """The KEY=VALUE lines kafka-up.sh wrote (see its header), as a dict."""
    path = path or env_path()
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise EnvNotUp(f"{path}: no such file: the test broker is not up "
                       "(tests/env/up.sh or tests/env/kafka-up.sh starts it)") from None
    env = {}
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{path}:{n}: expected KEY=VALUE, got {line!r}")
        env[key] = value
    for key in ("KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP_TLS", "KAFKA_TLS_CA"):
        if key not in env:
            raise ValueError(f"{path}: {key} is missing")
    return env


def client_config(env, tls=False, cert="client", ca="ca", wrong_name=False, **extra):
    """librdkafka config for the test broker. tls: the TLS listener, with the client certificate
    `cert` ("client": from the test CA, "other": from another CA, None: none) and trusting `ca`
    ("ca": the test CA, "other": the other CA); server name verification is on.
    wrong_name: the TLS listener whose certificate names another host. extra: more keys, with
    "_" for "." (linger_ms=5)."""
    conf = {"bootstrap.servers": env["KAFKA_BOOTSTRAP"], "client.id": "axion-test",
            "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500}
    if tls or wrong_name:
        conf["bootstrap.servers"] = env["KAFKA_BOOTSTRAP_TLS_WRONG_NAME" if wrong_name
                                        else "KAFKA_BOOTSTRAP_TLS"]
        conf["security.protocol"] = "ssl"
        conf["ssl.ca.location"] = env[{"ca": "KAFKA_TLS_CA", "other": "KAFKA_TLS_OTHER_CA"}[ca]]
        conf["ssl.endpoint.identification.algorithm"] = "https"
        if cert is not None:
            prefix = {"client": "KAFKA_TLS_CLIENT", "other": "KAFKA_TLS_OTHER_CLIENT"}[cert]
            conf["ssl.certificate.location"] = env[prefix + "_CERT"]
            conf["ssl.key.location"] = env[prefix + "_KEY"]
    for k, v in extra.items():
        conf[k.replace("_", ".")] = v
    return conf


def _only(conf, *drop):
    return {k: v for k, v in conf.items() if k not in drop}


def unique_topic(prefix="axt"):
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _left(end):
    return max(0.0, end - time.monotonic())


def create_topics(conf, names, partitions=1, config=None, deadline=DEADLINE):
    """Creates the topics (one that already exists is fine) and waits until every partition of
    each has a leader."""
    end = time.monotonic() + deadline
    admin = AdminClient(conf)
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1, config=config or {})
         for n in names], request_timeout=max(1.0, _left(end)))
    for name, fut in futures.items():
        try:
            fut.result(timeout=max(0.1, _left(end)))
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"creating topic {name}: {e.args[0].str()}") from None
    missing = list(names)
    while True:
        try:
            md = admin.list_topics(timeout=max(0.5, min(2.0, _left(end))))
            missing = [n for n in names
                       if n not in md.topics or md.topics[n].error is not None
                       or not md.topics[n].partitions
                       or any(p.leader < 0 for p in md.topics[n].partitions.values())]
        except KafkaException:
            pass
        if not missing:
            return
        if _left(end) <= 0:
            raise TimeoutError(f"topics {missing} have no leader after {deadline}s")
        time.sleep(0.05)


def produce(conf, topic, records, deadline=DEADLINE, **extra):
    """Writes records ((key, value) or (key, value, headers); bytes or str; key may be None)
    with acks=all and waits for every delivery report. Returns [(partition, offset)], in order.
    A failed delivery raises RuntimeError with librdkafka's error."""
    end = time.monotonic() + deadline
    p = Producer({**conf, "acks": "all", "enable.idempotence": True, "linger.ms": 2,
                  "message.max.bytes": MAX_MESSAGE + 1024, **extra})
    results = []
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(f"{msg.topic()}: {err.str()}")
        else:
            results.append((msg.partition(), msg.offset()))

    n = 0
    for rec in records:
        key, value = rec[0], rec[1]
        headers = rec[2] if len(rec) > 2 else None
        while True:
            try:
                p.produce(topic, value=value, key=key, headers=headers, on_delivery=report)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                p.poll(0.05)
                if _left(end) <= 0:
                    raise TimeoutError(f"{topic}: producer queue still full after {deadline}s")
        n += 1
    left = p.flush(_left(end))
    if errors:
        raise RuntimeError("delivery failed: " + "; ".join(errors[:5]))
    if left or len(results) != n:
        raise TimeoutError(f"{topic}: {n - len(results)} of {n} messages not delivered "
                           f"after {deadline}s")
    return results


def consume(conf, topic, count=None, deadline=DEADLINE, until=None, partitions=None,
            isolation="read_committed", **extra):
    """Reads `topic` from the beginning (every partition, or those listed) without a consumer
    group. Stops when `count` records were read, when until(records) is true, or, with neither,
    at the end of every partition. Returns the Records. Reaching the deadline first raises
    TimeoutError naming how many were read."""
    end = time.monotonic() + deadline
    c = Consumer({**_only(conf, "acks"), "group.id": "axion-test-reader-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": isolation, "fetch.max.bytes": MAX_MESSAGE + 1024 * 1024,
                  "receive.message.max.bytes": MAX_MESSAGE + 2 * 1024 * 1024, **extra})
    try:
        if partitions is None:
            md = c.list_topics(topic, timeout=max(0.5, _left(end)))
            t = md.topics.get(topic)
            if t is None or t.error is not None or not t.partitions:
                raise RuntimeError(f"{topic}: no such topic ({t.error if t else 'no metadata'})")
            partitions = sorted(t.partitions)
        c.assign([TopicPartition(topic, p, -2) for p in partitions])  # -2: OFFSET_BEGINNING
        records = []
        at_end = set()
        while True:
            if count is not None and len(records) >= count:
                return records
            if until is not None and until(records):
                return records
            if count is None and until is None and at_end >= set(partitions):
                return records
            if _left(end) <= 0:
                raise TimeoutError(f"{topic}: read {len(records)} records"
                                   f"{f' of {count}' if count is not None else ''} "
                                   f"in {deadline}s")
            m = c.poll(min(0.2, _left(end)))
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                    continue
                raise RuntimeError(f"{topic}: {m.error().str()}")
            at_end.discard(m.partition())
            ts = m.timestamp()
            records.append(Record(m.topic(), m.partition(), m.offset(), m.key(), m.value(),
                                  m.headers() or [], ts[1] if ts[0] else None))
    finally:
        c.close()


def errors_within(conf, deadline=10.0, **extra):
    """Connects with `conf` (as an admin client) for the tests of refused connections. Returns
    (errors, metadata_ok): the errors librdkafka reported through error_cb (they carry the
    cause, e.g. "SSL handshake failed: ... certificate verify failed") until the first one or
    the deadline, and whether a metadata request succeeded meanwhile."""
    errors = []
    admin = AdminClient({**conf, "error_cb": errors.append, **extra})
    end = time.monotonic() + deadline
    ok = False
    while not errors and _left(end) > 0:
        try:
            admin.list_topics(timeout=max(0.1, min(0.5, _left(end))))
            return errors, True
        except KafkaException:
            pass  # the generic "Failed to get metadata"; error_cb carries the cause
        admin.poll(min(0.1, _left(end)))
    return errors, ok


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


PROBE_TOPIC = "axion-env-probe"


def wait_ready(env, deadline=120.0, pid=None):
    """kafka-up.sh's readiness probe: the broker lists itself, creates and describes a topic,
    takes a message with acks=all on the plaintext listener, and answers metadata on the TLS
    listener to the test client certificate. Returns the seconds it took; raises TimeoutError
    (with the last error seen) or RuntimeError when the broker process `pid` ended."""
    start = time.monotonic()
    end = start + deadline
    plain = client_config(env)
    host, port = env["KAFKA_BOOTSTRAP"].rsplit(":", 1)
    admin = AdminClient({**plain, "log_level": 0})
    last = "no answer yet"
    step = "plaintext metadata"
    while True:
        if pid is not None and not _alive(pid):
            raise RuntimeError(f"the broker (pid {pid}) ended while waiting for {step}")
        if _left(end) <= 0:
            raise TimeoutError(f"the broker did not answer ({step}) within {deadline}s: {last}")
        try:
            if step == "plaintext metadata":
                md = admin.list_topics(timeout=min(1.0, _left(end)))
                if not any(b.host == host and str(b.port) == port for b in md.brokers.values()):
                    raise RuntimeError(f"metadata lists brokers {list(md.brokers.values())}")
                step = "topic create and describe"
            if step == "topic create and describe":
                create_topics(plain, [PROBE_TOPIC], deadline=min(10.0, _left(end)))
                step = "produce"
            if step == "produce":
                produce({**plain, "log_level": 0}, PROBE_TOPIC, [(b"probe", b"ready")],
                        deadline=min(10.0, _left(end)))
                step = "TLS metadata"
            if step == "TLS metadata":
                tls = AdminClient({**client_config(env, tls=True), "log_level": 0})
                tls.list_topics(timeout=min(5.0, _left(end)))
                return time.monotonic() - start
        except (KafkaException, RuntimeError, TimeoutError) as e:
            last = str(e.args[0]) if e.args else repr(e)
            time.sleep(0.1)


def _bytes(s):
    return None if s is None else s.encode()


def main(argv):
    ap = argparse.ArgumentParser(prog="kafka_peer.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--env-file", help="default $AXION_ENV_DIR/kafka.env")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("ready")
    r.add_argument("--deadline", type=float, default=120.0)
    r.add_argument("--pid", type=int)
    for name in ("create-topic", "produce", "consume"):
        s = sub.add_parser(name)
        s.add_argument("topic")
        s.add_argument("--tls", action="store_true")
        if name == "create-topic":
            s.add_argument("--partitions", type=int, default=1)
            s.add_argument("--config", action="append", default=[], metavar="K=V")
        elif name == "produce":
            s.add_argument("--key")
        else:
            s.add_argument("--count", type=int)
            s.add_argument("--deadline", type=float, default=DEADLINE)
    a = ap.parse_args(argv)
    try:
        env = load_env(a.env_file)
        if a.cmd == "ready":
            took = wait_ready(env, a.deadline, a.pid)
            print(f"kafka_peer: broker answers ({took:.2f}s of probing)", file=sys.stderr)
            return 0
        conf = client_config(env, tls=a.tls)
        if a.cmd == "create-topic":
            create_topics(conf, [a.topic], a.partitions, dict(kv.split("=", 1) for kv in a.config))
        elif a.cmd == "produce":
            [(part, off)] = produce(conf, a.topic, [(_bytes(a.key), sys.stdin.buffer.read())])
            print(f"{a.topic} partition {part} offset {off}")
        else:
            for rec in consume(conf, a.topic, count=a.count, deadline=a.deadline):
                print(json.dumps({"partition": rec.partition, "offset": rec.offset,
                                  "key": None if rec.key is None
                                  else rec.key.decode(errors="backslashreplace"),
                                  "value": rec.value.decode(errors="backslashreplace")}))
        return 0
    except (EnvNotUp, ValueError, RuntimeError, TimeoutError, KafkaException) as e:
        print(f"kafka_peer {a.cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
