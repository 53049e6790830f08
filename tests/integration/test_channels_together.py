#!/usr/bin/env python3
"""Both channels in one agent, as on a server: enrolled with the Control Plane simulator (a
one-time token, then the mTLS stream) and on the real Kafka broker, against the real Swarm.
Each channel has its own tests; these check what the two say of each other:

  1. heartbeats on the gRPC stream carry the Kafka channel's summary (issue 10: "Kafka lag when
     Kafka is on"): connected, the commands topic's partition with its next offset and lag,
     the outbox; the Hello lists the Kafka command the agent finished;
  2. one stack, commands from both: deployed through Kafka, scaled through gRPC (its result on
     the stream, DONE), the change reported on the Kafka status topic too; a later generation
     from Kafka wins over nothing the gRPC side changed but the scale; removed through gRPC;
  3. `axion-agent status` shows both channels connected.

Every Docker object made here starts with "axtb". Prints one line per test and ends with
"N passed, M failed"."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from grpc_harness import start_sim  # noqa: E402
from kafka_harness import Failed, KafkaAgent, cleanup, compose, deploy, run, services  # noqa: E402
from reconcile_harness import replicas, wait_for  # noqa: E402

PREFIX = "axtb"
SIM = None
A = None


def kafka_summary(hb):
    return (hb.get("msg") or {}).get("kafka") or {}


def test_1_heartbeat_carries_kafka():
    A.produce([deploy("b1-deploy", "axtb1", 1, compose(replicas=1))], key="axtb1")
    A.wait_outcomes({"b1-deploy": ["ACCEPTED", "DONE"]}, deadline=90)
    after = SIM.last_seq()

    def summary():
        for hb in reversed(SIM.heartbeats(A.agent_id, after=after)):
            k = kafka_summary(hb)
            parts = k.get("partitions") or []
            if k.get("connected") and parts and int(parts[0].get("next_offset", -1)) >= 1 and \
                    int(k.get("lag", -1)) >= 0:
                return k
        return None
    k = wait_for("a heartbeat with the Kafka channel's summary", summary, 30)
    p = k["partitions"][0]
    if p.get("topic") != A.commands_topic or int(p.get("lag", -1)) != 0 or \
            int(k.get("lag", -1)) != 0:
        raise Failed(f"heartbeat kafka summary: {k}")
    if int(k.get("outbox_pending", -1)) < 0:
        raise Failed(f"heartbeat kafka summary without the outbox: {k}")


def test_2_one_stack_commands_from_both():
    A.wait_stack("axtb1", generation=1)
    cid = SIM.send(A.agent_id, {"scale": {"stack": "axtb1", "service": "web", "replicas": 2}})
    res = SIM.wait_result(cid, timeout=120)
    if res["outcome"] != "OUTCOME_DONE":
        raise Failed(f"gRPC scale: {res}")
    wait_for("2 replicas", lambda: replicas("axtb1_web") == 2, 60)

    # The stack's change is on the Kafka status topic as well (status goes out on Kafka, from
    # whatever channel the command came).
    def scaled(st):
        return any(s.replicas_desired == 2 for s in st.stack_states("axtb1"))
    A.status.read(until=scaled, deadline=60)

    # A new generation through Kafka: the scale is an override and stays over it.
    A.produce([deploy("b1-gen2", "axtb1", 2, compose(replicas=1, env={"GEN": "2"}))],
              key="axtb1")
    A.wait_outcomes({"b1-gen2": ["ACCEPTED", "DONE"]}, deadline=90)
    if replicas("axtb1_web") != 2:
        raise Failed(f"replicas after generation 2: {replicas('axtb1_web')}")

    cid = SIM.send(A.agent_id, {"remove_stack": {"stack": "axtb1"}})
    res = SIM.wait_result(cid, timeout=120)
    if res["outcome"] != "OUTCOME_DONE":
        raise Failed(f"gRPC remove: {res}")
    wait_for("the stack gone", lambda: not services("axtb1_"), 60)


def test_3_status_shows_both():
    node = A.node()
    ch = node.get("channels", {})
    states = {k: (v or {}).get("state") for k, v in ch.items()}
    if states.get("grpc") != "connected" or states.get("kafka") != "connected":
        raise Failed(f"channels in status: {ch}")
    text = A.cli("status").stdout
    for want in ("channel grpc: connected", "channel kafka: connected"):
        if want not in text:
            raise Failed(f"status text without {want!r}: {text}")


def main():
    global SIM, A
    try:
        SIM = start_sim("both")
        A = KafkaAgent("both")
        token = SIM.issue_token(agent_id=A.agent_id)["token"]
        A.env.update({
            "AXION_AGENT__AGENT__TOKEN": token,
            "AXION_AGENT__CONTROL_PLANE__GRPC_URL": f"https://{SIM.control_target}",
            "AXION_AGENT__CONTROL_PLANE__ENROLL_URL": f"https://{SIM.enroll_target}",
            "AXION_AGENT__CONTROL_PLANE__CA_FILE": SIM.ca_file,
        })
        A.start()
        SIM.wait("hello", agent_id=A.agent_id, timeout=60)
        return run([test_1_heartbeat_carries_kafka, test_2_one_stack_commands_from_both,
                    test_3_status_shows_both])
    except Failed as e:
        print(f"FAIL setup: {e}")
        return 1
    finally:
        if A:
            try:
                A.close()
            except Failed as e:
                print(f"FAIL {e}")
        if SIM:
            SIM.kill()
        cleanup(PREFIX)


if __name__ == "__main__":
    sys.exit(main())
