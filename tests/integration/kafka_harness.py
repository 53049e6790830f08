"""Shared harness of the Kafka channel's integration tests: a daemon of the built agent with
Kafka on (local mode off) against the real broker of tests/env/kafka-up.sh and the real
Swarm, its own topics (a unique topic prefix), state dir and agent id; a producer of Command
records and a reader of the status topic (StatusEvent), both speaking the project's protos
(tests/cpsim/protos.py); the store read with sqlite3.

Nothing sleeps and hopes: every wait polls a condition until a deadline and fails with what it
saw last."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("AXION_SOURCE_DIR", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "support"))
sys.path.insert(0, os.path.join(SRC, "tests"))
sys.path.insert(0, HERE)
import kafka_peer as kp  # noqa: E402
from cpsim import protos  # noqa: E402
from reconcile_harness import (IMAGE, Failed, cleanup, inspect, names, run, services,  # noqa: E402,F401
                               sh, wait_for)

AGENT = os.environ.get("AXION_AGENT_BIN", "build/axion-agent")
pb = protos.load()
SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def compose(service="web", replicas=1, env=None, extra=""):
    """A manifest of one service running sleep (plus `extra` YAML under services:)."""
    environment = ""
    if env:
        environment = "    environment:\n" + "".join(f"      - {k}={v}\n" for k, v in env.items())
    return (f"services:\n  {service}:\n    image: {IMAGE}\n"
            f"    command: [\"sleep\", \"100000\"]\n{environment}"
            f"    deploy:\n      replicas: {replicas}\n{extra}")


def deploy(command_id, stack, generation, text, variables=None, files=None, agent_id=""):
    c = pb.Command(command_id=command_id, issued_at_ms=int(time.time() * 1000), agent_id=agent_id)
    c.deploy.stack = stack
    c.deploy.generation = generation
    c.deploy.compose = text
    for k, v in (variables or {}).items():
        c.deploy.variables.add(name=k, value=v)
    for k, v in (files or {}).items():
        c.deploy.files.add(name=k, content=v)
    return c.SerializeToString()


def remove(command_id, stack, generation=0):
    c = pb.Command(command_id=command_id, issued_at_ms=int(time.time() * 1000))
    c.remove_stack.stack = stack
    c.remove_stack.generation = generation
    return c.SerializeToString()


def outcome_name(v):
    return pb.Outcome.Name(v).replace("OUTCOME_", "")


class Status:
    """What the agent said on its status topic: StatusEvents, repeats (same event_id) dropped."""

    def __init__(self, agent):
        self.agent = agent
        self.events = {}  # event_id -> (StatusEvent, Record)
        self.records = 0

    def read(self, until=None, deadline=30.0):
        """Reads the topic from the beginning; with until(self), until it holds."""
        def done(recs):
            self._take(recs)
            return until(self) if until else False
        try:
            recs = kp.consume(self.agent.kconf, self.agent.status_topic,
                              until=done if until else None, deadline=deadline)
        except TimeoutError as e:
            raise Failed(f"status topic {self.agent.status_topic}: {e}; "
                         f"results so far: {self.summary()}") from None
        self._take(recs)
        return self

    def _take(self, recs):
        self.records = len(recs)
        for r in recs:
            ev = pb.StatusEvent()
            ev.ParseFromString(r.value)
            if r.key != self.agent.agent_id.encode() or ev.agent_id != self.agent.agent_id:
                raise Failed(f"status record keyed {r.key!r} for agent {ev.agent_id!r}")
            self.events.setdefault(ev.event_id, (ev, r))

    def results(self, command_id=None):
        out = []
        for eid in sorted(self.events):
            ev = self.events[eid][0]
            if ev.WhichOneof("event") == "command_result":
                cr = ev.command_result
                if command_id is None or cr.command_id == command_id:
                    out.append((eid, ev, cr))
        return out

    def outcomes(self, command_id):
        return [outcome_name(cr.outcome) for _, _, cr in self.results(command_id)]

    def stack_states(self, stack):
        return [ev.stack_status for eid, (ev, _) in sorted(self.events.items())
                if ev.WhichOneof("event") == "stack_status" and ev.stack_status.stack == stack]

    def summary(self):
        out = {}
        for _, _, cr in self.results():
            out.setdefault(cr.command_id or "(none)", []).append(outcome_name(cr.outcome))
        return out


class KafkaAgent:
    """One agent with Kafka on: topics, state dir, config (environment), daemon."""

    def __init__(self, name, tls=False, partitions=1, ca=None, extra_env=None, create=True):
        self.name = name
        self.env_k = kp.load_env()
        self.tls = tls
        self.dir = tempfile.mkdtemp(prefix=f"axt-{name}-")
        tag = uuid.uuid4().hex[:6]
        self.agent_id = f"axtk-{name}-{os.getpid()}-{tag}"
        self.prefix = f"axtk{os.getpid()}{tag}"
        self.commands_topic = f"{self.prefix}.commands.{self.agent_id}"
        self.status_topic = f"{self.prefix}.status"
        self.telemetry_topic = f"{self.prefix}.telemetry"
        self.kconf = kp.client_config(self.env_k)
        if create:
            kp.create_topics(self.kconf, [self.commands_topic], partitions=partitions,
                             config={"max.message.bytes": str(32 << 20)})
            kp.create_topics(self.kconf, [self.status_topic, self.telemetry_topic])
        self.config = os.path.join(self.dir, "agent.toml")
        with open(self.config, "w") as f:
            f.write("")
        self.store_path = os.path.join(self.dir, "state", "store.db")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AXION_AGENT__")}
        self.env.update({
            "AXION_AGENT__AGENT__STATE_DIR": os.path.join(self.dir, "state"),
            "AXION_AGENT__AGENT__ID": self.agent_id,
            "AXION_AGENT__AGENT__LOG_LEVEL": "debug",
            "AXION_AGENT__LOCAL__ENABLED": "false",
            "AXION_AGENT__LOCAL__SOCKET": os.path.join(self.dir, "agent.sock"),
            "AXION_AGENT__RECONCILE__RESYNC_INTERVAL": "30s",
            "AXION_AGENT__TELEMETRY__INTERVAL": "1s",
            "AXION_AGENT__KAFKA__TOPIC_PREFIX": self.prefix,
        })
        if tls:
            self.env.update({
                "AXION_AGENT__KAFKA__BROKERS": self.env_k["KAFKA_BOOTSTRAP_TLS"],
                "AXION_AGENT__KAFKA__SECURITY": "ssl",
                "AXION_AGENT__KAFKA__CA_FILE": self.env_k[ca or "KAFKA_TLS_CA"],
                "AXION_AGENT__KAFKA__CERT_FILE": self.env_k["KAFKA_TLS_CLIENT_CERT"],
                "AXION_AGENT__KAFKA__KEY_FILE": self.env_k["KAFKA_TLS_CLIENT_KEY"],
            })
        else:
            self.env.update({
                "AXION_AGENT__KAFKA__BROKERS": self.env_k["KAFKA_BOOTSTRAP"],
                "AXION_AGENT__KAFKA__SECURITY": "plaintext",
            })
        self.env.update(extra_env or {})
        self.daemon = None
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.starts = 0
        self.status = Status(self)

    # --- processes ---------------------------------------------------------------------

    def start(self, extra_env=None, wait_assigned=True):
        env = dict(self.env)
        env.update(extra_env or {})
        log = open(self.log_path, "a")
        log.write(f"---- start {self.starts} ----\n")
        log.flush()
        self.starts += 1
        self.log_mark = os.path.getsize(self.log_path)
        self.started_ms = int(time.time() * 1000)
        self.daemon = subprocess.Popen([AGENT, "--config", self.config, "run"], env=env,
                                       stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        if wait_assigned:
            wait_for("the agent's consumer assigned",
                     lambda: self.alive() and "kafka: assigned" in self.log_since(), 60)
        return self.daemon

    def alive(self):
        if self.daemon is None or self.daemon.poll() is not None:
            raise Failed(f"the daemon exited ({self.daemon and self.daemon.returncode}): "
                         f"{self.log_tail()}")
        return True

    def log_since(self, mark=None):
        with open(self.log_path, errors="replace") as f:
            f.seek(self.log_mark if mark is None else mark)
            return f.read()

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_tail(self, n=30):
        lines = [ln for ln in self.log_text().splitlines() if "rdkafka=" not in ln]
        return "\n".join(lines[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.daemon:
            return None
        self.daemon.send_signal(sig)
        try:
            rc = self.daemon.wait(timeout)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
            raise Failed(f"the daemon did not stop within {timeout}s of {sig!r}")
        finally:
            self.daemon = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def wait_exit(self, timeout=60):
        try:
            rc = self.daemon.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failed(f"the daemon did not exit within {timeout}s") from None
        self.daemon = None
        return rc

    def close(self):
        try:
            if self.daemon:
                self.stop()
        except Failed:
            pass
        text = self.log_text() if os.path.exists(self.log_path) else ""
        for s in SANITIZER:
            if s in text:
                i = text.index(s)
                raise Failed(f"sanitizer report in the daemon's log: {text[max(0, i - 300):i + 1500]}")

    # --- Kafka -------------------------------------------------------------------------

    def produce(self, values, key=None):
        """Writes records (bytes) to the commands topic, in order, one partition (keyed)."""
        k = (key or "stack").encode()
        return kp.produce(self.kconf, self.commands_topic, [(k, v) for v in values],
                          deadline=60)

    def committed(self, partition=0):
        """The offset Kafka holds for the agent's group (-1001 when none)."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({**self.kconf, "group.id": f"{self.prefix}.agent.{self.agent_id}",
                      "enable.auto.commit": False})
        try:
            tp = c.committed([TopicPartition(self.commands_topic, partition)], timeout=10)
            return tp[0].offset
        finally:
            c.close()

    def wait_outcomes(self, want, deadline=60.0):
        """Waits until each command id has (at least) the outcomes listed, in that order;
        want: {command_id: [outcome, ...]}."""
        def ok(st):
            for cid, outs in want.items():
                got = st.outcomes(cid)
                if got[:len(outs)] != outs:
                    return False
            return True
        return self.status.read(until=ok, deadline=deadline)

    # --- store and CLI -----------------------------------------------------------------

    def db(self):
        con = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True, timeout=10)
        con.row_factory = sqlite3.Row
        return con

    def query(self, sql, *args):
        con = self.db()
        try:
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()

    def commands(self):
        return {r["command_id"]: r for r in self.query("SELECT * FROM commands")}

    def outbox(self, since_ms=0):
        """The StatusEvents waiting in the outbox, written at or after since_ms."""
        out = []
        for r in self.query("SELECT id, payload, created_at FROM outbox WHERE created_at >= ?"
                            " ORDER BY id", since_ms):
            ev = pb.StatusEvent()
            ev.ParseFromString(r["payload"])
            out.append(ev)
        return out

    def offset(self, partition=0):
        rows = self.query("SELECT next_offset FROM offsets WHERE topic = ? AND partition = ?",
                          self.commands_topic, partition)
        return rows[0]["next_offset"] if rows else None

    def cli(self, *args, check=True):
        p = subprocess.run([AGENT, "--config", self.config, *args], capture_output=True,
                           text=True, env=self.env, timeout=60)
        if check and p.returncode != 0:
            raise Failed(f"axion-agent {' '.join(args)}: exit {p.returncode}: {p.stderr}")
        return p

    def node(self):
        return json.loads(self.cli("status", "--output", "json").stdout)

    def channel(self):
        return self.node().get("channels", {}).get("kafka", {})

    def stack(self, name):
        for s in self.node()["stacks"]:
            if s["stack"] == name:
                return s
        return None

    def wait_stack(self, name, state="converged", generation=None, timeout=90):
        def ok():
            s = self.stack(name)
            if s and s["state"] == state and (generation is None or s["generation"] == generation):
                return s
            return None
        return wait_for(f"stack {name} {state}" + (f" at generation {generation}"
                                                    if generation else ""), ok, timeout, 0.2)


def service_env(name):
    s = inspect("service", name)
    return s and s["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env", [])


def service_versions(prefix):
    """name -> Swarm version index of every service whose name starts with prefix."""
    out = {}
    for n in services(prefix):
        s = inspect("service", n)
        if s:
            out[n] = s["Version"]["Index"]
    return out
