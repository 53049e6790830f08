#!/usr/bin/env python3
"""The admin CLI of the Control Plane simulator (tests/cpsim/README.md). Talks to a running
cpsim.py through its JSON admin interface, found from STATE/ports.json:

    cpctl.py --state DIR token [--agent-id ID] [--ttl S] [--cert-lifetime S]
    cpctl.py --state DIR send AGENT scale web/nginx=3
    cpctl.py --state DIR send AGENT deploy web -f compose.yml --generation 2 --var TAG=1.25
    cpctl.py --state DIR heartbeats AGENT
    cpctl.py --state DIR results [--command ID]
    cpctl.py --state DIR wait result --command ID --timeout 60

--state may come from $AXION_CPSIM_STATE; --admin URL names the interface directly."""
import argparse
import base64
import datetime
import json
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from cpsim.client import Admin, SimError, Timeout  # noqa: E402


def target(s, need_service=False):
    """STACK[/SERVICE] -> (stack, service)."""
    stack, _, service = s.partition("/")
    if not stack or (need_service and not service):
        raise SystemExit(f"cpctl: {s!r}: expected STACK{'/SERVICE' if need_service else '[/SERVICE]'}")
    return stack, service


def pairs(items, what):
    out = []
    for it in items or []:
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise SystemExit(f"cpctl: {what} {it!r}: expected NAME=VALUE")
        out.append((k, v))
    return out


def build_command(a):
    """The Command (proto JSON) or special request of `send`."""
    k = a.kind
    if k == "deploy":
        with open(a.file, "rb") as f:
            compose = f.read().decode()
        files = []
        for name, path in pairs(a.attach, "--attach"):
            with open(path, "rb") as f:
                files.append({"name": name, "content": base64.b64encode(f.read()).decode()})
        return {"command": {"deploy": {
            "stack": a.stack, "generation": str(a.generation), "compose": compose,
            "filename": os.path.basename(a.file), "files": files,
            "variables": [{"name": n, "value": v} for n, v in pairs(a.var, "--var")]}}}
    if k == "rm":
        return {"command": {"remove_stack": {"stack": a.stack, "generation": str(a.generation)}}}
    if k == "scale":
        t, _, n = a.target.partition("=")
        stack, service = target(t)
        if not n.isdigit():
            raise SystemExit(f"cpctl: scale {a.target!r}: expected STACK[/SERVICE]=N")
        return {"command": {"scale": {"stack": stack, "service": service, "replicas": int(n)}}}
    if k in ("stop", "start", "restart"):
        stack, service = target(a.target)
        return {"command": {k: {"stack": stack, "service": service}}}
    if k == "logs":
        stack, service = target(a.target, need_service=True)
        return {"command": {"logs": {"stack": stack, "service": service, "tail": a.tail,
                                     "follow": a.follow, "limit_bytes": str(a.limit_bytes),
                                     "since_at_ms": str(a.since_ms),
                                     "timestamps": a.timestamps}}}
    if k == "swarm-init":
        return {"command": {"swarm_init": {
            "advertise_addr": a.advertise_addr, "listen_addr": a.listen_addr,
            "data_path_addr": a.data_path_addr, "default_addr_pools": a.pool or [],
            "subnet_size": a.subnet_size}}}
    if k == "swarm-join":
        with open(a.token_file) as f:
            token = f.read().strip()
        return {"command": {"swarm_join": {
            "remote_addrs": a.addrs, "join_token": token,
            "role": "SWARM_ROLE_" + a.role.upper(), "advertise_addr": a.advertise_addr,
            "listen_addr": a.listen_addr}}}
    if k == "swarm-leave":
        return {"command": {"swarm_leave": {"force": a.force}}}
    if k == "reconcile":
        return {"command": {"reconcile_now": {"stack": a.stack or ""}}}
    if k == "cancel-logs":
        return {"cancel_logs": a.command_id}
    if k == "json":
        with (sys.stdin if a.file == "-" else open(a.file)) as f:
            return {"command": json.load(f)}
    if k in ("undecodable", "unknown-command", "unknown-control"):
        return {"special": k.replace("-", "_")}
    if k == "oversize-deploy":
        return {"special": "oversize_deploy", "what": a.what, "stack": a.stack}
    raise SystemExit(f"cpctl: send {k}: unknown")


def when(t):
    return datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


def print_events(evs, as_json):
    if as_json:
        for ev in evs:
            print(json.dumps(ev))
        return
    for ev in evs:
        rest = " ".join(f"{k}={v}" for k, v in ev.items()
                        if k not in ("seq", "t", "boot", "type", "msg", "data_b64"))
        print(f"{ev['seq']:>6} {when(ev['t'])} {ev['type']:<14} {rest}")


def main():
    ap = argparse.ArgumentParser(prog="cpctl.py", description="Drive a running cpsim.py.")
    ap.add_argument("--state", default=os.environ.get("AXION_CPSIM_STATE"),
                    help="the simulator's state dir (its ports.json names the admin port)")
    ap.add_argument("--admin", help="the admin URL instead, http://127.0.0.1:PORT")
    ap.add_argument("--json", action="store_true", help="print events as JSON lines")
    sub = ap.add_subparsers(dest="cmd", required=True)

    sub.add_parser("status", help="ports, open streams, queued commands, agents, settings")
    p = sub.add_parser("token", help="issue a one-time enrollment token")
    p.add_argument("--agent-id")
    p.add_argument("--ttl", type=float, default=3600, help="validity in seconds (0: expired)")
    p.add_argument("--cert-lifetime", type=int, help="lifetime of the agent's certificates, s")
    p.add_argument("--token", help="the token text (default: random)")

    p = sub.add_parser("send", help="queue a command for an agent")
    p.add_argument("agent")
    p.add_argument("--id", help="the command id (default: random)")
    ks = p.add_subparsers(dest="kind", required=True)
    q = ks.add_parser("deploy")
    q.add_argument("stack")
    q.add_argument("-f", "--file", required=True)
    q.add_argument("--generation", type=int, default=1)
    q.add_argument("--var", action="append", metavar="NAME=VALUE")
    q.add_argument("--attach", action="append", metavar="NAME=PATH")
    q = ks.add_parser("rm")
    q.add_argument("stack")
    q.add_argument("--generation", type=int, default=0)
    q = ks.add_parser("scale")
    q.add_argument("target", metavar="STACK[/SERVICE]=N")
    for name in ("stop", "start", "restart"):
        ks.add_parser(name).add_argument("target", metavar="STACK[/SERVICE]")
    q = ks.add_parser("logs")
    q.add_argument("target", metavar="STACK/SERVICE")
    q.add_argument("--tail", type=int, default=0)
    q.add_argument("--follow", action="store_true")
    q.add_argument("--limit-bytes", type=int, default=0)
    q.add_argument("--since-ms", type=int, default=0)
    q.add_argument("--timestamps", action="store_true")
    q = ks.add_parser("swarm-init")
    q.add_argument("--advertise-addr", default="")
    q.add_argument("--listen-addr", default="")
    q.add_argument("--data-path-addr", default="")
    q.add_argument("--pool", action="append", metavar="CIDR")
    q.add_argument("--subnet-size", type=int, default=0)
    q = ks.add_parser("swarm-join")
    q.add_argument("--token-file", required=True)
    q.add_argument("--role", choices=("worker", "manager"), default="worker")
    q.add_argument("--advertise-addr", default="")
    q.add_argument("--listen-addr", default="")
    q.add_argument("addrs", nargs="+", metavar="ADDR")
    ks.add_parser("swarm-leave").add_argument("--force", action="store_true")
    ks.add_parser("reconcile").add_argument("stack", nargs="?")
    ks.add_parser("cancel-logs").add_argument("command_id")
    ks.add_parser("json", help="a Command in proto JSON").add_argument("file", help="or -")
    ks.add_parser("undecodable", help="bytes that are no ControlMessage")
    ks.add_parser("unknown-command", help="a Command with a body field the agent lacks")
    ks.add_parser("unknown-control", help="a ControlMessage with a body the agent lacks")
    q = ks.add_parser("oversize-deploy", help="a Deploy one byte over a limit")
    q.add_argument("stack", nargs="?", default="oversize")
    q.add_argument("--what", choices=("compose", "files", "variables"), default="compose")

    p = sub.add_parser("events", help="recorded events")
    p.add_argument("--type", help="comma-separated types")
    p.add_argument("--agent")
    p.add_argument("--command")
    p.add_argument("--after", type=int, default=0)
    p.add_argument("--limit", type=int, default=0)
    p = sub.add_parser("heartbeats", help="recorded heartbeats with their intervals")
    p.add_argument("agent", nargs="?")
    p.add_argument("--limit", type=int, default=20)
    p = sub.add_parser("results", help="recorded command results")
    p.add_argument("--command")
    p = sub.add_parser("logs-of", help="print the log data a Logs command brought")
    p.add_argument("command_id")
    p = sub.add_parser("wait", help="wait for events, with a deadline")
    p.add_argument("type")
    p.add_argument("--agent")
    p.add_argument("--command")
    p.add_argument("--after", type=int, default=0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("config", help="change settings and fault modes")
    p.add_argument("--client-ca", choices=("ours", "other"))
    p.add_argument("--server-cert", choices=("ours", "other"))
    p.add_argument("--cert-lifetime", type=int)
    p.add_argument("--revoke", action="append", default=[])
    p.add_argument("--unrevoke", action="append", default=[])
    p.add_argument("--resend-on-hello", choices=("on", "off"))
    p = sub.add_parser("drop", help="end open streams")
    p.add_argument("agent", nargs="?")
    p.add_argument("--code", default="UNAVAILABLE")
    p = sub.add_parser("sign", help="sign a CSR (ca other: a certificate of the foreign CA)")
    p.add_argument("--csr", required=True)
    p.add_argument("--ca", choices=("ours", "other"), default="other")
    p.add_argument("--agent-id", default="agent-foreign")
    p.add_argument("--lifetime", type=int, default=3600)
    a = ap.parse_args()

    if a.admin:
        adm = Admin(a.admin)
    elif a.state:
        try:
            adm = Admin.from_state(a.state)
        except (OSError, ValueError, KeyError) as e:
            raise SystemExit(f"cpctl: {a.state}/ports.json: {e}: is cpsim.py running there?")
    else:
        raise SystemExit("cpctl: give --state DIR (or $AXION_CPSIM_STATE) or --admin URL")

    try:
        if a.cmd == "status":
            print(json.dumps(adm.status(), indent=1))
        elif a.cmd == "token":
            r = adm.issue_token(agent_id=a.agent_id, ttl_s=a.ttl,
                                cert_lifetime_s=a.cert_lifetime, token=a.token)
            print(r["token"])
            print(f"agent id {r['agent_id']}, expires {when(r['expires_at_ms'] / 1000)}",
                  file=sys.stderr)
        elif a.cmd == "send":
            body = build_command(a)
            if a.id:
                if "command" in body:
                    body["command"]["command_id"] = a.id
                else:
                    body["command_id"] = a.id
            r = adm.call("POST", "/send", dict(body, agent_id=a.agent))
            print(r["command_id"] or "")
            state = "stream up" if r["connected"] else "agent not connected: waits"
            print(f"{r['kind']}, {r['size']} bytes, queued ({state})", file=sys.stderr)
        elif a.cmd == "events":
            flt = {"after": a.after, "limit": a.limit}
            if a.type:
                flt["type"] = a.type
            if a.agent:
                flt["agent_id"] = a.agent
            if a.command:
                flt["command_id"] = a.command
            print_events(adm.call("POST", "/events", flt)["events"], a.json)
        elif a.cmd == "heartbeats":
            evs = adm.heartbeats(a.agent)[-a.limit:] if a.limit else adm.heartbeats(a.agent)
            prev = {}
            for ev in evs:
                gap = ev["t"] - prev[ev["agent_id"]] if ev["agent_id"] in prev else None
                prev[ev["agent_id"]] = ev["t"]
                m = ev.get("msg", {})
                stacks = ",".join(f"{s['stack']}:{s['state'].replace('STACK_STATE_', '').lower()}"
                                  for s in m.get("stacks", []))
                print(f"{when(ev['t'])} {ev['agent_id']} seq={ev.get('hb_seq')} "
                      f"gap={'-' if gap is None else f'{gap:.2f}s'} "
                      f"swarm={m.get('swarm', {}).get('role', '')} stacks={stacks or '-'}")
        elif a.cmd == "results":
            print_events(adm.results(a.command), a.json)
        elif a.cmd == "logs-of":
            sys.stdout.buffer.write(adm.log_data(a.command_id))
        elif a.cmd == "wait":
            flt = {"after": a.after}
            if a.agent:
                flt["agent_id"] = a.agent
            if a.command:
                flt["command_id"] = a.command
            print_events(adm.wait(a.type, count=a.count, timeout=a.timeout, **flt), a.json)
        elif a.cmd == "config":
            kw = {"revoke": a.revoke, "unrevoke": a.unrevoke}
            if a.client_ca:
                kw["client_ca"] = a.client_ca
            if a.server_cert:
                kw["server_cert"] = a.server_cert
            if a.cert_lifetime is not None:
                kw["cert_lifetime_s"] = a.cert_lifetime
            if a.resend_on_hello:
                kw["resend_on_hello"] = a.resend_on_hello == "on"
            print(json.dumps(adm.configure(**kw), indent=1))
        elif a.cmd == "drop":
            print(adm.drop_streams(a.agent, code=a.code))
        elif a.cmd == "sign":
            with open(a.csr) as f:
                print(adm.sign(f.read(), agent_id=a.agent_id, ca=a.ca,
                               lifetime_s=a.lifetime)["cert_pem"], end="")
    except Timeout as e:
        print(f"cpctl: {e}", file=sys.stderr)
        return 2
    except SimError as e:
        print(f"cpctl: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
