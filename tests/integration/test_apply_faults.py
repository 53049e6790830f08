#!/usr/bin/env python3
"""How apply meets a Docker Engine that says no, against a fake Engine on a unix socket.

1. A service update that loses the optimistic-concurrency race is re-read and retried. The fake
Engine on a unix socket plays the Swarm: one managed service whose spec-hash label is
stale, so the plan updates it with version=7. The fake answers that first update as Engine 20.10
does when the service changed meanwhile (HTTP 500 "update out of sequence"), serves version 9
on the re-read, and accepts the update that carries version=9. One `axion-agent reconcile` pass
must end in sync (exit 0) after exactly that exchange (the stack's default network is
created on the way).

2. A step that keeps failing is retried by the daemon with per-object exponential backoff and
jitter (1 s, 2 s, 4 s, ... ±20 %), and its stack stays failed with the Engine's message."""

import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

AGENT = os.environ.get("AXION_AGENT_BIN", "build/axion-agent")

SERVICE_ID = "svc0000000000000000000001"
live_version = 7
requests = []
fail_creates = False  # scenario 2: no service, and every create fails


def service(version):
    return {
        "ID": SERVICE_ID,
        "Version": {"Index": version},
        "Spec": {
            "Name": "axtc_web",
            "Labels": {"io.axion.managed": "true", "io.axion.agent": "axt-conflict",
                       "io.axion.stack": "axtc", "io.axion.spec-hash": "stale",
                       "com.docker.stack.namespace": "axtc"},
            "TaskTemplate": {"ContainerSpec": {"Image": "axion-test/busybox:1"}},
            "Mode": {"Replicated": {"Replicas": 1}},
        },
        "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 1},
    }


class Engine(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        global live_version
        path = re.sub(r"^/v1\.\d+", "", self.path)
        requests.append(("GET", path))
        if path == "/version":
            self.reply(200, {"ApiVersion": "1.41", "Version": "20.10.24"})
        elif path == "/info":
            self.reply(200, {"Swarm": {"LocalNodeState": "active", "ControlAvailable": True,
                                       "NodeID": "node1"}})
        elif path.startswith("/services?"):
            self.reply(200, [] if fail_creates else [service(live_version)])
        elif path == f"/services/{SERVICE_ID}":
            self.reply(200, service(live_version))
        elif path.split("?")[0] in ("/networks", "/configs", "/secrets", "/tasks"):
            self.reply(200, [])
        else:
            self.reply(404, {"message": f"no such thing: {path}"})

    def do_POST(self):
        global live_version
        path = re.sub(r"^/v1\.\d+", "", self.path)
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        requests.append(("POST", path))
        m = re.match(rf"/services/{SERVICE_ID}/update\?version=(\d+)", path)
        if path == "/networks/create":
            self.reply(201, {"Id": "net0000000000000000000001"})
        elif path == "/services/create" and fail_creates:
            self.reply(500, {"message": "boom: the engine refuses"})
        elif not m:
            self.reply(404, {"message": f"unexpected {path}"})
        elif int(m.group(1)) != 9:
            live_version = 9  # someone else updated the service meanwhile
            self.reply(500, {"message": "rpc error: code = Unknown desc = update out of sequence"})
        else:
            live_version = 10
            self.reply(200, {"Warnings": None})


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = super().get_request()
        return conn, ("local", 0)


def setup(d, sock, stack):
    compose = os.path.join(d, f"{stack}.yml")
    with open(compose, "w") as f:
        f.write('version: "3.8"\nservices:\n  web:\n    image: axion-test/busybox:1\n')
    config = os.path.join(d, "agent.toml")
    open(config, "w").close()
    env = dict(os.environ, AXION_AGENT__AGENT__STATE_DIR=os.path.join(d, "state-" + stack),
               AXION_AGENT__AGENT__ID="axt-conflict", AXION_AGENT__DOCKER__SOCKET=sock,
               AXION_AGENT__LOCAL__SOCKET=os.path.join(d, stack + ".sock"))

    def agent(*args):
        return subprocess.run([AGENT, "--config", config, *args], env=env, capture_output=True,
                              text=True, timeout=60)
    return compose, config, env, agent


def conflict_retry(d, sock, checks):
    compose, _, _, agent = setup(d, sock, "axtc")
    p = agent("apply", "-f", compose, "-n", "axtc")
    checks.append(("apply", p.returncode == 0, p.stderr))
    p = agent("reconcile")
    checks.append(("reconcile exits 0 (in sync after the retry)", p.returncode == 0,
                   p.stdout + p.stderr))
    updates = [r for r in requests if r[0] == "POST" and "/services/" in r[1]]
    want = [("POST", f"/services/{SERVICE_ID}/update?version=7"),
            ("POST", f"/services/{SERVICE_ID}/update?version=9")]
    checks.append(("stale update, then the update with the re-read version", updates == want,
                   updates))
    if updates == want:
        i_first = requests.index(want[0])
        i_second = requests.index(want[1])
        reread = ("GET", f"/services/{SERVICE_ID}") in requests[i_first:i_second]
        checks.append(("the service was read again between the two", reread, requests))


def backoff(d, sock, checks):
    global fail_creates
    fail_creates = True
    compose, config, env, agent = setup(d, sock, "axtb")
    p = agent("apply", "-f", compose, "-n", "axtb")
    checks.append(("apply", p.returncode == 0, p.stderr))
    log = open(os.path.join(d, "daemon.log"), "w")
    daemon = subprocess.Popen([AGENT, "--config", config, "run"], env=env, stdout=log,
                              stderr=log)
    delays = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(delays) < 4:
        p = agent("events", "--output", "json")
        if p.returncode == 0:
            delays = [float(m.group(1)) for e in json.loads(p.stdout)
                      if (m := re.search(r"failed to create service axtb_web: .*boom.*"
                                         r"retry in ([0-9.]+)s", e["message"]))]
        time.sleep(0.2)
    daemon.terminate()
    daemon.wait(30)
    windows = [(0.8, 1.2), (1.6, 2.4), (3.2, 4.8), (6.4, 9.6)]
    ok = len(delays) >= 4 and all(lo - 0.05 <= x <= hi + 0.05
                                  for x, (lo, hi) in zip(delays, windows))
    checks.append(("retries back off 1 s, 2 s, 4 s, 8 s (±20 %)", ok, delays))
    creates = [r for r in requests if r == ("POST", "/services/create")]
    checks.append(("one create per retry, no storm", len(creates) <= len(delays) + 1,
                   len(creates)))
    p = agent("status", "axtb", "--output", "json")
    st = json.loads(p.stdout)["stacks"][0] if p.returncode == 0 else {}
    checks.append(("the stack is failed with the Engine's message",
                   st.get("state") == "failed" and "boom" in st.get("reason", ""), st))


def main():
    d = tempfile.mkdtemp(prefix="axt-faults-")
    sock = os.path.join(d, "engine.sock")
    srv = Server(sock, Engine)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    checks = []
    conflict_retry(d, sock, checks)
    backoff(d, sock, checks)
    srv.shutdown()

    failed = 0
    for name, ok, detail in checks:
        print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"))
        failed += not ok
    print(f"{len(checks) - failed} passed, {failed} failed")
    if not failed:
        shutil.rmtree(d, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
