#!/usr/bin/env python3
"""Kafka ingest benchmark (issue 11): N Deploy records (10 services each) are produced ahead to
a commands topic of the real test broker; then, in one run, each of these reads all of them:

  bare         a bare librdkafka consumer that drops each record (kafka-bench --mode bare):
               the ceiling
  per-message  the agent's envelope + intake + status event, one SQLite transaction per record
               (kafka-bench --mode per-message): what batching saves
  batched-1    the same, one transaction per poll batch, the batch's manifests compiled on one
               thread (kafka-bench --mode batched --threads 1): what the store batching alone gives
  batched      the same, the batch's manifests compiled ahead on every core (at most 4), as the
               agent's consumer does (kafka-bench --mode batched)
  agent        the daemon itself (axion-agent run; Kafka on, Docker unreachable so that only the
               ingest is measured): the time until every record is durably in the store (its
               position in the offsets table), records/s, and its RSS during it

Time runs from the first record handled (the first position in the store, for the agent) to
the last; the agent's time from its start is given too. synchronous=FULL everywhere (the store's
setting). Prints a table with the ratios to the ceiling, and the raw results as JSON
(--json FILE). Needs $AXION_ENV_DIR/kafka.env (tests/env/kafka-up.sh) and a Release build
(bench/kafka/run.sh makes one)."""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.join(SRC, "tests"))
import kafka_peer as kp  # noqa: E402
from cpsim import protos  # noqa: E402

pb = protos.load()


def manifest(i, services=10, small=False):
    if small:  # what a service needs and no more: an image, a command, replicas
        return "services:\n" + "".join(
            f"  svc{s}:\n    image: registry.example/app/svc{s}:1.4.2\n"
            f"    command: [\"serve\", \"{i}\"]\n    deploy:\n      replicas: 2\n"
            for s in range(services))
    out = ["services:"]
    for s in range(services):
        out += [f"  svc{s}:",
                "    image: registry.example/app/svc:1.4.2",
                "    command: [\"serve\", \"--port\", \"80\"]",
                "    environment:",
                f"      - STACK_INDEX={i}",
                f"      - SERVICE=svc{s}",
                "      - LOG_LEVEL=${LOG_LEVEL:-info}",
                "    deploy:",
                "      replicas: 2",
                "      resources:",
                "        limits: {cpus: \"0.5\", memory: 256M}",
                "    labels:",
                f"      team: t{s % 3}"]
    return "\n".join(out) + "\n"


def records(n, one_stack, small):
    out = []
    for i in range(n):
        c = pb.Command(command_id=f"bench-{i}", issued_at_ms=int(time.time() * 1000))
        c.deploy.stack = "bench" if one_stack else f"bench{i}"
        c.deploy.generation = i + 1 if one_stack else 1
        c.deploy.compose = manifest(i, small=small)
        c.deploy.variables.add(name="LOG_LEVEL", value="warn")
        out.append(c.SerializeToString())
    return out


def run_ref(build, mode, brokers, topic, n, workdir):
    d = tempfile.mkdtemp(prefix=f"{mode}-", dir=workdir)
    args = ["--mode", "batched", "--threads", "1"] if mode == "batched-1" else ["--mode", mode]
    p = subprocess.run([os.path.join(build, "bench", "kafka-bench"), "--brokers", brokers, "--topic",
                        topic, "--count", str(n), *args, "--dir", d],
                       capture_output=True, text=True, timeout=1200)
    if p.returncode != 0:
        raise SystemExit(f"kafka-bench {' '.join(args)}: exit {p.returncode}: {p.stderr}{p.stdout}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["mode"] = mode
    return out


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_agent(build, brokers, prefix, agent_id, topic, n, workdir):
    state = os.path.join(workdir, "agent-state")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AXION_AGENT__")}
    env.update({
        "AXION_AGENT__AGENT__ID": agent_id,
        "AXION_AGENT__AGENT__STATE_DIR": state,
        "AXION_AGENT__AGENT__LOG_LEVEL": os.environ.get("AXION_BENCH_LOG_LEVEL", "warn"),
        "AXION_AGENT__LOCAL__SOCKET": os.path.join(workdir, "agent.sock"),
        "AXION_AGENT__DOCKER__SOCKET": os.path.join(workdir, "no-docker.sock"),
        "AXION_AGENT__KAFKA__BROKERS": brokers,
        "AXION_AGENT__KAFKA__SECURITY": "plaintext",
        "AXION_AGENT__KAFKA__TOPIC_PREFIX": prefix,
    })
    log = open(os.path.join(workdir, "agent.log"), "w")
    t0 = time.monotonic()
    # AXION_BENCH_WRAP: a command the agent runs under (e.g. "perf record -g -o FILE --").
    wrap = os.environ.get("AXION_BENCH_WRAP", "").split()
    proc = subprocess.Popen([*wrap, os.path.join(build, "axion-agent"), "run"], env=env, stdout=log,
                            stderr=log, stdin=subprocess.DEVNULL)
    db = os.path.join(state, "store.db")
    con = None
    first = last = None
    peak = 0
    samples = []
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the agent exited ({proc.returncode}); see {log.name}")
            r = rss_kb(proc.pid)
            peak = max(peak, r)
            if first is not None:
                samples.append(r)
            if con is None and os.path.exists(db):
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            off = 0
            if con is not None:
                try:
                    row = con.execute("SELECT next_offset FROM offsets WHERE topic = ?",
                                      (topic,)).fetchone()
                    off = row[0] if row else 0
                except sqlite3.OperationalError:
                    off = 0  # not migrated yet
            now = time.monotonic()
            if off and first is None:
                first = now
            if off >= n:
                last = now
                break
            if now - t0 > 1200:
                raise SystemExit(f"the agent stored {off} of {n} records in 1200 s")
            time.sleep(0.005)
    finally:
        if con is not None:
            con.close()
        with open(f"/proc/{proc.pid}/status") as f:
            hwm = [int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")]
        proc.terminate()
        proc.wait(60)
        log.close()
    return {"mode": "agent", "records": n, "seconds": last - first,
            "seconds_from_start": last - t0, "records_per_s": n / (last - first),
            "peak_rss_kb": hwm[0] if hwm else peak,
            "mean_rss_kb_during": int(sum(samples) / len(samples)) if samples else peak}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="build dir with axion-agent and kafka-bench")
    ap.add_argument("-n", "--records", type=int, default=5000)
    ap.add_argument("--one-stack", action="store_true",
                    help="one stack at generations 1..N instead of N stacks")
    ap.add_argument("--small", action="store_true",
                    help="10 services of an image, a command and replicas only (the default "
                         "manifest also has environment, resources and labels)")
    ap.add_argument("--reps", type=int, default=3, help="runs of all five (median reported)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    a = ap.parse_args()

    env = kp.load_env()
    conf = kp.client_config(env)
    brokers = env["KAFKA_BOOTSTRAP"]
    recs = records(a.records, a.one_stack, a.small)
    size = sum(len(r) for r in recs)
    modes = ("bare", "per-message", "batched-1", "batched", "agent")
    runs = {m: [] for m in modes}
    work = tempfile.mkdtemp(prefix="axion-kafka-bench-")
    try:
        for rep in range(a.reps):
            # a topic of its own each time: the agent starts at its group's committed offset
            tag = uuid.uuid4().hex[:8]
            prefix, agent_id = f"axbench{tag}", "bench-agent"
            topic = f"{prefix}.commands.{agent_id}"
            kp.create_topics(conf, [topic, f"{prefix}.status", f"{prefix}.telemetry"])
            t = time.monotonic()
            kp.produce(conf, topic, [(b"bench", r) for r in recs], deadline=600,
                       **{"linger.ms": 20})
            print(f"run {rep + 1}: produced {a.records} records ({size / a.records:.0f} bytes "
                  f"each) in {time.monotonic() - t:.1f}s to {topic}", flush=True)
            rdir = tempfile.mkdtemp(prefix=f"run{rep + 1}-", dir=work)
            for mode in modes[:-1]:
                runs[mode].append(run_ref(a.build, mode, brokers, topic, a.records, rdir))
            runs["agent"].append(run_agent(a.build, brokers, prefix, agent_id, topic, a.records,
                                           rdir))
            print("  " + ", ".join(f"{m} {runs[m][-1]['records_per_s']:.0f}/s" for m in modes),
                  flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work dir: {work}")

    def median(m):
        return sorted(runs[m], key=lambda r: r["records_per_s"])[len(runs[m]) // 2]
    ceiling = median("bare")["records_per_s"]
    print(f"\n{a.records} Deploy records of 10 services ({size / a.records:.0f} bytes each"
          f"{', small' if a.small else ''}), {'one stack' if a.one_stack else 'one stack each'}, "
          f"synchronous=FULL; median of {a.reps} runs (min–max)\n")
    print("| reader | records/s | min–max | seconds | from its start | × ceiling | "
          "transactions | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m in modes:
        r = median(m)
        lo = min(x["records_per_s"] for x in runs[m])
        hi = max(x["records_per_s"] for x in runs[m])
        print(f"| {m} | {r['records_per_s']:.0f} | {lo:.0f}–{hi:.0f} | {r['seconds']:.3f} | "
              f"{r['seconds_from_start']:.2f} | {r['records_per_s'] / ceiling:.3f} | "
              f"{r.get('transactions', '–')} | {r['peak_rss_kb'] / 1024:.1f} |")
    agent = median("agent")
    print(f"\nagent: mean RSS while ingesting {agent['mean_rss_kb_during'] / 1024:.1f} MiB; "
          f"batched-1 / per-message = "
          f"{median('batched-1')['records_per_s'] / median('per-message')['records_per_s']:.2f}, "
          f"batched / batched-1 = "
          f"{median('batched')['records_per_s'] / median('batched-1')['records_per_s']:.2f} "
          f"({median('batched')['compile_threads']} compile threads)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"records": a.records, "bytes_each": size / a.records, "small": a.small,
                       "one_stack": a.one_stack, "runs": runs}, f, indent=2)


if __name__ == "__main__":
    main()
