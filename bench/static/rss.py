#!/usr/bin/env python3
"""Size and memory of the static axion-agent against the dynamic build (the baseline).

For each binary: its size (as built, stripped; the dynamic one with the shared libraries it
maps), and the daemon's memory while it holds examples/hello converged in local mode and does
nothing else (the "idle" of issue 14): VmRSS, RssAnon, RssFile, Pss and Private_Dirty from
/proc/<pid>/status and smaps_rollup, the largest value over a window, after the stack converged
and a settling time. Repetitions alternate the order of the two sides.

Channels: with --channels each daemon also runs both channels, as on a server: enrolled (a
one-time token of the Control Plane simulator, then the mTLS stream with heartbeats) and Kafka
over TLS with a client certificate (the consumer assigned on its commands topic, the producer
sending status and telemetry), out of local mode; the window starts once `status --output
json` says both channels are connected. --agent-set SECTION.KEY=VALUE (repeatable) adds config.
--peers measures what the channels' libraries alone hold in a binary linked the same way:
tests/static/static_peers `hold`, before and after it brings up a gRPC TLS channel (READY, to
the Control Plane simulator) and a Kafka producer and consumer over TLS (to the test broker).

Run it through bench/static/rss.sh (builds both, holds the Docker lock, brings Kafka up)."""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests"))
STACK = "axrss"
AGENT_ID = "axt-rss"
KIB = 1024
FIELDS = ("VmRSS", "RssAnon", "RssFile", "Pss", "Private_Dirty", "Threads")


def memory(pid):
    m = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile"):
                m[k] = int(v.split()[0])
            elif k == "Threads":
                m[k] = int(v)
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Pss", "Private_Dirty"):
                m[k] = int(v.split()[0])
    return m


def window(pid, seconds):
    """The largest value of each field over the window, sampled every 0.5 s."""
    top = {}
    end = time.monotonic() + seconds
    while True:
        for k, v in memory(pid).items():
            top[k] = max(top.get(k, 0), v)
        if time.monotonic() >= end:
            return top
        time.sleep(0.5)  # a sampling period, not a wait for a condition


def wait_for(what, cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = cond()
        if r:
            return r
        time.sleep(0.25)
    raise SystemExit(f"rss: {what} did not happen within {timeout} s")


def sizes(path):
    out = {"file": os.path.getsize(path)}
    with tempfile.NamedTemporaryFile() as t:
        subprocess.run(["strip", "-o", t.name, path], check=True)
        out["stripped"] = os.path.getsize(t.name)
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True)
    libs = set()
    for line in ldd.stdout.splitlines():
        parts = line.split("=>")
        p = (parts[1] if len(parts) > 1 else parts[0]).split("(")[0].strip()
        if p.startswith("/"):
            libs.add(os.path.realpath(p))
    out["libs"] = len(libs)
    out["with_libs"] = out["file"] + sum(os.path.getsize(p) for p in libs)
    return out


def kafka_env():
    env_file = os.path.join(os.environ.get("AXION_ENV_DIR", "/tmp/axion-env"), "kafka.env")
    kenv = {}
    with open(env_file) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = line.split("=", 1)
                kenv[k] = v
    return kenv


class Channels:
    """The peers of the agent's channels: the Control Plane simulator and the test broker's
    topics for AGENT_ID (prefix PREFIX)."""

    PREFIX = "axrss"

    def __init__(self):
        from cpsim import Simulator
        sys.path.insert(0, os.path.join(SOURCE, "tests", "support"))
        import kafka_peer as kp

        self.kenv = kafka_env()
        kp.create_topics(kp.client_config(self.kenv),
                         [f"{self.PREFIX}.commands.{AGENT_ID}", f"{self.PREFIX}.status",
                          f"{self.PREFIX}.telemetry"])
        self.tmp = tempfile.mkdtemp(prefix="axt-rss-cp-")
        self.sim = Simulator(os.path.join(self.tmp, "cpsim")).start()

    def env(self):
        """The config of one agent: a fresh one-time token each (each run enrolls anew)."""
        k, sim = self.kenv, self.sim
        return {
            "AXION_AGENT__LOCAL__ENABLED": "false",
            "AXION_AGENT__AGENT__TOKEN": sim.issue_token(agent_id=AGENT_ID)["token"],
            "AXION_AGENT__CONTROL_PLANE__GRPC_URL": f"https://{sim.control_target}",
            "AXION_AGENT__CONTROL_PLANE__ENROLL_URL": f"https://{sim.enroll_target}",
            "AXION_AGENT__CONTROL_PLANE__CA_FILE": sim.ca_file,
            "AXION_AGENT__KAFKA__TOPIC_PREFIX": self.PREFIX,
            "AXION_AGENT__KAFKA__BROKERS": k["KAFKA_BOOTSTRAP_TLS"],
            "AXION_AGENT__KAFKA__SECURITY": "ssl",
            "AXION_AGENT__KAFKA__CA_FILE": k["KAFKA_TLS_CA"],
            "AXION_AGENT__KAFKA__CERT_FILE": k["KAFKA_TLS_CLIENT_CERT"],
            "AXION_AGENT__KAFKA__KEY_FILE": k["KAFKA_TLS_CLIENT_KEY"],
        }

    def close(self):
        self.sim.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Agent:
    def __init__(self, binary, sets, channels=None):
        self.bin = binary
        self.dir = tempfile.mkdtemp(prefix="axt-rss-")
        self.cfg = os.path.join(self.dir, "agent.toml")
        open(self.cfg, "w").close()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AXION_AGENT__")}
        self.env.update(AXION_AGENT__AGENT__STATE_DIR=os.path.join(self.dir, "state"),
                        AXION_AGENT__AGENT__ID=AGENT_ID,
                        AXION_AGENT__LOCAL__SOCKET=os.path.join(self.dir, "agent.sock"))
        self.daemon_env = dict(self.env, **(channels.env() if channels else {}))
        # Local mode for the CLI's apply; the daemon runs in it only without channels.
        self.mode = [] if channels else ["--local"]
        self.sets = [a for s in sets for a in ("--set", s)]
        self.proc = None

    def cli(self, *args, check=True):
        return subprocess.run([self.bin, "--config", self.cfg, "--local", *self.sets, *args],
                              env=self.env, capture_output=True, text=True, check=check,
                              timeout=120)

    def start(self):
        log = open(os.path.join(self.dir, "run.log"), "w")
        self.proc = subprocess.Popen([self.bin, "--config", self.cfg, *self.mode, *self.sets, "run"],
                                     env=self.daemon_env, stdout=log, stderr=log)
        log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)

    def converged(self):
        p = self.cli("status", STACK, check=False)
        return p.returncode == 0 and "converged" in p.stdout.splitlines()[0] if p.stdout else False

    def channels(self):
        p = self.cli("status", "--output", "json", check=False)
        try:
            return json.loads(p.stdout).get("channels")
        except ValueError:
            return None

    def connected(self):
        ch = self.channels() or {}
        if self.proc.poll() is not None:
            raise SystemExit(f"rss: the daemon exited ({self.proc.returncode}); see "
                             f"{self.dir}/run.log")
        return all((ch.get(c) or {}).get("state") == "connected" for c in ("grpc", "kafka"))


def run_agent(binary, sets, seconds, settle, channels=None):
    a = Agent(binary, sets, channels)
    try:
        a.cli("apply", "-f", os.path.join(SOURCE, "examples/hello/compose.yml"), "-n", STACK)
        a.start()
        wait_for("convergence", a.converged, 180)
        if channels:
            wait_for("both channels connected", a.connected, 120)
        elif sets:
            wait_for("channels in status", a.channels, 60)
        time.sleep(settle)  # let start-up work finish before the window
        m = window(a.proc.pid, seconds)
        m["channels"] = list((a.channels() or {}).keys())
        return m, a
    except BaseException:
        a.stop()
        raise


def run_peers(peers, seconds):
    from cpsim import Simulator

    kenv = kafka_env()
    tmp = tempfile.mkdtemp(prefix="axt-rss-peers-")
    sim = Simulator(os.path.join(tmp, "cpsim")).start()
    try:
        p = subprocess.Popen([peers, "hold", f"localhost:{sim.ports['enroll']}", sim.ca_file,
                              kenv["KAFKA_BOOTSTRAP_TLS"], kenv["KAFKA_TLS_CA"],
                              kenv["KAFKA_TLS_CLIENT_CERT"], kenv["KAFKA_TLS_CLIENT_KEY"]],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, GRPC_VERBOSITY="NONE"))
        assert p.stdout.readline().strip() == "idle"
        idle = window(p.pid, seconds)
        p.stdin.write("go\n")
        p.stdin.flush()
        said = []
        while not said or said[-1] not in ("up", "failed", ""):
            said.append(p.stdout.readline().strip())
        if said[-1] != "up":
            raise SystemExit("rss: static_peers hold: " + "; ".join(said))
        time.sleep(2)
        up = window(p.pid, seconds)
        p.stdin.close()
        p.wait(60)
        return idle, up
    finally:
        sim.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def mib(kib):
    return f"{kib / KIB:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dynamic", required=True, help="the baseline: axion-agent linked dynamically")
    ap.add_argument("--static", required=True, help="axion-agent built with -DAXION_STATIC=ON")
    ap.add_argument("--peers", help="tests/static/static_peers of the static build")
    ap.add_argument("--agent-set", action="append", default=[], help="SECTION.KEY=VALUE")
    ap.add_argument("--channels", action="store_true",
                    help="each daemon enrolled with the simulator and on Kafka over TLS")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--json", help="write the raw numbers here")
    args = ap.parse_args()

    sides = {"dynamic": args.dynamic, "static": args.static}
    result = {"sizes": {k: sizes(v) for k, v in sides.items()}, "runs": []}
    last = None
    channels = Channels() if args.channels else None
    try:
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for side in order:
                m, a = run_agent(sides[side], args.agent_set, args.window, args.settle, channels)
                a.stop()
                if last:
                    shutil.rmtree(last.dir, ignore_errors=True)
                last = a
                result["runs"].append({"rep": rep + 1, "side": side, **m})
                print(f"rep {rep + 1} {side}: " + ", ".join(f"{k} {m[k]}" for k in FIELDS),
                      flush=True)
        if args.peers:
            idle, up = run_peers(args.peers, args.window)
            result["peers"] = {"idle": idle, "up": up}
    finally:
        if channels:
            channels.close()
        if last:  # the stack goes, with the last side's store
            last.cli("rm", STACK, check=False)
            for _ in range(60):
                last.cli("reconcile", check=False)
                if STACK not in subprocess.run(["docker", "service", "ls", "--format", "{{.Name}}"],
                                               capture_output=True, text=True).stdout:
                    break
                time.sleep(0.5)
            shutil.rmtree(last.dir, ignore_errors=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    report(result)


def report(r):
    s = r["sizes"]
    print("\n| binary | file | stripped | shared libraries mapped | file + libraries |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for side in ("dynamic", "static"):
        z = s[side]
        print(f"| {side} | {z['file'] / 1e6:.1f} MB | {z['stripped'] / 1e6:.1f} MB | {z['libs']} | "
              f"{z['with_libs'] / 1e6:.1f} MB |")
    med = {}
    for side in ("dynamic", "static"):
        runs = [x for x in r["runs"] if x["side"] == side]
        med[side] = {k: statistics.median(x[k] for x in runs) if runs else 0 for k in FIELDS}
    if r["runs"]:
        report_runs(r, med)
    if "peers" in r:
        report_peers(r, med)


def report_runs(r, med):
    print(f"\nidle daemon, examples/hello converged, local mode; median of "
          f"{len(r['runs']) // 2} (MiB; largest value over the window)\n")
    print("| measure | dynamic (baseline) | static | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for k in FIELDS[:-1]:
        d, st = med["dynamic"][k], med["static"][k]
        ratio = f"{d / st:.2f}x less" if st else "-"
        print(f"| {k} | {mib(d)} | {mib(st)} | {ratio} |")
    print(f"| threads | {med['dynamic']['Threads']:.0f} | {med['static']['Threads']:.0f} | |")
    chans = {x["side"]: x.get("channels") for x in r["runs"]}
    print(f"\nchannels listed by status: {chans}")


def report_peers(r, med):
    if True:
        i, u = r["peers"]["idle"], r["peers"]["up"]
        print("\nstatic_peers (same static link): before / with a gRPC TLS channel READY and a "
              "Kafka producer and consumer over TLS\n")
        print("| measure | before | channels up | difference |")
        print("| --- | ---: | ---: | ---: |")
        for k in FIELDS[:-1]:
            print(f"| {k} | {mib(i[k])} | {mib(u[k])} | +{mib(u[k] - i[k])} |")
        print(f"| threads | {i['Threads']} | {u['Threads']} | +{u['Threads'] - i['Threads']} |")
        if med["static"]["VmRSS"]:
            est = med["static"]["VmRSS"] + u["VmRSS"] - i["VmRSS"]
            print(f"\nestimate, static agent with the channels up: {mib(est)} MiB VmRSS")


if __name__ == "__main__":
    main()
