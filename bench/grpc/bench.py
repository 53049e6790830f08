#!/usr/bin/env python3
"""The gRPC control channel's benchmark: what the agent adds to a Scale, against the same change
made with `docker service scale`, in one run, on the one local Swarm; and the agent's memory.

    bench.py --agent build-bench/axion-agent [--reps 5] [--json FILE]

Run it through bench/grpc/run.sh (builds a Release agent, starts Docker, takes the Docker lock).

  Scale latency  ours: the Control Plane simulator sends Scale(axbg1/app, 1 → 3) on the
                 agent's stream. Measured from the simulator's "sent" record (taken just
                 before it writes the message) to the first mutating Engine call the agent
                 makes (POST/PUT/DELETE, seen by a timestamping proxy between the agent and
                 dockerd), and to all 3 replicas running. The baseline: `docker service scale
                 axbg-cli=3` on a plain service (not the agent's), through its own proxy of
                 the same kind, measured from the moment the command is started (the service
                 made like the agent's: the same image and command, on an overlay network of
                 its own, as a stack's default network is). Each side is
                 scaled back to 1 between repetitions (not measured); the sides alternate.
                 "added" is ours minus docker's, per measure, from the medians.
  RSS            the agent's VmRSS (/proc/PID/status) with the stream up and idle (sampled
                 over 10 s, after a settling time), and while a Logs command streams a noisy
                 service's output (about 200 KB/s, follow, for 15 s): the largest sample.

Readiness is polled on the real socket (GET /services?status=true every 10 ms). Nothing here
asserts a time: it measures, prints a table with medians, and writes the raw numbers as JSON."""

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests"))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
from cpsim import Simulator  # noqa: E402

PROXY = os.path.join(SRC, "tests", "support", "docker_proxy.py")
DOCKER_SOCK = "/var/run/docker.sock"
IMAGE = "axion-test/busybox:1"
AID = "axbg-agent"
STACK = "axbg1"
CLI_SVC = "axbg-cli"
POLL = 0.01
MUTATING = ("POST", "PUT", "DELETE")


class Failed(Exception):
    pass


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
    def __init__(self):
        self.conn = UnixHTTP(DOCKER_SOCK)

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

    def running(self, name, want):
        f = urllib.parse.quote(json.dumps({"name": [name]}))
        for s in self.get(f"/services?status=true&filters={f}"):
            if s["Spec"]["Name"] == name:
                st = s.get("ServiceStatus") or {}
                return st.get("DesiredTasks") == want and st.get("RunningTasks") == want
        return False


def wait_for(what, cond, timeout=120.0, interval=POLL):
    end = time.monotonic() + timeout
    while True:
        if cond():
            return time.time()
        if time.monotonic() > end:
            raise Failed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Proxy:
    def __init__(self, workdir, name):
        self.sock = os.path.join(workdir, f"{name}.sock")
        self.log = os.path.join(workdir, f"{name}.log")
        open(self.log, "w").close()
        self.proc = subprocess.Popen([sys.executable, PROXY, self.sock, self.log, DOCKER_SOCK,
                                     "--timestamps"])
        wait_for(f"proxy {name}", lambda: os.path.exists(self.sock), 10, 0.02)

    def lines(self):
        with open(self.log) as f:
            return [line.split(" ", 2) for line in f.read().splitlines() if line.count(" ") >= 2]

    def first_mutation(self, since):
        for ts, method, path in self.lines()[since:]:
            if method in MUTATING:
                return float(ts), f"{method} {path}"
        return None, None

    def close(self):
        self.proc.kill()
        self.proc.wait()


def sh(cmd, env=None):
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env)
    if p.returncode:
        raise Failed(f"{cmd}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def compose(noisy=False):
    out = ["services:", "  app:", f"    image: {IMAGE}", '    command: ["sleep", "1000000"]',
           "    stop_grace_period: 1s", "    deploy:", "      replicas: 1"]
    if noisy:
        out += ["  noisy:", f"    image: {IMAGE}", "    stop_grace_period: 1s",
                '    command: ["sh", "-c", "l=$$(printf \'%0999d\' 0); while true; do i=0; '
                'while [ $$i -lt 20 ]; do echo $$l; i=$$((i+1)); done; sleep 0.1; done"]']
    return "\n".join(out) + "\n"


def cleanup():
    for kind in ("service",):
        ls = sh(f"docker {kind} ls --format '{{{{.Name}}}}'").split()
        doomed = [n for n in ls if n.startswith("axbg")]
        if doomed:
            sh(f"docker {kind} rm {' '.join(doomed)}")
    for _ in range(100):
        nets = [n for n in sh("docker network ls --format '{{.Name}}'").split()
                if n.startswith("axbg")]
        if not nets:
            return
        subprocess.run(["docker", "network", "rm", *nets], capture_output=True)
        time.sleep(0.3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="axbg-")
    engine = Engine()
    cleanup()
    sim = Simulator(os.path.join(work, "cpsim")).start()
    agent_proxy = Proxy(work, "proxy-agent")
    cli_proxy = Proxy(work, "proxy-cli")
    token = sim.issue_token(agent_id=AID)["token"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AXION_AGENT__")}
    env.update({
        "AXION_AGENT__AGENT__STATE_DIR": os.path.join(work, "state"),
        "AXION_AGENT__AGENT__ID": AID,
        "AXION_AGENT__AGENT__TOKEN": token,
        "AXION_AGENT__LOCAL__SOCKET": os.path.join(work, "agent.sock"),
        "AXION_AGENT__DOCKER__SOCKET": agent_proxy.sock,
        "AXION_AGENT__CONTROL_PLANE__GRPC_URL": f"https://{sim.control_target}",
        "AXION_AGENT__CONTROL_PLANE__ENROLL_URL": f"https://{sim.enroll_target}",
        "AXION_AGENT__CONTROL_PLANE__CA_FILE": sim.ca_file,
    })
    log = open(os.path.join(work, "agent.log"), "w")
    config = os.path.join(work, "agent.toml")
    open(config, "w").close()
    agent = subprocess.Popen([args.agent, "--config", config, "run"], env=env, stdout=log,
                             stderr=log)
    results = {"reps": [], "machine": platform.node(), "kernel": platform.release()}
    try:
        sim.wait("hello", agent_id=AID, timeout=60)
        cid = sim.send(AID, {"deploy": {"stack": STACK, "generation": 1, "compose": compose()}})
        res = sim.wait_result(cid, timeout=120)
        if res["outcome"] != "OUTCOME_DONE":
            raise Failed(f"deploy: {res['outcome']} {res.get('error')}")
        svc = f"{STACK}_app"
        cli_env = dict(os.environ, DOCKER_HOST=f"unix://{cli_proxy.sock}")
        # Shaped like the agent's: on an overlay network of its own (attaching a task to one
        # is most of Swarm's time to start it).
        sh(f"docker network create -d overlay {CLI_SVC}-net")
        sh(f"docker service create -d --name {CLI_SVC} --network {CLI_SVC}-net "
           f"--stop-grace-period 1s --replicas 1 {IMAGE} sleep 1000000")
        wait_for("the baseline service", lambda: engine.running(CLI_SVC, 1))
        wait_for("the agent's service", lambda: engine.running(svc, 1))
        docker = shutil.which("docker")

        def ours():
            since = len(agent_proxy.lines())
            seq = sim.last_seq()
            c = sim.send(AID, {"scale": {"stack": STACK, "service": "app", "replicas": 3}})
            t_run = wait_for("3 running (ours)", lambda: engine.running(svc, 3))
            sent = sim.events("sent", command_id=c, after=seq)[0]["t"]
            t_mut, what = agent_proxy.first_mutation(since)
            done = sim.wait_result(c, timeout=60)
            back = sim.send(AID, {"scale": {"stack": STACK, "service": "app", "replicas": 1}})
            sim.wait_result(back, timeout=60)
            wait_for("1 running (ours)", lambda: engine.running(svc, 1))
            return {"first_call_ms": (t_mut - sent) * 1000, "running_ms": (t_run - sent) * 1000,
                    "result_ms": (done["t"] - sent) * 1000, "call": what}

        def theirs():
            since = len(cli_proxy.lines())
            t0 = time.time()
            subprocess.run([docker, "service", "scale", "-d", f"{CLI_SVC}=3"], env=cli_env,
                           check=True, capture_output=True)
            t_ret = time.time()
            t_run = wait_for("3 running (docker)", lambda: engine.running(CLI_SVC, 3))
            t_mut, what = cli_proxy.first_mutation(since)
            sh(f"docker service scale -d {CLI_SVC}=1")
            wait_for("1 running (docker)", lambda: engine.running(CLI_SVC, 1))
            return {"first_call_ms": (t_mut - t0) * 1000, "running_ms": (t_run - t0) * 1000,
                    "return_ms": (t_ret - t0) * 1000, "call": what}

        ours()  # warm-up, both sides
        theirs()
        for i in range(args.reps):
            order = (ours, theirs) if i % 2 else (theirs, ours)
            rep = {}
            for f in order:
                rep[f.__name__] = f()
            results["reps"].append(rep)
            print(f"rep {i + 1}: ours {rep['ours']['first_call_ms']:.1f} / "
                  f"{rep['ours']['running_ms']:.0f} ms, docker {rep['theirs']['first_call_ms']:.1f}"
                  f" / {rep['theirs']['running_ms']:.0f} ms", flush=True)

        # Memory: idle with the stream up, then while a Logs stream runs.
        time.sleep(5)  # settling before sampling
        idle = []
        for _ in range(20):
            idle.append(rss_kib(agent.pid))
            time.sleep(0.5)
        cid = sim.send(AID, {"deploy": {"stack": STACK, "generation": 2,
                                        "compose": compose(noisy=True)}})
        sim.wait_result(cid, timeout=120)
        wait_for("the noisy service", lambda: engine.running(f"{STACK}_noisy", 1))
        logs = sim.send(AID, {"logs": {"stack": STACK, "service": "noisy", "follow": True,
                                       "limit_bytes": 64 << 20}})
        sim.wait("log_chunk", command_id=logs, timeout=30)
        busy = []
        for _ in range(30):
            busy.append(rss_kib(agent.pid))
            time.sleep(0.5)
        streamed = sum(c["bytes"] for c in sim.log_chunks(logs))
        sim.cancel_logs(AID, logs)
        sim.wait_result(logs, timeout=30)
        results["rss_idle_kib"] = idle
        results["rss_logs_kib"] = busy
        results["logs_bytes"] = streamed
    finally:
        agent.terminate()
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
        sim.kill()
        agent_proxy.close()
        cli_proxy.close()
        cleanup()

    def med(side, key):
        return statistics.median(r[side][key] for r in results["reps"])

    print()
    print(f"Scale 1 → 3, {args.reps} repetitions, medians (ms)")
    print("| measure | axion-agent (gRPC Scale) | docker service scale | added |")
    print("| --- | ---: | ---: | ---: |")
    for key, what in (("first_call_ms", "to the first mutating Engine call"),
                      ("running_ms", "to all 3 replicas running")):
        o, t = med("ours", key), med("theirs", key)
        print(f"| {what} | {o:.1f} | {t:.1f} | {o - t:+.1f} |")
    print(f"| to the final result (ours) / the CLI's return | {med('ours', 'result_ms'):.1f} | "
          f"{med('theirs', 'return_ms'):.1f} | |")
    print(f"first calls: ours {results['reps'][0]['ours']['call']}, docker "
          f"{results['reps'][0]['theirs']['call']}")
    print()
    idle, busy = results["rss_idle_kib"], results["rss_logs_kib"]
    print(f"RSS idle, stream up: median {statistics.median(idle) / 1024:.1f} MiB, max "
          f"{max(idle) / 1024:.1f} MiB")
    print(f"RSS with a Logs stream ({results['logs_bytes'] / (1 << 20):.1f} MiB in 15 s): median "
          f"{statistics.median(busy) / 1024:.1f} MiB, max {max(busy) / 1024:.1f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failed as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
