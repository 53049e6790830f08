#!/usr/bin/env python3
"""The Control Plane simulator (tests/cpsim/) by itself, with a Python gRPC client acting as an
agent: enrollment with one-time tokens (and each refusal with its status and reason), a CSR
signed with the lifetime asked for, the mTLS stream (hello, heartbeats, a command and its
result, log chunks, the bad messages the simulator can send), certificates of another CA
refused at the handshake (UNAVAILABLE), renewal, and a stream cut by kill / SIGSTOP and taken
up again after the restart with the same CA. Needs no Docker.

Every wait has a deadline; nothing sleeps. Prints one line per check and ends with
"N passed, M failed"; exits 1 when a check failed."""

import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

SOURCE = os.environ.get("AXION_SOURCE_DIR") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests"))
# gRPC's own log lines (a refused handshake is one) would only clutter the checks' output.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from google.protobuf import unknown_fields  # noqa: E402
from google.protobuf.message import DecodeError  # noqa: E402

from cpsim import Simulator, Timeout, pki, protos  # noqa: E402

pb = protos.load()
DEADLINE = 20.0  # seconds for anything that should happen "soon"
METHOD = "/axion.agent.v1.Control/"
MiB = 1 << 20

passed = 0
failed = 0


class Failed(Exception):
    pass


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}{': ' + str(detail) if detail else ''}", flush=True)
    return ok


def require(name, ok, detail=""):
    if not check(name, ok, detail):
        raise Failed(name)


def reason_of(err):
    return dict(err.trailing_metadata() or ()).get("axion-reason", "")


# ---- a Python agent ---------------------------------------------------------------------------

def channel(target, ca_pem, key_pem=None, cert_pem=None, keepalive_ms=None):
    opts = [("grpc.use_local_subchannel_pool", 1),  # a new handshake per channel
            ("grpc.max_receive_message_length", 16 * MiB)]  # the agent's limit
    if keepalive_ms:
        opts += [("grpc.keepalive_time_ms", keepalive_ms),
                 ("grpc.keepalive_timeout_ms", keepalive_ms),
                 ("grpc.keepalive_permit_without_calls", 1),
                 ("grpc.http2.max_pings_without_data", 0),
                 # grpcio 1.85 times a keepalive ping out by this one, not keepalive_timeout
                 # (Debian's libgrpc 1.51 of the agent uses keepalive_timeout_ms).
                 ("grpc.http2.ping_timeout_ms", keepalive_ms)]
    creds = grpc.ssl_channel_credentials(ca_pem, key_pem, cert_pem)
    return grpc.secure_channel(target, creds, options=opts)


def unary(target, ca_pem, method, req, key_pem=None, cert_pem=None):
    """(response bytes, None) or (None, RpcError)."""
    ch = channel(target, ca_pem, key_pem, cert_pem)
    try:
        return ch.unary_unary(METHOD + method)(req.SerializeToString(), timeout=DEADLINE), None
    except grpc.RpcError as e:
        return None, e
    finally:
        ch.close()


class Ended(Exception):
    def __init__(self, code, details, reason):
        super().__init__(f"{code}: {details} ({reason})")
        self.code, self.details, self.reason = code, details, reason


class AgentStream:
    """One Connect stream: send() AgentMessages (or raw bytes), recv() ControlMessage bytes."""

    def __init__(self, target, ca_pem, key_pem, cert_pem, keepalive_ms=None):
        self.ch = channel(target, ca_pem, key_pem, cert_pem, keepalive_ms)
        self.out = queue.Queue()
        self.inbox = queue.Queue()
        self.call = self.ch.stream_stream(METHOD + "Connect")(self._requests())
        threading.Thread(target=self._read, daemon=True).start()

    def _requests(self):
        while True:
            item = self.out.get()
            if item is None:
                return
            yield item

    def _read(self):
        try:
            for resp in self.call:
                self.inbox.put(resp)
            self.inbox.put(Ended(grpc.StatusCode.OK, "", ""))
        except grpc.RpcError as e:
            self.inbox.put(Ended(e.code(), e.details(), reason_of(e)))

    def send(self, msg):
        self.out.put(msg if isinstance(msg, bytes) else msg.SerializeToString())

    def recv(self, timeout=DEADLINE):
        """The next ControlMessage's bytes; raises Ended when the stream ended."""
        try:
            item = self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise Failed(f"nothing from the simulator within {timeout} s") from None
        if isinstance(item, Ended):
            self.inbox.put(item)
            raise item
        return item

    def recv_control(self, timeout=DEADLINE):
        return pb.ControlMessage.FromString(self.recv(timeout))

    def ended(self, timeout=DEADLINE):
        """Waits for the end of the stream; returns Ended, or None past the deadline."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.recv(end - time.monotonic())
            except Ended as e:
                return e
            except Failed:
                return None
        return None

    def headers(self):
        return dict(self.call.initial_metadata() or ())

    def close(self):
        self.out.put(None)
        self.call.cancel()
        self.ch.close()


class Identity:
    def __init__(self, key, cert_pem):
        self.key = key
        self.key_pem = pki.pem_key(key)
        self.cert_pem = cert_pem if isinstance(cert_pem, bytes) else cert_pem.encode()


def hello(agent_id, **kw):
    h = pb.Hello(agent_id=agent_id, version="test", hostname="test-host",
                 started_at_ms=int(time.time() * 1000), heartbeat_interval_ms=5000, **kw)
    return pb.AgentMessage(hello=h)


def heartbeat(agent_id, seq):
    hb = pb.Heartbeat(agent_id=agent_id, version="test", seq=seq, sent_at_ms=int(time.time() * 1000),
                      uptime_ms=seq * 5000,
                      swarm=pb.SwarmSummary(role=pb.SWARM_ROLE_MANAGER, node_state="active"))
    hb.stacks.add(stack="web", generation=3, state=pb.STACK_STATE_CONVERGED, services=1,
                  replicas_desired=2, replicas_running=2)
    return pb.AgentMessage(heartbeat=hb)


def result(command_id, outcome, **kw):
    return pb.AgentMessage(result=pb.CommandResult(command_id=command_id, outcome=outcome,
                                                   finished_at_ms=int(time.time() * 1000), **kw))


def open_stream(sim, ident, agent_id, keepalive_ms=None):
    """A stream that said hello, with the hello recorded."""
    after = sim.last_seq()
    s = AgentStream(sim.control_target, sim.ca_pem(), ident.key_pem, ident.cert_pem,
                    keepalive_ms)
    s.send(hello(agent_id))
    sim.wait("hello", agent_id=agent_id, after=after, timeout=DEADLINE)
    return s


# ---- the parts ---------------------------------------------------------------------------------

def enroll(sim, token, key=None, hostname="node-1"):
    key = key or pki.new_key()
    req = pb.EnrollRequest(token=token, csr_pem=pki.make_csr(key).decode(), hostname=hostname,
                           facts=pb.HostFacts(os="Debian GNU/Linux 12", arch="x86_64", cpus=2))
    raw, err = unary(sim.enroll_target, sim.ca_pem(), "Enroll", req)
    return key, (pb.EnrollResponse.FromString(raw) if raw is not None else None), err


def part_enrollment(sim):
    tok = sim.issue_token(agent_id="agent-t1", cert_lifetime_s=60)["token"]
    key, resp, err = enroll(sim, tok)
    require("enroll: a fresh token gives an identity", resp is not None, err)
    cert = x509.load_pem_x509_certificate(resp.cert_chain_pem.encode())
    ca = x509.load_pem_x509_certificate(sim.ca_pem())
    check("enroll: agent id and certificate CN agree",
          resp.agent_id == "agent-t1" and
          cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "agent-t1",
          resp.agent_id)
    try:
        cert.verify_directly_issued_by(ca)
        signed = True
    except Exception as e:  # noqa: BLE001
        signed = e
    check("enroll: the certificate is signed by the simulator's CA", signed is True, signed)
    check("enroll: the CA bundle is the simulator's CA",
          resp.ca_bundle_pem.encode() == sim.ca_pem())
    life = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    check("enroll: the lifetime asked for (60 s)", life == 60, life)
    check("enroll: not_after_at_ms is the certificate's",
          resp.not_after_at_ms == int(cert.not_valid_after_utc.timestamp() * 1000))
    check("enroll: the certificate is for the CSR's key",
          cert.public_key().public_numbers() == key.public_key().public_numbers())

    _, _, err = enroll(sim, tok)
    check("enroll: the same token again is refused (PERMISSION_DENIED, token-used)",
          err is not None and err.code() == grpc.StatusCode.PERMISSION_DENIED
          and reason_of(err) == "token-used" and "already used" in err.details(),
          err and (err.code(), err.details()))
    _, _, err = enroll(sim, "axt_never-issued")
    check("enroll: an unknown token is refused (UNAUTHENTICATED, token-unknown)",
          err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED
          and reason_of(err) == "token-unknown", err and (err.code(), err.details()))
    expired = sim.issue_token(ttl_s=0)["token"]
    _, _, err = enroll(sim, expired)
    check("enroll: an expired token is refused (FAILED_PRECONDITION, token-expired)",
          err is not None and err.code() == grpc.StatusCode.FAILED_PRECONDITION
          and reason_of(err) == "token-expired" and "expired at" in err.details(),
          err and (err.code(), err.details()))

    tok2 = sim.issue_token(agent_id="agent-t2")["token"]
    req = pb.EnrollRequest(token=tok2, csr_pem="not a csr", hostname="node-2")
    _, err = unary(sim.enroll_target, sim.ca_pem(), "Enroll", req)
    check("enroll: a bad CSR is refused (INVALID_ARGUMENT, bad-csr)",
          err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT
          and reason_of(err) == "bad-csr", err and (err.code(), err.details()))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    req = pb.EnrollRequest(token=tok2, csr_pem=pki.make_csr(rsa_key).decode(), hostname="n")
    _, err = unary(sim.enroll_target, sim.ca_pem(), "Enroll", req)
    check("enroll: a CSR for an RSA key is refused (not EC P-256)",
          err is not None and reason_of(err) == "bad-csr" and "EC P-256" in err.details(),
          err and err.details())
    _, resp2, err = enroll(sim, tok2, hostname="node-2")
    check("enroll: a refused CSR does not use the token up", resp2 is not None, err)
    req = pb.EnrollRequest(token="x" * 513, csr_pem="", hostname="n")
    _, err = unary(sim.enroll_target, sim.ca_pem(), "Enroll", req)
    check("enroll: a token over 512 bytes is refused (bad-request)",
          err is not None and reason_of(err) == "bad-request", err and err.details())

    refused = {e["reason"] for e in sim.events("enroll_refused")}
    check("enroll: each refusal is recorded with its reason",
          {"token-used", "token-unknown", "token-expired", "bad-csr", "bad-request"} <= refused,
          refused)
    check("enroll: the enrollments are recorded with host and facts",
          [(e["agent_id"], e["hostname"], e["facts"]["cpus"]) for e in sim.events("enroll")]
          == [("agent-t1", "node-1", 2), ("agent-t2", "node-2", 2)])

    _, err = unary(sim.enroll_target, sim.ca_pem(), "Renew", pb.RenewRequest(csr_pem="x"))
    check("enroll port: Renew there is refused (UNAUTHENTICATED, wrong-endpoint)",
          err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED
          and reason_of(err) == "wrong-endpoint", err and err.details())
    return Identity(key, resp.cert_chain_pem)


def part_stream(sim, ident):
    a = "agent-t1"
    s = AgentStream(sim.control_target, sim.ca_pem(), ident.key_pem, ident.cert_pem,
                    keepalive_ms=1000)
    check("stream: headers arrive before the first message", "axion-stream-id" in s.headers())
    after = sim.last_seq()
    s.send(hello(a, finished_command_ids=["old-1"]))
    for i in (1, 2, 3):
        s.send(heartbeat(a, i))
    hellos = sim.wait("hello", agent_id=a, after=after)
    check("stream: the hello is recorded with what the agent said",
          hellos[0]["msg"]["finished_command_ids"] == ["old-1"] and
          hellos[0]["msg"]["heartbeat_interval_ms"] == 5000, hellos[0]["msg"])
    hbs = sim.wait("heartbeat", agent_id=a, count=3, after=after)
    check("stream: heartbeats are recorded in order, with arrival times",
          [e["hb_seq"] for e in hbs] == [1, 2, 3] and
          all(hbs[i]["t"] <= hbs[i + 1]["t"] for i in range(2)) and
          "gap_s" not in hbs[0] and abs(hbs[1]["gap_s"] - (hbs[1]["t"] - hbs[0]["t"])) < 2e-6 and
          hbs[0]["msg"]["stacks"][0]["state"] == "STACK_STATE_CONVERGED", hbs)

    cid = sim.send(a, {"scale": {"stack": "web", "service": "nginx", "replicas": 3}})
    m = s.recv_control()
    check("stream: a queued command is received", m.command.command_id == cid and
          m.command.scale.replicas == 3 and m.command.scale.service == "nginx" and
          m.command.issued_at_ms > 0, m)
    s.send(result(cid, pb.OUTCOME_ACCEPTED, kind=pb.COMMAND_KIND_SCALE, stack="web"))
    s.send(result(cid, pb.OUTCOME_DONE, kind=pb.COMMAND_KIND_SCALE, stack="web"))
    r = sim.wait_result(cid)
    check("stream: the final result is recorded", r["outcome"] == "OUTCOME_DONE" and
          r["msg"]["kind"] == "COMMAND_KIND_SCALE", r)
    check("stream: the ACCEPTED before it is recorded as not final",
          [(e["outcome"], e["final"]) for e in sim.results(cid)] ==
          [("OUTCOME_ACCEPTED", False), ("OUTCOME_DONE", True)])
    sent = sim.events("sent", command_id=cid)
    check("stream: the send is recorded", len(sent) == 1 and sent[0]["kind"] == "scale", sent)

    # A command given in proto JSON with its own id, and the bad messages.
    cid = sim.send(a, {"command_id": "deploy-1", "deploy": {
        "stack": "web", "generation": "4", "compose": "services: {}\n",
        "files": [{"name": "a.conf", "content": "AP8A"}],
        "variables": [{"name": "TAG", "value": "1"}]}})
    m = s.recv_control()
    check("stream: a Deploy with files and variables arrives whole",
          cid == "deploy-1" and m.command.deploy.generation == 4 and
          m.command.deploy.files[0].content == b"\x00\xff\x00" and
          m.command.deploy.variables[0].value == "1", m)
    sim.send(a, special="undecodable")
    raw = s.recv()
    try:
        pb.ControlMessage.FromString(raw)
        undecodable = False
    except DecodeError:
        undecodable = True
    check("stream: special=undecodable sends bytes that are no ControlMessage", undecodable, raw)
    s.send(result("", pb.OUTCOME_REJECTED, error_code=pb.ERROR_CODE_MALFORMED,
                  error="undecodable ControlMessage"))
    cid = sim.send(a, special="unknown_command")
    m = s.recv_control()
    unknown = [f.field_number for f in unknown_fields.UnknownFieldSet(m.command)]
    check("stream: special=unknown_command sends a Command with no body the agent knows",
          m.command.command_id == cid and m.command.WhichOneof("body") is None and
          unknown == [99], (m, unknown))
    s.send(result(cid, pb.OUTCOME_REJECTED, error_code=pb.ERROR_CODE_UNSUPPORTED, kind=99))
    sim.send(a, special="unknown_control")
    m = s.recv_control()
    check("stream: special=unknown_control sends a ControlMessage with an unknown body",
          m.WhichOneof("body") is None and
          [f.field_number for f in unknown_fields.UnknownFieldSet(m)] == [40])
    for what, size in (("compose", lambda d: len(d.compose.encode())),
                       ("files", lambda d: sum(len(f.content) for f in d.files)),
                       ("variables", lambda d: sum(len(v.value) for v in d.variables))):
        cid = sim.send(a, special="oversize_deploy", what=what)
        d = s.recv_control(timeout=DEADLINE).command.deploy
        limit = {"compose": MiB, "files": 8 * MiB, "variables": MiB}[what]
        check(f"stream: special=oversize_deploy what={what} is just over its limit",
              size(d) == limit + 1 if what != "variables" else size(d) > limit,
              (what, size(d)))
        s.send(result(cid, pb.OUTCOME_REJECTED, error_code=pb.ERROR_CODE_LIMIT))

    # Logs: chunks, the last one, the data joined; CancelLogs.
    cid = sim.send(a, {"logs": {"stack": "web", "service": "nginx", "limit_bytes": "10"}})
    check("stream: a Logs command arrives", s.recv_control().command.logs.limit_bytes == 10)
    parts = [b"line 1\n", b"line \x00 2\n", b"x"]
    for i, d in enumerate(parts):
        s.send(pb.AgentMessage(log_chunk=pb.LogChunk(
            command_id=cid, seq=i, data=d, source=pb.LOG_SOURCE_STDOUT, last=i == 2,
            end=pb.LOG_END_LIMIT if i == 2 else pb.LOG_END_UNSPECIFIED)))
    s.send(result(cid, pb.OUTCOME_DONE, kind=pb.COMMAND_KIND_LOGS))
    sim.wait_result(cid)
    check("stream: log chunks are recorded and joined in order",
          sim.log_data(cid) == b"".join(parts), sim.log_data(cid))
    sim.cancel_logs(a, cid)
    m = s.recv_control()
    check("stream: CancelLogs is sent", m.cancel_logs.command_id == cid, m)

    check("stream: no protocol violation so far", sim.violations() == [], sim.violations())
    s.send(result("ghost-1", pb.OUTCOME_DONE))
    s.send(pb.AgentMessage(log_chunk=pb.LogChunk(command_id=cid, seq=3, data=b"late")))
    s.send(hello(a, finished_command_ids=[f"c{i}" for i in range(101)]))
    v = sim.wait("violation", count=3)
    check("stream: a result for a command never sent, a chunk after the last, a Hello with 101 "
          "ids are violations", "never sent" in v[0]["error"] and
          "after its last" in v[1]["error"] and "more than 100" in v[2]["error"], v)
    check("stream: keepalive pings every second are permitted (no too_many_pings)",
          s.inbox.empty(), list(s.inbox.queue))
    return s


def part_refusals(sim, ident, live):
    a = "agent-t1"
    key = pki.new_key()
    foreign = sim.sign(pki.make_csr(key), agent_id=a, ca="other")["cert_pem"]
    s = AgentStream(sim.control_target, sim.ca_pem(), pki.pem_key(key), foreign.encode())
    s.send(hello(a))
    e = s.ended()
    check("tls: a client certificate of another CA is refused at the handshake (UNAVAILABLE)",
          e is not None and e.code == grpc.StatusCode.UNAVAILABLE, e)

    sim.configure(client_ca="other")
    s = AgentStream(sim.control_target, sim.ca_pem(), ident.key_pem, ident.cert_pem)
    s.send(hello(a))
    e = s.ended()
    check("tls: client_ca=other refuses the agent's own certificate on a new connection",
          e is not None and e.code == grpc.StatusCode.UNAVAILABLE, e)
    check("tls: the open stream stays up meanwhile", live.inbox.empty())
    sim.configure(client_ca="ours", server_cert="other")
    s = AgentStream(sim.control_target, sim.ca_pem(), ident.key_pem, ident.cert_pem)
    s.send(hello(a))
    e = s.ended()
    check("tls: server_cert=other fails an agent that trusts the simulator's CA (UNAVAILABLE)",
          e is not None and e.code == grpc.StatusCode.UNAVAILABLE, e)
    other_ca = open(sim.other_ca_file, "rb").read()
    raw, err = unary(sim.enroll_target, other_ca, "Enroll",
                     pb.EnrollRequest(token="t", hostname="n"))
    check("tls: ... and it is the other CA's certificate that is presented",
          err is not None and reason_of(err) == "token-unknown", err and err.details())
    sim.configure(server_cert="ours")

    sim.configure(revoke=[a])
    e = live.ended()
    check("identity: revoking ends the agent's open stream (PERMISSION_DENIED, cert-revoked)",
          e is not None and e.code == grpc.StatusCode.PERMISSION_DENIED
          and e.reason == "cert-revoked", e)
    live.close()
    s = AgentStream(sim.control_target, sim.ca_pem(), ident.key_pem, ident.cert_pem)
    s.send(hello(a))
    e = s.ended()
    check("identity: a revoked certificate is refused on Connect",
          e is not None and e.reason == "cert-revoked", e)
    sim.configure(unrevoke=[a])

    for name, first, code, reason in (
            ("a hello naming another agent", hello("agent-else"),
             grpc.StatusCode.PERMISSION_DENIED, "agent-id-mismatch"),
            ("a heartbeat before the hello", heartbeat(a, 1),
             grpc.StatusCode.FAILED_PRECONDITION, "hello-expected"),
            ("an undecodable message", b"\x0a\xff\xff\xff\xff\x07xy",
             grpc.StatusCode.INVALID_ARGUMENT, "bad-message")):
        s = AgentStream(sim.control_target, sim.ca_pem(), ident.key_pem, ident.cert_pem)
        s.send(first)
        e = s.ended()
        check(f"stream: {name} ends it ({code.name}, {reason})",
              e is not None and e.code == code and e.reason == reason, e)

    one = open_stream(sim, ident, a)
    two = open_stream(sim, ident, a)
    e = one.ended()
    check("stream: a newer stream of the same agent replaces the older (ABORTED)",
          e is not None and e.code == grpc.StatusCode.ABORTED and e.reason == "stream-replaced",
          e)
    check("stream: the newer one stays", two.inbox.empty())
    two.close()
    one.close()


def part_renew(sim, ident):
    a = "agent-t1"
    key = pki.new_key()
    raw, err = unary(sim.control_target, sim.ca_pem(), "Renew",
                     pb.RenewRequest(csr_pem=pki.make_csr(key).decode()),
                     ident.key_pem, ident.cert_pem)
    require("renew: over mTLS a new CSR gets a new certificate", raw is not None, err)
    resp = pb.RenewResponse.FromString(raw)
    cert = x509.load_pem_x509_certificate(resp.cert_chain_pem.encode())
    life = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
    check("renew: same agent, the agent's lifetime (60 s), the new key",
          cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == a and
          life == 60 and cert.public_key().public_numbers() == key.public_key().public_numbers(),
          (cert.subject, life))
    check("renew: recorded", len(sim.events("renew", agent_id=a)) == 1)
    renewed = Identity(key, resp.cert_chain_pem)
    s = open_stream(sim, renewed, a)
    check("renew: the renewed certificate opens a stream", True)
    s.close()
    _, err = unary(sim.control_target, sim.ca_pem(), "Enroll", pb.EnrollRequest(token="t"),
                   ident.key_pem, ident.cert_pem)
    check("control port: Enroll there is refused (wrong-endpoint)",
          err is not None and reason_of(err) == "wrong-endpoint", err and err.details())
    return renewed


def part_restart(sim, ident):
    a = "agent-t1"
    ca_before = sim.ca_pem()
    ports = dict(sim.ports)
    boot = sim.status()["boot"]
    s = open_stream(sim, ident, a)
    seq = sim.last_seq()
    sim.kill()
    e = s.ended()
    check("restart: killing the simulator cuts the stream (UNAVAILABLE)",
          e is not None and e.code == grpc.StatusCode.UNAVAILABLE, e)
    s.close()
    sim.start()
    check("restart: same ports, same CA",
          sim.ports == ports and sim.ca_pem() == ca_before, (ports, sim.ports))
    s = open_stream(sim, ident, a)
    h = sim.events("hello", agent_id=a, after=seq)
    check("restart: the agent's certificate is accepted and the hello recorded after it",
          len(h) == 1 and h[0]["boot"] != boot, h)
    check("restart: the journal goes on (sequence numbers grow)", h[0]["seq"] > seq)
    tok_used = [t for t, rec in sim.status()["agents"].items()]
    check("restart: enrolled agents are remembered", "agent-t1" in tok_used, tok_used)
    s.close()

    # A silent peer: SIGSTOP. The client's keepalive (1 s, 1 s timeout) notices.
    s = open_stream(sim, ident, a, keepalive_ms=1000)
    sim.freeze()
    try:
        t0 = time.monotonic()
        e = s.ended(timeout=DEADLINE)
        check("freeze: the keepalive of the agent finds the frozen simulator (UNAVAILABLE)",
              e is not None and e.code == grpc.StatusCode.UNAVAILABLE,
              f"{e} after {time.monotonic() - t0:.1f} s")
    finally:
        sim.thaw()
    s.close()
    s = open_stream(sim, ident, a)
    check("freeze: after SIGCONT a new stream is taken", True)

    cli = os.path.join(SOURCE, "tests", "cpsim", "cpctl.py")
    r = subprocess.run([sys.executable, cli, "--state", sim.state_dir, "heartbeats", a],
                       capture_output=True, text=True, timeout=60)
    check("cli: cpctl.py heartbeats lists them", r.returncode == 0 and "seq=3" in r.stdout,
          r.stdout + r.stderr)
    r = subprocess.run([sys.executable, cli, "--state", sim.state_dir, "token", "--agent-id",
                        "agent-cli"], capture_output=True, text=True, timeout=60)
    check("cli: cpctl.py token issues one", r.returncode == 0 and
          r.stdout.startswith("axt_"), r.stdout + r.stderr)
    r = subprocess.run([sys.executable, cli, "--state", sim.state_dir, "send", a, "scale",
                        "web/nginx=2"], capture_output=True, text=True, timeout=60)
    m = s.recv_control() if r.returncode == 0 else None
    check("cli: cpctl.py send scale reaches the agent",
          m is not None and m.command.command_id == r.stdout.strip() and
          m.command.scale.replicas == 2, r.stdout + r.stderr)

    sim.stop()
    e = s.ended()
    check("stop: SIGTERM ends open streams (UNAVAILABLE) and the simulator exits 0",
          e is not None and e.code == grpc.StatusCode.UNAVAILABLE and
          sim.proc.returncode == 0, (e, sim.proc.returncode))
    s.close()


def main():
    tmp = tempfile.mkdtemp(prefix="axion-cpsim-")
    sim = Simulator(os.path.join(tmp, "cpsim"))
    try:
        sim.start()
        ident = part_enrollment(sim)
        live = part_stream(sim, ident)
        part_refusals(sim, ident, live)
        ident = part_renew(sim, ident)
        part_restart(sim, ident)
    except (Failed, Timeout, Ended) as e:
        check("the run went to its end", False, f"{type(e).__name__}: {e}")
    finally:
        sim.kill()
    print(f"{passed} passed, {failed} failed", flush=True)
    if failed:
        print(f"simulator state and log kept in {tmp}", flush=True)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
