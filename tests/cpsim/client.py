"""The test-facing side of the simulator: Admin (the JSON admin interface, stdlib only) and
Simulator (the server as a subprocess: start, stop, kill, freeze, restart with the same ports
and CA). See tests/cpsim/README.md.

    from cpsim import Simulator
    with Simulator(state_dir) as sim:
        tok = sim.issue_token(cert_lifetime_s=60)["token"]
        ...  # start an agent against sim.enroll_target / sim.control_target, sim.ca_file
        sim.wait("hello", agent_id=agent)
        cid = sim.send(agent, {"scale": {"stack": "web", "service": "nginx", "replicas": 3}})
        res = sim.wait_result(cid)
"""

import atexit
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_SCRIPT = os.path.join(HERE, "cpsim.py")
FINAL_OUTCOMES = ("OUTCOME_DONE", "OUTCOME_FAILED", "OUTCOME_STILL_CONVERGING",
                  "OUTCOME_REJECTED", "OUTCOME_DUPLICATE", "OUTCOME_SUPERSEDED",
                  "OUTCOME_CANCELLED")


class SimError(Exception):
    """The admin interface answered with an error, or did not answer."""


class Timeout(SimError):
    """A wait passed its deadline; .events holds what matched so far."""

    def __init__(self, message, events):
        super().__init__(message)
        self.events = events


class Admin:
    """The admin interface of a running simulator (http://127.0.0.1:PORT)."""

    def __init__(self, url, timeout=30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_state(cls, state_dir):
        with open(os.path.join(state_dir, "ports.json")) as f:
            p = json.load(f)
        host = p.get("host", "127.0.0.1")
        if ":" in host:
            host = f"[{host}]"
        return cls(f"http://{host}:{p['admin']}")

    def call(self, method, path, body=None, timeout=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                msg = json.loads(e.read()).get("error", "")
            except ValueError:
                msg = ""
            raise SimError(f"{method} {path}: HTTP {e.code}: {msg}") from None
        except (urllib.error.URLError, OSError) as e:
            raise SimError(f"{method} {path}: the simulator at {self.url} did not answer: "
                           f"{getattr(e, 'reason', e)}") from None

    # -- tokens, identities, settings
    def issue_token(self, agent_id=None, ttl_s=3600, cert_lifetime_s=None, token=None):
        """A one-time enrollment token: {"token", "agent_id", "expires_at_ms", ...}. ttl_s=0
        makes one that is already expired."""
        body = {"ttl_s": ttl_s}
        for k, v in (("agent_id", agent_id), ("cert_lifetime_s", cert_lifetime_s),
                     ("token", token)):
            if v is not None:
                body[k] = v
        return self.call("POST", "/token", body)

    def configure(self, **kw):
        """client_ca="ours"|"other", server_cert="ours"|"other", cert_lifetime_s=N,
        agent_cert_lifetime_s={agent: N}, revoke=[ids], unrevoke=[ids], resend_on_hello=bool.
        TLS changes apply to new connections; drop_streams() ends the open ones."""
        return self.call("POST", "/config", kw)["config"]

    def sign(self, csr_pem, agent_id="agent-foreign", ca="other", lifetime_s=3600):
        """A certificate for csr_pem from the simulator's CA (ours) or the foreign one."""
        if isinstance(csr_pem, bytes):
            csr_pem = csr_pem.decode()
        return self.call("POST", "/sign", {"csr_pem": csr_pem, "agent_id": agent_id,
                                            "ca": ca, "lifetime_s": lifetime_s})

    def drop_streams(self, agent_id=None, code="UNAVAILABLE", message=None):
        body = {"code": code}
        if agent_id:
            body["agent_id"] = agent_id
        if message:
            body["message"] = message
        return self.call("POST", "/drop", body)["dropped"]

    def status(self):
        return self.call("GET", "/status")

    # -- commands
    def send(self, agent_id, command=None, **kw):
        """Queues a ControlMessage for the agent (sent when its stream is up); returns the
        command id. command is a Command in proto JSON without or with command_id, e.g.
        {"scale": {"stack": "web", "service": "nginx", "replicas": 3}}. Instead: cancel_logs=ID,
        raw_b64=..., special="undecodable"|"unknown_command"|"unknown_control"|
        "oversize_deploy" (with what="compose"|"files"|"variables")."""
        body = dict(kw, agent_id=agent_id)
        if command is not None:
            body["command"] = command
        return self.call("POST", "/send", body)["command_id"]

    def cancel_logs(self, agent_id, command_id):
        return self.send(agent_id, cancel_logs=command_id)

    # -- what was recorded
    def events(self, type=None, **flt):
        body = dict(flt)
        if type:
            body["type"] = type
        return self.call("POST", "/events", body)["events"]

    def last_seq(self):
        return self.call("GET", "/status")["last_seq"]

    def wait(self, type=None, count=1, timeout=20.0, **flt):
        """Waits until count events match (type, agent_id, command_id, after=seq,
        where={"path": value}); returns the matching events, or raises Timeout."""
        body = dict(flt, count=count, timeout=timeout)
        if type:
            body["type"] = type
        r = self.call("POST", "/wait", body, timeout=timeout + 30)
        if r.get("timeout"):
            raise Timeout(r["error"], r["events"])
        return r["events"]

    def heartbeats(self, agent_id=None, after=0):
        return self.events("heartbeat", agent_id=agent_id, after=after) if agent_id else \
            self.events("heartbeat", after=after)

    def results(self, command_id=None, after=0):
        flt = {"after": after}
        if command_id is not None:
            flt["command_id"] = command_id
        return self.events("result", **flt)

    def wait_result(self, command_id, timeout=60.0, final=True, **flt):
        """The first (final) result of a command."""
        where = {"final": True} if final else {}
        return self.wait("result", command_id=command_id, where=where, timeout=timeout,
                         **flt)[0]

    def log_chunks(self, command_id):
        return self.events("log_chunk", command_id=command_id)

    def log_data(self, command_id):
        """The log bytes of a Logs command received so far, in chunk order."""
        chunks = sorted(self.log_chunks(command_id), key=lambda e: e["chunk_seq"])
        return b"".join(base64.b64decode(e["data_b64"]) for e in chunks)

    def violations(self, after=0):
        """Protocol breaches the simulator saw from agents (empty when they kept the rules)."""
        return self.events("violation", after=after)


_children = set()


@atexit.register
def _kill_children():
    for p in list(_children):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
            except OSError:
                pass


class Simulator(Admin):
    """The simulator as a subprocess of the test, on a state dir of its own. Ports are chosen at
    the first start and kept: a restart listens where the agent expects it, with the same CA,
    tokens and journal."""

    def __init__(self, state_dir, python=None, extra_args=(), start_timeout=60.0, quiet=True):
        super().__init__("http://127.0.0.1:0")
        self.state_dir = os.path.abspath(state_dir)
        self.python = python or sys.executable
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.quiet = quiet
        self.proc = None
        self.ports = {}
        self.log_path = os.path.join(self.state_dir, "cpsim.log")

    # -- life cycle
    def start(self, extra_args=()):
        if self.proc is not None and self.proc.poll() is None:
            raise SimError("the simulator is already running")
        os.makedirs(self.state_dir, exist_ok=True)
        cmd = [self.python, SERVER_SCRIPT, "--state", self.state_dir]
        for k in ("enroll", "control", "admin"):
            if k in self.ports:
                cmd += [f"--{k}-port", str(self.ports[k])]
        if self.quiet:
            cmd.append("--quiet")
        cmd += self.extra_args + list(extra_args)
        ports_file = os.path.join(self.state_dir, "ports.json")
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, close_fds=True)
        finally:
            log.close()
        _children.add(self.proc)
        end = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise SimError(f"the simulator exited with {self.proc.returncode} at start; "
                               f"see {self.log_path}:\n{self.log_tail()}")
            try:
                with open(ports_file) as f:
                    p = json.load(f)
                if p.get("pid") == self.proc.pid:
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > end:
                self.kill()
                raise SimError(f"the simulator did not start within {self.start_timeout} s; "
                               f"see {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.02)  # polling a file with a deadline
        self.ports = {k: p[k] for k in ("enroll", "control", "admin")}
        self.url = f"http://127.0.0.1:{self.ports['admin']}"
        return self

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig):
        if not self.running():
            raise SimError("the simulator is not running")
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=20.0):
        """SIGTERM: open streams end with UNAVAILABLE, the process exits."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _children.discard(self.proc)

    def kill(self):
        """SIGKILL: streams are cut with no goodbye."""
        if self.running():
            self.proc.kill()
            self.proc.wait()
        _children.discard(self.proc)

    def freeze(self):
        """SIGSTOP: the sockets stay open and nothing answers (a silent peer)."""
        self._signal(signal.SIGSTOP)

    def thaw(self):
        self._signal(signal.SIGCONT)

    def restart(self, kill=True):
        """Kill (or stop) and start again on the same ports with the same state."""
        self.kill() if kill else self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()

    # -- where to point an agent
    @property
    def enroll_target(self):
        return f"127.0.0.1:{self.ports['enroll']}"

    @property
    def control_target(self):
        return f"127.0.0.1:{self.ports['control']}"

    @property
    def ca_file(self):
        """The CA that signed the server certificate (and signs the agents')."""
        return os.path.join(self.state_dir, "ca.pem")

    @property
    def other_ca_file(self):
        return os.path.join(self.state_dir, "other-ca.pem")

    def ca_pem(self):
        with open(self.ca_file, "rb") as f:
            return f.read()
