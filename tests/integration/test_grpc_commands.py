#!/usr/bin/env python3
"""The gRPC channel's commands end to end on real services (issue 10, criteria 3 and 6):
Deploy → converged; Scale to 3 → 3 running; Stop → 0 and Start → back to 3; Restart → new
tasks; Logs returns the lines the service printed, stops at the byte limit and on CancelLogs;
a repeated command id is not run again and answers with the first result; Remove → gone.
Bad input from the Control Plane — a message that does not decode, an unknown command, an
unknown control message, oversize Deploys, a manifest the policy refuses, a broken manifest —
each gets a REJECTED result with a clear error, and the stream stays up.

One simulator and one agent for the file (stacks axtgc*); every wait has a deadline."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpc_harness import (IMAGE, Failed, GrpcAgent, cleanup, deploy, expect_result,  # noqa: E402
                          run, services, start_sim, tasks, wait_for)

PREFIX = "axtgc"
AID = "axtgc-agent"
SIM = None
A = None
STREAM = None
LINES = 40

COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "i=1; while [ $$i -le {LINES} ]; do echo \\"hello-line $$i\\"; i=$$((i+1)); done; while true; do echo tick; sleep 1; done"]
    stop_grace_period: 1s
    deploy:
      replicas: 1
      update_config:
        parallelism: 3
"""


def running(n, svc=f"{PREFIX}1_web", timeout=90):
    def cond():
        t = tasks(svc)
        return len(t) == n and (t or ["none"])
    got = wait_for(f"{n} running tasks of {svc}", cond, timeout, 0.5)
    return [] if got == ["none"] else got


def test_1_deploy_converges():
    global STREAM
    cid = deploy(SIM, AID, f"{PREFIX}1", COMPOSE, generation=1)
    accepted = SIM.wait_result(cid, final=False, timeout=30)
    if accepted["outcome"] not in ("OUTCOME_ACCEPTED", "OUTCOME_DONE"):
        raise Failed(f"first result {accepted['outcome']}")
    res = expect_result(SIM, cid, "OUTCOME_DONE", timeout=120)
    STREAM = res["stream"]
    if res["msg"]["kind"] != "COMMAND_KIND_DEPLOY" or res["msg"]["generation"] != 1:
        raise Failed(f"result: {res['msg']}")
    if services(f"{PREFIX}1_") != [f"{PREFIX}1_web"]:
        raise Failed(f"services: {services(PREFIX + '1_')}")
    running(1)


def test_2_scale_to_3():
    cid = SIM.send(AID, {"scale": {"stack": f"{PREFIX}1", "service": "web", "replicas": 3}})
    expect_result(SIM, cid, "OUTCOME_DONE")
    running(3)


def test_3_stop_then_start():
    cid = SIM.send(AID, {"stop": {"stack": f"{PREFIX}1"}})
    expect_result(SIM, cid, "OUTCOME_DONE")
    running(0)
    cid = SIM.send(AID, {"start": {"stack": f"{PREFIX}1"}})
    expect_result(SIM, cid, "OUTCOME_DONE")
    running(3)


RESTART_ID = "axtgc-restart-1"


def test_4_restart_makes_new_tasks_and_a_repeat_is_not_run():
    before = set(running(3))
    cid = SIM.send(AID, {"command_id": RESTART_ID, "restart": {"stack": f"{PREFIX}1",
                                                               "service": "web"}})
    first = expect_result(SIM, cid, "OUTCOME_DONE", timeout=120)
    after = wait_for("3 new running tasks",
                     lambda: (lambda t: len(t) == 3 and not (set(t) & before) and t)(tasks(
                         f"{PREFIX}1_web")), 120, 0.5)
    # The same command id again: DUPLICATE with the first result, and nothing runs.
    seq = SIM.last_seq()
    n = A.n_requests()
    SIM.send(AID, {"command_id": RESTART_ID, "restart": {"stack": f"{PREFIX}1",
                                                         "service": "web"}})
    dup = SIM.wait("result", command_id=RESTART_ID, after=seq, where={"final": True},
                   timeout=30)[0]
    if dup["outcome"] != "OUTCOME_DUPLICATE" or dup["msg"]["original_outcome"] != "OUTCOME_DONE":
        raise Failed(f"repeat: {dup['outcome']} / {dup['msg']['original_outcome']}")
    if dup["msg"]["received_at_ms"] != first["msg"]["received_at_ms"]:
        pass  # the repeat's own arrival; the first result is what original_outcome repeats
    # Give the loop a pass to do something if it wrongly would: a reconcile-now, then check.
    rn = SIM.send(AID, {"reconcile_now": {}})
    expect_result(SIM, rn, "OUTCOME_DONE")
    muts = A.mutations(n)
    if muts:
        raise Failed(f"the repeat changed the Swarm: {muts}")
    if set(tasks(f"{PREFIX}1_web")) != set(after):
        raise Failed("the tasks changed after the repeat")


def test_5_logs_lines_limit_and_cancel():
    svc = {"stack": f"{PREFIX}1", "service": "web"}
    # The lines the service printed (the newest task's first lines among them).
    cid = SIM.send(AID, {"logs": dict(svc)})
    expect_result(SIM, cid, "OUTCOME_DONE")
    data = SIM.log_data(cid).decode(errors="replace")
    want = [f"hello-line {i}" for i in range(1, LINES + 1)]
    missing = [w for w in want if w not in data]
    if missing:
        raise Failed(f"{len(missing)} printed lines missing, e.g. {missing[:3]}")
    chunks = SIM.log_chunks(cid)
    last = [c for c in chunks if c["last"]]
    if len(last) != 1 or last[0]["end"] != "LOG_END_EOF":
        raise Failed(f"last chunk: {last}")
    # The byte limit: exactly that many bytes, end LIMIT, result DONE.
    cid = SIM.send(AID, {"logs": dict(svc, limit_bytes=100)})
    expect_result(SIM, cid, "OUTCOME_DONE")
    if len(SIM.log_data(cid)) != 100:
        raise Failed(f"{len(SIM.log_data(cid))} bytes with limit_bytes 100")
    last = [c for c in SIM.log_chunks(cid) if c["last"]]
    if not last or last[0]["end"] != "LOG_END_LIMIT":
        raise Failed(f"last chunk: {last}")
    # Follow, then cancel: the last chunk says CANCELLED, the result CANCELLED.
    cid = SIM.send(AID, {"logs": dict(svc, follow=True, tail=1)})
    SIM.wait("log_chunk", command_id=cid, count=2, timeout=30)
    SIM.cancel_logs(AID, cid)
    expect_result(SIM, cid, "OUTCOME_CANCELLED")
    last = [c for c in SIM.log_chunks(cid) if c["last"]]
    if len(last) != 1 or last[0]["end"] != "LOG_END_CANCELLED":
        raise Failed(f"last chunk: {last}")
    # A Logs id is remembered too.
    seq = SIM.last_seq()
    SIM.send(AID, {"command_id": cid, "logs": dict(svc)})
    dup = SIM.wait("result", command_id=cid, after=seq, where={"final": True}, timeout=30)[0]
    if dup["outcome"] != "OUTCOME_DUPLICATE" or dup["msg"]["original_outcome"] != "OUTCOME_CANCELLED":
        raise Failed(f"repeated Logs: {dup['outcome']} / {dup['msg']['original_outcome']}")
    # Logs of a stack the agent does not hold.
    cid = SIM.send(AID, {"logs": {"stack": "nosuchstack", "service": "web"}})
    expect_result(SIM, cid, "OUTCOME_REJECTED", error_has='no stack named "nosuchstack"')


def test_6_bad_input_rejected_stream_stays():
    seq = SIM.last_seq()

    def reject(special=None, command=None, code=None, has=None, **kw):
        before = SIM.last_seq()
        cid = SIM.send(AID, command, special=special, **kw) if special else SIM.send(AID, command)
        flt = {"command_id": cid} if cid and special not in ("undecodable", "unknown_control") \
            else {"command_id": ""}
        res = SIM.wait("result", after=before, where={"final": True}, timeout=30, **flt)[0]
        if res["outcome"] != "OUTCOME_REJECTED" or res["msg"]["error_code"] != code:
            raise Failed(f"{special or command}: {res['outcome']} {res['msg']['error_code']} "
                         f"({res.get('error')})")
        if has and has not in (res.get("error") or ""):
            raise Failed(f"{special or command}: error {res.get('error')!r} lacks {has!r}")
        return res

    reject("undecodable", code="ERROR_CODE_MALFORMED", has="does not decode")
    r = reject("unknown_command", code="ERROR_CODE_UNSUPPORTED", has="kind 99")
    if r["msg"]["kind"] != 99:
        raise Failed(f"unknown command's kind: {r['msg']['kind']}")
    reject("unknown_control", code="ERROR_CODE_UNSUPPORTED", has="field 40")
    # the words of envelope_from_command(): the same as for a Command read from Kafka
    for what, has in (("compose", "deploy.compose: 1048577 bytes, more than the 1048576"),
                      ("files", "deploy.files: 8388609 bytes of content, more than 8388608"),
                      ("variables", "deploy.variables: 1114112 bytes of values, more than 1048576")):
        reject("oversize_deploy", code="ERROR_CODE_LIMIT", has=has, what=what,
               stack=f"{PREFIX}big")
    privileged = f"services:\n  x:\n    image: {IMAGE}\n    privileged: true\n"
    reject(command={"deploy": {"stack": f"{PREFIX}2", "generation": 1, "compose": privileged,
                               "filename": "p.yml"}},
           code="ERROR_CODE_POLICY", has="p.yml:4:5: services.x.privileged: refused by policy")
    broken = f"services:\n  x:\n    image: {IMAGE}\n    deploy:\n      replicas: two\n"
    reject(command={"deploy": {"stack": f"{PREFIX}2", "generation": 1, "compose": broken}},
           code="ERROR_CODE_MANIFEST", has="compose.yml:5:17")
    reject(command={"scale": {"stack": f"{PREFIX}1", "service": "nope", "replicas": 1}},
           code="ERROR_CODE_NOT_FOUND", has='has no service "nope"')
    # Swarm commands go through the intake too: a join without a role is refused there, and the
    # join token is in no message.
    r = reject(command={"swarm_join": {"remote_addrs": ["10.231.0.1:2377"],
                                       "join_token": "SWMTKN-1-axtgcsecret"}},
               code="ERROR_CODE_MALFORMED", has="role")
    if "axtgcsecret" in (r.get("error") or "") or "axtgcsecret" in A.log():
        raise Failed("the join token appears in the result or the log")
    reject(command={"agent_id": "someone-else", "reconcile_now": {}},
           code="ERROR_CODE_WRONG_AGENT")
    # The stream stayed up: no stream ended, the heartbeats go on on the same stream.
    if SIM.events("stream_closed", agent_id=AID, after=seq):
        raise Failed(f"the stream ended: {SIM.events('stream_closed', agent_id=AID, after=seq)}")
    hb = SIM.wait("heartbeat", agent_id=AID, after=SIM.last_seq(), timeout=15)[0]
    if hb["stream"] != STREAM:
        raise Failed(f"heartbeats on stream {hb['stream']}, the commands came on {STREAM}")
    if services(f"{PREFIX}2_") or services(f"{PREFIX}big_"):
        raise Failed("a refused deploy made services")


def test_7_remove():
    cid = SIM.send(AID, {"remove_stack": {"stack": f"{PREFIX}1"}})
    expect_result(SIM, cid, "OUTCOME_DONE", timeout=120)
    wait_for("the stack's services gone", lambda: not services(f"{PREFIX}1_"), 60, 0.5)
    # A stack the agent does not hold: nothing to do.
    cid = SIM.send(AID, {"remove_stack": {"stack": f"{PREFIX}never"}})
    expect_result(SIM, cid, "OUTCOME_DONE")
    if SIM.violations():
        raise Failed(f"protocol violations: {SIM.violations()}")


def main():
    global SIM, A
    cleanup(PREFIX)
    SIM = start_sim("grpc-commands")
    tok = SIM.issue_token(agent_id=AID)["token"]
    A = GrpcAgent("grpc-commands", SIM, agent_id=AID, token=tok)
    try:
        A.start()
        A.wait_connected(timeout=60)
        return run([test_1_deploy_converges, test_2_scale_to_3, test_3_stop_then_start,
                    test_4_restart_makes_new_tasks_and_a_repeat_is_not_run,
                    test_5_logs_lines_limit_and_cancel, test_6_bad_input_rejected_stream_stays,
                    test_7_remove])
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
