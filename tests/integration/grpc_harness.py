"""Shared harness of the gRPC channel's integration tests: the Control Plane simulator
(tests/cpsim/) and agents of the built binary pointed at it, on the real Swarm (behind the
counting Docker proxy of tests/support/docker_proxy.py).

    sim = start_sim("grpc-x")
    a = GrpcAgent("x", sim, agent_id="axtgx-1")
    a.start()
    a.wait_connected()
    cid = sim.send(a.agent_id, {"scale": {...}})
    res = sim.wait_result(cid)

Nothing here sleeps and hopes: every wait has a deadline and says what it saw last."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("AXION_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests"))
sys.path.insert(0, HERE)
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from cpsim import Simulator, Timeout  # noqa: E402,F401
from reconcile_harness import (IMAGE, Failed, cleanup, inspect, names, replicas, run,  # noqa: E402,F401
                               services, sh, wait_for)

AGENT = os.environ.get("AXION_AGENT_BIN", "build/axion-agent")
SANITIZER = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:")


def start_sim(tag, extra_args=()):
    d = tempfile.mkdtemp(prefix=f"axt-{tag}-")
    sim = Simulator(os.path.join(d, "cpsim"), extra_args=list(extra_args))
    return sim.start()


def tasks(service, state="running"):
    """IDs of the service's tasks whose current state is state."""
    p = sh(f"docker service ps {service} --no-trunc --format '{{{{.ID}}}} {{{{.CurrentState}}}}'",
           check=False)
    out = []
    for line in p.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].lower() == state:
            out.append(parts[0])
    return out


class GrpcAgent:
    """One agent daemon with its own state dir, talking to sim."""

    def __init__(self, tag, sim, agent_id=None, token=None, extra_env=None, proxy=True):
        self.tag = tag
        self.sim = sim
        self.dir = tempfile.mkdtemp(prefix=f"axt-{tag}-")
        self.state_dir = os.path.join(self.dir, "state")
        self.agent_id = agent_id
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.proxy_sock = os.path.join(self.dir, "docker.sock")
        self.proxy_log = os.path.join(self.dir, "proxy.log")
        self.proxy = None
        self.daemon = None
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AXION_AGENT__")}
        self.env.update({
            "AXION_AGENT__AGENT__STATE_DIR": self.state_dir,
            "AXION_AGENT__AGENT__LOG_LEVEL": "debug",
            "AXION_AGENT__LOCAL__SOCKET": os.path.join(self.dir, "agent.sock"),
            "AXION_AGENT__DOCKER__SOCKET": self.proxy_sock if proxy else "/var/run/docker.sock",
            "AXION_AGENT__RECONCILE__RESYNC_INTERVAL": "30s",
            "AXION_AGENT__CONTROL_PLANE__GRPC_URL": f"https://{sim.control_target}",
            "AXION_AGENT__CONTROL_PLANE__ENROLL_URL": f"https://{sim.enroll_target}",
            "AXION_AGENT__CONTROL_PLANE__CA_FILE": sim.ca_file,
            "AXION_AGENT__CONTROL_PLANE__KEEPALIVE_TIME": "10s",
            "AXION_AGENT__CONTROL_PLANE__KEEPALIVE_TIMEOUT": "5s",
        })
        if agent_id:
            self.env["AXION_AGENT__AGENT__ID"] = agent_id
        if token:
            self.env["AXION_AGENT__AGENT__TOKEN"] = token
        self.env.update(extra_env or {})
        with open(os.path.join(self.dir, "agent.toml"), "w") as f:
            f.write("")
        if proxy:
            self.start_proxy()

    def start_proxy(self):
        open(self.proxy_log, "a").close()
        self.proxy = subprocess.Popen(
            [sys.executable, os.path.join(SOURCE, "tests/support/docker_proxy.py"),
             self.proxy_sock, self.proxy_log])
        wait_for("the docker proxy", lambda: os.path.exists(self.proxy_sock), 10)

    def start(self):
        log = open(self.log_path, "a")
        self.daemon = subprocess.Popen(
            [AGENT, "--config", os.path.join(self.dir, "agent.toml"), "run"], env=self.env,
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.daemon:
            return None
        if self.daemon.poll() is None:
            self.daemon.send_signal(sig)
        try:
            rc = self.daemon.wait(timeout)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
            raise Failed(f"the agent did not stop within {timeout}s of {sig}")
        finally:
            self.daemon = None
        return rc

    def close(self):
        try:
            self.stop()
        except Failed:
            pass
        if self.proxy:
            self.proxy.kill()
            self.proxy.wait()
            self.proxy = None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def sanitizer_report(self):
        m = SANITIZER.search(self.log())
        return self.log()[max(0, m.start() - 200):m.start() + 2000] if m else None

    def cli(self, *args, check=True):
        p = subprocess.run([AGENT, "--config", os.path.join(self.dir, "agent.toml"), *args],
                           capture_output=True, text=True, env=self.env)
        if check and p.returncode != 0:
            raise Failed(f"axion-agent {' '.join(args)}: exit {p.returncode}: {p.stderr}")
        return p

    def channel(self):
        """What `axion-agent status --output json` says of the gRPC channel ({} before)."""
        p = self.cli("status", "--output", "json", check=False)
        if p.returncode != 0:
            return {}
        return json.loads(p.stdout).get("channels", {}).get("grpc", {})

    def wait_channel(self, state, timeout=30, error_has=None):
        def cond():
            c = self.channel()
            if c.get("state") != state:
                return False
            if error_has and error_has not in c.get("error", ""):
                return False
            return c
        try:
            return wait_for(f"channel state {state}" + (f" with '{error_has}'" if error_has else ""),
                            cond, timeout, 0.2)
        except Failed as e:
            raise Failed(f"{e}; status now: {self.channel()}") from None

    def wait_connected(self, timeout=30, after=0):
        """Waits for the stream (a hello at the simulator); returns that hello event."""
        return self.sim.wait("hello", agent_id=self.agent_id, after=after, timeout=timeout)[0]

    def mutations(self, since=0):
        with open(self.proxy_log) as f:
            reqs = [line.split(" ", 1) for line in f.read().splitlines() if " " in line]
        return [r for r in reqs[since:] if r[0] in ("POST", "PUT", "DELETE")]

    def n_requests(self):
        with open(self.proxy_log) as f:
            return len(f.read().splitlines())

    def identity_key_file(self):
        p = subprocess.run(["sqlite3", os.path.join(self.state_dir, "store.db"),
                            "SELECT key_file FROM identity"], capture_output=True, text=True)
        return p.stdout.strip()


def deploy(sim, agent_id, stack, compose, generation=1, files=None, variables=None, cid=None):
    import base64
    cmd = {"deploy": {"stack": stack, "generation": generation, "compose": compose,
                      "files": [{"name": n, "content": base64.b64encode(c.encode()).decode()}
                                for n, c in (files or {}).items()],
                      "variables": [{"name": n, "value": v} for n, v in (variables or {}).items()]}}
    if cid:
        cmd["command_id"] = cid
    return sim.send(agent_id, cmd)


def expect_result(sim, cid, outcome, timeout=90, error_has=None):
    res = sim.wait_result(cid, timeout=timeout)
    if res["outcome"] != outcome:
        raise Failed(f"command {cid}: {res['outcome']} ({res.get('error')}), want {outcome}")
    if error_has and error_has not in (res.get("error") or ""):
        raise Failed(f"command {cid}: error {res.get('error')!r} does not say {error_has!r}")
    return res


def gaps(events):
    """Seconds between consecutive heartbeats (by arrival time at the simulator)."""
    ts = [e["t"] for e in events]
    return [round(b - a, 3) for a, b in zip(ts, ts[1:])]
