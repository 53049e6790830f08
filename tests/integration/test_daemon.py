#!/usr/bin/env python3
"""The process level of the agent: the CLI skeleton, the daemon's systemd protocol and signals,
config reloads, and how the store and the CLI refuse bad input.

The daemon never reaches Docker here: docker.socket points at a path that does not exist (the
reconciler retries), so this test needs no dockerd and touches no Docker object. Each part runs
on its own temp dir (config file, state dir, local socket, notify socket).

Prints one line per check and ends with "N passed, M failed"; exits 1 when a check failed."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("AXION_AGENT_BIN") or os.path.join(
    os.environ.get("AXION_BUILD_DIR", "build"), "axion-agent")
DEADLINE = 20.0  # seconds for anything the agent should do "soon" (ASan is slow)
WATCHDOG_USEC = 200000
SANITIZER = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:")
LOGFMT = re.compile(r'^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(error|warn|info|debug) '
                    r'msg="(?:[^"\\]|\\.)*"'
                    r'(?: [A-Za-z_][A-Za-z0-9_.-]*=(?:"(?:[^"\\]|\\.)*"|[^" ]+))*$')

passed = 0
failed = 0
daemons = []  # every daemon started, killed at the end if still running
dirs = []  # every temp dir, removed at the end when every check passed


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
    """A check the rest of its part depends on."""
    if not check(name, ok, detail):
        raise Failed(name)


def wait_for(cond, deadline=DEADLINE, step=0.02):
    """Polls cond() until it returns something other than None or False (an index 0 counts)
    or the deadline passes; returns the last value."""
    end = time.monotonic() + deadline
    while True:
        v = cond()
        if (v is not None and v is not False) or time.monotonic() >= end:
            return v
        time.sleep(step)


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AXION_AGENT__") and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC",
                                                               "WATCHDOG_PID", "LISTEN_FDS")}
    env["AXION_AGENT__DOCKER__SOCKET"] = "/nonexistent/docker.sock"
    return env


def sanitizer_clean(what, text):
    m = SANITIZER.search(text)
    if m:
        check(f"{what}: no sanitizer report", False, text[max(0, m.start() - 200):m.start() + 800])
    return not m


class Dir:
    """A temp dir with an (empty) config file, a state dir and a local socket path."""

    def __init__(self, tag):
        self.path = tempfile.mkdtemp(prefix=f"axt-daemon-{tag}-")
        dirs.append(self.path)
        self.config = os.path.join(self.path, "agent.toml")
        self.state = os.path.join(self.path, "state")
        self.sock = os.path.join(self.path, "agent.sock")
        self.write_config("")

    def write_config(self, text):
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.config)

    def args(self):
        return ["--config", self.config, "--state-dir", self.state, "--set",
                f"local.socket={self.sock}"]

    def cli(self, *args, glob=(), timeout=60):
        return cli(*self.args(), *glob, *args, timeout=timeout)

    def store(self):
        return os.path.join(self.state, "store.db")

    def snapshot(self):
        """name → sha256 of every file in the state dir but the daemon's lock (agent.lock, which
        a run makes to keep a second daemon off the state dir)."""
        out = {}
        for n in sorted(os.listdir(self.state)):
            if n == "agent.lock":
                continue
            with open(os.path.join(self.state, n), "rb") as f:
                out[n] = hashlib.sha256(f.read()).hexdigest()
        return out


def cli(*args, env=None, timeout=60):
    p = subprocess.run([BIN, *args], env=env or base_env(), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    sanitizer_clean("axion-agent " + " ".join(args), p.stderr)
    return p


class Notify:
    """A unix datagram socket in the role of systemd's NOTIFY_SOCKET; records each message with
    the sender's pid (SCM_CREDENTIALS)."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if address.startswith("@"):
            self.sock.bind("\0" + address[1:])
        else:
            self.sock.bind(address)
        self.address = address
        self.sock.setblocking(False)
        self.msgs = []  # (monotonic time, pid, [lines])

    def pump(self):
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            self.msgs.append((time.monotonic(), pid, data.decode(errors="replace").split("\n")))

    def find(self, line, start=0):
        """Index of the first message from start on that holds line, or None."""
        self.pump()
        for i in range(start, len(self.msgs)):
            if line in self.msgs[i][2]:
                return i
        return None

    def wait(self, line, start=0, deadline=DEADLINE):
        r = wait_for(lambda: self.find(line, start), deadline)
        return r

    def close(self):
        self.sock.close()
        if not self.address.startswith("@"):
            try:
                os.unlink(self.address)
            except FileNotFoundError:
                pass


class Daemon:
    def __init__(self, d, notify=None, env_extra=None, glob=(), run_args=(), wd_pid=None):
        self.d = d
        self.log_path = os.path.join(d.path, f"daemon-{len(daemons)}.log")
        env = base_env()
        if notify:
            env["NOTIFY_SOCKET"] = notify.address
        env.update(env_extra or {})
        argv = [BIN, *d.args(), *glob, "run", *run_args]
        if wd_pid == "self":
            # the pid the daemon will have: a shell that execs it
            argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *argv]
        elif wd_pid is not None:
            env["WATCHDOG_PID"] = str(wd_pid)
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        daemons.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def lines(self):
        return self.text().splitlines()

    def find_line(self, pattern, start=0):
        """Index of the first log line from start on that matches pattern (regex), or None."""
        rx = re.compile(pattern)
        lines = self.lines()
        for i in range(start, len(lines)):
            if rx.search(lines[i]):
                return i
        return None

    def wait_line(self, pattern, start=0, deadline=DEADLINE):
        return wait_for(lambda: self.find_line(pattern, start), deadline)

    def wait_exit(self, deadline=DEADLINE):
        try:
            return self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            return None

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def wake(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(b"wake", self.d.sock)
        finally:
            s.close()


def check_logfmt(name, dmn):
    bad = [ln for ln in dmn.lines() if not LOGFMT.match(ln)]
    check(name, not bad and dmn.lines(), f"not logfmt: {bad[:3]}")
    sanitizer_clean(name, dmn.text())


def status_json(d):
    p = d.cli("status", "--output", "json")
    if p.returncode != 0:
        raise Failed(f"status --output json: exit {p.returncode}: {p.stderr}")
    return json.loads(p.stdout)["stacks"]


# --- 1. the CLI skeleton ---------------------------------------------------------------------


def part_cli():
    p = cli("version")
    check("version exits 0 and prints the version",
          p.returncode == 0 and re.match(r"^axion-agent \S+\n$", p.stdout), repr(p.stdout))
    p = cli("help")
    require("help exits 0 and prints usage", p.returncode == 0 and "Usage:" in p.stdout,
            f"exit {p.returncode}: {p.stdout}{p.stderr}")
    p2 = cli("--help")
    check("--help prints the same usage", p2.returncode == 0 and p2.stdout == p.stdout,
          f"exit {p2.returncode}")
    cmds = re.findall(r"^  ([a-z]+) +\S", p.stdout.split("Commands:", 1)[1], re.M)
    require("help lists the commands", "run" in cmds and "apply" in cmds and "help" in cmds,
            repr(cmds))
    for c in cmds:
        for flag in ("--help", "-h"):
            p = cli(c, flag)
            check(f"{c} {flag} exits 0 and prints usage",
                  p.returncode == 0 and "Usage:" in p.stdout and c in p.stdout,
                  f"exit {p.returncode}: {p.stdout}{p.stderr}")
        p = cli("help", c)
        check(f"help {c} prints its usage", p.returncode == 0 and "Usage:" in p.stdout,
              f"exit {p.returncode}: {p.stdout}{p.stderr}")
    p = cli("frobnicate")
    check("an unknown command exits 1 and says so",
          p.returncode == 1 and "unknown command 'frobnicate'" in p.stderr and not p.stdout,
          f"exit {p.returncode}: {p.stderr}")
    p = cli("help", "frobnicate")
    check("help of an unknown command exits 1 and says so",
          p.returncode == 1 and "unknown command 'frobnicate'" in p.stderr,
          f"exit {p.returncode}: {p.stderr}")
    p = cli()
    check("no command exits 1 with usage on stderr",
          p.returncode == 1 and "Usage:" in p.stderr and not p.stdout, f"exit {p.returncode}")
    p = cli("--no-such-option", "version")
    check("an unknown global option exits 1", p.returncode == 1 and "Usage:" in p.stderr,
          f"exit {p.returncode}: {p.stderr}")


# --- 2. and 3. sd_notify, signals, reloads ------------------------------------------------------


def check_reload(n, dmn, after, name):
    """SIGHUP: RELOADING=1 (with MONOTONIC_USEC) and then READY=1. Returns the index of READY."""
    t0 = time.monotonic_ns() // 1000
    dmn.proc.send_signal(signal.SIGHUP)
    i = n.wait("RELOADING=1", after)
    require(f"{name}: SIGHUP sends RELOADING=1", i is not None)
    t1 = time.monotonic_ns() // 1000
    mono = [ln for ln in n.msgs[i][2] if ln.startswith("MONOTONIC_USEC=")]
    check(f"{name}: RELOADING=1 carries MONOTONIC_USEC of now",
          len(mono) == 1 and t0 <= int(mono[0].split("=", 1)[1]) <= t1, repr(n.msgs[i][2]))
    j = n.wait("READY=1", i + 1)
    require(f"{name}: READY=1 follows RELOADING=1", j is not None)
    return j


def part_notify_path():
    d = Dir("notify")
    n = Notify(os.path.join(d.path, "notify.sock"))
    try:
        dmn = Daemon(d, notify=n, env_extra={"WATCHDOG_USEC": str(WATCHDOG_USEC)}, wd_pid="self")
        i = n.wait("READY=1")
        require("daemon sends READY=1 after start (NOTIFY_SOCKET path)", i is not None,
                dmn.text()[-2000:])
        check("READY=1 comes from the daemon's pid", n.msgs[i][1] == dmn.pid,
              f"pid {n.msgs[i][1]}, daemon {dmn.pid}")
        check("the log says the agent runs", dmn.find_line(r'level=info msg="agent running') is
              not None, dmn.text()[-1000:])

        # the watchdog: WATCHDOG=1 every WATCHDOG_USEC/2
        def pings():
            n.pump()
            return [m for m in n.msgs[i:] if "WATCHDOG=1" in m[2]]
        got = wait_for(lambda: len(pings()) >= 6)
        p = pings()
        gaps = sorted(b[0] - a[0] for a, b in zip(p, p[1:]))
        check("WATCHDOG_USEC=200000 (WATCHDOG_PID ours): WATCHDOG=1 repeatedly",
              got and gaps[len(gaps) // 2] <= WATCHDOG_USEC / 1e6,
              f"{len(p)} pings, gaps {gaps}")
        check("WATCHDOG=1 comes from the daemon's pid", all(m[1] == dmn.pid for m in p))

        # a reload that changes the log level: debug lines appear
        d.write_config('[agent]\nlog_level = "debug"\n')
        start = len(dmn.lines())
        j = check_reload(n, dmn, i + 1, "reload to debug")
        k = dmn.wait_line(r'level=info msg="config reloaded', start)
        require("the log says the config was reloaded", k is not None, dmn.text()[-1500:])
        check("log_level=debug in the file takes effect at SIGHUP",
              dmn.wait_line(r'level=debug msg="reconcile triggered: SIGHUP"', k) is not None,
              "\n".join(dmn.lines()[k:]))
        start = len(dmn.lines())
        dmn.wake()
        check("at debug, a wake-up on the local socket is logged",
              dmn.wait_line(r'level=debug msg="reconcile triggered: desired state changed',
                            start) is not None, "\n".join(dmn.lines()[start:]))

        # 3. a malformed config: the running config stays, the error names file:line:col
        d.write_config('[agent]\nlog_level = "error"\n[reconcile\n')
        start = len(dmn.lines())
        j = check_reload(n, dmn, j + 1, "malformed reload")
        k = dmn.wait_line(r'level=error msg="reload failed, keeping the running config: ' +
                          re.escape(d.config) + r':3:\d+: ', start)
        check("a malformed config at SIGHUP is logged with file:line:col", k is not None,
              "\n".join(dmn.lines()[start:]))
        check("the daemon keeps running after a failed reload", dmn.alive())
        start = len(dmn.lines())
        dmn.wake()
        check("after a failed reload the old log level (debug) is still in effect",
              dmn.wait_line(r'level=debug msg="reconcile triggered: desired state changed',
                            start) is not None, "\n".join(dmn.lines()[start:]))
        d.write_config('[agent]\nlog_level = "error"\n\n[reconcile]\nconcurrency = 0\n')
        start = len(dmn.lines())
        j = check_reload(n, dmn, j + 1, "invalid reload")
        check("a value out of range at SIGHUP is logged with file:line:col",
              dmn.wait_line(re.escape(d.config) + r':5:\d+: reconcile.concurrency', start)
              is not None, "\n".join(dmn.lines()[start:]))
        check("the daemon keeps running after an invalid reload", dmn.alive())

        # back to info: no debug line between this reload and the stop
        d.write_config("# nothing: the defaults\n")
        start = len(dmn.lines())
        j = check_reload(n, dmn, j + 1, "reload to info")
        k = dmn.wait_line(r'level=info msg="config reloaded', start)
        require("the log says the config was reloaded (back to info)", k is not None)

        dmn.proc.send_signal(signal.SIGTERM)
        s = n.wait("STOPPING=1", j + 1)
        check("SIGTERM sends STOPPING=1", s is not None)
        rc = dmn.wait_exit()
        check("after SIGTERM the daemon exits 0 in time", rc == 0, f"exit {rc}")
        lines = dmn.lines()
        stop = dmn.find_line(r'msg="received Terminated', k)
        check("at info again, no debug lines", stop is not None and not any(
            "level=debug" in ln for ln in lines[k:stop]), "\n".join(lines[k:]))
        check("the log says the agent stopped", dmn.find_line(r'msg="agent stopped"') is not None)
        check("the local socket is removed at stop", not os.path.exists(d.sock))
        check_logfmt("every daemon log line is logfmt (ts= level= msg=)", dmn)
    finally:
        n.close()


def part_notify_abstract():
    """The abstract socket form, SIGINT, a WATCHDOG_PID that is not ours, and flags that stay in
    force across a reload."""
    d = Dir("abstract")
    n = Notify(f"@axt-daemon-notify-{os.getpid()}")
    try:
        dmn = Daemon(d, notify=n, env_extra={"WATCHDOG_USEC": str(WATCHDOG_USEC)}, wd_pid=1,
                     glob=("--set", "agent.log_level=debug"))
        i = n.wait("READY=1")
        require("daemon sends READY=1 (NOTIFY_SOCKET @abstract)", i is not None,
                dmn.text()[-2000:])
        check("READY=1 comes from the daemon's pid", n.msgs[i][1] == dmn.pid)
        # no watchdog for another pid: 10 intervals pass without one
        end = time.monotonic() + 10 * WATCHDOG_USEC / 2e6
        while time.monotonic() < end:
            time.sleep(0.05)
        check("WATCHDOG_PID of another process: no WATCHDOG=1", n.find("WATCHDOG=1") is None)

        start = len(dmn.lines())
        j = check_reload(n, dmn, i + 1, "abstract reload")
        k = dmn.wait_line(r'level=info msg="config reloaded', start)
        require("the log says the config was reloaded", k is not None)
        check("--set agent.log_level=debug still wins over the file after SIGHUP",
              dmn.wait_line(r'level=debug msg="reconcile triggered: SIGHUP"', k) is not None,
              "\n".join(dmn.lines()[k:]))

        dmn.proc.send_signal(signal.SIGINT)
        check("SIGINT sends STOPPING=1", n.wait("STOPPING=1", j + 1) is not None)
        rc = dmn.wait_exit()
        check("after SIGINT the daemon exits 0 in time", rc == 0, f"exit {rc}")
        check("the log names the signal", dmn.find_line(r'msg="received Interrupt') is not None)
        check_logfmt("every daemon log line is logfmt", dmn)
    finally:
        n.close()


def part_log_level_flag():
    """--log-level is for the whole run: a reload does not undo it."""
    d = Dir("loglevel")
    n = Notify(os.path.join(d.path, "notify.sock"))
    try:
        d.write_config('[agent]\nlog_level = "info"\n')
        dmn = Daemon(d, notify=n, glob=("--log-level", "debug"))
        i = n.wait("READY=1")
        require("daemon with --log-level debug starts", i is not None, dmn.text()[-2000:])
        start = len(dmn.lines())
        check_reload(n, dmn, i + 1, "--log-level reload")
        k = dmn.wait_line(r'level=info msg="config reloaded', start)
        require("the log says the config was reloaded", k is not None)
        check("--log-level debug still wins over the file's info after SIGHUP",
              dmn.wait_line(r'level=debug msg="reconcile triggered: SIGHUP"', k) is not None,
              "\n".join(dmn.lines()[k:]))
        dmn.proc.send_signal(signal.SIGTERM)
        check("exits 0 after SIGTERM", dmn.wait_exit() == 0)
    finally:
        n.close()


# --- 4. the store -------------------------------------------------------------------------------


def part_store():
    d = Dir("store")
    p = d.cli("status")
    check("status without a state dir exits 1 and says there is no store",
          p.returncode == 1 and "no store at " + d.store() in p.stderr, f"exit {p.returncode}: "
          f"{p.stderr}")
    os.makedirs(d.state)
    p = d.cli("status")
    check("status on a state dir with no store exits 1 and says so",
          p.returncode == 1 and "no store at " + d.store() in p.stderr, f"exit {p.returncode}: "
          f"{p.stderr}")
    check("status creates no store", os.listdir(d.state) == [], repr(os.listdir(d.state)))

    garbage = b"this is not a database\n" + bytes(range(256)) * 64
    with open(d.store(), "wb") as f:
        f.write(garbage)
    before = d.snapshot()
    p = d.cli("run", timeout=DEADLINE * 3)
    check("run on a corrupt store exits 1", p.returncode == 1, f"exit {p.returncode}")
    check("the error names the file and says it is corrupt",
          d.store() in p.stderr and "corrupt" in p.stderr, p.stderr)
    check("the error tells how to start anyway", "--reset-corrupt-store" in p.stderr, p.stderr)
    check("nothing is moved or changed", d.snapshot() == before, repr(d.snapshot()))
    check("a run that never started does not log 'agent stopped'",
          "agent stopped" not in p.stderr, p.stderr)
    p = d.cli("status")
    check("status on a corrupt store exits 1 naming the file",
          p.returncode == 1 and d.store() in p.stderr and "corrupt" in p.stderr, p.stderr)
    check("status moves nothing either", d.snapshot() == before)

    n = Notify(os.path.join(d.path, "notify.sock"))
    try:
        dmn = Daemon(d, notify=n, run_args=("--reset-corrupt-store",))
        i = n.wait("READY=1")
        require("run --reset-corrupt-store starts (READY=1)", i is not None, dmn.text()[-2000:])
        moved = [f for f in os.listdir(d.state) if re.fullmatch(r"store\.db\.corrupt-\S+", f)]
        check("the corrupt file is moved aside to store.db.corrupt-*", len(moved) == 1,
              repr(os.listdir(d.state)))
        if moved:
            with open(os.path.join(d.state, moved[0]), "rb") as f:
                check("the moved file still holds the garbage bytes", f.read() == garbage)
        with open(d.store(), "rb") as f:
            check("a new store is started", f.read(16) == b"SQLite format 3\0")
        check("the log says where the corrupt store went",
              dmn.find_line(r"level=warn .*corrupt.*moved aside to .*store\.db\.corrupt-")
              is not None, dmn.text()[-1500:])
        dmn.proc.send_signal(signal.SIGTERM)
        check("it stops with exit 0", dmn.wait_exit() == 0)
    finally:
        n.close()
    p = d.cli("status")
    check("status on the new store works", p.returncode == 0 and "no stacks" in p.stdout,
          f"exit {p.returncode}: {p.stdout}{p.stderr}")

    # a store of a newer schema
    sqlite = shutil.which("sqlite3")
    require("the sqlite3 CLI is installed (scripts/deps.sh)", sqlite is not None)
    for f in os.listdir(d.state):
        if f.startswith("store.db.corrupt-"):
            os.unlink(os.path.join(d.state, f))
    r = subprocess.run([sqlite, d.store(), "PRAGMA user_version = 99;"], capture_output=True,
                       text=True)
    require("sqlite3 raises user_version", r.returncode == 0, r.stderr)
    before = d.snapshot()

    def untouched():
        """store.db has the same bytes, nothing is moved aside; SQLite may leave its -shm and
        an empty -wal (the probe reads without checkpointing), but no data in them."""
        now = d.snapshot()
        empty = hashlib.sha256(b"").hexdigest()
        extra = set(now) - set(before)
        ok = (now.get("store.db") == before["store.db"] and set(before) <= set(now) and
              extra <= {"store.db-wal", "store.db-shm"} and
              now.get("store.db-wal", empty) == empty)
        return ok, repr(now)

    p = d.cli("run", timeout=DEADLINE * 3)
    check("run on a store of a newer schema exits 1 with the 'newer' message",
          p.returncode == 1 and d.store() in p.stderr and "schema version 99 is newer" in
          p.stderr, f"exit {p.returncode}: {p.stderr}")
    check("the newer store is left untouched", *untouched())
    p = d.cli("run", "--reset-corrupt-store", timeout=DEADLINE * 3)
    check("run --reset-corrupt-store refuses a newer store too (it is not corrupt)",
          p.returncode == 1 and "newer" in p.stderr, f"exit {p.returncode}: {p.stderr}")
    check("... and moves nothing", *untouched())
    p = d.cli("status")
    check("status on a newer store exits 1 with the 'newer' message",
          p.returncode == 1 and "newer" in p.stderr, f"exit {p.returncode}: {p.stderr}")
    check("... and leaves it untouched", *untouched())
    r = subprocess.run([sqlite, d.store(), "PRAGMA user_version;"], capture_output=True,
                       text=True)
    check("user_version is still 99", r.returncode == 0 and r.stdout.strip() == "99",
          r.stdout + r.stderr)


# --- 5. bad input -------------------------------------------------------------------------------


def part_bad_input():
    d = Dir("input")
    ok = os.path.join(d.path, "app.yml")
    with open(ok, "w") as f:
        f.write("services:\n  web:\n    image: axion-test/busybox:1\n")
    p = d.cli("apply", "-f", ok, "-n", "axtd")
    require("apply of a valid manifest writes generation 1",
            p.returncode == 0 and "generation 1" in p.stdout, f"{p.stdout}{p.stderr}")
    before = status_json(d)
    require("status --output json shows generation 1",
            [s["generation"] for s in before if s["stack"] == "axtd"] == [1], repr(before))

    cases = [
        ("syntax", "services:\n  web:\n    image: [unclosed\n", r":\d+:\d+: "),
        ("type", "services:\n  web:\n    image: axion-test/busybox:1\n    deploy:\n"
         "      replicas: two\n", r":5:17: services\.web\.deploy\.replicas"),
        ("unknown key", "services:\n  web:\n    image: axion-test/busybox:1\n    colour: red\n",
         r":4:\d+: "),
    ]
    for tag, text, where in cases:
        bad = os.path.join(d.path, f"bad-{tag.replace(' ', '-')}.yml")
        with open(bad, "w") as f:
            f.write(text)
        p = d.cli("apply", "-f", bad, "-n", "axtd")
        check(f"apply of a malformed manifest ({tag}) exits 1 with file:line:col",
              p.returncode == 1 and re.search(re.escape(bad) + where, p.stderr),
              f"exit {p.returncode}: {p.stderr}")
        check(f"... and the stored generation is unchanged ({tag})", status_json(d) == before)

    for arg, msg in (("axtd/web=two", "expected STACK/SERVICE=N"),
                     ("web=2", "expected STACK/SERVICE=N"),
                     ("axtd/web", "expected STACK/SERVICE=N"),
                     ("axtd/web=-1", "expected STACK/SERVICE=N"),
                     ("axtd/web=", "expected STACK/SERVICE=N"),
                     ("axtd/nosuch=2", 'has no service "nosuch"'),
                     ("nosuch/web=2", 'no stack named "nosuch"')):
        p = d.cli("scale", arg)
        check(f"scale {arg} exits 1 with a clear message",
              p.returncode == 1 and msg in p.stderr and arg.split("/")[0] in p.stderr,
              f"exit {p.returncode}: {p.stderr}")
    check("status is unchanged after the bad scales", status_json(d) == before)
    p = d.cli("scale", "axtd/web=3")
    check("a good scale works", p.returncode == 0 and "replicas 3" in p.stdout, p.stderr)

    for cmd in (("run",), ("status",), ("version",)):
        p = d.cli(*cmd, glob=("--log-level", "loud"))
        check(f"--log-level loud {cmd[0]} exits 1 naming the flag and the value",
              p.returncode == 1 and "--log-level" in p.stderr and '"loud"' in p.stderr,
              f"exit {p.returncode}: {p.stderr}")
    p = d.cli("status", glob=("--set", "agent.log_level=loud"))
    check("--set agent.log_level=loud exits 1 naming the flag",
          p.returncode == 1 and "--set agent.log_level" in p.stderr, p.stderr)
    p = d.cli("run", "--frobnicate")
    check("run with an unknown argument exits 1",
          p.returncode == 1 and "--frobnicate" in p.stderr, p.stderr)


# --- 6. what apply hands the intake -------------------------------------------------------------


def stored_stack(d, name):
    db = sqlite3.connect(f"file:{d.store()}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT generation, variables, base_dir, home_dir, source"
                         " FROM stacks WHERE name = ?", (name,)).fetchone()
    finally:
        db.close()
    if row is None:
        return None
    s = dict(zip(("generation", "variables", "base_dir", "home_dir", "source"), row))
    s["files"] = stored_files(d, name)
    return s


def stored_files(d, name):
    """The stack's attached files as bytes, opened with the key beside the store the way the
    store seals them (docs/internals/store.md): 1 byte format, 12 bytes nonce, the ciphertext
    and its 16-byte tag, AES-256-GCM, bound to "axion-agent stack file\\0STACK\\0NAME"."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    store = d.store()
    with open(store[:-3] + ".key", "rb") as f:
        key = AESGCM(f.read())
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT name, content, sealed FROM stack_files WHERE stack = ?",
                          (name,)).fetchall()
    finally:
        db.close()
    out = {}
    for fname, blob, sealed in rows:
        assert sealed == 1 and blob[0] == 1, f"{fname} is not sealed"
        aad = b"axion-agent stack file\0" + name.encode() + b"\0" + fname.encode()
        out[fname] = key.decrypt(bytes(blob[1:13]), bytes(blob[13:]), aad)
    return out


def part_apply_inputs():
    d = Dir("apply")
    app = os.path.join(d.path, "app")
    sub = os.path.join(d.path, "elsewhere")
    os.makedirs(app)
    os.makedirs(sub)
    with open(os.path.join(app, "compose.yml"), "w") as f:
        f.write("services:\n  web:\n    image: axion-test/busybox:${TAG:-1}\n"
                "    environment: [FOO]\n    configs: [cf]\n"
                "configs:\n  cf: {file: ./cf.txt}\n")
    with open(os.path.join(app, "cf.txt"), "w") as f:
        f.write("beside\n")
    with open(os.path.join(sub, "other.txt"), "w") as f:
        f.write("attached\n")
    home = os.path.join(d.path, "home")
    os.makedirs(home)

    def apply(*extra, env_extra=None):
        env = base_env()
        env["HOME"] = home
        env.update(env_extra or {})
        # a relative path with ".." in it, from another working directory
        return subprocess.run([BIN, *d.args(), "apply", "-f", "../app/./compose.yml", "-n", "axta",
                               *extra], env=env, cwd=sub, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    p = apply()
    sanitizer_clean("apply", p.stderr)
    require("apply reads the file the manifest names from beside it",
            p.returncode == 0 and "generation 1 written" in p.stdout, f"{p.stdout}{p.stderr}")
    s = stored_stack(d, "axta")
    check("the manifest's directory is stored, absolute and clean (for relative bind sources)",
          s["base_dir"] == app, repr(s))
    check("the caller's home is stored", s["home_dir"] == home, repr(s))
    check("the file from beside the manifest is stored", s["files"] ==
          {"./cf.txt": b"beside\n"}, repr(s["files"]))
    check("without --env no variable of the environment is taken",
          json.loads(s["variables"]) == {}, s["variables"])

    p = apply("--env", "--var", "TAG=7",
              env_extra={"TAG": "9", "FOO": "bar", "AXT_UNUSED_SECRET": "do-not-store"})
    check("apply --env writes generation 2", p.returncode == 0 and "generation 2" in p.stdout,
          f"{p.stdout}{p.stderr}")
    s = stored_stack(d, "axta")
    check("--env takes what the manifest names, --var wins, nothing else is stored",
          json.loads(s["variables"]) == {"FOO": "bar", "TAG": "7"}, s["variables"])

    p = apply("--attach", "./cf.txt=../elsewhere/other.txt")
    check("--attach wins over the file beside the manifest",
          p.returncode == 0 and stored_stack(d, "axta")["files"] ==
          {"./cf.txt": b"attached\n"}, f"{p.stderr} {stored_stack(d, 'axta')}")
    p = apply("--attach", "cf.txt=../elsewhere/other.txt")
    check("--attach NAME matches ./NAME by the converter's rule, and wins: only it is stored",
          p.returncode == 0 and stored_stack(d, "axta")["files"] ==
          {"cf.txt": b"attached\n"}, f"{p.stderr} {stored_stack(d, 'axta')}")

    before = stored_stack(d, "axta")
    p = apply("--attach", "nothing.txt=other.txt")
    check("an --attach name the manifest does not use is an error naming it",
          p.returncode == 1 and '"nothing.txt" is not used by the manifest' in p.stderr, p.stderr)
    os.unlink(os.path.join(app, "cf.txt"))
    p = apply()
    check("a missing file names its place, and the hint names --attach, not --file",
          p.returncode == 1 and "configs.cf.file" in p.stderr and
          f"{app}/cf.txt does not exist; give the file with --attach ./cf.txt=PATH" in p.stderr
          and "--file" not in p.stderr, p.stderr)
    check("... and the stored generation is unchanged", stored_stack(d, "axta") == before)
    # Changed on purpose (issue 13.2): any bytes are kept as bytes (DER keys, keystores).
    binary = b"\x30\x82\x01\x0a\x00\xff\xfe not text\x00"
    with open(os.path.join(app, "cf.txt"), "wb") as f:
        f.write(binary)
    p = apply()
    check("a file that is not UTF-8 text is stored as its bytes",
          p.returncode == 0 and stored_stack(d, "axta")["files"] == {"./cf.txt": binary},
          f"{p.stderr} {stored_stack(d, 'axta')}")


def main():
    if not os.access(BIN, os.X_OK):
        print(f"no agent binary at {BIN}")
        return 1
    for part in (part_cli, part_notify_path, part_notify_abstract, part_log_level_flag,
                 part_store, part_bad_input, part_apply_inputs):
        try:
            part()
        except Failed:
            pass  # counted; the rest of this part depends on it
        except Exception as e:  # noqa: BLE001  a broken part must not hide the others
            check(f"{part.__name__} ran to the end", False, f"{type(e).__name__}: {e}")
        for dmn in daemons:
            if dmn.alive():
                check(f"{part.__name__}: daemon {dmn.pid} stopped", False, "killed")
                dmn.kill()
    for dmn in daemons:
        dmn.log.close()
        sanitizer_clean(f"daemon log {dmn.log_path}", dmn.text())
    for path in dirs:
        if failed:
            print(f"kept for a look: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
