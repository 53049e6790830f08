#!/usr/bin/env python3
"""Names, not only addresses, from a fully static binary (issue 14, DNS).

A static glibc resolves host names only with its built-in "files" and "dns" services, and the
static axion-agent fixes its lookups to those (agent/static_link.c). This test shows that
what the agent's channels use works in a binary linked exactly like it (tests/static/
static_peers.c, same archives, same static_link.c), in a mount namespace of the test whose
/etc/hosts names the peers and whose /etc/resolv.conf points at 127.0.0.1 (so that no DNS query
leaves the machine):

- getaddrinfo(3) (librdkafka's resolver): localhost and a name of /etc/hosts;
- gRPC with TLS to the Control Plane simulator's enrollment port, by "localhost" (checked
  against the server certificate) and by a name of /etc/hosts, with gRPC's default resolver
  (c-ares) and with GRPC_DNS_RESOLVER=native (getaddrinfo);
- librdkafka to the test broker: TLS with server name verification by "localhost", plaintext by
  a name of /etc/hosts;
- and a name that is nowhere fails cleanly in each.

Needs AXION_STATIC_DIR (the -DAXION_STATIC=ON build), $AXION_ENV_DIR/kafka.env (Kafka up),
and the tests' Python (cpsim). Ends with "N passed, M failed"."""

import os
import subprocess
import sys
import tempfile

SOURCE = os.environ["AXION_SOURCE_DIR"]
STATIC_DIR = os.environ["AXION_STATIC_DIR"]
sys.path.insert(0, os.path.join(SOURCE, "tests"))
from cpsim import Simulator  # noqa: E402

PEERS = os.path.join(STATIC_DIR, "tests", "static_peers")
NAME_CP, NAME_KAFKA, NAME_NONE = "axion-cp.test", "axion-kafka.test", "axion-nowhere.test"

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}: {detail}", flush=True)


def kafka_env():
    path = os.path.join(os.environ.get("AXION_ENV_DIR", "/tmp/axion-env"), "kafka.env")
    env = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


def main():
    out = subprocess.run(["ldd", PEERS], capture_output=True, text=True)
    check("static_peers is a static executable", "not a dynamic executable" in out.stdout + out.stderr,
          out.stdout + out.stderr)
    kenv = kafka_env()
    kafka_port = kenv["KAFKA_BOOTSTRAP"].rsplit(":", 1)[1]
    tls_port = kenv["KAFKA_BOOTSTRAP_TLS"].rsplit(":", 1)[1]
    with tempfile.TemporaryDirectory(prefix="axt-dns-") as tmp:
        hosts = os.path.join(tmp, "hosts")
        with open(hosts, "w") as f:
            f.write(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
                    f"127.0.0.1\t{NAME_CP} {NAME_KAFKA}\n")
        resolv = os.path.join(tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

        def peers(*args, env=None):
            # A mount namespace of its own: /etc/hosts and /etc/resolv.conf of the test.
            script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && '
                      'shift 2 && exec "$@"')
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                   hosts, resolv, PEERS, *args]
            e = dict(os.environ, GRPC_VERBOSITY="NONE")
            e.update(env or {})
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=e)
            return p.returncode, (p.stdout + p.stderr).strip()

        rc, out = peers("resolve", "localhost")
        check("getaddrinfo: localhost", rc == 0 and "127.0.0.1" in out, out)
        rc, out = peers("resolve", NAME_CP)
        check(f"getaddrinfo: {NAME_CP} from /etc/hosts", rc == 0 and "127.0.0.1" in out, out)
        rc, out = peers("resolve", NAME_NONE)
        check(f"getaddrinfo: {NAME_NONE} fails cleanly", rc == 1 and "resolve" in out, out)

        sim = Simulator(os.path.join(tmp, "cpsim")).start()
        try:
            port = sim.ports["enroll"]
            for resolver in ("ares", "native"):
                env = {"GRPC_DNS_RESOLVER": resolver}
                rc, out = peers("grpc", f"localhost:{port}", sim.ca_file, env=env)
                check(f"grpc ({resolver}): localhost:{port}, TLS name checked", rc == 0, out)
                rc, out = peers("grpc", f"{NAME_CP}:{port}", sim.ca_file, "localhost", env=env)
                check(f"grpc ({resolver}): {NAME_CP}:{port} from /etc/hosts", rc == 0, out)
            rc, out = peers("grpc", f"{NAME_NONE}:{port}", sim.ca_file, "localhost")
            check(f"grpc: {NAME_NONE} is never ready", rc == 1 and "not ready" in out, out)
        finally:
            sim.kill()

        rc, out = peers("kafka", f"localhost:{tls_port}", kenv["KAFKA_TLS_CA"],
                        kenv["KAFKA_TLS_CLIENT_CERT"], kenv["KAFKA_TLS_CLIENT_KEY"])
        check(f"kafka: localhost:{tls_port}, TLS name checked", rc == 0 and "metadata" in out, out)
        rc, out = peers("kafka", f"{NAME_KAFKA}:{kafka_port}")
        check(f"kafka: {NAME_KAFKA}:{kafka_port} from /etc/hosts", rc == 0 and "metadata" in out, out)
        rc, out = peers("kafka", f"{NAME_NONE}:{kafka_port}")
        check(f"kafka: {NAME_NONE} fails cleanly", rc == 1, out)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
