#!/usr/bin/env python3
"""The gRPC channel's heartbeats and certificate renewal (issue 10, criteria 2 and 5), timed
from the arrival times the Control Plane simulator records (a protocol requirement, not a
performance measurement):

  - heartbeats every 5 s ± 0.5 s over 30 s with nothing else going on;
  - the same over 30 s while a Logs stream (follow) carries several MB of a noisy service's
    output: heartbeats never wait behind log chunks;
  - the agent's certificate lives 60 s: it is renewed before it expires (and again, 2/3 into
    the new one's life), with no heartbeat gap longer than one interval (± 0.5 s) over the
    whole run, and once the first certificate has expired a new connection presents the
    renewed one.

One simulator and one agent; every wait has a deadline."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpc_harness import (IMAGE, Failed, GrpcAgent, cleanup, deploy, expect_result, gaps,  # noqa: E402
                          run, start_sim, tasks, wait_for)

PREFIX = "axtgh"
AID = "axtgh-agent"
INTERVAL = 5.0
TOLERANCE = 0.5
WINDOW = 30.0
SIM = None
A = None
T0 = None  # arrival of the first heartbeat
FIRST_NOT_AFTER = None

# ~200 KB/s of 1000-byte lines: 20 lines every 0.1 s.
NOISY = f"""
services:
  noisy:
    image: {IMAGE}
    stop_grace_period: 1s
    command: ["sh", "-c", "l=$$(printf '%0999d' 0); while true; do i=0; while [ $$i -lt 20 ]; do echo $$l; i=$$((i+1)); done; sleep 0.1; done"]
"""


def heartbeats_between(t_from, t_to):
    return [e for e in SIM.heartbeats(AID) if t_from <= e["t"] <= t_to]


def check_gaps(what, hbs):
    g = gaps(hbs)
    bad = [x for x in g if abs(x - INTERVAL) > TOLERANCE]
    if len(g) < int(WINDOW / INTERVAL) - 1 or bad:
        raise Failed(f"{what}: {len(hbs)} heartbeats, gaps {g} (outside {INTERVAL}±{TOLERANCE}: "
                     f"{bad})")
    print(f"     {what}: {len(g)} gaps, {min(g):.3f}..{max(g):.3f} s", flush=True)


def test_1_heartbeats_every_5s_idle():
    global T0
    first = SIM.wait("heartbeat", agent_id=AID, timeout=30)[0]
    T0 = first["t"]
    msg = first["msg"]
    for k in ("agent_id", "version", "seq", "uptime_ms", "swarm", "reconcile"):
        if k not in msg:
            raise Failed(f"heartbeat lacks {k}: {msg}")
    if msg["swarm"]["node_state"] not in ("active", "inactive", "") or msg.get("kafka"):
        raise Failed(f"heartbeat swarm/kafka: {msg['swarm']} {msg.get('kafka')}")
    need = int(WINDOW / INTERVAL) + 1
    hbs = SIM.wait("heartbeat", agent_id=AID, count=need, timeout=WINDOW + 15)
    check_gaps("idle", hbs[:need])


def test_2_heartbeats_while_megabytes_of_logs_stream():
    cid = deploy(SIM, AID, f"{PREFIX}1", NOISY)
    expect_result(SIM, cid, "OUTCOME_DONE", timeout=120)
    wait_for("the noisy task runs", lambda: tasks(f"{PREFIX}1_noisy"), 60, 0.5)
    logs = SIM.send(AID, {"logs": {"stack": f"{PREFIX}1", "service": "noisy", "follow": True,
                                   "limit_bytes": 32 << 20}})
    SIM.wait("log_chunk", command_id=logs, timeout=30)
    t_start = time.time()
    need = int(WINDOW / INTERVAL) + 1
    seq = SIM.last_seq()
    hbs = SIM.wait("heartbeat", agent_id=AID, count=need, after=seq, timeout=WINDOW + 15)
    t_end = time.time()
    chunks = SIM.log_chunks(logs)
    during = sum(c["bytes"] for c in chunks if t_start <= c["t"] <= t_end)
    SIM.cancel_logs(AID, logs)
    expect_result(SIM, logs, "OUTCOME_CANCELLED", timeout=30)
    if during < 3 << 20:
        raise Failed(f"only {during} bytes of logs came while the heartbeats were timed")
    print(f"     {during / (1 << 20):.1f} MiB of logs in {t_end - t_start:.1f} s, "
          f"{len(chunks)} chunks", flush=True)
    # The heartbeat before the window too: the first gap in it counts.
    before = [e for e in SIM.heartbeats(AID) if e["seq"] <= seq][-1:]
    check_gaps("while logs stream", before + hbs[:need])


def test_3_certificate_renewed_without_a_gap():
    # The first certificate (60 s) must be renewed before it expires.
    ren = SIM.wait("renew", agent_id=AID, timeout=max(5, FIRST_NOT_AFTER / 1000 - time.time()))[0]
    if ren["t"] * 1000 >= FIRST_NOT_AFTER:
        raise Failed(f"renewed at {ren['t']}, after the certificate expired ({FIRST_NOT_AFTER})")
    # Past the first certificate's end, with the stream still on, and renewed once more
    # while the stream still runs on the first certificate's connection.
    wait_for("the first certificate expired",
             lambda: time.time() * 1000 > FIRST_NOT_AFTER + 2000, 120, 0.5)
    SIM.wait("renew", agent_id=AID, count=2, timeout=60)
    hbs = heartbeats_between(T0, time.time())
    g = gaps(hbs)
    bad = [x for x in g if x > INTERVAL + TOLERANCE]
    if bad:
        raise Failed(f"heartbeat gaps longer than one interval: {bad} (all: {g})")
    print(f"     {len(g)} gaps over {hbs[-1]['t'] - hbs[0]['t']:.0f} s, at most {max(g):.3f} s",
          flush=True)
    if SIM.events("stream_closed", agent_id=AID):
        raise Failed("the stream was dropped during the renewal")
    # A new connection now must present the renewed certificate (the first one expired).
    seq = SIM.last_seq()
    SIM.restart()
    A.wait_connected(after=seq, timeout=30)
    ch = A.channel()
    if ch.get("certificate", {}).get("not_after", 0) <= FIRST_NOT_AFTER:
        raise Failed(f"status still shows the first certificate: {ch}")
    if SIM.violations():
        raise Failed(f"protocol violations: {SIM.violations()}")


def main():
    global SIM, A, FIRST_NOT_AFTER
    cleanup(PREFIX)
    SIM = start_sim("grpc-heartbeat")
    tok = SIM.issue_token(agent_id=AID, cert_lifetime_s=60)["token"]
    A = GrpcAgent("grpc-heartbeat", SIM, agent_id=AID, token=tok)
    try:
        A.start()
        A.wait_connected(timeout=60)
        FIRST_NOT_AFTER = SIM.events("enroll", agent_id=AID)[0]["not_after_at_ms"]
        return run([test_1_heartbeats_every_5s_idle,
                    test_2_heartbeats_while_megabytes_of_logs_stream,
                    test_3_certificate_renewed_without_a_gap])
    finally:
        A.close()
        SIM.kill()
        cleanup(PREFIX)
        rep = A.sanitizer_report()
        if rep:
            print(f"FAIL sanitizer:\n{rep}")
            sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
