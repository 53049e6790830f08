#!/usr/bin/env python3
"""The gRPC channel's enrollment and identity, against the Control Plane simulator (issue 10,
criterion 1): first start with a token → enrolled, the key file 0600 in the state dir, then an
mTLS stream; the same token again is refused with a clear error; unknown and expired tokens
too; a server certificate of another CA and a client certificate of another CA are refused and
the agent says which; an agent.id other than the enrolled one keeps the channel down; a
restart connects with the stored identity (no token); SIGTERM half-closes the stream. The
token never appears in a log or an error.

One simulator for the file; every wait has a deadline. Prints one line per check and ends with
"N passed, M failed"."""

import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpc_harness import Failed, GrpcAgent, run, start_sim, wait_for  # noqa: E402

from cpsim import pki  # noqa: E402

SIM = None
A = None
TOKEN = None
AGENTS = []


def agent(tag, **kw):
    a = GrpcAgent(tag, SIM, **kw)
    AGENTS.append(a)
    return a


def no_token_in(a, *tokens):
    text = a.log() + str(a.channel())
    for t in tokens:
        if t and t[:8] in text:
            raise Failed(f"the token {t[:4]}... appears in {a.tag}'s log or status")


def test_1_enroll_then_mtls_stream():
    global A, TOKEN
    TOKEN = SIM.issue_token(agent_id="axtge-1")["token"]
    A = agent("grpc-enroll-a", agent_id="axtge-1", token=TOKEN).start()
    hello = A.wait_connected(timeout=60)
    if hello["msg"]["agent_id"] != "axtge-1":
        raise Failed(f"hello names {hello['msg']['agent_id']}")
    enrolled = SIM.events("enroll", agent_id="axtge-1")
    if len(enrolled) != 1:
        raise Failed(f"{len(enrolled)} enroll events")
    facts = enrolled[0]["facts"]
    if not facts.get("kernel") or not facts.get("agent_version") or facts.get("cpus", 0) < 1:
        raise Failed(f"host facts: {facts}")
    # The stream is mTLS: the simulator names the agent from its client certificate.
    opened = SIM.events("stream_open", agent_id="axtge-1")
    if not opened:
        raise Failed("no stream_open for the agent's certificate")
    key = A.identity_key_file()
    if not key.startswith(A.state_dir + "/"):
        raise Failed(f"key file {key!r} is not in the state dir {A.state_dir}")
    mode = stat.S_IMODE(os.stat(key).st_mode)
    if mode != 0o600:
        raise Failed(f"key file mode {oct(mode)}, want 0600")
    with open(key) as f:
        if "PRIVATE KEY" not in f.read():
            raise Failed("the key file holds no private key")
    ch = A.wait_channel("connected")
    if ch.get("agent_id") != "axtge-1" or not ch.get("certificate", {}).get("not_after"):
        raise Failed(f"status: {ch}")
    no_token_in(A, TOKEN)


def test_2_same_token_refused():
    b = agent("grpc-enroll-b", agent_id="axtge-1", token=TOKEN).start()
    ch = b.wait_channel("error", error_has="was used before")
    if "get a new token" not in ch["error"] or "token-used" not in ch["error"]:
        raise Failed(f"error: {ch['error']}")
    if "was used before" not in b.log():
        raise Failed("the log does not say why")
    no_token_in(b, TOKEN)
    b.stop()
    if os.listdir(b.state_dir) and any(n.startswith("agent-key-") for n in os.listdir(b.state_dir)):
        raise Failed("a refused enrollment left a key file behind")


def test_3_unknown_and_expired_tokens():
    expired = SIM.issue_token(agent_id="axtge-3", ttl_s=0)["token"]
    unknown = "axt_this_token_was_never_issued_0123"
    c = agent("grpc-enroll-c", agent_id="axtge-3", token=unknown).start()
    d = agent("grpc-enroll-d", agent_id="axtge-3", token=expired).start()
    c.wait_channel("error", error_has="unknown to the Control Plane")
    d.wait_channel("error", error_has="has expired")
    no_token_in(c, unknown)
    no_token_in(d, expired)
    c.stop()
    d.stop()


def test_4_server_certificate_of_another_ca():
    SIM.configure(server_cert="other")
    SIM.restart()  # cuts the connections: the next handshake shows the other certificate
    try:
        ch = A.wait_channel("retrying", error_has="server certificate is not trusted", timeout=40)
        if "certificate verify failed" not in ch["error"]:
            raise Failed(f"error: {ch['error']}")
        if "server certificate is not trusted" not in A.log():
            raise Failed("the log does not say why")
    finally:
        SIM.configure(server_cert="ours")
    seq = SIM.last_seq()
    SIM.restart()
    A.wait_connected(after=seq, timeout=60)


def test_5_client_certificate_of_another_ca():
    key = pki.new_key()
    signed = SIM.sign(pki.make_csr(key), agent_id="axtge-foreign", ca="other")
    e_dir = A.dir + "-foreign"
    os.makedirs(e_dir, exist_ok=True)
    cert_file, key_file = os.path.join(e_dir, "cert.pem"), os.path.join(e_dir, "key.pem")
    with open(cert_file, "w") as f:
        f.write(signed["cert_pem"])
    with open(key_file, "wb") as f:
        f.write(pki.pem_key(key))
    os.chmod(key_file, 0o600)
    e = agent("grpc-enroll-e", agent_id="axtge-foreign", extra_env={
        "AXION_AGENT__CONTROL_PLANE__CERT_FILE": cert_file,
        "AXION_AGENT__CONTROL_PLANE__KEY_FILE": key_file}).start()
    ch = e.wait_channel("retrying", error_has="refused this agent's client certificate")
    if "TLS handshake" not in ch["error"]:
        raise Failed(f"error: {ch['error']}")
    # Told apart from a network fault, which says so.
    if "cannot reach" in ch["error"]:
        raise Failed(f"error: {ch['error']}")
    if SIM.events("stream_open", agent_id="axtge-foreign"):
        raise Failed("the simulator opened a stream for the foreign certificate")
    e.stop()


def test_6_agent_id_other_than_enrolled():
    tok = SIM.issue_token(agent_id="axtge-6")["token"]
    f = agent("grpc-enroll-f", agent_id="axtge-six", token=tok).start()
    ch = f.wait_channel("error", error_has='agent.id is "axtge-six"')
    if 'enrolled this agent as "axtge-6"' not in ch["error"]:
        raise Failed(f"error: {ch['error']}")
    if SIM.events("stream_open", agent_id="axtge-6"):
        raise Failed("a stream was opened under the wrong id")
    f.stop()


def test_7_restart_uses_the_stored_identity_and_sigterm_half_closes():
    seq = SIM.last_seq()
    rc = A.stop()
    if rc != 0:
        raise Failed(f"exit code {rc} after SIGTERM")
    closed = SIM.wait("stream_closed", agent_id="axtge-1", after=seq, timeout=20)[0]
    if "half-closed" not in closed["reason"]:
        raise Failed(f"the stream ended: {closed['reason']}")
    A.env.pop("AXION_AGENT__AGENT__TOKEN", None)
    seq = SIM.last_seq()
    A.start()
    A.wait_connected(after=seq, timeout=60)
    if SIM.events("enroll", agent_id="axtge-1", after=seq):
        raise Failed("the agent enrolled again")
    if SIM.violations():
        raise Failed(f"protocol violations: {SIM.violations()}")


def main():
    global SIM
    SIM = start_sim("grpc-enroll")
    try:
        return run([test_1_enroll_then_mtls_stream, test_2_same_token_refused,
                    test_3_unknown_and_expired_tokens, test_4_server_certificate_of_another_ca,
                    test_5_client_certificate_of_another_ca, test_6_agent_id_other_than_enrolled,
                    test_7_restart_uses_the_stored_identity_and_sigterm_half_closes])
    finally:
        bad = []
        for a in AGENTS:
            a.close()
            rep = a.sanitizer_report()
            if rep:
                bad.append(f"{a.tag}: {rep}")
        SIM.kill()
        if bad:
            print("FAIL sanitizer:\n" + "\n".join(bad))
            sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
