#!/usr/bin/env python3
"""The Kafka test environment itself (tests/env/kafka-up.sh): the broker the later Kafka tests
rely on answers as documented, over plaintext and over TLS with a client certificate; clients
the TLS listener must refuse are refused with an SSL error, and the broker stays up; killed
with kill -9 and brought back with kafka-up.sh --keep-data, it still has its topics and records.

Needs the broker up (scripts/test.sh starts it through tests/env/up.sh; by hand:
tests/env/kafka-up.sh) and the test venv (confluent-kafka). Topics are named axt-env-<pid>-…
and stay in the broker's throw-away store. Prints one line per check and ends with
"N passed, M failed"; exits 1 when a check failed."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import kafka_peer as kp  # noqa: E402

DEADLINE = 30.0
ENV_SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "env")

passed = 0
failed = 0


class Failed(Exception):
    pass


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def require(name, ok, detail=""):
    if not check(name, ok, detail):
        raise Failed(name)


def wait_for(cond, deadline, step=0.05):
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() >= end:
            return False
        time.sleep(step)
    return True


def broker_alive(env):
    try:
        with open(f"/proc/{env['KAFKA_PID']}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, KeyError, IndexError):
        return False


def round_trip(env, tls):
    """Creates a topic with two partitions, writes keyed records, reads them back."""
    what = "TLS" if tls else "plaintext"
    conf = kp.client_config(env, tls=tls)
    topic = kp.unique_topic("axt-env")
    kp.create_topics(conf, [topic], partitions=2, deadline=DEADLINE)
    check(f"{what}: topic {topic} created with 2 partitions", True)
    sent = [(f"key-{i % 3}".encode(), f"value {i}".encode(), [("n", str(i).encode())])
            for i in range(30)]
    sent.append((None, b"", None))  # no key, empty value
    offsets = kp.produce(conf, topic, sent, deadline=DEADLINE)
    check(f"{what}: {len(sent)} records written with acks=all", len(offsets) == len(sent))
    recs = kp.consume(conf, topic, count=len(sent), deadline=DEADLINE)
    got = sorted((r.key or b"", r.value) for r in recs)
    want = sorted((k or b"", v) for k, v, _ in sent)
    check(f"{what}: the same {len(sent)} records read back from the beginning", got == want,
          f"got {len(recs)} records")
    # Per key, order is kept (one key, one partition).
    by_key = {}
    for r in recs:
        by_key.setdefault(r.key, []).append(r.value)
    check(f"{what}: per key, records come back in the order written",
          all(v == [x[1] for x in sent if x[0] == k] for k, v in by_key.items()))
    check(f"{what}: headers come back",
          any(r.headers == [("n", b"0")] for r in recs))
    check(f"{what}: reading to the end of every partition stops there",
          len(kp.consume(conf, topic, deadline=DEADLINE)) == len(sent))


def big_message(env):
    conf = kp.client_config(env)
    topic = kp.unique_topic("axt-env-big")
    kp.create_topics(conf, [topic], deadline=DEADLINE)
    value = os.urandom(256) * (20 * 4096)  # 20 MiB
    kp.produce(conf, topic, [(b"big", value)], deadline=DEADLINE)
    recs = kp.consume(conf, topic, count=1, deadline=DEADLINE)
    check("a 20 MiB record is taken and read back (message.max.bytes is 32 MiB)",
          len(recs) == 1 and recs[0].value == value,
          f"got {len(recs[0].value) if recs else 0} bytes")


def refused(env, name, conf, expect):
    errors, ok = kp.errors_within(conf, deadline=DEADLINE, log_level=0)
    text = errors[0].str() if errors else "no error"
    check(f"{name}: refused ({text[:160]})",
          not ok and errors and any(s in text for s in expect), f"metadata ok={ok}")


def restart_keeps_data(env):
    """What the tests of a broker outage do: kill -9 the broker, bring it back with
    kafka-up.sh --keep-data; topics, records, committed offsets and the CA are still there."""
    conf = kp.client_config(env, tls=True)
    topic = kp.unique_topic("axt-env-restart")
    kp.create_topics(conf, [topic], deadline=DEADLINE)
    kp.produce(conf, topic, [(b"k", b"before the restart")], deadline=DEADLINE)
    os.kill(int(env["KAFKA_PID"]), signal.SIGKILL)
    check("the broker is gone after kill -9",
          wait_for(lambda: not broker_alive(env), DEADLINE), env["KAFKA_PID"])
    t0 = time.monotonic()
    up = subprocess.run([os.path.join(ENV_SCRIPTS, "kafka-up.sh"), "--keep-data"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                        timeout=300, check=False)
    took = time.monotonic() - t0
    if up.returncode != 0:  # later tests need a broker: start a new one
        subprocess.run([os.path.join(ENV_SCRIPTS, "kafka-up.sh")], timeout=300, check=False)
    require("kafka-up.sh --keep-data brings it back", up.returncode == 0, up.stdout[-2000:])
    print(f"     (restart after kill -9 took {took:.1f}s)", flush=True)
    new = kp.load_env()
    check("kafka.env names the new broker", new["KAFKA_PID"] != env["KAFKA_PID"]
          and broker_alive(new))
    recs = kp.consume(kp.client_config(new, tls=True), topic, deadline=DEADLINE)
    check("the topic and its record survived, the TLS client still connects",
          [r.value for r in recs] == [b"before the restart"], str(recs))


def main():
    try:
        env = kp.load_env()
    except (kp.EnvNotUp, ValueError) as e:
        print(f"FAIL the Kafka test environment: {e}", flush=True)
        return 1
    for k in ("KAFKA_TLS_CA", "KAFKA_TLS_CLIENT_CERT", "KAFKA_TLS_CLIENT_KEY",
              "KAFKA_TLS_OTHER_CA", "KAFKA_TLS_OTHER_CLIENT_CERT", "KAFKA_TLS_OTHER_CLIENT_KEY"):
        check(f"kafka.env: {k} names a file", os.path.isfile(env.get(k, "")), env.get(k, ""))
    try:
        require("the broker process runs", broker_alive(env), f"pid {env.get('KAFKA_PID')}")
        round_trip(env, tls=False)
        round_trip(env, tls=True)
        big_message(env)

        admin = kp.AdminClient(kp.client_config(env))
        absent = kp.unique_topic("axt-env-absent")
        t = admin.list_topics(absent, timeout=DEADLINE).topics.get(absent)
        check("auto-creation is off: asking for an unknown topic gives UNKNOWN_TOPIC_OR_PART",
              t is not None and t.error is not None
              and t.error.code() == kp.KafkaError.UNKNOWN_TOPIC_OR_PART, str(t and t.error))
        check("... and creates no topic", absent not in admin.list_topics(timeout=DEADLINE).topics)
        del admin  # it would reconnect, and log, while the restart below has the broker away

        refused(env, "TLS with a client certificate from another CA",
                kp.client_config(env, tls=True, cert="other"), ["bad certificate", "SSL"])
        refused(env, "TLS without a client certificate",
                kp.client_config(env, tls=True, cert=None),
                ["bad certificate", "certificate required", "SSL"])
        refused(env, "TLS trusting another CA than the broker's",
                kp.client_config(env, tls=True, ca="other"), ["certificate verify failed"])
        refused(env, "TLS listener whose certificate names another host, name verification on",
                kp.client_config(env, wrong_name=True), ["certificate verify failed"])
        errors, ok = kp.errors_within(
            kp.client_config(env, wrong_name=True, ssl_endpoint_identification_algorithm="none"),
            deadline=DEADLINE, log_level=0)
        check("the same listener without name verification is accepted (only the name differs)",
              ok, errors[0].str() if errors else "")

        require("the broker still runs after the refused clients", broker_alive(env))
        round_trip(env, tls=True)
        restart_keeps_data(env)
    except (Failed, RuntimeError, TimeoutError, kp.KafkaException) as e:
        if not isinstance(e, Failed):
            check("no error", False, f"{type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
