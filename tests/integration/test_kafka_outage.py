#!/usr/bin/env python3
"""The broker away for 60 s (issue 11, "Must be shown by integration tests" 5), on the real
broker and the real Swarm.

A stack runs. A deploy of it at a new generation (the same manifest: nothing to change on the
Swarm) is accepted and the agent is killed right after the store commit (the test hook), so its
ACCEPTED event waits in the outbox. The broker is stopped (tests/env/kafka-down.sh). The agent
starts while the broker is away: it converges the new generation without touching a service
and writes the DONE result and the stack's state to the outbox; it is stopped with SIGTERM
(promptly, although Kafka does not answer) and started again, and the outbox still holds every
event. After 60 s the broker comes back (kafka-up.sh --keep-data): the agent reconnects by
itself (no restart), the outbox is delivered (ACCEPTED then DONE, once each), `status` says
connected again, telemetry dropped while away is counted, no service on the Swarm changed,
and a new deploy goes through.

The broker is brought back on every path out of this test. Docker objects start with "axtkf".
Prints one line per test and "N passed, M failed"."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_harness import (SRC, Failed, KafkaAgent, cleanup, compose, deploy, pb, run,  # noqa: E402
                           service_env, service_versions, wait_for)

PREFIX = "axtkf"
HOOK = "AXION_TEST_KAFKA_KILL_AFTER_STORE_COMMIT"
OUTAGE_S = 60.0
A = None
broker_down = False


def env_script(name, *args):
    p = subprocess.run([os.path.join(SRC, "tests", "env", name), *args], capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise Failed(f"{name} {' '.join(args)}: exit {p.returncode}: {p.stderr[-2000:]}")


def broker_up():
    global broker_down
    if broker_down:
        env_script("kafka-up.sh", "--keep-data")
        broker_down = False


def test_outage():
    global broker_down
    A.start()
    A.produce([deploy("c5-a", "axtkf1", 1, compose())], key="axtkf1")
    A.wait_outcomes({"c5-a": ["ACCEPTED", "DONE"]}, deadline=90)
    A.wait_stack("axtkf1", generation=1)
    A.stop()

    # generation 2, the same manifest: accepted, then the agent dies before Kafka heard of it
    A.start(extra_env={HOOK: "1"}, wait_assigned=False)
    A.produce([deploy("c5-b", "axtkf1", 2, compose())], key="axtkf1")
    A.wait_exit(60)
    if A.commands().get("c5-b", {}).get("status") != "accepted":
        raise Failed(f"c5-b in the store: {A.commands().get('c5-b')}")
    before = service_versions(PREFIX)

    env_script("kafka-down.sh")
    broker_down = True
    down_at = time.monotonic()

    # the agent works without the broker: the new generation converges, DONE is written
    A.start(wait_assigned=False)
    wait_for("the agent to see that no broker answers",
             lambda: A.alive() and A.channel().get("state") in ("error", "connecting") and
             "kafka.brokers" in A.channel().get("error", ""), 60, 0.3)
    wait_for("DONE of c5-b in the outbox",
             lambda: [ev for ev in A.outbox() if ev.WhichOneof("event") == "command_result" and
                      ev.command_result.command_id == "c5-b" and
                      ev.command_result.outcome == pb.OUTCOME_DONE], 60, 0.3)
    A.wait_stack("axtkf1", generation=2)
    held = len(A.outbox())
    text = A.cli("status").stdout
    if "channel kafka: error (cannot connect to a broker of kafka.brokers" not in text:
        raise Failed(f"status during the outage: {text}")

    # a clean stop does not wait for the broker, and loses nothing
    t = time.monotonic()
    rc = A.stop(timeout=20)
    took = time.monotonic() - t
    if rc != 0 or took > 15:
        raise Failed(f"SIGTERM while the broker is away: exit {rc} after {took:.1f}s")
    if len(A.outbox()) < held:
        raise Failed(f"the outbox lost events at the stop: {held} -> {len(A.outbox())}")
    A.start(wait_assigned=False)
    wait_for("the restarted agent's first pass", lambda: A.alive() and len(A.outbox()) > held,
             60, 0.3)
    held = len(A.outbox())

    left = OUTAGE_S - (time.monotonic() - down_at)
    wait_for("the end of the outage", lambda: A.alive() and time.monotonic() - down_at >= OUTAGE_S,
             left + 5, 0.5)
    broker_up()
    t = time.monotonic()

    # the agent reconnects by itself and delivers what it held
    wait_for("channel.kafka connected again",
             lambda: A.alive() and A.channel().get("state") == "connected", 90, 0.3)
    wait_for("the outbox delivered", lambda: A.alive() and not A.outbox(), 90, 0.3)
    print(f"     reconnected and delivered {held} held events in {time.monotonic() - t:.1f}s "
          "after the broker came back", flush=True)
    A.wait_outcomes({"c5-a": ["ACCEPTED", "DONE"], "c5-b": ["ACCEPTED", "DONE"]}, deadline=60)
    for c in ("c5-a", "c5-b"):
        if A.status.outcomes(c) != ["ACCEPTED", "DONE"]:
            raise Failed(f"results of {c}: {A.status.outcomes(c)}")
    # the stack's state at generation 2, written while the broker was away, arrived too
    A.status.read(until=lambda st: any(s.generation == 2 and s.state == pb.STACK_STATE_CONVERGED
                                       for s in st.stack_states("axtkf1")), deadline=30)
    ch = A.channel()
    if ch.get("telemetry", {}).get("dropped", 0) < 1:
        raise Failed(f"no telemetry counted as dropped while away: {ch.get('telemetry')}")
    after = service_versions(PREFIX)
    if after != before:
        raise Failed(f"services changed meanwhile: {before} -> {after}")

    # and the consumer goes on
    A.produce([deploy("c5-c", "axtkf1", 3, compose(env={"AFTER": "yes"}))], key="axtkf1")
    A.wait_outcomes({"c5-c": ["ACCEPTED", "DONE"]}, deadline=90)
    if "AFTER=yes" not in service_env("axtkf1_web"):
        raise Failed(f"env {service_env('axtkf1_web')}")


def main():
    global A
    try:
        A = KafkaAgent("outage")
        return run([test_outage])
    except Failed as e:
        print(f"FAIL setup: {e}")
        return 1
    finally:
        try:
            broker_up()
        except Failed as e:
            print(f"FAIL bringing the broker back: {e}")
        if A:
            try:
                A.close()
            except Failed as e:
                print(f"FAIL {e}")
        cleanup(PREFIX)


if __name__ == "__main__":
    sys.exit(main())
