#!/usr/bin/env python3
"""Issue 13 (hardening) and the secrets-at-rest part of issue 14, at the process level: what an
outside review broke, each as a class, through the built binary.

- the policy: the review's volume (a local volume mounting the host's disk) and its class;
  an external network named by a prefix of the host network's ID never reaches the Engine as
  such (real Swarm);
- secrets at rest: a binary secret reaches the Engine byte for byte, is sealed in the store
  (neither the file nor its WAL holds it), never shows in status, events, dry-run output or the
  daemon's log, and a store copied without its key cannot reveal it (real Swarm);
- the local socket and the state dir: one daemon per state dir, a second one names the
  first's pid; nothing but a stale socket is ever removed at local.socket;
- messages: a store that does not open says why and that nothing was lost; run as root, the
  CLI keeps the store its owner's; what is not a regular file is refused without blocking;
  limits are refused, not cut.

Every Docker object starts with "axth"; every file lives in this test's temp dirs."""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconcile_harness import (AGENT, IMAGE, Agent, Failed, cleanup, inspect, names, run,  # noqa: E402
                               sh, wait_for)

PREFIX = "axth"
NOBODY = 65534
tmpdirs = []


def tmpdir(tag):
    d = tempfile.mkdtemp(prefix=f"axth-{tag}-")
    tmpdirs.append(d)
    return d


def agent(state, *args, env=None, user=None, timeout=60, sock=None):
    """The CLI on a state dir of its own (and a local socket beside it); user: run as that uid
    (root can; the test runs as root in CI)."""
    cmd = [AGENT, "--state-dir", state, "--set",
           f"local.socket={sock or os.path.join(os.path.dirname(state), 'agent.sock')}",
           "--set", "docker.socket=/nonexistent/docker.sock", *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    e = {k: v for k, v in os.environ.items() if not k.startswith("AXION_AGENT__")}
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, env=e, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def expect(what, p, code, *parts):
    err = p.stderr.decode(errors="replace")
    if p.returncode != code or any(x not in err for x in parts):
        raise Failed(f"{what}: exit {p.returncode} (want {code}), stderr lacks one of {parts}: "
                     f"{err}")
    return err


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def manifest(d, text, name="m.yml"):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# --- the policy ----------------------------------------------------------------------------------


def test_policy_volume_options_refused():
    """The review's input, with every allow flag off, is refused naming the rule; so is the rest
    of its class; listing the driver in the config lets it through."""
    d = tmpdir("policy")
    st = os.path.join(d, "state")
    cases = {
        "disk": "volumes: {disk: {driver_opts: {type: ext4, device: /dev/sda1}}}",
        "tmpfs": "volumes: {disk: {driver_opts: {type: tmpfs, device: tmpfs}}}",
        "nfs": "volumes: {disk: {driver_opts: {type: nfs, o: addr=127.0.0.1, device: ':/x'}}}",
        "plugin": "volumes: {disk: {driver: vieux/sshfs}}",
    }
    for tag, vol in cases.items():
        m = manifest(d, f"{vol}\nservices: {{web: {{image: {IMAGE}, volumes: [disk:/d]}}}}\n")
        p = agent(st, "apply", "-f", m, "-n", "axthp")
        expect(f"{tag}: refused", p, 1, "volumes.disk: refused by policy",
               "(rule volume-drivers: policy.volume_drivers)")
    p = agent(st, "status")
    if p.returncode != 0 or p.stdout != b"no stacks\n":
        raise Failed(f"nothing was written: {p.stdout} {p.stderr}")
    m = manifest(d, cases["disk"] + f"\nservices: {{web: {{image: {IMAGE}, volumes: [disk:/d]}}}}\n")
    p = agent(st, "--set", "policy.volume_drivers=local", "apply", "-f", m, "-n", "axthp")
    if p.returncode != 0:
        raise Failed(f"with policy.volume_drivers=local: {p.stderr.decode()}")
    # The config says what it holds, and refuses what it cannot.
    p = agent(st, "config", "check", "--set", "policy.level=restricted", "--set",
              "policy.exceptions=non-root,pids-limit")
    out = p.stdout.decode()
    if p.returncode != 0 or 'level = "restricted"' not in out or \
            'exceptions = ["non-root", "pids-limit"]' not in out:
        raise Failed(f"config check: {out} {p.stderr.decode()}")
    expect("an unknown rule", agent(st, "config", "check", "--set", "policy.exceptions=root"), 1,
           "--set policy.exceptions: item 1: expected the name of a policy rule")
    expect("a bind prefix with ..", agent(st, "config", "check", "--set",
                                          "policy.bind_allow=/srv/../etc"), 1,
           "an absolute path without \"..\"")


def test_policy_network_id_prefix():
    """An external network named by a prefix of the host network's ID: the Engine would read an
    unknown name as an ID prefix; the agent sends networks by the ID of the network of exactly
    that name, so no service is made and the event says why."""
    host_id = sh("docker network inspect host --format '{{.Id}}'").stdout.strip()
    prefix = host_id[:12]
    A = Agent("hard-net")
    try:
        A.start()
        A.apply(f"{PREFIX}n", f"""
networks:
  outside: {{external: true, name: "{prefix}"}}
services:
  web: {{image: {IMAGE}, command: ["sleep", "100000"], networks: [outside]}}
""")
        A.wait_event(f"network {prefix} does not exist on this node", timeout=60)
        if inspect("service", f"{PREFIX}n_web"):
            raise Failed("a service was created on a network named by an ID prefix")
    finally:
        A.close()
        cleanup(f"{PREFIX}n")


# --- secrets at rest -------------------------------------------------------------------------------

SECRET = b"\x30\x82\x01\x0a\x00\xff\xfeaxth-s3cr3t-DER-\x00\x01\x02" + os.urandom(8).hex().encode()
PASSWORD = b"axth-env-password-" + os.urandom(6).hex().encode()


def holds(path, needle):
    try:
        with open(path, "rb") as f:
            return needle in f.read()
    except FileNotFoundError:
        return False


def test_secrets_at_rest():
    A = Agent("hard-sec")
    stack = f"{PREFIX}s"
    try:
        pw = os.path.join(A.dir, "pw.der")
        with open(pw, "wb") as f:
            f.write(SECRET)
        with open(os.path.join(A.dir, "app.env"), "wb") as f:
            f.write(b"# the app's environment\nDB_PASSWORD=" + PASSWORD + b"\n")
        A.start()
        A.apply(stack, f"""
services:
  web:
    image: {IMAGE}
    command: ["sleep", "100000"]
    env_file: ./app.env
    secrets: [pw]
secrets:
  pw: {{file: ./db.der}}
""", "--attach", f"./db.der={pw}")
        A.wait_state(stack, timeout=90)
        want = f"{stack}_pw_{hashlib.sha256(SECRET).hexdigest()[:8]}"
        if want not in names("secret", stack):
            raise Failed(f"no secret {want} (the bytes changed on the way?): "
                         f"{names('secret', stack)}")
        state = A.env["AXION_AGENT__AGENT__STATE_DIR"]
        store = os.path.join(state, "store.db")
        key = os.path.join(state, "store.key")
        if os.stat(key).st_mode & 0o777 != 0o600 or os.path.getsize(key) != 32:
            raise Failed(f"the key: mode {oct(os.stat(key).st_mode)}, {os.path.getsize(key)} B")
        # Masked everywhere the agent speaks.
        outputs = {
            "status": A.cli("status").stdout, "status json": A.cli("status", "--output",
                                                                    "json").stdout,
            "events": A.cli("events").stdout,
            "events json": A.cli("events", "--output", "json").stdout,
            "dry-run": A.cli("reconcile", "--dry-run", check=False).stdout,
            "dry-run json": A.cli("reconcile", "--dry-run", "--output", "json",
                                  check=False).stdout,
        }
        with open(A.daemon_log, "rb") as f:
            log = f.read()
        for what, text in outputs.items():
            for needle in (SECRET[7:25].decode(), PASSWORD.decode()):
                if needle in text:
                    raise Failed(f"{what} shows a secret: {text}")
        if SECRET[7:25] in log or PASSWORD in log:
            raise Failed("the daemon's log shows a secret")
        for f in (store, store + "-wal"):
            if holds(f, SECRET[7:25]) or holds(f, PASSWORD):
                raise Failed(f"{f} holds a secret in clear")
        A.stop()
        if holds(store, SECRET[7:25]) or holds(store, PASSWORD):
            raise Failed("the store holds a secret in clear after the checkpoint")

        # Another host: the store without its key. It lists, it does not reveal.
        other = tmpdir("copy")
        ost = os.path.join(other, "state")
        os.makedirs(ost)
        shutil.copy(store, os.path.join(ost, "store.db"))
        p = agent(ost, "status")
        if p.returncode != 0 or stack.encode() not in p.stdout:
            raise Failed(f"status of the copy: {p.stderr.decode()}")
        env = dict(A.env)
        env["AXION_AGENT__AGENT__STATE_DIR"] = ost
        p = subprocess.run([AGENT, "reconcile", "--dry-run"], env=env, capture_output=True,
                           timeout=120)
        text = (p.stdout + p.stderr)
        if SECRET[7:25] in text or PASSWORD in text:
            raise Failed("the copy revealed a secret")
        db = sqlite3.connect(f"file:{os.path.join(ost, 'store.db')}?mode=ro", uri=True)
        rows = db.execute("SELECT name, sealed, length(content) FROM stack_files"
                          " WHERE stack = ?", (stack,)).fetchall()
        db.close()
        if sorted(r[0] for r in rows) != ["./app.env", "./db.der"] or any(r[1] != 1 for r in rows):
            raise Failed(f"stored files: {rows}")
        if os.path.exists(os.path.join(ost, "store.key")):
            raise Failed("a read-only command made a key")
    finally:
        A.close()
        cleanup(stack)


# --- the local socket and the state dir ------------------------------------------------------------


def daemon(state, sock, log):
    return subprocess.Popen([AGENT, "--state-dir", state, "--local", "--set",
                             f"local.socket={sock}", "--set",
                             "docker.socket=/nonexistent/docker.sock", "run"],
                            stdout=log, stderr=log)


def test_one_daemon_per_state_dir():
    d = tmpdir("lock")
    st, sock = os.path.join(d, "state"), os.path.join(d, "agent.sock")
    log = open(os.path.join(d, "first.log"), "wb")
    first = daemon(st, sock, log)
    try:
        wait_for("the first daemon's socket", lambda: os.path.exists(sock), 20)
        for other_sock in (os.path.join(d, "second.sock"), sock):
            p = agent(st, "--local", "run", sock=other_sock, timeout=60)
            expect("a second daemon", p, 1, f"another axion-agent daemon (pid {first.pid})",
                   st)
        if first.poll() is not None:
            raise Failed("the first daemon died")
        # A daemon of another state dir does not take the first one's socket over.
        p = agent(os.path.join(d, "state2"), "--local", "run", sock=sock)
        expect("another state dir, the same socket", p, 1,
               f"another process listens on {sock}: it is left alone")
        with open(os.path.join(st, "agent.lock")) as f:
            if f.read().strip() != str(first.pid):
                raise Failed("the lock does not hold the pid")
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
        log.close()
    # The lock goes with the daemon: the next one starts.
    log = open(os.path.join(d, "third.log"), "wb")
    third = daemon(st, sock, log)
    try:
        wait_for("the next daemon's socket", lambda: os.path.exists(sock), 20)
        if third.poll() is not None:
            raise Failed("the next daemon could not start")
    finally:
        third.send_signal(signal.SIGTERM)
        third.wait(30)
        log.close()


def test_local_socket_never_removes_a_file():
    d = tmpdir("sock")
    st = os.path.join(d, "state")
    m = manifest(d, f"services: {{web: {{image: {IMAGE}}}}}\n")
    if agent(st, "apply", "-f", m, "-n", "axthk").returncode != 0:
        raise Failed("apply")
    store = os.path.join(st, "store.db")
    before = sha(store)
    # The review's input: the socket on the store.
    for name in ("store.db", "store.key", "store.db-wal", "agent.lock"):
        p = agent(st, "--local", "run", sock=os.path.join(st, name))
        expect(f"local.socket={name}", p, 1, "is one of the state dir's own files")
    if sha(store) != before:
        raise Failed("the store changed")
    # Anything else that is not a socket stays, whatever it is.
    target = os.path.join(d, "target")
    with open(target, "w") as f:
        f.write("precious")
    kinds = {
        "a regular file": lambda p: open(p, "w").write("precious"),
        "a directory": os.mkdir,
        "a symbolic link": lambda p: os.symlink(target, p),
        "a FIFO": os.mkfifo,
    }
    for what, make in kinds.items():
        path = os.path.join(d, "agent.sock")
        make(path)
        ino = os.lstat(path).st_ino
        p = agent(st, "--local", "run", sock=path)
        expect(f"{what} at local.socket", p, 1, f"{path} exists and is {what}, not a socket: "
               "it is left alone")
        if os.lstat(path).st_ino != ino:
            raise Failed(f"{what} was replaced")
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    with open(target) as f:
        if f.read() != "precious":
            raise Failed("the symlink's target changed")
    p = agent(st, "status")
    if p.returncode != 0 or b"axthk" not in p.stdout:
        raise Failed(f"the store after all that: {p.stderr.decode()}")


# --- messages ---------------------------------------------------------------------------------------


def test_root_keeps_the_owner():
    """Run as root on a state dir the daemon's user owns, the CLI leaves the store that user's:
    the daemon (that user) can still open it."""
    if os.geteuid() != 0:
        print("  (not root: nothing to check)")
        return
    d = tmpdir("owner")
    os.chmod(d, 0o755)
    st = os.path.join(d, "state")
    os.makedirs(st)
    os.chown(st, NOBODY, NOBODY)
    m = manifest(d, f"services: {{web: {{image: {IMAGE}}}}}\n")
    os.chmod(m, 0o644)
    p = agent(st, "apply", "-f", m, "-n", "axtho")
    if p.returncode != 0:
        raise Failed(f"apply as root: {p.stderr.decode()}")
    for name in ("store.db", "store.key"):
        s = os.stat(os.path.join(st, name))
        if (s.st_uid, s.st_gid, s.st_mode & 0o777) != (NOBODY, NOBODY, 0o600):
            raise Failed(f"{name}: uid {s.st_uid} gid {s.st_gid} mode {oct(s.st_mode)}")
    leftover = [n for n in os.listdir(st) if os.stat(os.path.join(st, n)).st_uid != NOBODY]
    if leftover:
        raise Failed(f"root's files in the state dir: {leftover}")
    p = agent(st, "apply", "-f", m, "-n", "axtho", user=NOBODY)
    if p.returncode != 0 or b"generation 2" not in p.stdout:
        raise Failed(f"the owner after root: {p.stderr.decode()}")


def test_unopenable_store_says_so():
    d = tmpdir("unopen")
    os.chmod(d, 0o755)
    st = os.path.join(d, "state")
    m = manifest(d, f"services: {{web: {{image: {IMAGE}}}}}\n")
    if agent(st, "apply", "-f", m, "-n", "axthu").returncode != 0:
        raise Failed("apply")
    os.chmod(st, 0o755)
    store = os.path.join(st, "store.db")
    before = sha(store)
    if os.geteuid() == 0:
        p = agent(st, "status", user=NOBODY)
        expect("a store of another user", p, 1, "cannot open the store",
               "the store belongs to root (uid 0)", "nothing was lost",
               f"still at {store}")
        if b"no store" in p.stderr:
            raise Failed("it says there is no store")
    ro = os.path.join(d, "ro")
    os.makedirs(ro)
    mounted = subprocess.run(["mount", "--bind", st, ro], capture_output=True).returncode == 0
    if mounted:
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", ro], check=True)
            p = agent(ro, "status")
            expect("a read-only filesystem", p, 1, "cannot open the store",
                   "is on a read-only filesystem", "nothing was lost")
        finally:
            subprocess.run(["umount", ro])
    else:
        print("  (bind mounts are not allowed here: the read-only case is not run)")
    if sha(store) != before:
        raise Failed("the store changed")
    p = agent(os.path.join(d, "none"), "status")
    expect("no store at all", p, 1, "no store at", "(nothing was applied)")


def test_inputs_that_are_not_files():
    d = tmpdir("inputs")
    st = os.path.join(d, "state")
    m = manifest(d, f"""services: {{web: {{image: {IMAGE}, secrets: [pw]}}}}
secrets: {{pw: {{file: ./pw.txt}}}}
""")
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    long = "/" + "a" * 5000
    cases = [
        (("apply", "-f", fifo, "-n", "axthi"), f"-f {fifo}: is a FIFO, not a regular file"),
        (("apply", "-f", m, "-n", "axthi", "--attach", f"./pw.txt={fifo}"),
         f"--attach ./pw.txt: {fifo}: is a FIFO, not a regular file"),
        (("apply", "-f", m, "-n", "axthi", "--attach", f"./pw.txt={d}"),
         f"{d}: is a directory, not a regular file"),
        (("apply", "-f", m, "-n", "axthi", "--attach", "./pw.txt=/dev/zero"),
         "/dev/zero: is a character device, not a regular file"),
        (("-c", fifo, "config", "check"), f"{fifo}: is a FIFO, not a regular file"),
        (("apply", "-f", long, "-n", "axthi"), "longer than 4095 bytes"),
        (("apply", "-f", m, "-n", "axthi", "--attach", f"./pw.txt={long}"),
         "the path is longer than 4095 bytes"),
        (("apply", "-f", m, "-n", "axthi", "--attach", "./pw.txt=/etc/hostname", "--var",
          "A=\udcff"), "variable A: not valid UTF-8 text"),
    ]
    for args, want in cases:
        # (str arguments reach the process as bytes: "\udcff" is the byte 0xff)
        p = agent(st, *args, timeout=20)
        expect(" ".join(a[:40] for a in args), p, 1, want)
    # The missing file's hint names --attach.
    p = agent(st, "apply", "-f", m, "-n", "axthi")
    expect("a missing file", p, 1, "secrets.pw.file", "give the file with --attach ./pw.txt=PATH")
    if b"--file" in p.stderr:
        raise Failed("the hint names --file")
    # Integers beyond what the Engine or our own caps take.
    for value, want in (("4294967297", "expected a number of replicas from 0 to 100000, "
                         "got 4294967297"), ("100001", "got 100001")):
        m2 = manifest(d, f"services: {{web: {{image: {IMAGE}, deploy: {{replicas: {value}}}}}}}\n",
                      "r.yml")
        expect(f"replicas {value}", agent(st, "apply", "-f", m2, "-n", "axthi"), 1, want)
    m3 = manifest(d, f"services: {{web: {{image: {IMAGE}}}}}\n", "ok.yml")
    if agent(st, "apply", "-f", m3, "-n", "axthi").returncode != 0:
        raise Failed("apply ok.yml")
    expect("scale 100001", agent(st, "scale", "axthi/web=100001"), 1, "N from 0 to 100000")


def main():
    tests = [test_policy_volume_options_refused, test_one_daemon_per_state_dir,
             test_local_socket_never_removes_a_file, test_root_keeps_the_owner,
             test_unopenable_store_says_so, test_inputs_that_are_not_files,
             test_secrets_at_rest, test_policy_network_id_prefix]
    rc = run(tests)
    for d in tmpdirs:
        if rc == 0:
            shutil.rmtree(d, ignore_errors=True)
        else:
            print(f"kept for a look: {d}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
