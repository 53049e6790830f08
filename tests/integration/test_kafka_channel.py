#!/usr/bin/env python3
"""The Kafka deployment and data channels on the real broker (tests/env/kafka-up.sh) and the
real Swarm (issue 11, "Must be shown by integration tests" 1, 2, 3 and 6, and the security
part):

  1. a Deploy made with `axion-agent encode` and produced to the commands topic, over the TLS
     listener (client certificate, server name verified) → the stack converges; the status
     topic carries ACCEPTED, then DONE, for that command id;
  2. the same record twice, and an older generation after a newer → applied once; the store
     and the status topic say DUPLICATE and SUPERSEDED;
  3. a record that is no Command, invalid YAML, a manifest the policy refuses and a 20 MiB
     record → each REJECTED with a clear error on the status topic; the good record behind
     them is applied;
  6. ten stacks deployed in one partition, in order, with a remove in the middle → the end
     state is what the ordered sequence means (plaintext listener);
  security: the same agent restarted with a CA that did not sign the broker's certificate,
     with a broker address its certificate does not name, and with a client certificate the
     broker does not know → a clear error in the log and in `axion-agent status`, and its
     stacks on the Swarm untouched.

Every Docker object made here starts with "axtk"; topics are the agents' own (a unique
prefix). Prints one line per test and ends with "N passed, M failed"."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_harness import (AGENT, Failed, KafkaAgent, cleanup, compose, deploy, kp,  # noqa: E402
                           pb, remove, run, service_env, service_versions, services, wait_for)

PREFIX = "axtk"
A = None  # the TLS agent of tests 1-3 and the security checks


def encode(*args):
    p = subprocess.run([AGENT, "encode", *args], capture_output=True, timeout=30)
    if p.returncode != 0:
        raise Failed(f"axion-agent encode {' '.join(args)}: {p.stderr.decode()}")
    return p.stdout


def test_1_deploy_converges_over_tls():
    path = os.path.join(A.dir, "c1.yml")
    with open(path, "w") as f:
        f.write(compose(env={"TAG": "${TAG}"}))
    rec = encode("deploy", "-f", path, "-n", "axtkc1", "--generation", "1", "--var", "TAG=one",
                 "--command-id", "c1-deploy", "--agent-id", A.agent_id)
    # decode gives back what encode wrote
    p = subprocess.run([AGENT, "decode"], input=rec, capture_output=True, timeout=30)
    if p.returncode != 0 or '"command_id": "c1-deploy"' not in p.stdout.decode():
        raise Failed(f"decode: {p.stdout!r} {p.stderr!r}")
    A.produce([rec], key="axtkc1")
    A.wait_outcomes({"c1-deploy": ["ACCEPTED", "DONE"]}, deadline=90)
    (_, ev, cr), = [r for r in A.status.results("c1-deploy") if r[2].outcome == pb.OUTCOME_ACCEPTED]
    if ev.position.topic != A.commands_topic or cr.generation != 1 or cr.stack != "axtkc1":
        raise Failed(f"ACCEPTED event: {ev}")
    A.wait_stack("axtkc1", generation=1)
    if services("axtkc1_") != ["axtkc1_web"] or "TAG=one" not in service_env("axtkc1_web"):
        raise Failed(f"services {services('axtkc1_')}, env {service_env('axtkc1_web')}")
    if not A.status.stack_states("axtkc1"):
        raise Failed("no stack status event for axtkc1")
    ch = A.channel()
    if ch.get("state") != "connected" or ch.get("security") != "ssl":
        raise Failed(f"channel.kafka: {ch}")
    # telemetry goes out too (best effort), keyed by the agent id
    tel = kp.consume(A.kconf, A.telemetry_topic, count=1, deadline=30)[0]
    batch = pb.TelemetryBatch()
    batch.ParseFromString(tel.value)
    if tel.key != A.agent_id.encode() or batch.agent_id != A.agent_id:
        raise Failed(f"telemetry record keyed {tel.key!r} for {batch.agent_id!r}")
    text = A.cli("status").stdout
    if "channel kafka: connected" not in text:
        raise Failed(f"status text: {text}")


def test_2_duplicate_and_older_generation():
    text1 = compose(env={"GEN": "1"})
    text3 = compose(env={"GEN": "3"})
    text2 = compose(env={"GEN": "2"})
    d1 = deploy("c2-a", "axtkc2", 1, text1)
    A.produce([d1, d1, deploy("c2-b", "axtkc2", 3, text3), deploy("c2-c", "axtkc2", 2, text2)],
              key="axtkc2")
    A.wait_outcomes({"c2-a": ["ACCEPTED", "DUPLICATE"], "c2-b": ["ACCEPTED", "DONE"],
                     "c2-c": ["SUPERSEDED"]}, deadline=90)
    sup = [cr for _, _, cr in A.status.results("c2-c")][0]
    if sup.stored_generation != 3 or "not newer than the stored 3" not in sup.error:
        raise Failed(f"SUPERSEDED result: {sup}")
    dup = [cr for _, _, cr in A.status.results("c2-a") if cr.outcome == pb.OUTCOME_DUPLICATE][0]
    if dup.original_outcome != pb.OUTCOME_ACCEPTED:
        raise Failed(f"DUPLICATE result: {dup}")
    A.wait_stack("axtkc2", generation=3)
    if "GEN=3" not in service_env("axtkc2_web"):
        raise Failed(f"env {service_env('axtkc2_web')}")
    cmds = A.commands()
    if cmds["c2-c"]["status"] != "superseded" or cmds["c2-a"]["generation"] != 1:
        raise Failed(f"store commands: {cmds['c2-a']}, {cmds['c2-c']}")
    # applied once: no generation of the stack was applied twice, and generation 2 never
    applies = A.query("SELECT generation, COUNT(*) AS n FROM applies WHERE stack = 'axtkc2'"
                      " GROUP BY generation")
    if any(a["n"] != 1 for a in applies) or any(a["generation"] == 2 for a in applies):
        raise Failed(f"applies of axtkc2: {applies}")
    # the duplicate is one record (the first) and the positions moved past all four
    if A.offset() is None or A.offset() < 5:
        raise Failed(f"stored position {A.offset()}")


def test_3_bad_records_are_rejected_and_do_not_block():
    big = "#" * (20 << 20)
    recs = [
        b"\xff\x01 this is not a Command",
        deploy("c3-yaml", "axtkc3", 1, "services:\n  web: [\n"),
        deploy("c3-policy", "axtkc3", 2, compose(extra="") + "    privileged: true\n"),
        deploy("c3-big", "axtkc3", 3, big),
        deploy("c3-good", "axtkc3", 4, compose()),
    ]
    first = A.produce(recs, key="axtkc3")[0][1]
    A.wait_outcomes({"c3-yaml": ["REJECTED"], "c3-policy": ["REJECTED"],
                     "c3-good": ["ACCEPTED", "DONE"]}, deadline=120)

    def result(cid=None, offset=None):
        for _, ev, cr in A.status.results():
            if (cid is not None and cr.command_id == cid) or \
               (offset is not None and ev.position.offset == offset and
                    ev.position.topic == A.commands_topic):
                return ev, cr
        raise Failed(f"no result for {cid or offset}: {A.status.summary()}")

    _, junk = result(offset=first)
    _, yaml_ = result("c3-yaml")
    _, pol = result("c3-policy")
    _, big_ = result(offset=first + 3)
    checks = [
        (junk, pb.ERROR_CODE_MALFORMED, r"not a Command: \d+ bytes that do not decode"),
        (yaml_, pb.ERROR_CODE_MANIFEST, r"compose\.yml:\d+:\d+"),
        (pol, pb.ERROR_CODE_POLICY, r"privileged"),
        (big_, pb.ERROR_CODE_LIMIT, r"the command is \d+ bytes, more than the 16777216"),
    ]
    for cr, code, pattern in checks:
        if cr.outcome != pb.OUTCOME_REJECTED or cr.error_code != code or \
                not re.search(pattern, cr.error):
            raise Failed(f"result {cr.command_id!r}: {pb.Outcome.Name(cr.outcome)} "
                         f"{pb.ErrorCode.Name(cr.error_code)} {cr.error!r}, want {pattern!r}")
    A.wait_stack("axtkc3", generation=4)
    cmds = A.commands()
    # the records that could not be read are kept under their position
    for off in (first, first + 3):
        rec = [c for cid, c in cmds.items() if cid.startswith(f"kafka/0/{off}/")]
        if not rec or rec[0]["status"] != "rejected" or not rec[0]["error"]:
            raise Failed(f"store record of offset {off}: {rec}")
    for cid in ("c3-yaml", "c3-policy"):
        if cmds[cid]["status"] != "rejected" or not cmds[cid]["error"]:
            raise Failed(f"store record {cid}: {cmds[cid]}")
    if A.offset() != first + 5:
        raise Failed(f"stored position {A.offset()}, want {first + 5}")
    # per partition in `status`: the position, what Kafka confirmed, the lag
    want = first + 5
    wait_for("partition 0 at its position, committed, no lag",
             lambda: [p for p in A.channel().get("partitions", [])
                      if p["partition"] == 0 and p["next_offset"] == want and
                      p["committed_offset"] == want and p["lag"] == 0], 30, 0.3)
    text = A.cli("status").stdout
    if f"partition 0: next offset {want}, committed {want}, lag 0" not in text:
        raise Failed(f"status text: {text}")


def test_security_wrong_ca_and_wrong_name():
    before = service_versions("axtkc")
    A.stop()
    for env, pattern in (
            ({"AXION_AGENT__KAFKA__CA_FILE": A.env_k["KAFKA_TLS_OTHER_CA"]},
             "TLS: the broker's certificate is not signed by the CA of kafka.ca_file"),
            ({"AXION_AGENT__KAFKA__BROKERS": A.env_k["KAFKA_BOOTSTRAP_TLS_WRONG_NAME"]},
             "TLS: the broker's certificate does not name the address"),
            ({"AXION_AGENT__KAFKA__CERT_FILE": A.env_k["KAFKA_TLS_OTHER_CLIENT_CERT"],
              "AXION_AGENT__KAFKA__KEY_FILE": A.env_k["KAFKA_TLS_OTHER_CLIENT_KEY"]},
             "TLS: the broker refused the agent's client certificate")):
        A.start(extra_env=env, wait_assigned=False)
        try:
            wait_for(f"channel.kafka error {pattern!r}",
                     lambda: A.alive() and pattern in (A.channel().get("error") or "") and
                     A.channel().get("state") == "error", 60, 0.3)
            text = A.cli("status").stdout
            if "channel kafka: error (" + pattern not in text:
                raise Failed(f"status text: {text}")
            if pattern not in A.log_since():
                raise Failed(f"log: {A.log_tail()}")
            # the workloads: a pass ran (its stack states wait in the outbox, as Kafka
            # refuses the agent) and no service changed
            wait_for("a pass's stack states in the outbox",
                     lambda: {ev.stack_status.stack for ev in A.outbox(A.started_ms)
                              if ev.WhichOneof("event") == "stack_status"} >=
                     {"axtkc1", "axtkc2", "axtkc3"}, 60, 0.3)
            after = service_versions("axtkc")
            if after != before:
                raise Failed(f"services changed while Kafka was refused: {before} -> {after}")
        finally:
            A.stop()


B = None  # the plaintext agent of test 6


def test_6_ten_stacks_in_order_with_a_remove():
    recs, order = [], []
    for i in range(10):
        recs.append(deploy(f"c6-d{i}", f"axtkd{i}", 1, compose(env={"N": str(i)})))
        order.append(f"c6-d{i}")
        if i == 6:
            recs.append(remove("c6-rm4", "axtkd4", 2))
            order.append("c6-rm4")
    B.produce(recs, key="axtkd")
    want = {cid: ["ACCEPTED"] for cid in order}
    want["c6-rm4"] = ["ACCEPTED", "DONE"]
    for i in (0, 9):
        want[f"c6-d{i}"] = ["ACCEPTED", "DONE"]
    B.wait_outcomes(want, deadline=120)
    for i in range(10):
        if i != 4:
            B.wait_stack(f"axtkd{i}", timeout=120)
    got = services("axtkd")
    expect = [f"axtkd{i}_web" for i in range(10) if i != 4]
    if got != expect:
        raise Failed(f"services {got}, want {expect}")
    for i in range(10):
        if i != 4 and f"N={i}" not in service_env(f"axtkd{i}_web"):
            raise Failed(f"axtkd{i}_web env {service_env(f'axtkd{i}_web')}")
    gone = B.stack("axtkd4")
    if gone is not None and gone["state"] != "removed":
        raise Failed(f"axtkd4: {gone}")
    # accepted in the order produced: positions and event ids both increase
    acc = [(eid, ev.position.offset, cr.command_id) for eid, ev, cr in B.status.results()
           if cr.outcome == pb.OUTCOME_ACCEPTED]
    if [c for _, _, c in acc] != order or [o for _, o, _ in acc] != sorted(o for _, o, _ in acc):
        raise Failed(f"accepted order: {acc}")
    # every command got exactly one final result
    finals = {}
    B.status.read(until=lambda st: all(len(st.outcomes(c)) >= 2 for c in order), deadline=120)
    for c in order:
        outs = B.status.outcomes(c)
        finals[c] = outs
        if len(outs) != 2 or outs[1] not in ("DONE", "SUPERSEDED"):
            raise Failed(f"results of {c}: {outs}")
    if finals["c6-rm4"][1] != "DONE":
        raise Failed(f"remove: {finals['c6-rm4']}")


def main():
    global A, B
    try:
        A = KafkaAgent("tls", tls=True)
        A.start()
        rc = run([test_1_deploy_converges_over_tls, test_2_duplicate_and_older_generation,
                  test_3_bad_records_are_rejected_and_do_not_block,
                  test_security_wrong_ca_and_wrong_name])
        A.close()
        B = KafkaAgent("plain")
        B.start()
        rc |= run([test_6_ten_stacks_in_order_with_a_remove])
        B.close()
        return rc
    except Failed as e:
        print(f"FAIL setup: {e}")
        return 1
    finally:
        for agent in (A, B):
            if agent:
                try:
                    agent.close()
                except Failed as e:
                    print(f"FAIL {e}")
        cleanup(PREFIX)


if __name__ == "__main__":
    sys.exit(main())
