#!/usr/bin/env python3
"""Writes the seed corpora of the channel fuzzers (fuzz_envelope, fuzz_grpc_command,
fuzz_kafka_stats, fuzz_kafka_summary) into tests/fuzz/corpus/: valid messages of every command
kind made with the protobuf classes of proto/ (tests/cpsim/protos.py) and edge cases (limits,
unknown bodies, bad ids, cut bytes). Run from the venv: $(tests/env/venv.sh)/bin/python3
tests/fuzz/make_channel_seeds.py. Files the fuzzer found (crash-*, min-*) are left alone."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from cpsim import protos  # noqa: E402

pb = protos.load()
COMPOSE = "services:\n  web:\n    image: nginx:1.25\n    deploy:\n      replicas: 2\n"


def commands():
    C = pb.Command
    out = {}
    d = C(command_id="c-deploy-1", issued_at_ms=1700000000000, agent_id="agent-1",
          result_timeout_ms=60000)
    d.deploy.stack = "web"
    d.deploy.generation = 1
    d.deploy.compose = COMPOSE
    d.deploy.filename = "compose.yaml"
    f = d.deploy.files.add()
    f.name = "nginx.conf"
    f.content = b"server { listen 80; }\n"
    v = d.deploy.variables.add()
    v.name = "TAG"
    v.value = "1.25"
    out["deploy"] = d
    r = C(command_id="c-rm")
    r.remove_stack.stack = "web"
    r.remove_stack.generation = 3
    out["remove"] = r
    for kind in ("stop", "start", "restart"):
        c = C(command_id=f"c-{kind}")
        getattr(c, kind).stack = "web"
        getattr(c, kind).service = "api"
        out[kind] = c
    s = C(command_id="c-scale")
    s.scale.stack = "web"
    s.scale.service = "api"
    s.scale.replicas = 3
    out["scale"] = s
    lg = C(command_id="c-logs")
    lg.logs.stack = "web"
    lg.logs.service = "api"
    lg.logs.tail = 100
    lg.logs.follow = True
    lg.logs.limit_bytes = 65536
    out["logs"] = lg
    si = C(command_id="c-init")
    si.swarm_init.advertise_addr = "127.0.0.1"
    si.swarm_init.listen_addr = "0.0.0.0:2377"
    si.swarm_init.default_addr_pools.append("10.20.0.0/16")
    si.swarm_init.subnet_size = 24
    si.swarm_init.data_path_port = 4789
    out["swarm_init"] = si
    sj = C(command_id="c-join")
    sj.swarm_join.remote_addrs.append("127.0.0.1:2377")
    sj.swarm_join.join_token = "SWMTKN-1-abc-def"
    sj.swarm_join.role = pb.SWARM_ROLE_WORKER
    out["swarm_join"] = sj
    sl = C(command_id="c-leave")
    sl.swarm_leave.force = True
    out["swarm_leave"] = sl
    rn = C(command_id="c-now")
    rn.reconcile_now.stack = ""
    out["reconcile_now"] = rn
    # edge cases
    e = C(command_id="x" * 129)
    e.stop.stack = "web"
    out["id_too_long"] = e
    e = C(command_id="bad id/\u00e9")
    e.stop.stack = "web"
    out["id_bad_chars"] = e
    e = C(command_id="c-wrong", agent_id="agent-2")
    e.stop.stack = "web"
    out["wrong_agent"] = e
    out["no_body"] = C(command_id="c-empty")
    e = C(command_id="c-name")
    e.scale.stack = "-web"
    e.scale.service = "a" * 64
    e.scale.replicas = 10001
    out["bad_names"] = e
    e = C(command_id="c-dup")
    e.deploy.stack = "web"
    e.deploy.generation = 2**63
    e.deploy.compose = COMPOSE
    for _ in range(2):
        f = e.deploy.files.add()
        f.name = "same"
        v = e.deploy.variables.add()
        v.name = "1BAD"
    out["deploy_dups"] = e
    e = C(command_id="c-big")
    e.deploy.stack = "web"
    e.deploy.generation = 1
    e.deploy.compose = COMPOSE
    v = e.deploy.variables.add()
    v.name = "BIG"
    v.value = "v" * 2000
    out["deploy_vars"] = e
    sj = C(command_id="c-join-norole")
    sj.swarm_join.remote_addrs.append("127.0.0.1:2377")
    out["join_no_role"] = sj
    return out


def unknown_body(cmd_id):
    # Command with field 21 (a body from a newer Control Plane) as a length-delimited message.
    b = pb.Command(command_id=cmd_id).SerializeToString()
    return b + bytes([21 << 3 | 2, 2, 0x0A, 0x00])


def write(name, files):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for fn, data in files.items():
        with open(os.path.join(d, fn), "wb") as fh:
            fh.write(data if isinstance(data, bytes) else data.encode())


def main():
    cmds = commands()
    env = {f"{i:02d}-{k}": c.SerializeToString() for i, (k, c) in enumerate(cmds.items())}
    env["50-unknown_body"] = unknown_body("c-new")
    env["51-truncated"] = cmds["deploy"].SerializeToString()[:40]
    env["52-empty"] = b""
    env["53-garbage"] = b"\xff\xff\xff\xff\x0f"
    write("envelope", env)
    ctl = {}
    for k, v in env.items():
        if k.startswith("5"):
            continue
        ctl[k] = pb.ControlMessage(command=pb.Command.FromString(v)).SerializeToString()
    ctl["50-unknown_body"] = bytes([0x0A, len(unknown_body("c-new"))]) + unknown_body("c-new")
    ctl["51-cancel_logs"] = pb.ControlMessage(
        cancel_logs=pb.CancelLogs(command_id="c-logs")).SerializeToString()
    ctl["52-unknown_control"] = bytes([3 << 3 | 0, 1])
    lg = cmds["logs"]
    lg.logs.tail = 100001
    lg.logs.since_at_ms = -1
    ctl["53-logs_limits"] = pb.ControlMessage(command=lg).SerializeToString()
    write("grpc_command", ctl)

    def stats(parts, state="UP"):
        return json.dumps({
            "name": "rdkafka#consumer-1", "type": "consumer", "ts": 1, "time": 1,
            "brokers": {"127.0.0.1:9092/1": {"name": "127.0.0.1:9092/1", "nodeid": 1,
                                             "state": state}},
            "topics": {"axion.commands": {"topic": "axion.commands", "partitions": {
                str(p): {"partition": p, "hi_offset": hi, "lo_offset": 0}
                for p, hi in parts}}}})
    write("kafka_stats", {
        "00-up": stats([(0, 12), (1, 30), (-1, -1001)]),
        "01-down": stats([(0, 5)], state="DOWN"),
        "02-unknown_partition": stats([(7, 100), (4294967296, 9)]),
        "03-huge_hi": stats([(0, 2**63 - 1), (1, 2**63 - 1)]),
        "04-not_object": "[1,2,3]",
        "05-types": json.dumps({"brokers": [], "topics": {"axion.commands": {"partitions": []}}}),
    })
    summary = {"state": "connected", "error": "", "brokers": "127.0.0.1:9092",
               "commands_topic": "axion.commands", "lag": 7,
               "partitions": [{"partition": 0, "assigned": True, "next_offset": 3,
                               "committed_offset": 3, "high_watermark": 10, "lag": 7,
                               "records": 3, "last_error": "", "last_error_at": 0}],
               "outbox": {"pending": 2, "in_flight": 0}, "telemetry": {"dropped": 5}}
    many = dict(summary, partitions=[{}] * 1001)
    write("kafka_summary", {
        "00-connected": json.dumps(summary),
        "01-error": json.dumps(dict(summary, state="error", error="TLS: the broker's "
                                    "certificate is not signed by the CA", lag=-1)),
        "02-many_partitions": json.dumps(many, separators=(",", ":")),
        "03-types": json.dumps({"state": 1, "lag": "x", "partitions": {"a": 1},
                                "outbox": [], "telemetry": None}),
        "04-big_ints": json.dumps({"lag": -2**63, "partitions": [{"partition": 2**40,
                                   "next_offset": 2**63 - 1, "topic": "t"}]}),
        "05-not_json": "{\"state\":",
    })


if __name__ == "__main__":
    main()
