#!/usr/bin/env python3
"""The idle benchmark: what a converged daemon costs while nothing happens, and what one
no-change pass costs, for two builds of the agent in one run (a named baseline, BEFORE, and the
tree under test, AFTER).

    idle.py --before BIN --before-name NAME --after BIN --after-name NAME
            [--stacks 30] [--services 10] [--window 60] [--passes 20] [--reps 1]

Run it through bench/reconcile/idle.sh (builds both, starts Docker, takes the Docker lock).

Setup, once: STACKS stacks of SERVICES services each (`replicas: 0`, so the node runs no task;
each service has some environment, labels, a resource limit and a restart policy, and every
stack one network), applied with each side's own CLI into each side's own state dir. Both sides
use the same agent id, so the objects the first daemon creates are in sync for the second one:
only the first start of the run creates anything.

Per side (in turn, BEFORE first in odd repetitions, AFTER first in even ones):

  start-up the daemon is started (through the counting proxy, tests/support/docker_proxy.py)
           with the default config (resync_interval 60s, telemetry every 10s): its CPU from
           the start until every stack is reported converged (config, store, the first
           full passes).
  idle     then, once no pass has started for 3 s (or after 15 s: a daemon that polls never
           goes quiet), its CPU is read over WINDOW
           seconds: utime + stime from /proc/<pid>/stat (clock ticks), and the sum of the
           on-CPU nanoseconds of its threads from /proc/<pid>/task/*/schedstat. The requests
           it sent in the window are counted (a pass starts with GET /info).
  pass     PASSES no-change passes are triggered, one every 0.5 s, by the local wake-up
           datagram (the way `apply` wakes it; nothing changed in the store, so it is the same
           work as a periodic resync). CPU of the daemon over that window divided by the passes
           that ran (GET /info count): the CPU of one pass over STACKS x SERVICES services,
           reading the Engine's answers included (an upper bound: the window's background
           work is charged to the passes too). The lists are read before and after the window
           on the real socket: a warning says when the Swarm changed meanwhile.

Nothing here asserts a time: it measures, prints a table with ratios AFTER/BEFORE, and writes
the raw numbers as JSON (--json)."""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROXY = os.path.join(SRC, "tests", "support", "docker_proxy.py")
IMAGE = "axion-test/busybox:1"
PREFIX = "axi"
AGENT_ID = "axion-idle-bench"
DEADLINE = 600.0
TICK = os.sysconf("SC_CLK_TCK")


class Failed(Exception):
    pass


def wait_for(what, cond, timeout=DEADLINE, interval=0.2):
    end = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() > end:
            raise Failed(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def compose(stack_index, n):
    out = ['version: "3.8"', "services:"]
    for i in range(n):
        out += [f"  s{i:02d}:",
                f"    image: {IMAGE}",
                f'    command: ["sleep", "{100000 + stack_index * 100 + i}"]',
                "    stop_grace_period: 1s",
                "    environment:",
                f"      SERVICE_INDEX: \"{i}\"",
                "      ROLE: idle-bench",
                "    labels:",
                f"      io.axi.index: \"{i}\"",
                "    networks: [back]",
                "    deploy:",
                "      replicas: 0",
                "      labels:",
                "        io.axi.tier: bench",
                "      resources:",
                "        limits:",
                "          memory: 32M",
                "      restart_policy:",
                "        condition: any"]
    out += ["networks:", "  back: {}"]
    return "\n".join(out) + "\n"


def stack_names(n):
    return [f"{PREFIX}{i:02d}" for i in range(n)]


# --- CPU of a process ------------------------------------------------------------------------

def stat_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def sched_ns(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return total


class Cpu:
    def __init__(self, pid):
        self.pid = pid
        self.t = time.monotonic()
        self.ticks = stat_ticks(pid)
        self.ns = sched_ns(pid)

    def since(self, start):
        return {"seconds": self.t - start.t, "ticks": self.ticks - start.ticks,
                "cpu_ms_stat": (self.ticks - start.ticks) * 1000.0 / TICK,
                "cpu_ms_sched": (self.ns - start.ns) / 1e6}


# --- processes -------------------------------------------------------------------------------

class Proxy:
    def __init__(self, workdir, name):
        self.sock = os.path.join(workdir, f"{name}.sock")
        self.log = os.path.join(workdir, f"{name}.log")
        open(self.log, "w").close()
        self.proc = subprocess.Popen([sys.executable, PROXY, self.sock, self.log])
        wait_for(f"proxy {name}", lambda: os.path.exists(self.sock), 10, 0.02)

    def requests(self):
        with open(self.log) as f:
            return [line.split(" ", 1) for line in f.read().splitlines() if " " in line]

    def close(self):
        self.proc.kill()
        self.proc.wait()


def swarm_lists():
    """The lists a pass reads, as dockerd answers them now, on the real socket: their items in a
    canonical order (the Engine lists networks in an order of its own)."""
    out = {}
    for path in ("/services?status=true", "/networks", "/configs", "/secrets", "/tasks"):
        p = subprocess.run(["curl", "-s", "--unix-socket", "/var/run/docker.sock",
                            f"http://localhost/v1.41{path}"], capture_output=True)
        try:
            out[path] = sorted(json.dumps(x, sort_keys=True) for x in json.loads(p.stdout))
        except ValueError:
            out[path] = p.stdout
    return out


def others():
    """Services on the node that are not the benchmark's (they may change the lists)."""
    p = subprocess.run(["docker", "service", "ls", "--format", "{{.Name}} {{.Replicas}}"],
                       capture_output=True, text=True)
    return [line for line in p.stdout.splitlines() if not line.startswith(PREFIX)]


def passes(reqs):
    return sum(1 for r in reqs if r[1].split("?")[0].endswith("/info"))


class Side:
    def __init__(self, name, binary, workdir, args):
        self.name = name
        self.binary = binary
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.proxy = Proxy(self.dir, "docker")
        self.sock = os.path.join(self.dir, "agent.sock")
        self.env = dict(os.environ)
        self.env.update({
            "AXION_AGENT__AGENT__STATE_DIR": os.path.join(self.dir, "state"),
            "AXION_AGENT__AGENT__ID": AGENT_ID,
            "AXION_AGENT__AGENT__LOG_LEVEL": "info",
            "AXION_AGENT__LOCAL__ENABLED": "true",
            "AXION_AGENT__LOCAL__SOCKET": self.sock,
            "AXION_AGENT__DOCKER__SOCKET": self.proxy.sock,
        })
        self.config = os.path.join(self.dir, "agent.toml")
        open(self.config, "w").close()
        self.daemon = None
        self.args = args

    def cli(self, *argv):
        p = subprocess.run([self.binary, "--config", self.config, *argv], env=self.env,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise Failed(f"{self.name}: axion-agent {' '.join(argv)}: exit {p.returncode}: "
                         f"{p.stderr.strip()}")
        return p.stdout

    def apply_all(self):
        for i, s in enumerate(stack_names(self.args.stacks)):
            path = os.path.join(self.dir, f"{s}.yml")
            with open(path, "w") as f:
                f.write(compose(i, self.args.services))
            self.cli("apply", "-f", path, "-n", s)

    def converged(self):
        st = json.loads(self.cli("status", "--output", "json"))
        st = st["stacks"] if isinstance(st, dict) else st  # older builds print the list alone
        states = {x["stack"]: x["state"] for x in st}
        bad = {k: v for k, v in states.items() if v != "converged"}
        return (len(states) == self.args.stacks and not bad) or bad or "no status yet"

    def start(self):
        log = open(os.path.join(self.dir, "daemon.log"), "a")
        self.daemon = subprocess.Popen([self.binary, "--config", self.config, "run"],
                                       env=self.env, stdout=log, stderr=log)
        wait_for(f"{self.name}: the local socket", lambda: os.path.exists(self.sock), 30)
        wait_for(f"{self.name}: every stack converged", lambda: self.converged() is True)
        self.startup = Cpu(self.daemon.pid)

        # Settled: no pass started for 3 s, or 15 s gone (a daemon that keeps polling never
        # goes quiet; its polling is what the idle window then measures).
        end = time.monotonic() + 15

        def settled():
            n = passes(self.proxy.requests())
            time.sleep(3)
            return passes(self.proxy.requests()) == n or time.monotonic() > end
        wait_for(f"{self.name}: settled", settled, interval=0)

    def stop(self):
        if self.daemon:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(60)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
            self.daemon = None

    def wake(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(b"wake", self.sock)
        finally:
            s.close()

    def measure(self):
        self.start()
        pid = self.daemon.pid
        try:
            base = len(self.proxy.requests())
            a = Cpu(pid)
            time.sleep(self.args.window)
            b = Cpu(pid)
            reqs = self.proxy.requests()[base:]
            idle = b.since(a)
            idle["requests"] = len(reqs)
            idle["passes"] = passes(reqs)

            lists = swarm_lists()
            base = len(self.proxy.requests())
            c = Cpu(pid)
            for _ in range(self.args.passes):
                self.wake()
                time.sleep(0.5)
            time.sleep(1.0)  # the last pass's answers
            d = Cpu(pid)
            reqs = self.proxy.requests()[base:]
            trig = d.since(c)
            n = passes(reqs)
            trig["passes"] = n
            # All of the window's CPU is charged to its passes: an upper bound (the daemon's
            # background work, a telemetry cycle every 10 s, is in it too), and the idle rate
            # cannot be taken off: a daemon that polls does its polling passes in it.
            trig["per_pass_ms"] = trig["cpu_ms_sched"] / n if n else None
            trig["requests_per_pass"] = len(reqs) / n if n else None
            # A no-change pass needs a Swarm that did not change meanwhile.
            after = swarm_lists()
            trig["lists_changed"] = [k for k in lists if lists[k] != after[k]]
            trig["other_services"] = others()
            start = {"cpu_ms_stat": self.startup.ticks * 1000.0 / TICK,
                     "cpu_ms_sched": self.startup.ns / 1e6}
            return {"startup": start, "idle": idle, "pass": trig}
        finally:
            self.stop()

    def close(self):
        self.stop()
        self.proxy.close()


# --- cleanup ---------------------------------------------------------------------------------

def docker_names(kind):
    p = subprocess.run(["docker", kind, "ls", "--format", "{{.Name}}"], capture_output=True,
                       text=True)
    return [n for n in p.stdout.split() if n.startswith(PREFIX)]


def cleanup():
    doomed = docker_names("service")
    for i in range(0, len(doomed), 50):
        subprocess.run(["docker", "service", "rm", *doomed[i:i + 50]], capture_output=True)

    def gone():
        nets = docker_names("network")
        if nets:
            subprocess.run(["docker", "network", "rm", *nets], capture_output=True)
        return not docker_names("network") and not docker_names("service")
    wait_for("the benchmark's objects removed", gone, 120, 0.5)


# --- report ----------------------------------------------------------------------------------

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def report(args, results):
    rows = []
    for side in ("before", "after"):
        rs = results[side]
        idle_pct = med([r["idle"]["cpu_ms_sched"] / r["idle"]["seconds"] / 10.0 for r in rs])
        idle_pct_stat = med([r["idle"]["cpu_ms_stat"] / r["idle"]["seconds"] / 10.0 for r in rs])
        rows.append({
            "side": side,
            "name": getattr(args, f"{side}_name"),
            "idle_cpu_ms": med([r["idle"]["cpu_ms_sched"] for r in rs]),
            "idle_ticks": med([r["idle"]["ticks"] for r in rs]),
            "idle_pct": idle_pct,
            "idle_pct_stat": idle_pct_stat,
            "idle_passes": med([r["idle"]["passes"] for r in rs]),
            "idle_requests": med([r["idle"]["requests"] for r in rs]),
            "pass_ms": med([r["pass"]["per_pass_ms"] for r in rs]),
            "pass_requests": med([r["pass"]["requests_per_pass"] for r in rs]),
            "startup_ms": med([r["startup"]["cpu_ms_sched"] for r in rs]),
        })
    b, a = rows
    n = args.stacks * args.services
    print()
    print(f"Idle daemon, {args.stacks} stacks x {args.services} services (replicas 0, "
          f"converged), {args.window:.0f} s window; no-change pass over {n} services "
          f"(median of {args.reps}):")
    print(f"{'':34} {'idle CPU ms':>12} {'% of a core':>12} {'ticks':>6} {'passes':>7} "
          f"{'requests':>9} {'pass CPU ms':>12} {'req/pass':>9}")
    for r in rows:
        label = f"{r['side']} ({r['name']})"
        print(f"{label[:34]:34} {r['idle_cpu_ms']:12.1f} {r['idle_pct']:12.3f} "
              f"{r['idle_ticks']:6.0f} {r['idle_passes']:7.0f} {r['idle_requests']:9.0f} "
              f"{r['pass_ms']:12.2f} {r['pass_requests']:9.1f}")

    def ratio(x, y):
        return f"{x / y:.1f}x less" if y and x >= y else (f"{y / x:.1f}x more" if x else "-")
    print(f"{'after vs before':34} {ratio(b['idle_cpu_ms'], a['idle_cpu_ms']):>12} "
          f"{'':>12} {'':>6} {'':>7} {'':>9} {ratio(b['pass_ms'], a['pass_ms']):>12}")
    print(f"start-up until every stack converged (process start, store, first passes): "
          f"before {b['startup_ms']:.0f} ms, after {a['startup_ms']:.0f} ms CPU "
          f"({ratio(b['startup_ms'], a['startup_ms'])})")
    for side in ("before", "after"):
        for r in results[side]:
            if r["pass"]["lists_changed"]:
                print(f"warning: {side}: the Swarm changed during the passes "
                      f"({', '.join(r['pass']['lists_changed'])}; other services: "
                      f"{r['pass']['other_services']}): not all were no-change passes")
    print(f"goals: idle < 0.1 % of a core (after: {a['idle_pct']:.3f} %, from /proc/<pid>/stat "
          f"{a['idle_pct_stat']:.3f} %); a no-change pass < 5 ms CPU (after: "
          f"{a['pass_ms']:.2f} ms)")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before")
    ap.add_argument("--before-name", default="before")
    ap.add_argument("--after")
    ap.add_argument("--after-name", default="after")
    ap.add_argument("--stacks", type=int, default=30)
    ap.add_argument("--services", type=int, default=10)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--passes", type=int, default=20)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--keep", action="store_true", help="keep the work dir and the objects")
    ap.add_argument("--from-json", help="only print the report of an earlier run's --json")
    args = ap.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        for r in [r for side in saved["results"].values() for r in side]:
            p = r["pass"]
            p["per_pass_ms"] = p["cpu_ms_sched"] / p["passes"] if p["passes"] else None
        for k in ("before_name", "after_name", "stacks", "services", "window", "reps"):
            setattr(args, k, saved["args"][k])
        report(args, saved["results"])
        return
    if not args.before or not args.after:
        ap.error("--before and --after are required (or --from-json)")

    workdir = tempfile.mkdtemp(prefix="axion-idle-bench-")
    sides = {}
    results = {"before": [], "after": []}
    try:
        cleanup()
        for name in ("before", "after"):
            sides[name] = Side(name, getattr(args, name), workdir, args)
            sides[name].apply_all()
        for rep in range(args.reps):
            order = ("before", "after") if rep % 2 == 0 else ("after", "before")
            for name in order:
                print(f"rep {rep + 1}: {name} ...", file=sys.stderr, flush=True)
                r = sides[name].measure()
                print(f"  {json.dumps(r)}", file=sys.stderr, flush=True)
                results[name].append(r)
        rows = report(args, results)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "results": results, "summary": rows}, f,
                          indent=2)
    finally:
        for s in sides.values():
            s.close()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            cleanup()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except Failed as e:
        print(f"idle.py: {e}", file=sys.stderr)
        sys.exit(1)
