#!/usr/bin/env python3
"""The reconciler against the real Swarm, end to end through the CLI and the daemon.

Each check below is one criterion of the reconciler issue; they run in order on one agent
(stack names axtr*), and every Docker object they make starts with "axtr"."""

import json
import os
import shutil
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reconcile_harness import (IMAGE, Agent, Failed, cleanup, inspect, names, replicas, run,  # noqa: E402
                               services, sh, wait_for)

PREFIX = "axtr"
A = None


def web_compose(env="A=1", web_replicas=2, extra_service=True, index="<h1>v1</h1>"):
    worker = f"""
  worker:
    image: {IMAGE}
    command: ["sleep", "100000"]
""" if extra_service else ""
    return f"""
version: "3.8"
services:
  web:
    image: {IMAGE}
    command: ["sleep", "100000"]
    environment:
      - {env}
    configs:
      - source: index
        target: /www/index.html
    deploy:
      replicas: {web_replicas}
{worker}
configs:
  index:
    file: ./index.html
""", index


def apply_web(stack, **kw):
    text, index = web_compose(**kw)
    with open(os.path.join(A.dir, "index.html"), "w") as f:
        f.write(index)
    return A.apply(stack, text)


def test_1_apply_converges():
    apply_web("axtr1")
    st = A.wait_state("axtr1")
    svc = {s["name"]: s for s in st["services"]}
    if svc["web"]["running"] != 2 or svc["web"]["desired"] != 2 or svc["worker"]["running"] != 1:
        raise Failed(f"status services: {st['services']}")
    if services("axtr1_") != ["axtr1_web", "axtr1_worker"]:
        raise Failed(f"services: {services('axtr1_')}")
    spec = inspect("service", "axtr1_web")["Spec"]
    labels = spec["Labels"]
    for k, v in (("com.docker.stack.namespace", "axtr1"), ("io.axion.managed", "true"),
                 ("io.axion.agent", A.agent_id), ("com.docker.stack.image", IMAGE)):
        if labels.get(k) != v:
            raise Failed(f"label {k}={labels.get(k)!r}, want {v!r}")
    if not labels.get("io.axion.spec-hash"):
        raise Failed("no spec-hash label")
    if spec["TaskTemplate"]["ContainerSpec"].get("Env") != ["A=1"]:
        raise Failed(f"env {spec['TaskTemplate']['ContainerSpec'].get('Env')}")
    # what the converter produces is what runs: the dry run finds nothing to do
    p = A.cli("reconcile", "--dry-run", check=False)
    if p.returncode != 0 or "No changes" not in p.stdout:
        raise Failed(f"dry run after converge: exit {p.returncode}: {p.stdout}{p.stderr}")
    text = A.cli("status", "axtr1").stdout
    if "converged" not in text or "web" not in text:
        raise Failed(f"status text: {text}")


def test_1b_top_shows_the_stack():
    def sample():
        p = A.cli("top", "--output", "json", check=False)
        if p.returncode != 0:
            return None
        j = json.loads(p.stdout)
        mine = [c for c in j.get("containers", []) if c.get("stack") == "axtr1"]
        return len(mine) == 3 and (j, mine)
    j, mine = wait_for("top to show axtr1's 3 containers", sample, 30)
    if {c.get("service") for c in mine} != {"axtr1_web", "axtr1_worker"}:
        raise Failed(f"services in top: {[c.get('service') for c in mine]}")
    text = A.cli("top").stdout
    if "CONTAINER ID" not in text or "axtr1_web." not in text or "MEM USAGE / LIMIT" not in text:
        raise Failed(f"top text: {text}")


def test_2_reapply_and_resync_send_no_mutations():
    mark = len(A.requests())
    versions = {n: inspect("service", n)["Version"]["Index"] for n in services("axtr1_")}
    apply_web("axtr1")  # same manifest: a new generation, same specs
    A.wait_passes(2, since=mark)
    A.cli("reconcile")  # a one-shot pass from the CLI, through the same proxy
    A.wait_passes(3, since=mark)
    muts = A.mutations(mark)
    if muts:
        raise Failed(f"mutating calls on a no-op: {muts}")
    after = {n: inspect("service", n)["Version"]["Index"] for n in services("axtr1_")}
    if after != versions:
        raise Failed(f"versions changed: {versions} -> {after}")


def service_updates(since):
    return [r for r in A.mutations(since) if re.search(r"/services/[^/]+/update", r[1])]


def test_3_env_change_is_one_update_replicas_in_place():
    mark = len(A.requests())
    ev = A.last_event_id()
    apply_web("axtr1", env="A=2")
    wait_for("web env A=2", lambda: inspect("service", "axtr1_web")["Spec"]["TaskTemplate"]
             ["ContainerSpec"].get("Env") == ["A=2"], 30)
    A.wait_state("axtr1")
    ups = service_updates(mark)
    if len(ups) != 1 or len(A.mutations(mark)) != 1:
        raise Failed(f"want exactly one service update, got {A.mutations(mark)}")
    A.wait_event("updating service axtr1_web", after=ev)
    if not [e for e in A.events() if e["id"] > ev and "rolls tasks" in e["message"]]:
        raise Failed("the env update was not reported as rolling tasks")

    mark = len(A.requests())
    ev = A.last_event_id()
    apply_web("axtr1", env="A=2", web_replicas=3)
    wait_for("web at 3 replicas", lambda: replicas("axtr1_web") == 3, 30)
    A.wait_event("in place", after=ev)
    if len(service_updates(mark)) != 1:
        raise Failed(f"want one update, got {A.mutations(mark)}")
    A.wait_state("axtr1")


def test_4_removed_service_pruned_handmade_untouched():
    sh(f"docker service create --detach --name axtr-hand {IMAGE} sleep 100000")
    hand_v = inspect("service", "axtr-hand")["Version"]["Index"]
    apply_web("axtr1", env="A=2", web_replicas=3, extra_service=False)
    wait_for("worker removed", lambda: services("axtr1_") == ["axtr1_web"], 30)
    A.wait_state("axtr1")
    h = inspect("service", "axtr-hand")
    if not h or h["Version"]["Index"] != hand_v:
        raise Failed("the hand-made service was touched")
    sh("docker service rm axtr-hand")


def test_5_drift_repaired_within_2s():
    ev = A.last_event_id()
    sh("docker service scale --detach axtr1_web=5")
    wait_for("scale put back", lambda: replicas("axtr1_web") == 3, 2.0, 0.05)
    A.wait_event("drift: service axtr1_web changed outside axion", after=ev)

    ev = A.last_event_id()
    sh("docker service rm axtr1_web")
    wait_for("service recreated", lambda: inspect("service", "axtr1_web"), 2.0, 0.05)
    A.wait_event("drift: service axtr1_web was removed outside axion", after=ev)
    A.wait_state("axtr1")


def test_6_config_change_moves_service():
    old = [n for n in names("config", "axtr1_index")]
    if len(old) != 1 or not re.fullmatch(r"axtr1_index_[0-9a-f]{8}", old[0]):
        raise Failed(f"configs: {old}")
    apply_web("axtr1", env="A=2", web_replicas=3, extra_service=False, index="<h1>v2</h1>")
    wait_for("old config removed", lambda: names("config", "axtr1_index") not in ([], old)
             and old[0] not in names("config", "axtr1_index"), 60)
    new = names("config", "axtr1_index")
    used = [c["ConfigName"] for c in
            inspect("service", "axtr1_web")["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"]]
    if len(new) != 1 or used != new:
        raise Failed(f"configs {new}, service uses {used}")
    A.wait_state("axtr1")


def force_update(name):
    return inspect("service", name)["Spec"]["TaskTemplate"].get("ForceUpdate", 0)


def test_6b_overrides_are_desired_state():
    A.cli("stop", "axtr1/web")
    wait_for("web stopped", lambda: replicas("axtr1_web") == 0, 10)
    mark = len(A.requests())
    A.cli("reconcile")  # a pass from the CLI too: neither fights the stop
    A.wait_passes(2, since=mark)
    if replicas("axtr1_web") != 0 or A.mutations(mark):
        raise Failed(f"the loop fought the stop: {A.mutations(mark)}")
    A.cli("start", "axtr1/web")
    wait_for("web started", lambda: replicas("axtr1_web") == 3, 10)
    before = force_update("axtr1_web")
    A.cli("restart", "axtr1/web")
    wait_for("web restarted", lambda: force_update("axtr1_web") == before + 1, 10)
    A.wait_state("axtr1")
    A.cli("scale", "axtr1/web=2")
    wait_for("web scaled", lambda: replicas("axtr1_web") == 2, 10)
    # a redeploy of the same manifest keeps the scale: it is desired state of its own
    apply_web("axtr1", env="A=2", web_replicas=3, extra_service=False, index="<h1>v2</h1>")
    mark = len(A.requests())
    A.wait_passes(2, since=mark)
    if replicas("axtr1_web") != 2:
        raise Failed(f"the redeploy undid the scale: {replicas('axtr1_web')}")
    A.cli("scale", "axtr1/web=3")
    wait_for("web back to 3", lambda: replicas("axtr1_web") == 3, 10)
    A.wait_state("axtr1")
    bad = A.cli("scale", "axtr1/nope=2", check=False)
    if bad.returncode != 1 or 'no service "nope"' not in bad.stderr:
        raise Failed(f"scale of an unknown service: {bad.returncode} {bad.stderr}")


def test_6c_failing_tasks_degrade_the_stack():
    A.apply("axtr2", f"""
version: "3.8"
services:
  crash:
    image: {IMAGE}
    command: ["sh", "-c", "echo boom; exit 3"]
    deploy:
      restart_policy:
        condition: any
        delay: 100ms
""")
    st = A.wait_state("axtr2", "degraded", timeout=90)
    if "crash" not in st["reason"] or "exit" not in st["reason"]:
        raise Failed(f"degraded without the task's error: {st['reason']!r}")
    A.cli("rm", "axtr2")
    wait_for("axtr2 gone", lambda: not services("axtr2_") and not names("network", "axtr2_"), 60)


def test_7_offline_reapply_after_wipe():
    A.stop()
    sh("docker service rm axtr1_web")
    wait_for("wiped", lambda: not services("axtr1_"), 10)
    A.start()  # nothing but the Docker socket: local mode
    A.wait_state("axtr1", timeout=60)
    if services("axtr1_") != ["axtr1_web"] or replicas("axtr1_web") != 3:
        raise Failed(f"after re-apply: {services('axtr1_')}")


def big_compose(n):
    out = ['version: "3.8"', "services:"]
    for i in range(n):
        out += [f"  s{i:02d}:", f"    image: {IMAGE}", '    command: ["sleep", "100000"]']
    return "\n".join(out) + "\n"


def test_8_kill9_mid_apply_then_converge():
    mark = len(A.requests())
    A.apply("axtr8", big_compose(20))
    # kill the daemon once it has created some but not all services
    wait_for("some creates", lambda: len([r for r in A.mutations(mark)
                                          if r[1].endswith("/services/create")]) >= 3, 30, 0.01)
    A.stop(signal.SIGKILL)
    A.start()
    A.wait_state("axtr8", timeout=120)
    got = services("axtr8_")
    if len(got) != 20 or len(set(got)) != 20:
        raise Failed(f"services after kill -9: {len(got)}")
    ids = sh("docker service ls -q --filter name=axtr8_").stdout.split()
    if len(ids) != 20:
        raise Failed(f"duplicate services: {len(ids)} ids")
    st = A.status("axtr8")
    if st["state"] != "converged" or not st.get("last_apply", {}).get("result", "").startswith("ok"):
        raise Failed(f"status after restart: {st}")


def test_9_dockerd_restart_recovered():
    before = sorted(services("axtr"))
    sh(os.path.join(os.environ.get("AXION_SOURCE_DIR", "."), "tests/env/docker-restart.sh"),
       timeout=180)
    # the daemon survives, resyncs and finds everything in place
    if A.daemon.poll() is not None:
        raise Failed("the daemon died when dockerd restarted")
    A.wait_state("axtr1", timeout=90)
    A.wait_state("axtr8", timeout=90)
    if sorted(services("axtr")) != before:
        raise Failed(f"services changed: {before} -> {services('axtr')}")
    with open(A.daemon_log) as f:
        log = f.read()
    if "docker events stream lost" not in log:
        raise Failed("the daemon did not notice the events stream break")
    # after the stream came back, a full pass ran (it re-read everything)
    mark = len(A.requests())
    A.wait_passes(1, since=mark, timeout=60)
    if A.daemon.poll() is not None:
        raise Failed("the daemon died")


def test_10_dry_run_exit_codes():
    A.cli("rm", "axtr8")
    wait_for("axtr8 removed", lambda: not services("axtr8_") and not names("network", "axtr8_"),
             60)
    wait_for("axtr8 forgotten", lambda: A.cli("status", "axtr8", check=False).returncode == 1,
             30)
    A.stop()
    p = A.cli("reconcile", "--dry-run", check=False)
    if p.returncode != 0 or "No changes" not in p.stdout:
        raise Failed(f"in sync: exit {p.returncode}: {p.stdout}{p.stderr}")
    A.cli("scale", "axtr1/web=1")
    p = A.cli("reconcile", "--dry-run", check=False)
    if p.returncode != 2 or "~ update service axtr1_web" not in p.stdout \
            or "in place" not in p.stdout or "Mode.Replicated.Replicas" not in p.stdout:
        raise Failed(f"pending: exit {p.returncode}: {p.stdout}{p.stderr}")
    pj = A.cli("reconcile", "--dry-run", "--output", "json", check=False)
    if pj.returncode != 2 or '"changes": 1' not in pj.stdout:
        raise Failed(f"pending json: exit {pj.returncode}: {pj.stdout}")
    if replicas("axtr1_web") != 3:
        raise Failed("the dry run changed something")
    env = dict(A.env, AXION_AGENT__DOCKER__SOCKET="/nonexistent/docker.sock")
    p = A.cli("reconcile", "--dry-run", check=False, env=env)
    if p.returncode != 1 or "docker" not in p.stderr.lower():
        raise Failed(f"broken: exit {p.returncode}: {p.stderr}")
    # and a real pass applies the pending scale
    p = A.cli("reconcile", check=False)
    if p.returncode != 0 or replicas("axtr1_web") != 1:
        raise Failed(f"apply pass: exit {p.returncode}: {p.stdout}{p.stderr}")


def main():
    global A
    cleanup(PREFIX)
    A = Agent("rec")
    try:
        A.start()
        rc = run([test_1_apply_converges, test_1b_top_shows_the_stack,
                  test_2_reapply_and_resync_send_no_mutations,
                  test_3_env_change_is_one_update_replicas_in_place,
                  test_4_removed_service_pruned_handmade_untouched, test_5_drift_repaired_within_2s,
                  test_6_config_change_moves_service, test_6b_overrides_are_desired_state,
                  test_6c_failing_tasks_degrade_the_stack, test_7_offline_reapply_after_wipe,
                  test_8_kill9_mid_apply_then_converge, test_9_dockerd_restart_recovered,
                  test_10_dry_run_exit_codes])
    finally:
        A.close()
        if rc_failed_keep():
            print(f"state kept in {A.dir}")
        else:
            shutil.rmtree(A.dir, ignore_errors=True)
        cleanup(PREFIX)
    return rc


def rc_failed_keep():
    return os.environ.get("AXION_KEEP_STATE") == "1"


if __name__ == "__main__":
    sys.exit(main())
