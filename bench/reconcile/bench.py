#!/usr/bin/env python3
"""The reconciler benchmark: axion-agent against `docker stack deploy --resolve-image never` on
the same generated 30-service stack, in one run, on the one local Swarm.

    bench.py --agent build-bench/axion-agent [--reps 3] [--services 30] [--docker /usr/bin/docker]

Run it through bench/reconcile/run.sh (builds, starts Docker, takes the Docker lock). First an
unmeasured warm-up (one small stack deployed and removed). Then per repetition, for each side in
turn (docker first in odd repetitions, axion first in even ones), on a node where no axb object
is left, three measures, and everything removed again:

  first deploy   docker: `docker stack deploy` of axb-ref. ours: `axion-agent apply` then
                 `axion-agent reconcile` (one pass in the CLI process, no daemon) of axb-ours.
                 Time until the command(s) return and until every service has all its
                 replicas running; mutating Engine API calls (POST, PUT, DELETE); and, from
                 dockerd's task timestamps, when the first task was created and the last one
                 started running (Swarm's own part).
  re-deploy      the unchanged file again, the same commands: time until all running (they
                 never stopped) and the mutating calls.
  repair         service s07 removed with `docker service rm` (on the real socket, not
                 counted). ours: the agent runs as a daemon (started on the converged stack,
                 its start-up pass over) and repairs by itself from the Docker event. docker:
                 the operator re-runs `docker stack deploy`. Time from the rm returning until
                 the service exists again and until its replica runs; the mutating calls.

Both sides reach dockerd through the same counting proxy (tests/support/docker_proxy.py, one
per side), so each call costs the same extra hop and every call is counted. Readiness is
polled on the real socket (GET /services?status=true every 25 ms), not through the proxies.
Nothing here asserts a time: it measures, prints a table with medians and ratios, and writes
the raw numbers as JSON."""

import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROXY = os.path.join(SRC, "tests", "support", "docker_proxy.py")
DOCKER_SOCK = "/var/run/docker.sock"
IMAGE = "axion-test/busybox:1"
PREFIX = "axb"
REF = "axb-ref"
OURS = "axb-ours"
VICTIM = "s07"
POLL = 0.025
DEADLINE = 180.0
MUTATING = ("POST", "PUT", "DELETE")


class Failed(Exception):
    pass


# --- the stack -------------------------------------------------------------------------------

def compose(n):
    """n services on the test image, each a `sleep`: every fifth one with 2 replicas, some
    environment and labels, a resource limit, a short stop grace period (busybox sleep as PID 1
    ignores SIGTERM, so cleanup would wait the default 10 s), and one config that every third
    service mounts."""
    out = ['version: "3.8"', "services:"]
    for i in range(n):
        out += [f"  s{i:02d}:",
                f"    image: {IMAGE}",
                f'    command: ["sleep", "{100000 + i}"]',
                "    stop_grace_period: 1s",
                "    environment:",
                f"      SERVICE_INDEX: \"{i}\"",
                "      ROLE: bench",
                "    labels:",
                f"      io.axb.index: \"{i}\"",
                "    deploy:",
                f"      replicas: {2 if i % 5 == 0 else 1}",
                "      labels:",
                "        io.axb.tier: bench",
                "      resources:",
                "        limits:",
                "          memory: 32M",
                "      restart_policy:",
                "        condition: any"]
        if i % 3 == 0:
            out += ["    configs:",
                    "      - source: motd",
                    "        target: /etc/motd"]
    out += ["configs:", "  motd:", "    file: ./motd.txt"]
    return "\n".join(out) + "\n"


def replicas_of(n):
    return {f"s{i:02d}": (2 if i % 5 == 0 else 1) for i in range(n)}


# --- dockerd, read-only, on the real socket --------------------------------------------------

class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.path)
        self.sock = s


class Engine:
    def __init__(self, path=DOCKER_SOCK):
        self.conn = UnixHTTP(path)

    def get(self, path):
        for attempt in (0, 1):
            try:
                self.conn.request("GET", "/v1.41" + path)
                r = self.conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise Failed(f"GET {path}: {r.status} {body[:200]!r}")
                return json.loads(body)
            except (http.client.HTTPException, OSError):
                self.conn.close()
                if attempt:
                    raise

    def stack_services(self, stack):
        f = urllib.parse.quote(json.dumps({"label": [f"com.docker.stack.namespace={stack}"]}))
        return self.get(f"/services?status=true&filters={f}")

    def running(self, stack, want):
        """True once the stack has exactly the services of `want` (short name -> replicas),
        each with that many replicas desired and running."""
        got = {}
        for s in self.stack_services(stack):
            name = s["Spec"]["Name"]
            st = s.get("ServiceStatus") or {}
            got[name[len(stack) + 1:]] = (st.get("DesiredTasks"), st.get("RunningTasks"))
        return got.keys() == want.keys() and all(
            got[k] == (want[k], want[k]) for k in want)

    def task_span(self, stack, t0_wall, only=None):
        """(first task created, last task running), seconds after t0_wall, over the running
        tasks of the stack's services (or only of the service named `only`): how long Swarm
        itself took, from dockerd's timestamps."""
        ids = [s["ID"] for s in self.stack_services(stack)
               if only is None or s["Spec"]["Name"] == only]
        f = urllib.parse.quote(json.dumps({"service": ids, "desired-state": ["running"]}))
        tasks = [t for t in self.get(f"/tasks?filters={f}")
                 if t["Status"]["State"] == "running"]
        if not tasks:
            return None, None
        return (min(rfc3339(t["CreatedAt"]) for t in tasks) - t0_wall,
                max(rfc3339(t["Status"]["Timestamp"]) for t in tasks) - t0_wall)

    def names(self, kind, prefix):
        return [o.get("Spec", {}).get("Name") or o.get("Name") for o in self.get(f"/{kind}")
                if (o.get("Spec", {}).get("Name") or o.get("Name") or "").startswith(prefix)]


def rfc3339(ts):
    """Docker's RFC 3339 UTC timestamp with nanoseconds, as a Unix time."""
    base, _, frac = ts.rstrip("Z").partition(".")
    t = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + (float("0." + frac[:6]) if frac else 0.0)


def wait_for(what, cond, timeout=DEADLINE, interval=POLL):
    end = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return time.monotonic()
        if time.monotonic() > end:
            raise Failed(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# --- processes -------------------------------------------------------------------------------

class Proxy:
    """A counting proxy: every request "METHOD PATH" in a log file."""

    def __init__(self, workdir, name):
        self.sock = os.path.join(workdir, f"{name}.sock")
        self.log = os.path.join(workdir, f"{name}.log")
        open(self.log, "w").close()
        self.proc = subprocess.Popen([sys.executable, PROXY, self.sock, self.log])
        wait_for(f"proxy {name}", lambda: os.path.exists(self.sock), 10, 0.02)

    def requests(self):
        with open(self.log) as f:
            return [tuple(line.split(" ", 1)) for line in f.read().splitlines() if " " in line]

    def mark(self):
        return len(self.requests())

    def mutations(self, since):
        return [r for r in self.requests()[since:] if r[0] in MUTATING]

    def close(self):
        self.proc.kill()
        self.proc.wait()


def run(argv, env, what):
    p = subprocess.run(argv, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise Failed(f"{what}: exit {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    return p


class Docker:
    """The baseline: Debian's docker CLI, through its proxy, with an empty HOME."""

    def __init__(self, client, workdir, proxy):
        self.client = client
        self.proxy = proxy
        home = os.path.join(workdir, "home")
        os.makedirs(home, exist_ok=True)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home,
                    "DOCKER_HOST": f"unix://{proxy.sock}"}
        self.file = None

    def deploy(self):
        run([self.client, "stack", "deploy", "--resolve-image", "never", "-c", self.file, REF],
            self.env, "docker stack deploy")


class Agent:
    """Ours: the built axion-agent in local mode, its own state dir, through its proxy."""

    def __init__(self, binary, workdir, proxy):
        self.bin = binary
        self.dir = os.path.join(workdir, "agent")
        os.makedirs(self.dir)
        self.proxy = proxy
        self.config = os.path.join(self.dir, "agent.toml")
        open(self.config, "w").close()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AXION_AGENT__")}
        self.env.update({
            "AXION_AGENT__AGENT__STATE_DIR": os.path.join(self.dir, "state"),
            "AXION_AGENT__AGENT__ID": "axb-bench",
            "AXION_AGENT__AGENT__LOG_LEVEL": "info",
            "AXION_AGENT__LOCAL__ENABLED": "true",
            "AXION_AGENT__LOCAL__SOCKET": os.path.join(self.dir, "agent.sock"),
            "AXION_AGENT__DOCKER__SOCKET": proxy.sock,
        })
        self.daemon = None
        self.file = None

    def cli(self, *args, ok=(0,)):
        p = subprocess.run([self.bin, "--config", self.config, *args], env=self.env,
                           capture_output=True, text=True)
        if p.returncode not in ok:
            raise Failed(f"axion-agent {' '.join(args)}: exit {p.returncode}: "
                         f"{p.stderr.strip() or p.stdout.strip()}")
        return p

    def deploy(self):
        t0 = time.monotonic()
        self.cli("apply", "-f", self.file, "-n", OURS)
        t1 = time.monotonic()
        self.cli("reconcile")
        return {"apply_s": t1 - t0, "reconcile_s": time.monotonic() - t1}

    def status(self):
        st = json.loads(self.cli("status", OURS, "--output", "json").stdout)
        return (st["stacks"] if isinstance(st, dict) else st)[0]

    def start(self):
        log = open(os.path.join(self.dir, "daemon.log"), "a")
        self.daemon = subprocess.Popen([self.bin, "--config", self.config, "run"],
                                       env=self.env, stdout=log, stderr=log)
        log.close()

    def stop(self):
        if self.daemon:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
            self.daemon = None


def rm_service(client, name):
    """The operator's removal, on the real socket (not counted)."""
    run([client, "service", "rm", name],
        {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_HOST": f"unix://{DOCKER_SOCK}"},
        "docker service rm")


# --- cleanup ---------------------------------------------------------------------------------

def cleanup(engine, client):
    """Removes every service, config, secret and network whose name starts with axb (and only
    those), and waits until the networks and the task containers are gone."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_HOST": f"unix://{DOCKER_SOCK}"}
    for kind in ("service", "config", "secret"):
        doomed = engine.names(kind + "s", PREFIX)
        if doomed:
            subprocess.run([client, kind, "rm", *doomed], env=env, capture_output=True)

    def networks_gone():
        doomed = engine.names("networks", PREFIX)
        if doomed:
            subprocess.run([client, "network", "rm", *doomed], env=env, capture_output=True)
        return not engine.names("networks", PREFIX)
    wait_for("axb networks removed", networks_gone, 120, 0.5)

    def containers_gone():
        f = urllib.parse.quote(json.dumps({"label": ["com.docker.swarm.service.name"]}))
        cs = engine.get(f"/containers/json?all=true&filters={f}")
        return not [c for c in cs
                    if c["Labels"].get("com.docker.swarm.service.name", "").startswith(PREFIX)]
    wait_for("axb task containers gone", containers_gone, 120, 0.5)


def warm_up(engine, client, agent, workdir):
    """Not measured: one small stack deployed and running (a dockerd that just started is slow
    on its first overlay network and first tasks), and the agent binary read once."""
    path = os.path.join(workdir, "warm.yml")
    with open(path, "w") as f:
        f.write(f'version: "3.8"\nservices:\n  w:\n    image: {IMAGE}\n'
                f'    command: ["sleep", "100000"]\n    stop_grace_period: 1s\n')
    run([client, "stack", "deploy", "--resolve-image", "never", "-c", path, "axb-warm"],
        {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DOCKER_HOST": f"unix://{DOCKER_SOCK}",
         "HOME": workdir}, "docker stack deploy (warm-up)")
    wait_for("the warm-up stack running", lambda: engine.running("axb-warm", {"w": 1}))
    run([agent, "version"], None, "axion-agent version")


# --- one repetition --------------------------------------------------------------------------

def measure_deploy(side, engine, stack, want, first):
    """Runs side.deploy() and waits until all services run: seconds until the command(s)
    returned and until all running, the mutating calls, and on a first deploy when Swarm
    created the first task and saw the last one running."""
    mark = side.proxy.mark()
    t0_wall = time.time()
    t0 = time.monotonic()
    sub = side.deploy() or {}
    t_cmd = time.monotonic()
    t_run = wait_for(f"{stack} running", lambda: engine.running(stack, want))
    r = {"cmd_s": t_cmd - t0, "wall_s": t_run - t0,
         "mutations": len(side.proxy.mutations(mark)), **sub}
    if first:
        r["task_first_created_s"], r["task_last_running_s"] = engine.task_span(stack, t0_wall)
    return r


def measure_repair(side, engine, stack, want, client, key):
    """Removes STACK_s07 on the real socket; docker re-runs its deploy, ours repairs by itself.
    Seconds from the rm returning until the service exists and until all run again."""
    victim = f"{stack}_{VICTIM}"
    mark = side.proxy.mark()
    rm_service(client, victim)
    t0_wall = time.time()
    t0 = time.monotonic()
    r = {}
    if key == "ref":
        side.deploy()
        r["cmd_s"] = time.monotonic() - t0

    def back():
        return any(s["Spec"]["Name"] == victim for s in engine.stack_services(stack))
    t_back = wait_for(f"{victim} recreated", back, DEADLINE, 0.01)
    t_run = wait_for(f"{stack} running", lambda: engine.running(stack, want))
    r.update({"recreated_s": t_back - t0, "wall_s": t_run - t0,
              "mutations": len(side.proxy.mutations(mark))})
    r["task_created_s"], r["task_running_s"] = engine.task_span(stack, t0_wall, victim)
    return r


def repetition(i, args, engine, workdir, motd, file_text):
    """Both sides, one after the other (alternating which goes first), each on a node without
    the other's stack: first deploy, re-deploy, repair, then everything removed again."""
    want = replicas_of(args.services)
    res = {}
    rep_dir = os.path.join(workdir, f"rep{i}")
    os.makedirs(rep_dir)
    path = os.path.join(rep_dir, "stack.yml")
    with open(path, "w") as f:
        f.write(file_text)
    with open(os.path.join(rep_dir, "motd.txt"), "w") as f:
        f.write(motd)
    order = ["ref", "ours"] if i % 2 == 0 else ["ours", "ref"]
    for key in order:
        proxy = Proxy(rep_dir, f"proxy-{key}")
        if key == "ref":
            side, stack = Docker(args.docker, rep_dir, proxy), REF
        else:
            side, stack = Agent(args.agent, rep_dir, proxy), OURS
        side.file = path
        r = res[key] = {}
        try:
            r["first"] = measure_deploy(side, engine, stack, want, True)
            progress(i, key, "first deploy", r["first"])
            r["redeploy"] = measure_deploy(side, engine, stack, want, False)
            progress(i, key, "re-deploy", r["redeploy"])
            if key == "ours":
                # ours repairs as a daemon: started on the converged stack, its first pass
                # done and the proxy quiet for 0.5 s (a converged daemon reads again only on
                # an event or the resync)
                mark = proxy.mark()
                side.start()
                wait_for("the daemon's first pass",
                         lambda: any(q[1].endswith("/info") for q in proxy.requests()[mark:])
                         and side.status()["state"] == "converged", 30, 0.05)
                wait_for("the daemon idle", lambda: idle(proxy, 0.5), 30, 0.1)
                r["daemon_start_mutations"] = len(proxy.mutations(mark))
            r["repair"] = measure_repair(side, engine, stack, want, args.docker, key)
            progress(i, key, "repair", r["repair"])
        finally:
            if key == "ours":
                side.stop()
            proxy.close()
        cleanup(engine, args.docker)
    return res


def progress(i, key, what, r):
    side = "docker" if key == "ref" else "axion"
    vals = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in r.items())
    print(f"  rep {i + 1} {side:6} {what}: {vals}", flush=True)


def idle(proxy, quiet):
    st = os.stat(proxy.log)
    return time.time() - st.st_mtime >= quiet


# --- report ----------------------------------------------------------------------------------

ROWS = [
    ("first deploy: until all replicas running", ("first", "wall_s"), "s"),
    ("  command(s) returned", ("first", "cmd_s"), "s"),
    ("  first task created (dockerd)", ("first", "task_first_created_s"), "s"),
    ("  last task running (dockerd)", ("first", "task_last_running_s"), "s"),
    ("  mutating API calls", ("first", "mutations"), "n"),
    ("re-deploy unchanged: until all running", ("redeploy", "wall_s"), "s"),
    ("  mutating API calls", ("redeploy", "mutations"), "n"),
    ("repair 1 removed service: until running", ("repair", "wall_s"), "s"),
    ("  service recreated", ("repair", "recreated_s"), "s"),
    ("  its task running (dockerd)", ("repair", "task_running_s"), "s"),
    ("  mutating API calls", ("repair", "mutations"), "n"),
]


def fmt(v, unit):
    return f"{v:.2f} s" if unit == "s" else f"{v:g}"


def ratio(ours, ref):
    if ref == 0:
        return "-"
    return f"{ours / ref:.2f}x"


def table(results):
    lines = ["| measure | docker stack deploy | axion-agent | axion / docker |",
             "| --- | ---: | ---: | ---: |"]
    for label, (phase, key), unit in ROWS:
        cells = []
        for side in ("ref", "ours"):
            vals = [r[side][phase][key] for r in results]
            m = statistics.median(vals)
            cell = fmt(m, unit)
            if unit == "s" and len(vals) > 1:
                cell += f" ({min(vals):.2f}–{max(vals):.2f})"
            elif len(set(vals)) > 1:
                cell += f" ({min(vals):g}–{max(vals):g})"
            cells.append((m, cell))
        lines.append(f"| {label} | {cells[0][1]} | {cells[1][1]} | "
                     f"{ratio(cells[1][0], cells[0][0])} |")
    return "\n".join(lines)


def per_rep(results):
    lines = ["| rep | order | side | first deploy: cmd / running | re-deploy: wall / calls |"
             " repair: recreated / running / calls |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    for i, r in enumerate(results):
        order = "axion first" if i % 2 else "docker first"
        for side, name in (("ref", "docker"), ("ours", "axion")):
            s = r[side]
            lines.append(
                f"| {i + 1} | {order} | {name} | {s['first']['cmd_s']:.2f} / "
                f"{s['first']['wall_s']:.2f} s | {s['redeploy']['wall_s']:.2f} s / "
                f"{s['redeploy']['mutations']} | {s['repair']['recreated_s']:.2f} / "
                f"{s['repair']['wall_s']:.2f} s / {s['repair']['mutations']} |")
    return "\n".join(lines)


def machine(engine, client):
    info = engine.get("/info")
    ver = engine.get("/version")
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cli = subprocess.run([client, "version", "--format", "{{.Client.Version}}"],
                         capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{DOCKER_SOCK}"})
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {info.get('NCPU')} CPUs",
        "memory_gib": round(info.get("MemTotal", 0) / 2**30, 1),
        "kernel": platform.release(),
        "os": info.get("OperatingSystem"),
        "engine": ver.get("Version"),
        "storage_driver": info.get("Driver"),
        "docker_cli": f"{client} {cli.stdout.strip()}",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agent", required=True, help="the axion-agent binary")
    ap.add_argument("--docker", default="/usr/bin/docker", help="the baseline docker CLI")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--services", type=int, default=30)
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = ap.parse_args()
    if not 8 <= args.services <= 100:
        ap.error("--services: from 8 to 100")
    args.agent = os.path.abspath(args.agent)

    engine = Engine()
    workdir = tempfile.mkdtemp(prefix="axb-bench-")
    text = compose(args.services)
    motd = "axion reconcile benchmark\n"
    results = []
    print(f"reconcile bench: {args.services} services, {args.reps} repetitions, work dir "
          f"{workdir}", flush=True)
    try:
        cleanup(engine, args.docker)
        warm_up(engine, args.docker, args.agent, workdir)
        cleanup(engine, args.docker)
        for i in range(args.reps):
            r = repetition(i, args, engine, workdir, motd, text)
            results.append(r)
            print(f"rep {i + 1}: " + json.dumps(r), flush=True)
            cleanup(engine, args.docker)
    finally:
        cleanup(engine, args.docker)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    m = machine(engine, args.docker)
    print()
    print(f"Medians of {args.reps} repetitions, {args.services} services "
          f"({sum(replicas_of(args.services).values())} tasks); {m['date']}")
    print(", ".join(f"{k}: {v}" for k, v in m.items() if k != "date"))
    print()
    print(table(results))
    print()
    print(per_rep(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "services": args.services, "results": results}, f,
                      indent=2)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failed as e:
        print(f"reconcile bench: {e}", file=sys.stderr)
        sys.exit(1)
