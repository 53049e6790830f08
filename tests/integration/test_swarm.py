#!/usr/bin/env python3
"""Swarm membership as desired state (issue 12), on the two test engines A and B of
tests/env/engines-up.sh (docs/internals/engines-env.md). Each engine has its own agent: own
state dir, config, local socket, and a counting Docker proxy in front of the engine's socket
(tests/support/docker_proxy.py), so a check can say which mutating calls an agent made.

In order, one line per criterion of the issue:
  1. A's agent with desired manager (swarm init) makes A a manager; a restart makes no call.
  4. B's agent with a wrong join token, then with an unreachable manager address: clear errors
     in status and events, retries with backoff, nothing but the join attempted on B.
  2. B's agent with desired worker joined to A (the token from A's `swarm status
     --show-tokens`): B is a worker A lists Ready; a stack on A with 2 replicas and a spread
     placement puts a task on B.
  5. B's membership survives a restart (no call), the Engine losing it (the agent joins again
     with the stored token), and a kill -9 in the middle of a join (A unreachable meanwhile):
     the next start reports the join under way, then that it completed.
  3. B's desired none: B leaves and A sees it down; A's leave is refused while it holds the
     stack, and with --force the stack's objects are removed, then A leaves, and the store
     forgets the stack.
  6. The join tokens appear in no log, event, status, dry-run output, proxy log or daemon argv.
Both engines are left outside any swarm at the end (and A's link up), whatever failed; engines
the test found down it brings up itself and takes down at the end."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconcile_harness import SRC, Agent, Failed, sh, wait_for  # noqa: E402

ENV_DIR = os.environ.get("AXION_ENV_DIR", "/tmp/axion-env")
ENV_FILE = os.path.join(ENV_DIR, "engines.env")
STACK = "axsw"
COLLECTED = []  # every output, log and argv the token must not appear in
SECRETS = {}  # name -> token
ENV = {}
A = B = None
link_down = False


def collect(what, text):
    COLLECTED.append((what, text or ""))


class EngineAgent(Agent):
    """An agent whose proxy forwards to a test engine's socket instead of the system one."""

    def __init__(self, name, upstream):
        self.upstream = upstream
        super().__init__(name)

    def start_proxy(self):
        open(self.proxy_log, "a").close()
        self.proxy = subprocess.Popen(
            [sys.executable, os.path.join(SRC, "tests/support/docker_proxy.py"),
             self.proxy_sock, self.proxy_log, self.upstream])
        wait_for("the docker proxy", lambda: os.path.exists(self.proxy_sock), 10)

    def start(self):
        super().start()
        with open(f"/proc/{self.daemon.pid}/cmdline", "rb") as f:
            collect(f"{self.name} daemon argv", f.read().replace(b"\0", b" ").decode())

    def kill9(self):
        self.daemon.kill()
        self.daemon.wait()
        self.daemon = None

    def cli(self, *args, check=True, env=None, keep=True):
        p = super().cli(*args, check=check, env=env)
        if keep:
            collect(f"{self.name}: axion-agent {' '.join(args)}", p.stdout + p.stderr)
        return p

    def swarm(self):
        """What the daemon last reported of the membership (status JSON, "swarm")."""
        p = self.cli("status", "--output", "json")
        return json.loads(p.stdout).get("swarm") or {}

    def wait_swarm(self, what, cond, timeout=60):
        return wait_for(f"{self.name}: {what}", lambda: cond(self.swarm()) and self.swarm(),
                        timeout, 0.2)

    def joins(self, since=0):
        return [r for r in self.requests()[since:] if r[0] == "POST" and
                r[1].split("?")[0].endswith("/swarm/join")]

    def event_text(self):
        return "\n".join(e["message"] for e in self.events())


def d(engine, *args, check=True):
    return sh(f"docker -H {ENV[f'AXION_ENGINE_{engine}_HOST']} " + " ".join(args), check=check)


def info(engine):
    return json.loads(d(engine, "info", "--format", "'{{json .Swarm}}'").stdout)


def node_states(hostname):
    """A's view of the nodes with this hostname: [(id, state)]."""
    p = d("A", "node", "ls", "--format", "'{{.ID}} {{.Hostname}} {{.Status}}'", check=False)
    out = []
    for line in p.stdout.splitlines():
        nid, host, state = (line.split() + ["", "", ""])[:3]
        if host == hostname:
            out.append((nid, state.lower()))
    return out


def write_secret(path, token):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, (token + "\n").encode())
    os.close(fd)


def set_link(up):
    global link_down
    sh(f"ip -n {ENV['AXION_ENGINE_A_NETNS']} link set axion-eng-a0 {'up' if up else 'down'}")
    link_down = not up


# --- 1 ------------------------------------------------------------------------------------

def test_1_init_and_restart():
    a_addr = ENV["AXION_ENGINE_A_ADDR"]
    A.cli("swarm", "init", "--advertise-addr", a_addr, "--listen-addr", f"{a_addr}:2377",
          "--default-addr-pool", ENV["AXION_ENGINE_SWARM_POOL"])
    p = A.cli("reconcile", "--dry-run", check=False)
    if p.returncode != 2 or "~ swarm: init a swarm of its own, advertised on " + a_addr \
            not in p.stdout:
        raise Failed(f"dry run before the init: exit {p.returncode}: {p.stdout}{p.stderr}")
    A.start()
    sw = A.wait_swarm("converged as a manager",
                      lambda s: s.get("state") == "converged" and s.get("role") == "manager")
    i = info("A")
    if i["LocalNodeState"] != "active" or not i["ControlAvailable"] or \
            i["NodeID"] != sw["node_id"]:
        raise Failed(f"A is not the active manager the agent reports: {i} vs {sw}")
    # Node Down is seen in ~3 s instead of 12-14 s (docs/internals/engines-env.md).
    d("A", "swarm", "update", "--dispatcher-heartbeat", ENV["AXION_ENGINE_HEARTBEAT"])
    A.wait_event("swarm: init a swarm of its own")
    if [m for m in A.mutations() if not m[1].endswith("/swarm/init")]:
        raise Failed(f"calls other than the init: {A.mutations()}")
    # A restart finds A as wanted: no call at all.
    A.stop()
    n = len(A.requests())
    A.start()
    A.wait_passes(2, since=n)
    if A.mutations(n):
        raise Failed(f"the restart made calls: {A.mutations(n)}")
    if A.swarm().get("state") != "converged":
        raise Failed(f"after the restart: {A.swarm()}")
    p = A.cli("reconcile", "--dry-run", check=False)
    if p.returncode != 0 or "swarm" in p.stdout:
        raise Failed(f"dry run of a manager as wanted: exit {p.returncode}: {p.stdout}")


# --- 4 ------------------------------------------------------------------------------------

def test_4_wrong_token_and_unreachable_manager():
    p = A.cli("swarm", "status", "--show-tokens", "--output", "json", keep=False)
    tokens = json.loads(p.stdout)["node"]["join_tokens"]
    SECRETS["worker"], SECRETS["manager"] = tokens["worker"], tokens["manager"]
    text = A.cli("swarm", "status", "--show-tokens", keep=False).stdout
    if SECRETS["worker"] not in text or SECRETS["manager"] not in text:
        raise Failed(f"--show-tokens does not show the tokens: {text}")
    # The same form, another secret: the manager refuses it.
    head, secret = SECRETS["worker"].rsplit("-", 1)
    SECRETS["wrong"] = head + "-" + secret[::-1]
    write_secret(os.path.join(B.dir, "wrong.token"), SECRETS["wrong"])
    write_secret(os.path.join(B.dir, "worker.token"), SECRETS["worker"])
    a = ENV["AXION_ENGINE_A_ADDR"]

    B.cli("swarm", "join", "--token-file", os.path.join(B.dir, "wrong.token"), f"{a}:2377")
    p = B.cli("reconcile", "--dry-run", check=False)
    want = f"~ swarm: join the swarm at {a}:2377 as a worker (the node is in no swarm)"
    if p.returncode != 2 or want not in p.stdout:
        raise Failed(f"dry run: exit {p.returncode}: {p.stdout}{p.stderr}")
    p = B.cli("reconcile", "--dry-run", "--output", "json", check=False)
    j = json.loads(p.stdout)
    if p.returncode != 2 or j["membership"]["action"] != "join" or j["in_sync"]:
        raise Failed(f"dry run json: exit {p.returncode}: {p.stdout}")
    B.start()
    sw = B.wait_swarm("the wrong token reported",
                      lambda s: s.get("state") == "retrying" and "valid join token" in
                      s.get("error", ""), 60)
    if "retry_at" not in sw or sw.get("failures", 0) < 1:
        raise Failed(f"no backoff in the status: {sw}")
    B.wait_event(f"swarm: failed to join the swarm at {a}:2377 as a worker: ", 30)
    wait_for("a second join attempt after the backoff", lambda: len(B.joins()) >= 2, 60)
    ev = B.event_text()
    if "retry in 1." not in ev and "retry in 0." not in ev:
        raise Failed(f"no backoff in the events: {ev}")
    if info("B")["LocalNodeState"] not in ("inactive", "pending"):  # pending: a join under way
        raise Failed(f"B is in a swarm: {info('B')}")

    # Another wanted membership: an address where no manager listens.
    n = len(B.joins())
    B.cli("swarm", "join", "--token-file", os.path.join(B.dir, "worker.token"), f"{a}:2399")
    B.wait_swarm("the unreachable manager reported",
                 lambda s: s.get("state") == "retrying" and f"{a}:2399" in s.get("error", "") and
                 ("connection refused" in s["error"] or "Unavailable" in s["error"]), 90)
    B.wait_event(f"swarm: failed to join the swarm at {a}:2399 as a worker", 10)
    m = len(B.joins())
    wait_for("a retry of the unreachable manager", lambda: len(B.joins()) > m, 60)
    if len(B.joins()) - n < 2:
        raise Failed("the unreachable manager was not tried again")
    # Nothing but joins was attempted on B, and B is as it was.
    other = [r for r in B.mutations() if not r[1].split("?")[0].endswith("/swarm/join")]
    if other:
        raise Failed(f"calls other than joins on B: {other}")
    if info("B")["LocalNodeState"] not in ("inactive", "pending") or \
            d("B", "ps", "-aq").stdout.strip() or d("B", "network", "ls", "-q", "--filter",
                                                     "driver=overlay").stdout.strip():
        raise Failed("B changed")


# --- 2 ------------------------------------------------------------------------------------

def test_2_join_and_spread():
    a = ENV["AXION_ENGINE_A_ADDR"]
    B.cli("swarm", "join", "--token-file", os.path.join(B.dir, "worker.token"), f"{a}:2377")
    sw = B.wait_swarm("converged as a worker",
                      lambda s: s.get("state") == "converged" and s.get("role") == "worker", 90)
    if sw.get("managers") != [f"{a}:2377"]:
        raise Failed(f"B's managers: {sw}")
    host = ENV["AXION_ENGINE_B_HOSTNAME"]
    wait_for("A lists B Ready", lambda: (sw["node_id"], "ready") in node_states(host), 30)
    st = B.cli("swarm", "status").stdout
    if "active worker, node id " + sw["node_id"] not in st or f"managers: {a}:2377" not in st:
        raise Failed(f"swarm status on B: {st}")
    st = A.cli("swarm", "status").stdout
    if host not in st or "reachable, leader (this node)" not in st:
        raise Failed(f"swarm status on A: {st}")

    A.apply(STACK, f"""
services:
  web:
    image: {ENV['AXION_ENGINE_IMAGE']}
    command: ["sleep", "100000"]
    stop_signal: KILL
    stop_grace_period: 1s
    networks: [net]
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      placement:
        preferences:
          - spread: node.id
networks:
  net:
    driver: overlay
""")
    A.wait_state(STACK, "converged", 90)

    def nodes():
        p = d("A", "service", "ps", f"{STACK}_web", "--filter", "desired-state=running",
              "--format", "'{{.Node}} {{.CurrentState}}'")
        return sorted(line.split()[0] for line in p.stdout.splitlines()
                      if line.split()[1:2] == ["Running"])
    got = wait_for("a task on each node", lambda: nodes() == sorted(
        [ENV["AXION_ENGINE_A_HOSTNAME"], host]) and nodes(), 60)
    print(f"tasks on {got}", flush=True)


# --- 5 ------------------------------------------------------------------------------------

def test_5_restart_reboot_and_kill9_mid_join():
    host = ENV["AXION_ENGINE_B_HOSTNAME"]
    # A restart: no call.
    B.stop()
    n = len(B.requests())
    B.start()
    B.wait_passes(2, since=n)
    if B.mutations(n) or B.swarm().get("state") != "converged":
        raise Failed(f"restart: calls {B.mutations(n)}, {B.swarm()}")

    # The Engine lost the membership while the agent was down (as a node reset would): the
    # agent joins again with the token it stored.
    B.stop()
    d("B", "swarm", "leave")
    n = len(B.requests())
    B.start()
    sw = B.wait_swarm("joined again", lambda s: s.get("state") == "converged" and
                      s.get("role") == "worker" and s.get("node_state") == "active", 60)
    if len(B.joins(n)) != 1:
        raise Failed(f"joins after the restart: {B.joins(n)}")
    wait_for("A lists the new B Ready", lambda: (sw["node_id"], "ready") in node_states(host), 30)

    # kill -9 while the join is under way: A cannot be reached, the Engine keeps trying.
    B.stop()
    d("B", "swarm", "leave")
    set_link(False)
    n = len(B.requests())
    B.start()
    wait_for("the join sent", lambda: B.joins(n), 30, 0.02)
    B.kill9()
    wait_for("B pending", lambda: info("B")["LocalNodeState"] == "pending", 10)
    ev_before = B.last_event_id()
    n = len(B.requests())
    B.start()
    sw = B.wait_swarm("the join under way reported",
                      lambda s: s.get("state") == "waiting" and "joining" in s.get("why", ""), 30)
    B.wait_event("swarm: waiting: joining: the Engine is still trying", 10, ev_before)
    set_link(True)
    sw = B.wait_swarm("the join completed", lambda s: s.get("state") == "converged" and
                      s.get("node_state") == "active" and s.get("role") == "worker", 60)
    B.wait_event("swarm: converged: worker of the swarm at", 10, ev_before)
    wait_for("A lists B Ready", lambda: (sw["node_id"], "ready") in node_states(host), 30)
    if B.mutations(n):
        raise Failed(f"the restarted agent did not leave the Engine's join alone: {B.mutations(n)}")


# --- 3 ------------------------------------------------------------------------------------

def test_3_leave():
    b_id = B.swarm()["node_id"]
    t = time.monotonic()
    B.cli("swarm", "leave")
    B.wait_swarm("B left", lambda s: s.get("state") == "converged" and
                 s.get("node_state") == "inactive", 60)
    if info("B")["LocalNodeState"] != "inactive":
        raise Failed("B is not inactive")
    host = ENV["AXION_ENGINE_B_HOSTNAME"]
    wait_for("A sees B down", lambda: (b_id, "down") in node_states(host), 30)
    print(f"A sees B down {time.monotonic() - t:.1f}s after the leave was asked", flush=True)

    # A holds the stack: refused, and nothing changes.
    p = A.cli("swarm", "leave", check=False)
    if p.returncode != 1 or f"refused: this node manages 1 stack ({STACK})" not in p.stderr or \
            "--force" not in p.stderr:
        raise Failed(f"leave with a stack: exit {p.returncode}: {p.stderr}")
    if A.status(STACK)["removed"] or A.swarm().get("desired_role") != "manager":
        raise Failed("the refused leave changed something")
    n = len(A.requests())
    p = A.cli("swarm", "leave", "--force")
    if f"stack {STACK} marked removed" not in p.stderr:
        raise Failed(f"forced leave: {p.stderr}")
    A.wait_swarm("A left", lambda s: s.get("state") == "converged" and
                 s.get("node_state") == "inactive", 90)
    if info("A")["LocalNodeState"] != "inactive":
        raise Failed("A is not inactive")
    # The stack's objects went first, then the node left; the store forgot the stack.
    calls = [f"{m} {path.split('?')[0].split('/', 2)[-1]}" for m, path in A.mutations(n)]
    leave = [i for i, c in enumerate(calls) if c.endswith("swarm/leave")]
    removes = [i for i, c in enumerate(calls) if c.startswith("DELETE")]
    if len(leave) != 1 or len(removes) < 2 or max(removes) > leave[0]:
        raise Failed(f"calls of the forced leave: {calls}")
    st = json.loads(A.cli("status", "--output", "json").stdout)
    if st["stacks"]:
        raise Failed(f"the store still holds {st['stacks']}")
    ev = A.event_text()
    for want in (f"removing service {STACK}_web", f"stack {STACK} removed",
                 "swarm: leave the swarm (forced): done"):
        if want not in ev:
            raise Failed(f"events lack {want!r}: {ev}")


# --- 6 ------------------------------------------------------------------------------------

def test_6_tokens_nowhere():
    for ag in (A, B):
        collect(f"{ag.name} events", json.dumps(ag.events()))
        collect(f"{ag.name} status", ag.cli("status", "--output", "json").stdout)
        collect(f"{ag.name} swarm status", ag.cli("swarm", "status", "--output", "json").stdout)
        for path in (ag.daemon_log, ag.proxy_log):
            with open(path, errors="replace") as f:
                collect(path, f.read())
    if not SECRETS:
        raise Failed("no tokens to look for")
    found = []
    for name, token in SECRETS.items():
        secret = token.rsplit("-", 1)[1]
        for what, text in COLLECTED:
            if token in text or secret in text:
                found.append(f"the {name} token in {what}")
    if found:
        raise Failed("; ".join(found))
    print(f"no token in {len(COLLECTED)} outputs, logs and argvs", flush=True)


# --- set-up -------------------------------------------------------------------------------

def engines_up():
    if not os.path.exists(ENV_FILE):
        return False
    for e in ("a", "b"):
        if subprocess.run(["curl", "-sf", "--unix-socket", f"{ENV_DIR}/engines/{e}/docker.sock",
                           "http://e/_ping"], capture_output=True).returncode:
            return False
    return True


def load_env():
    with open(ENV_FILE) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                ENV[k] = v


def reset_engine(engine):
    for _ in range(3):
        if info(engine)["LocalNodeState"] == "inactive":
            break
        d(engine, "swarm", "leave", "--force", check=False)
    ids = d(engine, "ps", "-aq", "--filter", "label=com.docker.swarm.task", check=False).stdout
    if ids.split():
        d(engine, "rm", "-f", *ids.split(), check=False)
    d(engine, "network", "rm", "docker_gwbridge", check=False)
    return info(engine)["LocalNodeState"] == "inactive"


def main():
    global A, B
    brought_up = False
    if not engines_up():
        print("engines are not up: bringing them up for this test", flush=True)
        subprocess.run([os.path.join(SRC, "tests/env/engines-up.sh")], check=True)
        brought_up = True
    load_env()
    for e in ("A", "B"):
        if info(e)["LocalNodeState"] != "inactive":
            print(f"FAIL: engine {e} is in a swarm already (a previous test left it)")
            return 1
    rc = 1
    try:
        A = EngineAgent("swa", ENV["AXION_ENGINE_A_SOCKET"])
        B = EngineAgent("swb", ENV["AXION_ENGINE_B_SOCKET"])
        passed = 0
        tests = [test_1_init_and_restart, test_4_wrong_token_and_unreachable_manager,
                 test_2_join_and_spread, test_5_restart_reboot_and_kill9_mid_join, test_3_leave,
                 test_6_tokens_nowhere]
        for t in tests:
            start = time.monotonic()
            try:
                t()
            except Exception as e:  # noqa: BLE001 - the later steps build on this one
                print(f"FAIL {t.__name__}: {e}", flush=True)
                if t is not test_6_tokens_nowhere:
                    try:
                        test_6_tokens_nowhere()
                    except Exception as e6:  # noqa: BLE001
                        print(f"FAIL test_6_tokens_nowhere: {e6}", flush=True)
                for ag in (A, B):
                    print(f"--- {ag.name} daemon log (tail) ---")
                    with open(ag.daemon_log, errors="replace") as f:
                        print("".join(f.readlines()[-40:]))
                break
            passed += 1
            print(f"PASS {t.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        print(f"{passed} passed, {len(tests) - passed} failed")
        rc = 0 if passed == len(tests) else 1
    finally:
        for ag in (A, B):
            if ag:
                ag.close()
        if link_down:
            set_link(True)
        for e in ("A", "B"):
            if not reset_engine(e):
                print(f"cleanup: engine {e} is not inactive", flush=True)
                rc = 1
        if brought_up:
            subprocess.run([os.path.join(SRC, "tests/env/engines-down.sh")])
    return rc


if __name__ == "__main__":
    sys.exit(main())
