#!/usr/bin/env python3
"""Effectively once across kill -9 (issue 11, "Must be shown by integration tests" 4), on the
real broker and the real Swarm:

  a. the agent is killed (SIGKILL) right after the store committed a batch and before the Kafka
     commit, by the test hook AXION_TEST_KAFKA_KILL_AFTER_STORE_COMMIT=1: Kafka holds no
     offset for it, the store does; restarted, the command is applied once and nothing is lost
     (one ACCEPTED, no DUPLICATE, one DONE; Kafka's offset catches up);
  b. 100 deploys of one stack (generations 1..100) produced in bursts while the agent is killed
     with kill -9 again and again, at random moments and right after store commits: all 100
     generations are accepted exactly once, in order, none lost or seen twice, the stack ends
     at generation 100 on the Swarm, and each command gets exactly one final result.

The random choices come from a seed printed at the start (AXION_TEST_SEED repeats a run).
Docker objects start with "axtke". Prints one line per test and "N passed, M failed"."""

import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kafka_harness import (Failed, KafkaAgent, cleanup, compose, deploy, pb, run,  # noqa: E402
                           service_env, wait_for)

PREFIX = "axtke"
HOOK = "AXION_TEST_KAFKA_KILL_AFTER_STORE_COMMIT"
A = None
SEED = int(os.environ.get("AXION_TEST_SEED") or time.time())
rng = random.Random(SEED)


def test_a_kill_between_store_and_kafka_commit():
    A.start(extra_env={HOOK: "1"}, wait_assigned=False)
    A.produce([deploy("c4-a", "axtke1", 1, compose())], key="axtke1")
    rc = A.wait_exit(60)
    if rc != -signal.SIGKILL or "test hook: kill -9 after the store commit of batch 1" \
            not in A.log_since():
        raise Failed(f"the hook did not kill the agent (exit {rc}): {A.log_tail()}")
    cmd = A.commands().get("c4-a")
    if not cmd or cmd["status"] != "accepted" or A.offset() != 1:
        raise Failed(f"store after the kill: {cmd}, position {A.offset()}")
    if A.committed() >= 1:
        raise Failed(f"Kafka has offset {A.committed()}: the kill came after the Kafka commit")
    if A.query("SELECT COUNT(*) AS n FROM outbox")[0]["n"] < 1:
        raise Failed("the ACCEPTED event is not in the outbox")
    A.start()
    A.wait_outcomes({"c4-a": ["ACCEPTED", "DONE"]}, deadline=90)
    A.wait_stack("axtke1", generation=1)
    if A.status.outcomes("c4-a") != ["ACCEPTED", "DONE"]:
        raise Failed(f"results of c4-a: {A.status.outcomes('c4-a')}")
    if A.channel().get("commands", {}).get("duplicate") != 0:
        raise Failed(f"the record was handled again: {A.channel()}")
    wait_for("Kafka's committed offset to catch up", lambda: A.committed() == 1, 30, 0.3)
    applies = A.query("SELECT COUNT(*) AS n FROM applies WHERE stack = 'axtke1'")[0]["n"]
    if applies != 1:
        raise Failed(f"{applies} applies of axtke1")
    A.stop()


N = 100
BURST = 10


def test_b_hundred_generations_with_random_kills():
    base = A.offset()
    recs = [deploy(f"c4-g{g}", "axtke2", g, compose(env={"G": str(g)})) for g in range(1, N + 1)]
    produced = 0
    kills = {"hook": 0, "random": 0}
    cycles = 0
    while A.offset() < base + N:
        cycles += 1
        if cycles > 60:
            raise Failed(f"no end after {cycles} restarts: position {A.offset()}")
        if produced < N:
            A.produce(recs[produced:produced + BURST], key="axtke2")
            produced += BURST
        if rng.random() < 0.5:
            # dead right after the store took the next batch, before Kafka's commit
            A.start(extra_env={HOOK: "1"}, wait_assigned=False)
            A.wait_exit(60)
            kills["hook"] += 1
        else:
            A.start()
            # a kill at a random moment of the work, chosen on purpose (not a wait)
            time.sleep(rng.uniform(0.0, 0.8))
            A.kill9()
            kills["random"] += 1
    print(f"     {cycles} restarts ({kills['hook']} by the hook after a store commit, "
          f"{kills['random']} at random), seed {SEED}", flush=True)
    A.start()
    ids = [f"c4-g{g}" for g in range(1, N + 1)]
    A.status.read(until=lambda st: all(len(st.outcomes(c)) >= 2 for c in ids), deadline=180)
    # every generation accepted once, in order; none refused, none seen twice
    accepted = [(eid, ev.position.offset, cr.command_id, cr.generation)
                for eid, ev, cr in A.status.results() if cr.command_id.startswith("c4-g") and
                cr.outcome == pb.OUTCOME_ACCEPTED]
    if [c for _, _, c, _ in accepted] != ids:
        raise Failed(f"ACCEPTED events, in event order: {[c for _, _, c, _ in accepted]}")
    if [g for _, _, _, g in accepted] != list(range(1, N + 1)) or \
            [o for _, o, _, _ in accepted] != list(range(base, base + N)):
        raise Failed(f"ACCEPTED generations/offsets: {accepted}")
    for c in ids:
        outs = A.status.outcomes(c)
        if len(outs) != 2 or outs[1] not in ("DONE", "SUPERSEDED"):
            raise Failed(f"results of {c}: {outs} (every command: ACCEPTED and one final)")
    if A.status.outcomes("c4-g100")[1] != "DONE":
        raise Failed(f"results of the last generation: {A.status.outcomes('c4-g100')}")
    cmds = A.commands()
    for g in range(1, N + 1):
        c = cmds.get(f"c4-g{g}")
        if not c or c["generation"] != g or c["status"] not in ("applied", "superseded"):
            raise Failed(f"store record of generation {g}: {c}")
    A.wait_stack("axtke2", generation=N)
    if "G=100" not in service_env("axtke2_web"):
        raise Failed(f"axtke2_web env {service_env('axtke2_web')}")
    # applied in order: the loop's applies of the stack never went back (one cut by a kill is
    # made again, of the same generation)
    gens = [a["generation"] for a in A.query("SELECT generation FROM applies WHERE stack = 'axtke2'"
                                              " ORDER BY id")]
    if gens != sorted(gens) or gens[-1] != N:
        raise Failed(f"applies of axtke2 by generation: {gens}")
    wait_for("Kafka's committed offset to catch up", lambda: A.committed() == base + N, 30, 0.3)


def main():
    global A
    print(f"seed {SEED}", flush=True)
    try:
        A = KafkaAgent("crash")
        return run([test_a_kill_between_store_and_kafka_commit,
                    test_b_hundred_generations_with_random_kills])
    except Failed as e:
        print(f"FAIL setup: {e}")
        return 1
    finally:
        if A:
            try:
                A.close()
            except Failed as e:
                print(f"FAIL {e}")
        cleanup(PREFIX)


if __name__ == "__main__":
    sys.exit(main())
