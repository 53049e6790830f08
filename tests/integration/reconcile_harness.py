"""Shared harness for the reconciler's integration tests: a daemon of the built agent on the
real Swarm, behind the counting Docker proxy, with its own state dir and agent id.

Nothing here sleeps and hopes: wait_for() polls a condition until a deadline and fails with
what it saw last."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

AGENT = os.environ.get("AXION_AGENT_BIN", "build/axion-agent")
SRC = os.environ.get("AXION_SOURCE_DIR", ".")
IMAGE = "axion-test/busybox:1"


class Failed(Exception):
    pass


def sh(cmd, check=True, **kw):
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise Failed(f"{cmd}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def wait_for(what, cond, timeout=30.0, interval=0.1):
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
            if last:
                return last
        except Failed as e:
            last = e
        if time.monotonic() > end:
            raise Failed(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class Agent:
    """One agent: state dir, config, proxy, daemon."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"axt-{name}-")
        self.agent_id = f"axt-{name}-{os.getpid()}"
        self.proxy_sock = os.path.join(self.dir, "docker.sock")
        self.proxy_log = os.path.join(self.dir, "proxy.log")
        self.config = os.path.join(self.dir, "agent.toml")
        with open(self.config, "w") as f:
            f.write("")
        self.env = dict(os.environ)
        self.env.update({
            "AXION_AGENT__AGENT__STATE_DIR": os.path.join(self.dir, "state"),
            "AXION_AGENT__AGENT__ID": self.agent_id,
            "AXION_AGENT__AGENT__LOG_LEVEL": "debug",
            "AXION_AGENT__LOCAL__ENABLED": "true",
            "AXION_AGENT__LOCAL__SOCKET": os.path.join(self.dir, "agent.sock"),
            "AXION_AGENT__DOCKER__SOCKET": self.proxy_sock,
            "AXION_AGENT__RECONCILE__RESYNC_INTERVAL": "30s",
            "AXION_AGENT__TELEMETRY__INTERVAL": "1s",
        })
        self.proxy = None
        self.daemon = None
        self.daemon_log = os.path.join(self.dir, "daemon.log")
        self.start_proxy()

    # --- processes ---------------------------------------------------------------------

    def start_proxy(self):
        open(self.proxy_log, "a").close()
        self.proxy = subprocess.Popen(
            [sys.executable, os.path.join(SRC, "tests/support/docker_proxy.py"),
             self.proxy_sock, self.proxy_log])
        wait_for("the docker proxy", lambda: os.path.exists(self.proxy_sock), 10)

    def start(self):
        log = open(self.daemon_log, "a")
        self.daemon = subprocess.Popen([AGENT, "--config", self.config, "run"], env=self.env,
                                       stdout=log, stderr=log)
        wait_for("the daemon's local socket",
                 lambda: os.path.exists(self.env["AXION_AGENT__LOCAL__SOCKET"]), 20)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.daemon:
            return None
        self.daemon.send_signal(sig)
        try:
            rc = self.daemon.wait(timeout)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            rc = self.daemon.wait()
            raise Failed("the daemon did not stop on SIGTERM")
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

    # --- CLI ---------------------------------------------------------------------------

    def cli(self, *args, check=True, env=None):
        p = subprocess.run([AGENT, "--config", self.config, *args], capture_output=True,
                           text=True, env=env or self.env)
        if check and p.returncode != 0:
            raise Failed(f"axion-agent {' '.join(args)}: exit {p.returncode}: {p.stderr}")
        return p

    def apply(self, stack, compose_text, *extra, check=True):
        path = os.path.join(self.dir, f"{stack}.yml")
        with open(path, "w") as f:
            f.write(compose_text)
        return self.cli("apply", "-f", path, "-n", stack, *extra, check=check)

    def status(self, stack):
        p = self.cli("status", stack, "--output", "json")
        return json.loads(p.stdout)["stacks"][0]

    def events(self):
        p = self.cli("events", "--limit", "500", "--output", "json")
        return json.loads(p.stdout)

    def wait_state(self, stack, state="converged", timeout=60):
        return wait_for(f"stack {stack} {state}",
                        lambda: self.status(stack)["state"] == state and self.status(stack),
                        timeout)

    def wait_event(self, pattern, timeout=10, after=0):
        return wait_for(f"an event matching {pattern!r}",
                        lambda: [e for e in self.events()
                                 if e["id"] > after and pattern in e["message"]], timeout)

    def last_event_id(self):
        ev = self.events()
        return ev[-1]["id"] if ev else 0

    # --- proxy log ---------------------------------------------------------------------

    def requests(self):
        with open(self.proxy_log) as f:
            return [line.split(" ", 1) for line in f.read().splitlines() if " " in line]

    def mutations(self, since=0):
        return [r for r in self.requests()[since:] if r[0] in ("POST", "PUT", "DELETE")]

    def wait_passes(self, n=2, since=None, timeout=30):
        """Waits until the daemon has observed the Swarm n more times (GET /info)."""
        base = since if since is not None else len(self.requests())
        wait_for(f"{n} reconcile passes",
                 lambda: sum(1 for r in self.requests()[base:] if r[1].endswith("/info")) >= n,
                 timeout)


def services(prefix):
    p = sh(f"docker service ls --filter name={prefix} --format '{{{{.Name}}}}'")
    return sorted(n for n in p.stdout.split() if n.startswith(prefix))


def inspect(kind, name):
    p = sh(f"docker {kind} inspect {name}", check=False)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)[0]


def replicas(name):
    s = inspect("service", name)
    return s and s["Spec"]["Mode"].get("Replicated", {}).get("Replicas")


def names(kind, prefix):
    ls = sh(f"docker {kind} ls --format '{{{{.Name}}}}'", check=False).stdout.split()
    return [n for n in ls if n.startswith(prefix)]


def cleanup(prefix):
    """Removes every Docker object whose name starts with prefix (and only those)."""
    for kind in ("service", "config", "secret"):
        doomed = names(kind, prefix)
        if doomed:
            sh(f"docker {kind} rm {' '.join(doomed)}", check=False)

    def networks_gone():
        doomed = names("network", prefix)
        if doomed:
            sh(f"docker network rm {' '.join(doomed)}", check=False)
        return not names("network", prefix)
    # a network can be removed only once the tasks attached to it are gone
    wait_for(f"{prefix} networks removed", networks_gone, 60, 0.5)


def run(tests):
    passed = failed = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            passed += 1
            print(f"PASS {t.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {t.__name__}: {e}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
