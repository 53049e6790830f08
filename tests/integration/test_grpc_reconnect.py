#!/usr/bin/env python3
"""The gRPC channel across Control Plane outages (issue 10, criterion 4):

  - the simulator killed and started again → the stream is back within 3 s of the server
    listening; a result the loop reached while it was down is sent after the new Hello;
  - the simulator frozen (SIGSTOP) → the agent notices within its keepalive time and timeout
    (10 s + 5 s here) and reconnects after SIGCONT;
  - the simulator down for 2 minutes → the workloads are untouched (no Engine call changes
    anything, the tasks stay), the heartbeats resume once it is back, and the Hello reports the
    current state (the stack converged, the finished command ids).

One simulator and one agent; every wait has a deadline."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpc_harness import (IMAGE, Failed, GrpcAgent, cleanup, deploy, expect_result, inspect,  # noqa: E402
                          run, start_sim, tasks, wait_for)

PREFIX = "axtgr"
AID = "axtgr-agent"
SIM = None
A = None
DEPLOY_ID = None

COMPOSE = f"""
services:
  app:
    image: {IMAGE}
    command: ["sleep", "1000000"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
"""


def sim_started_at(after):
    return SIM.events("sim_start", after=after)[-1]["t"]


def test_1_killed_and_restarted_back_within_3s():
    global DEPLOY_ID
    DEPLOY_ID = deploy(SIM, AID, f"{PREFIX}1", COMPOSE)
    expect_result(SIM, DEPLOY_ID, "OUTCOME_DONE", timeout=120)
    wait_for("2 tasks run", lambda: len(tasks(f"{PREFIX}1_app")) == 2, 60, 0.5)
    # A command accepted, then the simulator dies before its result: the result waits.
    cid = SIM.send(AID, {"scale": {"stack": f"{PREFIX}1", "service": "app", "replicas": 3}})
    SIM.wait_result(cid, final=False, timeout=30)
    seq = SIM.last_seq()
    SIM.kill()
    wait_for("the result reached while the simulator is down",
             lambda: f"grpc: result {cid} OUTCOME_DONE" in A.log(), 60, 0.2)
    SIM.start()
    up = sim_started_at(seq)
    hello = A.wait_connected(after=seq, timeout=30)
    took = hello["t"] - up
    print(f"     the stream was back {took:.2f} s after the simulator listened", flush=True)
    if took > 3.0:
        raise Failed(f"the stream came back {took:.2f} s after the simulator listened")
    res = SIM.wait("result", command_id=cid, after=seq, where={"final": True}, timeout=30)[0]
    if res["outcome"] != "OUTCOME_DONE" or res["seq"] < hello["seq"]:
        raise Failed(f"the owed result: {res['outcome']} (seq {res['seq']}, hello {hello['seq']})")


def test_2_frozen_peer_noticed_by_keepalive():
    A.wait_channel("connected")
    seq = SIM.last_seq()
    t0 = time.time()
    SIM.freeze()
    try:
        ch = A.wait_channel("retrying", timeout=40)
        took = time.time() - t0
        print(f"     noticed after {took:.1f} s: {ch['error'][:120]}", flush=True)
        if took > 10 + 5 + 5:
            raise Failed(f"a frozen peer was noticed after {took:.1f} s (keepalive 10 s + 5 s)")
        if "stopped answering" not in ch["error"]:
            raise Failed(f"error: {ch['error']}")
    finally:
        SIM.thaw()
    t1 = time.time()
    A.wait_connected(after=seq, timeout=30)
    print(f"     a new stream {time.time() - t1:.1f} s after SIGCONT", flush=True)


def service_state(name):
    s = inspect("service", name)
    return s["Version"]["Index"], sorted(tasks(name))


def test_3_down_two_minutes():
    name = f"{PREFIX}1_app"
    wait_for("3 tasks run", lambda: len(tasks(name)) == 3, 60, 0.5)
    before = service_state(name)
    n = A.n_requests()
    seq = SIM.last_seq()
    SIM.kill()
    down_at = time.time()
    ch = A.wait_channel("retrying", timeout=30, error_has="cannot reach the Control Plane")
    if "Connection refused" not in ch["error"] and "Socket closed" not in ch["error"]:
        raise Failed(f"error: {ch['error']}")
    wait_for("2 minutes down", lambda: time.time() - down_at >= 120, 130, 1.0)
    after = service_state(name)
    if after != before:
        raise Failed(f"the service changed while the Control Plane was down: {before} → {after}")
    muts = A.mutations(n)
    if muts:
        raise Failed(f"Engine changes while the Control Plane was down: {muts}")
    if A.daemon.poll() is not None:
        raise Failed("the agent exited")
    SIM.start()
    up = sim_started_at(seq)
    hello = A.wait_connected(after=seq, timeout=150)
    print(f"     back {hello['t'] - up:.1f} s after the simulator listened (backoff after "
          f"{up - down_at:.0f} s down)", flush=True)
    SIM.wait("heartbeat", agent_id=AID, after=hello["seq"], count=2, timeout=20)
    stacks = {s["stack"]: s for s in hello["msg"]["stacks"]}
    st = stacks.get(f"{PREFIX}1")
    if not st or st["state"] != "STACK_STATE_CONVERGED" or st["replicas_running"] != 3 or \
            st["generation"] != 1:
        raise Failed(f"the hello's stack: {st}")
    if DEPLOY_ID not in hello["msg"]["finished_command_ids"]:
        raise Failed(f"the hello's finished ids lack the deploy: {hello['msg']['finished_command_ids']}")
    if SIM.violations():
        raise Failed(f"protocol violations: {SIM.violations()}")


def main():
    global SIM, A
    cleanup(PREFIX)
    SIM = start_sim("grpc-reconnect")
    tok = SIM.issue_token(agent_id=AID)["token"]
    A = GrpcAgent("grpc-reconnect", SIM, agent_id=AID, token=tok)
    try:
        A.start()
        A.wait_connected(timeout=60)
        return run([test_1_killed_and_restarted_back_within_3s,
                    test_2_frozen_peer_noticed_by_keepalive, test_3_down_two_minutes])
    finally:
        A.close()
        if SIM.running():
            SIM.kill()
        cleanup(PREFIX)
        rep = A.sanitizer_report()
        if rep:
            print(f"FAIL sanitizer:\n{rep}")
            sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
