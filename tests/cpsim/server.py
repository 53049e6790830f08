"""The Control Plane simulator: a gRPC server of proto/axion/agent/v1/control.proto (grpc.aio)
with its own test CA, and a JSON-over-HTTP admin interface for tests and developers.
Everything listens on loopback only. See tests/cpsim/README.md.

  enrollment port  server-TLS only: Enroll (token + CSR -> identity)
  control port     mTLS, client certificate required and verified: Renew, Connect
  admin port       HTTP/1.1, JSON: tokens, commands, recorded events, waits, fault modes

What it records is a journal of events (seq, time, type, ...), kept in memory and appended to
STATE/events.jsonl; a restarted simulator reads the journal back, so sequence numbers go on.
"""

import argparse
import asyncio
import base64
import collections
import datetime
import ipaddress
import json
import os
import secrets
import signal
import sys
import time
import urllib.parse

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from . import pki as pkimod
from . import protos

MiB = 1 << 20
AGENT_MESSAGE_MAX = 4 * MiB  # what the Control Plane must accept from an agent (control.proto)
SEND_MAX = 16 * MiB  # the agent's receive limit: nothing larger is ever sent
LOG_CHUNK_MAX = 64 * 1024
ERROR_TEXT_MAX = 4096
LIST_STACKS_MAX = 1000  # stacks in a Hello or Heartbeat
LIST_IDS_MAX = 100  # command ids in a Hello
TOKEN_MAX = 512
HOSTNAME_MAX = 253
FACT_MAX = 256
COMPOSE_MAX = 1 * MiB  # commands.proto limits, for the oversize Deploys
FILES_MAX = 8 * MiB
VARIABLES_MAX = 1 * MiB
VARIABLE_MAX = 64 * 1024
ADMIN_BODY_MAX = 64 * MiB
JOURNAL_KEEP = 200_000  # events kept in memory (and read back at start)
JOURNAL_FILE_MAX = 512 * MiB  # then events.jsonl is rotated to events.jsonl.1
WAIT_MAX_S = 600
# A ControlMessage that does not decode: field 1 (command) claims 0x7fffffff bytes, has 2.
UNDECODABLE = b"\x0a\xff\xff\xff\xff\x07xy"
SERVICE = "axion.agent.v1.Control"

pb = None  # the generated classes (protos.load()), set in main()


def now_ms():
    return int(time.time() * 1000)


def new_id(prefix):
    return f"{prefix}-{secrets.token_hex(6)}"


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(number, payload):
    """One length-delimited field, encoded by hand (for messages the classes cannot make)."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def to_dict(msg):
    return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True,
                                     unquote_int64_if_possible=True)


def log(text):
    t = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    print(f"{t} cpsim {text}", file=sys.stderr, flush=True)


class AdminError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


# ---- persistent state --------------------------------------------------------------------------

class State:
    """tokens, agents and settings, in STATE/state.json (rewritten whole on each change)."""

    DEFAULT_CONFIG = {
        "client_ca": "ours",      # which CA verifies client certificates on the control port
        "server_cert": "ours",    # which CA signed the certificate both ports present
        "cert_lifetime_s": 86400,  # lifetime of certificates when the token or agent sets none
        "resend_on_hello": False,  # after a Hello, re-queue sent commands without a final result
        "revoked": [],            # agent ids whose certificates are refused (PERMISSION_DENIED)
    }

    def __init__(self, path):
        self.path = path
        data = {}
        if os.path.exists(path):
            with open(path) as f:
                data = json.load(f)
        self.tokens = data.get("tokens", {})
        self.agents = data.get("agents", {})
        self.config = dict(self.DEFAULT_CONFIG)
        self.config.update(data.get("config", {}))

    def save(self):
        data = {"tokens": self.tokens, "agents": self.agents, "config": self.config}
        pkimod.write_file(self.path, json.dumps(data, indent=1, sort_keys=True).encode(), 0o600)


class Journal:
    """Every recorded event, in order. Waiters are woken on each new event."""

    def __init__(self, path, boot):
        self.path = path
        self.boot = boot
        self.events = collections.deque(maxlen=JOURNAL_KEEP)
        self.seq = 0
        if os.path.exists(path):
            with open(path, "rb") as f:
                for line in f:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue  # a line cut by a kill
                    self.events.append(ev)
                    self.seq = max(self.seq, ev.get("seq", 0))
        self.file = open(path, "ab")
        self.size = self.file.tell()
        self.waiters = []

    def add(self, type_, at=None, **fields):
        """Records an event that happened at `at` (Unix time; default now)."""
        self.seq += 1
        ev = {"seq": self.seq, "t": round(at or time.time(), 6), "boot": self.boot,
              "type": type_}
        ev.update({k: v for k, v in fields.items() if v is not None})
        self.events.append(ev)
        line = json.dumps(ev, separators=(",", ":")).encode() + b"\n"
        if self.size + len(line) > JOURNAL_FILE_MAX:
            self.file.close()
            os.replace(self.path, self.path + ".1")
            self.file = open(self.path, "ab")
            self.size = 0
        self.file.write(line)
        self.file.flush()
        self.size += len(line)
        waiters, self.waiters = self.waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)
        return ev

    def select(self, flt):
        return [ev for ev in self.events if flt.matches(ev)]

    async def changed(self, timeout):
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass


class Filter:
    """Which events a query means: type(s), agent_id, command_id, after (a seq), and `where`,
    a dict of dotted paths into the event ("outcome", "msg.seq") to values."""

    def __init__(self, args):
        t = args.get("type")
        if isinstance(t, str):
            t = [x for x in t.split(",") if x]
        self.types = set(t or [])
        self.agent_id = args.get("agent_id")
        self.command_id = args.get("command_id")
        self.after = int(args.get("after", 0) or 0)
        where = args.get("where") or {}
        if isinstance(where, str):
            where = json.loads(where)
        if not isinstance(where, dict):
            raise AdminError(400, "where: expected an object of path -> value")
        self.where = where

    def matches(self, ev):
        if ev["seq"] <= self.after:
            return False
        if self.types and ev["type"] not in self.types:
            return False
        if self.agent_id is not None and ev.get("agent_id") != self.agent_id:
            return False
        if self.command_id is not None and ev.get("command_id") != self.command_id:
            return False
        for path, want in self.where.items():
            v = ev
            for part in path.split("."):
                v = v.get(part) if isinstance(v, dict) else None
            if v != want:
                return False
        return True


# ---- streams and the outbound queues ----------------------------------------------------------

class Outbound:
    """The messages waiting for one agent's stream; kept across its streams."""

    def __init__(self):
        self.items = collections.deque()
        self.ready = asyncio.Event()

    def put(self, item, front=False):
        if front:
            self.items.appendleft(item)
        else:
            self.items.append(item)
        self.ready.set()

    async def get(self):
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        return self.items.popleft()


class Stream:
    def __init__(self, agent_id, peer):
        self.id = new_id("s")
        self.agent_id = agent_id
        self.peer = peer
        self.opened_at = time.time()
        self.end = None  # (code, reason, message) when the simulator ends it
        self.ended = asyncio.Event()
        self.messages = 0
        self.log_done = set()  # Logs command ids whose last chunk came
        self.last_heartbeat = None  # arrival time of the stream's latest heartbeat

    def request_end(self, code, reason, message):
        if self.end is None:
            self.end = (code, reason, message)
            self.ended.set()


class RefusedError(Exception):
    """Ends an RPC with a status and an axion-reason."""

    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


async def refuse(context, err):
    await context.abort(err.code, err.message, trailing_metadata=(("axion-reason", err.reason),))


# ---- the simulator ----------------------------------------------------------------------------

class Simulator:
    def __init__(self, args):
        self.args = args
        self.state_dir = args.state
        self.pki = pkimod.Pki(args.state)
        self.state = State(os.path.join(args.state, "state.json"))
        if args.cert_lifetime is not None:
            self.state.config["cert_lifetime_s"] = args.cert_lifetime
        self.state.save()
        self.boot = new_id("b")
        self.journal = Journal(os.path.join(args.state, "events.jsonl"), self.boot)
        self.outbound = collections.defaultdict(Outbound)
        self.streams = {}  # agent id -> its current Stream
        self.sent = collections.Counter()  # command id -> times written to a stream
        self.finals = collections.Counter()  # command id -> final results received
        self.unfinished = collections.defaultdict(dict)  # agent -> {command id: item}
        for ev in self.journal.events:  # what earlier runs sent and received
            if ev["type"] == "sent" and ev.get("command_id"):
                self.sent[ev["command_id"]] += 1
            elif ev["type"] == "result" and ev.get("final") and ev.get("command_id"):
                self.finals[ev["command_id"]] += 1
        self.tls_seen = {}
        self.ports = {}

    # -- journal
    def record(self, type_, at=None, **fields):
        ev = self.journal.add(type_, at=at, **fields)
        if type_ != "heartbeat" or not self.args.quiet:
            brief = " ".join(f"{k}={v}" for k, v in fields.items()
                             if k not in ("msg", "data_b64") and v not in (None, ""))
            log(f"{type_} {brief}"[:400])
        return ev

    # -- TLS: both ports take their certificates from here on every new connection, so a
    # change of config applies to the next handshake without a restart.
    def tls_config(self, endpoint):
        cfg = self.state.config
        server = self.pki.authority(cfg["server_cert"])
        roots = None
        if endpoint == "control":
            roots = self.pki.authority(cfg["client_ca"]).ca_pem
        return grpc.ssl_server_certificate_configuration(
            [(server.server_key_pem, server.server_pem)], root_certificates=roots)

    def tls_fetcher(self, endpoint):
        def fetch():
            cfg = self.state.config
            key = (cfg["server_cert"], cfg["client_ca"])
            if self.tls_seen.get(endpoint) == key:
                return None
            self.tls_seen[endpoint] = key
            return self.tls_config(endpoint)
        return fetch

    # -- identity
    @staticmethod
    def peer_cn(context):
        auth = context.auth_context() or {}
        cn = auth.get("x509_common_name") or []
        return cn[0].decode() if cn else ""

    def lifetime_for(self, agent_id):
        a = self.state.agents.get(agent_id, {})
        return int(a.get("cert_lifetime_s") or self.state.config["cert_lifetime_s"])

    def check_identity(self, context, endpoint, method):
        if endpoint != "control":
            raise RefusedError(grpc.StatusCode.UNAUTHENTICATED, "wrong-endpoint",
                               f"{method} is served on the control endpoint (mTLS, "
                               f"127.0.0.1:{self.ports.get('control')}), not on the enrollment "
                               "endpoint")
        cn = self.peer_cn(context)
        if not cn:
            raise RefusedError(grpc.StatusCode.UNAUTHENTICATED, "no-identity",
                               "the client certificate has no common name")
        if cn in self.state.config["revoked"]:
            raise RefusedError(grpc.StatusCode.PERMISSION_DENIED, "cert-revoked",
                               f"the certificate of agent {cn} is revoked: enroll again")
        return cn

    def issue(self, csr_pem, agent_id, lifetime_s):
        cert_pem, start, end = self.pki.ours.sign_csr(csr_pem, agent_id, lifetime_s)
        a = self.state.agents.setdefault(agent_id, {})
        a["certs_issued"] = a.get("certs_issued", 0) + 1
        a["not_after_at_ms"] = int(end.timestamp() * 1000)
        self.state.save()
        return cert_pem, start, end

    # -- Enroll
    async def enroll(self, endpoint, raw, context):
        try:
            return self._enroll(endpoint, raw, context)
        except RefusedError as e:
            self.record("enroll_refused", reason=e.reason, code=e.code.name, error=e.message,
                        peer=context.peer())
            await refuse(context, e)

    def _enroll(self, endpoint, raw, context):
        if endpoint != "enroll":
            raise RefusedError(grpc.StatusCode.UNAUTHENTICATED, "wrong-endpoint",
                               "Enroll is served on the enrollment endpoint (server-TLS, "
                               f"127.0.0.1:{self.ports.get('enroll')}), not on the control "
                               "endpoint")
        bad = grpc.StatusCode.INVALID_ARGUMENT
        try:
            req = pb.EnrollRequest.FromString(raw)
        except DecodeError as e:
            raise RefusedError(bad, "bad-request", f"EnrollRequest does not decode: {e}")
        for name, v, lo, hi in (("token", req.token, 1, TOKEN_MAX),
                                ("hostname", req.hostname, 1, HOSTNAME_MAX)):
            n = len(v.encode())
            if not lo <= n <= hi:
                raise RefusedError(bad, "bad-request",
                                   f"EnrollRequest.{name} has {n} bytes: expected {lo}..{hi}")
        for fd, v in req.facts.ListFields():
            if isinstance(v, str) and len(v.encode()) > FACT_MAX:
                raise RefusedError(bad, "bad-request", f"EnrollRequest.facts.{fd.name} has "
                                   f"{len(v.encode())} bytes, more than {FACT_MAX}")
        tok = self.state.tokens.get(req.token)
        hint = req.token[:6] + "..."
        if tok is None:
            raise RefusedError(grpc.StatusCode.UNAUTHENTICATED, "token-unknown",
                               f"enrollment token {hint} is unknown: this Control Plane never "
                               "issued it")
        if tok.get("used_at_ms"):
            raise RefusedError(grpc.StatusCode.PERMISSION_DENIED, "token-used",
                               f"enrollment token {hint} was already used (by host "
                               f"{tok.get('used_by')!r} for agent {tok['agent_id']}); a token "
                               "enrolls once")
        if now_ms() >= tok["expires_at_ms"]:
            when = datetime.datetime.fromtimestamp(tok["expires_at_ms"] / 1000,
                                                   datetime.timezone.utc)
            raise RefusedError(grpc.StatusCode.FAILED_PRECONDITION, "token-expired",
                               f"enrollment token {hint} expired at {when:%Y-%m-%dT%H:%M:%SZ}")
        agent_id = tok["agent_id"]
        lifetime = int(tok.get("cert_lifetime_s") or self.state.config["cert_lifetime_s"])
        try:
            cert_pem, _, end = self.pki.ours.sign_csr(req.csr_pem.encode(), agent_id, lifetime)
        except pkimod.CsrError as e:
            raise RefusedError(bad, "bad-csr", f"EnrollRequest.csr_pem: {e}")
        tok["used_at_ms"] = now_ms()
        tok["used_by"] = req.hostname
        a = self.state.agents.setdefault(agent_id, {})
        # The token's lifetime stays the agent's for renewals; without one, the setting's.
        a.update(enrolled_at_ms=now_ms(), hostname=req.hostname,
                 cert_lifetime_s=tok.get("cert_lifetime_s"),
                 facts=to_dict(req.facts), certs_issued=a.get("certs_issued", 0) + 1,
                 not_after_at_ms=int(end.timestamp() * 1000))
        self.state.save()
        self.record("enroll", agent_id=agent_id, hostname=req.hostname,
                    lifetime_s=lifetime, not_after_at_ms=a["not_after_at_ms"],
                    facts=to_dict(req.facts), peer=context.peer())
        return pb.EnrollResponse(agent_id=agent_id, cert_chain_pem=cert_pem.decode(),
                                 ca_bundle_pem=self.pki.ours.ca_pem.decode(),
                                 not_after_at_ms=a["not_after_at_ms"]).SerializeToString()

    # -- Renew
    async def renew(self, endpoint, raw, context):
        try:
            return self._renew(endpoint, raw, context)
        except RefusedError as e:
            self.record("renew_refused", agent_id=self.peer_cn(context) or None,
                        reason=e.reason, code=e.code.name, error=e.message)
            await refuse(context, e)

    def _renew(self, endpoint, raw, context):
        cn = self.check_identity(context, endpoint, "Renew")
        try:
            req = pb.RenewRequest.FromString(raw)
        except DecodeError as e:
            raise RefusedError(grpc.StatusCode.INVALID_ARGUMENT, "bad-request",
                               f"RenewRequest does not decode: {e}")
        lifetime = self.lifetime_for(cn)
        try:
            cert_pem, _, end = self.issue(req.csr_pem.encode(), cn, lifetime)
        except pkimod.CsrError as e:
            raise RefusedError(grpc.StatusCode.INVALID_ARGUMENT, "bad-csr",
                               f"RenewRequest.csr_pem: {e}")
        not_after = int(end.timestamp() * 1000)
        self.record("renew", agent_id=cn, lifetime_s=lifetime, not_after_at_ms=not_after)
        return pb.RenewResponse(cert_chain_pem=cert_pem.decode(),
                                ca_bundle_pem=self.pki.ours.ca_pem.decode(),
                                not_after_at_ms=not_after).SerializeToString()

    # -- Connect
    async def connect(self, endpoint, _requests, context):
        try:
            cn = self.check_identity(context, endpoint, "Connect")
        except RefusedError as e:
            self.record("connect_refused", agent_id=self.peer_cn(context) or None,
                        reason=e.reason, code=e.code.name, error=e.message, peer=context.peer())
            await refuse(context, e)
            return
        stream = Stream(cn, context.peer())
        old = self.streams.get(cn)
        self.streams[cn] = stream
        if old is not None:
            old.request_end(grpc.StatusCode.ABORTED, "stream-replaced",
                            f"agent {cn} opened a newer stream ({stream.id})")
        self.record("stream_open", agent_id=cn, stream=stream.id, peer=stream.peer)
        closed = "ended"
        tasks = []
        try:
            # Headers go out at once: an agent starts its heartbeats when they arrive.
            await context.send_initial_metadata((("axion-stream-id", stream.id),))
            reader = asyncio.create_task(self._reader(stream, context))
            writer = asyncio.create_task(self._writer(stream, context))
            ender = asyncio.create_task(stream.ended.wait())
            tasks = [reader, writer, ender]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if stream.end is not None:
                code, reason, message = stream.end
                closed = f"{code.name} {reason}: {message}"
                await refuse(context, RefusedError(code, reason, message))
            elif reader in done and not reader.cancelled() and reader.exception() is None:
                closed = "the agent half-closed"
            else:
                t = reader if reader in done else writer
                exc = None if t.cancelled() else t.exception()
                closed = f"connection lost ({type(exc).__name__}: {exc})"
        except asyncio.CancelledError:
            closed = "cancelled: the agent went away"
            raise
        finally:
            for t in tasks:
                t.cancel()
            if self.streams.get(cn) is stream:
                del self.streams[cn]
            self.record("stream_closed", agent_id=cn, stream=stream.id, reason=closed,
                        messages=stream.messages)

    async def _writer(self, stream, context):
        out = self.outbound[stream.agent_id]
        while True:
            item = await out.get()
            if stream.end is not None:  # ending (e.g. replaced): the next stream sends it
                out.put(item, front=True)
                return
            cid = item.get("command_id")
            counted = bool(cid) and item["kind"] not in ("cancel_logs", "raw")
            # Counted and recorded before the write: the agent may answer before it returns.
            if counted:
                self.sent[cid] += 1
                self.unfinished[stream.agent_id][cid] = item
            self.record("sent", agent_id=stream.agent_id, stream=stream.id, command_id=cid,
                        kind=item["kind"], size=len(item["data"]))
            try:
                await context.write(item["data"])
            except BaseException as e:
                if counted:
                    self.sent[cid] -= 1
                out.put(item, front=True)  # not sent: the next stream gets it
                self.record("unsent", agent_id=stream.agent_id, stream=stream.id,
                            command_id=cid, error=f"{type(e).__name__}: {e}")
                raise

    def violation(self, stream, text, **fields):
        self.record("violation", agent_id=stream.agent_id, stream=stream.id, error=text,
                    **fields)

    async def _reader(self, stream, context):
        cn = stream.agent_id
        while True:
            raw = await context.read()
            if raw is grpc.aio.EOF:
                return
            stream.messages += 1
            try:
                msg = pb.AgentMessage.FromString(raw)
            except DecodeError as e:
                self.record("bad_message", agent_id=cn, stream=stream.id, size=len(raw),
                            error=str(e))
                stream.request_end(grpc.StatusCode.INVALID_ARGUMENT, "bad-message",
                                   f"message {stream.messages} ({len(raw)} bytes) is not an "
                                   f"AgentMessage: {e}")
                return
            kind = msg.WhichOneof("body")
            if stream.messages == 1 and kind != "hello":
                stream.request_end(grpc.StatusCode.FAILED_PRECONDITION, "hello-expected",
                                   f"the first message of a stream must be a hello, not "
                                   f"{kind or 'an unknown kind'}")
                return
            if kind in ("hello", "heartbeat"):
                said = getattr(msg, kind).agent_id
                if said != cn:
                    stream.request_end(grpc.StatusCode.PERMISSION_DENIED, "agent-id-mismatch",
                                       f"the {kind} names agent {said!r}, the certificate "
                                       f"{cn!r}")
                    return
            handler = getattr(self, f"_on_{kind}", None)
            if handler is None:
                self.record("unknown_message", agent_id=cn, stream=stream.id, size=len(raw))
                continue
            handler(stream, getattr(msg, kind), len(raw))

    def _check_lists(self, stream, kind, m):
        """The list limits of control.proto for a Hello or Heartbeat."""
        if len(m.stacks) > LIST_STACKS_MAX:
            self.violation(stream, f"{kind} lists {len(m.stacks)} stacks, more than "
                           f"{LIST_STACKS_MAX}")
        for name in ("finished_command_ids", "pending_command_ids"):
            n = len(getattr(m, name, ()))
            if n > LIST_IDS_MAX:
                self.violation(stream, f"{kind}.{name} has {n} ids, more than {LIST_IDS_MAX}")

    def _on_hello(self, stream, m, size):
        self.record("hello", agent_id=stream.agent_id, stream=stream.id, size=size,
                    msg=to_dict(m))
        self._check_lists(stream, "hello", m)
        if self.state.config["resend_on_hello"]:
            finished = set(m.finished_command_ids)
            pending = self.unfinished[stream.agent_id]
            for cid, item in reversed(list(pending.items())):
                if cid in finished:
                    del pending[cid]
                elif item not in self.outbound[stream.agent_id].items:
                    self.outbound[stream.agent_id].put(item, front=True)
                    self.record("resend", agent_id=stream.agent_id, command_id=cid)

    def _on_heartbeat(self, stream, m, size):
        t = time.time()
        gap = round(t - stream.last_heartbeat, 6) if stream.last_heartbeat else None
        stream.last_heartbeat = t
        self.record("heartbeat", at=t, agent_id=stream.agent_id, stream=stream.id,
                    hb_seq=m.seq, gap_s=gap, size=size, msg=to_dict(m))
        self._check_lists(stream, "heartbeat", m)

    def _on_result(self, stream, m, size):
        final = m.outcome not in (pb.OUTCOME_UNSPECIFIED, pb.OUTCOME_ACCEPTED)
        cid = m.command_id
        self.record("result", agent_id=stream.agent_id, stream=stream.id, command_id=cid,
                    outcome=pb.Outcome.Name(m.outcome) if m.outcome in pb.Outcome.values()
                    else m.outcome, final=final, error=m.error or None, msg=to_dict(m))
        if m.outcome == pb.OUTCOME_UNSPECIFIED:
            self.violation(stream, f"result for {cid!r} has no outcome", command_id=cid)
        if len(m.error.encode()) > ERROR_TEXT_MAX:
            self.violation(stream, f"result for {cid!r} has an error text of "
                           f"{len(m.error.encode())} bytes, more than {ERROR_TEXT_MAX}",
                           command_id=cid)
        if not final or not cid:
            return
        self.finals[cid] += 1
        self.unfinished[stream.agent_id].pop(cid, None)
        if self.sent[cid] == 0:
            self.violation(stream, f"a final result for command {cid}, which was never sent",
                           command_id=cid)
        elif self.finals[cid] > self.sent[cid]:
            self.violation(stream, f"{self.finals[cid]} final results for command {cid}, sent "
                           f"{self.sent[cid]} time(s)", command_id=cid)

    def _on_log_chunk(self, stream, m, size):
        cid = m.command_id
        self.record("log_chunk", agent_id=stream.agent_id, stream=stream.id, command_id=cid,
                    chunk_seq=m.seq, last=m.last, end=pb.LogEnd.Name(m.end)
                    if m.end in pb.LogEnd.values() else m.end, bytes=len(m.data),
                    data_b64=base64.b64encode(m.data).decode(), error=m.error or None)
        if len(m.data) > LOG_CHUNK_MAX:
            self.violation(stream, f"log chunk of {len(m.data)} bytes, more than "
                           f"{LOG_CHUNK_MAX}", command_id=cid)
        if cid in stream.log_done:
            self.violation(stream, f"log chunk for {cid} after its last one", command_id=cid)
        if m.last:
            stream.log_done.add(cid)

    def _on_status(self, stream, m, size):
        self.record("status", agent_id=stream.agent_id, stream=stream.id,
                    event=m.WhichOneof("event"), msg=to_dict(m))

    # -- commands
    def build(self, args):
        """The bytes of one ControlMessage from an admin request, with what it is."""
        now = now_ms()
        if "command" in args:
            cmd = pb.Command()
            try:
                json_format.ParseDict(args["command"], cmd)
            except json_format.ParseError as e:
                raise AdminError(400, f"command: not a Command in proto JSON: {e}")
            if not cmd.command_id:
                cmd.command_id = new_id("cmd")
            if not cmd.issued_at_ms:
                cmd.issued_at_ms = now
            kind = cmd.WhichOneof("body") or "none"
            return {"data": pb.ControlMessage(command=cmd).SerializeToString(),
                    "command_id": cmd.command_id, "kind": kind}
        if "cancel_logs" in args:
            cid = str(args["cancel_logs"])
            m = pb.ControlMessage(cancel_logs=pb.CancelLogs(command_id=cid))
            return {"data": m.SerializeToString(), "command_id": cid, "kind": "cancel_logs"}
        if "raw_b64" in args:
            return {"data": base64.b64decode(args["raw_b64"]), "command_id": None, "kind": "raw"}
        special = args.get("special")
        cid = args.get("command_id") or new_id("cmd")
        if special == "undecodable":
            return {"data": UNDECODABLE, "command_id": None, "kind": "undecodable"}
        if special == "unknown_command":
            # A Command whose body has field number 99: a command from a newer Control Plane.
            head = pb.Command(command_id=cid, issued_at_ms=now).SerializeToString()
            body = head + pb_field(99, b"\x0a\x03new")
            return {"data": pb_field(1, body), "command_id": cid, "kind": "unknown_command"}
        if special == "unknown_control":
            # A ControlMessage whose body has field number 40.
            return {"data": pb_field(40, b""), "command_id": None, "kind": "unknown_control"}
        if special == "oversize_deploy":
            return self.oversize_deploy(cid, now, args)
        raise AdminError(400, "send: give command (a Command in proto JSON), cancel_logs, "
                         "raw_b64, or special (undecodable, unknown_command, unknown_control, "
                         "oversize_deploy)")

    def oversize_deploy(self, cid, now, args):
        what = args.get("what", "compose")
        d = pb.Deploy(stack=args.get("stack", "oversize"), generation=int(args.get("generation", 1)))
        head = "services:\n  big:\n    image: busybox\n"
        if what == "compose":
            # One byte over 1 MiB, in comment lines.
            pad = COMPOSE_MAX + 1 - len(head)
            d.compose = head + ("#" * 1023 + "\n") * (pad // 1024) + "#" * (pad % 1024)
        elif what == "files":
            d.compose = head
            for i in range(FILES_MAX // MiB):
                d.files.add(name=f"f{i}", content=b"x" * MiB)
            d.files.add(name="one-too-many", content=b"x")
        elif what == "variables":
            d.compose = head
            for i in range(VARIABLES_MAX // VARIABLE_MAX + 1):
                d.variables.add(name=f"V{i}", value="v" * VARIABLE_MAX)
        else:
            raise AdminError(400, f"oversize_deploy: what={what!r}: compose, files or variables")
        cmd = pb.Command(command_id=cid, issued_at_ms=now, deploy=d)
        return {"data": pb.ControlMessage(command=cmd).SerializeToString(), "command_id": cid,
                "kind": "deploy", "oversize": what}

    # -- the admin interface
    async def admin(self, method, path, args):
        routes = {
            ("GET", "/status"): self.a_status,
            ("GET", "/ca"): self.a_ca,
            ("POST", "/token"): self.a_token,
            ("POST", "/send"): self.a_send,
            ("GET", "/events"): self.a_events,
            ("POST", "/events"): self.a_events,
            ("POST", "/wait"): self.a_wait,
            ("GET", "/config"): self.a_config,
            ("POST", "/config"): self.a_config,
            ("POST", "/drop"): self.a_drop,
            ("POST", "/sign"): self.a_sign,
        }
        fn = routes.get((method, path))
        if fn is None:
            raise AdminError(404, f"{method} {path}: no such admin call; see tests/cpsim/README.md")
        r = fn(args)
        return await r if asyncio.iscoroutine(r) else r

    def a_status(self, args):
        return {"pid": os.getpid(), "boot": self.boot, "ports": self.ports,
                "last_seq": self.journal.seq,
                "streams": {a: {"stream": s.id, "peer": s.peer, "opened_at": s.opened_at,
                                "messages": s.messages} for a, s in self.streams.items()},
                "pending": {a: len(o.items) for a, o in self.outbound.items() if o.items},
                "agents": self.state.agents, "config": self.state.config}

    def a_ca(self, args):
        return {"ca_pem": self.pki.ours.ca_pem.decode(),
                "other_ca_pem": self.pki.other.ca_pem.decode()}

    def a_token(self, args):
        token = args.get("token") or "axt_" + secrets.token_urlsafe(24)
        if not 1 <= len(token.encode()) <= TOKEN_MAX:
            raise AdminError(400, f"token: 1..{TOKEN_MAX} bytes")
        if token in self.state.tokens:
            raise AdminError(409, "token: already issued")
        agent_id = args.get("agent_id") or new_id("agent")
        ttl = float(args.get("ttl_s", 3600))
        lifetime = args.get("cert_lifetime_s")
        rec = {"agent_id": agent_id, "created_at_ms": now_ms(),
               "expires_at_ms": now_ms() + int(ttl * 1000),
               "cert_lifetime_s": int(lifetime) if lifetime else None,
               "used_at_ms": 0, "used_by": ""}
        self.state.tokens[token] = rec
        self.state.save()
        self.record("token", agent_id=agent_id, expires_at_ms=rec["expires_at_ms"],
                    cert_lifetime_s=rec["cert_lifetime_s"])
        return dict(rec, token=token)

    def a_send(self, args):
        agent_id = args.get("agent_id")
        if not agent_id:
            raise AdminError(400, "send: agent_id is required")
        item = self.build(args)
        if len(item["data"]) > SEND_MAX:
            raise AdminError(400, f"send: message of {len(item['data'])} bytes, more than the "
                             f"agent's limit {SEND_MAX}")
        self.outbound[agent_id].put(item)
        self.record("queued", agent_id=agent_id, command_id=item["command_id"],
                    kind=item["kind"], size=len(item["data"]))
        return {"command_id": item["command_id"], "kind": item["kind"],
                "size": len(item["data"]), "queued": len(self.outbound[agent_id].items),
                "connected": agent_id in self.streams}

    def a_events(self, args):
        flt = Filter(args)
        evs = self.journal.select(flt)
        limit = int(args.get("limit", 0) or 0)
        if limit:
            evs = evs[-limit:]
        return {"events": evs, "last_seq": self.journal.seq}

    async def a_wait(self, args):
        flt = Filter(args)
        count = int(args.get("count", 1))
        timeout = min(float(args.get("timeout", 10)), WAIT_MAX_S)
        end = time.monotonic() + timeout
        while True:
            evs = self.journal.select(flt)
            if len(evs) >= count:
                return {"events": evs[:count] if args.get("first") else evs,
                        "last_seq": self.journal.seq}
            left = end - time.monotonic()
            if left <= 0:
                return {"timeout": True, "events": evs, "last_seq": self.journal.seq,
                        "error": f"timed out after {timeout} s waiting for {count} event(s) "
                                 f"matching {json.dumps(args, sort_keys=True)}; "
                                 f"{len(evs)} matched"}
            await self.journal.changed(left)

    def a_config(self, args):
        cfg = self.state.config
        for k in ("client_ca", "server_cert"):
            if k in args:
                self.pki.authority(args[k])  # checks the name
                cfg[k] = args[k]
        if "cert_lifetime_s" in args:
            cfg["cert_lifetime_s"] = int(args["cert_lifetime_s"])
        if "resend_on_hello" in args:
            cfg["resend_on_hello"] = bool(args["resend_on_hello"])
        for a in args.get("revoke", []):
            if a not in cfg["revoked"]:
                cfg["revoked"].append(a)
        for a in args.get("unrevoke", []):
            if a in cfg["revoked"]:
                cfg["revoked"].remove(a)
        for a, life in (args.get("agent_cert_lifetime_s") or {}).items():
            self.state.agents.setdefault(a, {})["cert_lifetime_s"] = int(life)
        self.state.save()
        if args:
            self.record("config", config=dict(cfg))
        for a in args.get("revoke", []):
            if a in self.streams:
                self.streams[a].request_end(grpc.StatusCode.PERMISSION_DENIED, "cert-revoked",
                                            f"the certificate of agent {a} was revoked")
        return {"config": cfg}

    def a_drop(self, args):
        code = args.get("code", "UNAVAILABLE")
        try:
            status = grpc.StatusCode[code]
        except KeyError:
            raise AdminError(400, f"drop: code {code!r} is no gRPC status name") from None
        n = 0
        for a, s in list(self.streams.items()):
            if args.get("agent_id") in (None, a):
                s.request_end(status, "dropped", args.get("message", "dropped by the simulator"))
                n += 1
        return {"dropped": n}

    def a_sign(self, args):
        """Signs a CSR outside enrollment: with ca=other, a certificate of the foreign CA."""
        try:
            cert, start, end = self.pki.authority(args.get("ca", "ours")).sign_csr(
                args["csr_pem"].encode(), args.get("agent_id", "agent-foreign"),
                int(args.get("lifetime_s", 3600)))
        except (KeyError, ValueError) as e:
            raise AdminError(400, f"sign: {e}") from None
        return {"cert_pem": cert.decode(), "not_after_at_ms": int(end.timestamp() * 1000)}

    async def admin_conn(self, reader, writer):
        status, out = 200, {}
        try:
            line = await asyncio.wait_for(reader.readline(), 30)
            parts = line.decode("latin-1").split()
            if len(parts) != 3:
                raise AdminError(400, "not an HTTP request")
            method, target = parts[0], parts[1]
            headers = {}
            while True:
                h = await asyncio.wait_for(reader.readline(), 30)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0"))
            if n > ADMIN_BODY_MAX:
                raise AdminError(413, f"request body of {n} bytes, more than {ADMIN_BODY_MAX}")
            body = await asyncio.wait_for(reader.readexactly(n), 60) if n else b""
            url = urllib.parse.urlsplit(target)
            args = json.loads(body) if body else {}
            if not isinstance(args, dict):
                raise AdminError(400, "the body must be a JSON object")
            args.update(urllib.parse.parse_qsl(url.query))
            out = await self.admin(method, url.path, args)
        except AdminError as e:
            status, out = e.status, {"error": str(e)}
        except (ValueError, TypeError, KeyError) as e:
            status, out = 400, {"error": f"{type(e).__name__}: {e}"}
        except Exception as e:  # noqa: BLE001 - the admin must answer, whatever broke
            status, out = 500, {"error": f"{type(e).__name__}: {e}"}
        data = json.dumps(out).encode()
        reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict",
                   413: "Payload Too Large", 500: "Internal Server Error"}
        try:
            writer.write(f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                         "Connection: close\r\n\r\n".encode() + data)
            await writer.drain()
            writer.close()
        except OSError:
            pass


# ---- main --------------------------------------------------------------------------------------

def server_options(args):
    opts = [
        ("grpc.so_reuseport", 0),  # never share a port with another simulator
        ("grpc.max_receive_message_length", AGENT_MESSAGE_MAX),
        ("grpc.max_send_message_length", SEND_MAX),
        ("grpc.keepalive_time_ms", 30000),  # the server pings a silent agent too
        ("grpc.keepalive_timeout_ms", 10000),
    ]
    if not args.strict_pings:
        # An agent pings every 10-30 s, also without calls: permit any rate (gRPC's default
        # refuses pings more often than every 5 min without data: "too_many_pings").
        opts += [("grpc.keepalive_permit_without_calls", 1),
                 ("grpc.http2.min_ping_interval_without_data_ms", 1000),
                 ("grpc.http2.max_ping_strikes", 0)]
    return opts


def handlers(sim, endpoint):
    def bind(fn):
        async def call(request, context):
            return await fn(endpoint, request, context)
        return call
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Enroll": grpc.unary_unary_rpc_method_handler(bind(sim.enroll)),
        "Renew": grpc.unary_unary_rpc_method_handler(bind(sim.renew)),
        "Connect": grpc.stream_stream_rpc_method_handler(bind(sim.connect)),
    })


def previous_ports(state):
    try:
        with open(os.path.join(state, "ports.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="cpsim.py", description="Control Plane simulator for axion-agent (loopback only). "
        "Ports not given are those of the last run in STATE, else chosen by the system; "
        "STATE/ports.json says which.")
    ap.add_argument("--state", required=True, help="state dir: CA, tokens, journal, ports")
    ap.add_argument("--host", default="127.0.0.1", help="a loopback address (default 127.0.0.1)")
    ap.add_argument("--enroll-port", type=int, help="Enroll, server-TLS")
    ap.add_argument("--control-port", type=int, help="Renew and Connect, mTLS")
    ap.add_argument("--admin-port", type=int, help="the JSON admin interface, HTTP")
    ap.add_argument("--token", action="append", default=[], metavar="TOKEN[=AGENT_ID]",
                    help="make TOKEN a valid enrollment token (valid 24 h; repeatable)")
    ap.add_argument("--cert-lifetime", type=int, metavar="S",
                    help="lifetime of issued certificates in seconds (default 86400; kept)")
    ap.add_argument("--strict-pings", action="store_true",
                    help="gRPC's default ping policy, which refuses agent keepalives")
    ap.add_argument("--grace", type=float, default=1.0, help="seconds to finish on SIGTERM")
    ap.add_argument("--quiet", action="store_true", help="do not log each heartbeat")
    args = ap.parse_args(argv)
    try:
        ok = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        ok = args.host == "localhost"
    if not ok:
        ap.error(f"--host {args.host}: the simulator listens only on loopback addresses")
    return args


async def amain(args):
    os.makedirs(args.state, exist_ok=True)
    sim = Simulator(args)
    prev = previous_ports(args.state)
    for t in args.token:
        tok, _, agent = t.partition("=")
        if tok not in sim.state.tokens:
            sim.a_token({"token": tok, "agent_id": agent or None, "ttl_s": 86400})
    ports = {}
    servers = []
    for endpoint, client_auth in (("enroll", False), ("control", True)):
        srv = grpc.aio.server(options=server_options(args))
        srv.add_generic_rpc_handlers((handlers(sim, endpoint),))
        creds = grpc.dynamic_ssl_server_credentials(
            sim.tls_config(endpoint), sim.tls_fetcher(endpoint),
            require_client_authentication=client_auth)
        want = getattr(args, f"{endpoint}_port")
        if want is None:
            want = prev.get(endpoint, 0)
        try:
            port = srv.add_secure_port(f"{args.host}:{want}", creds)
        except RuntimeError as e:
            raise SystemExit(f"cpsim: cannot listen on {args.host}:{want} ({endpoint}): {e}")
        if not port:
            raise SystemExit(f"cpsim: cannot listen on {args.host}:{want} ({endpoint})")
        ports[endpoint] = port
        servers.append(srv)
    want = args.admin_port if args.admin_port is not None else prev.get("admin", 0)
    try:
        admin = await asyncio.start_server(sim.admin_conn, args.host, want)
    except OSError as e:
        raise SystemExit(f"cpsim: cannot listen on {args.host}:{want} (admin): {e}")
    ports["admin"] = admin.sockets[0].getsockname()[1]
    sim.ports = ports
    for srv in servers:
        await srv.start()
    sim.record("sim_start", pid=os.getpid(), ports=ports, grpc=grpc.__version__)
    info = dict(ports, host=args.host, pid=os.getpid(), boot=sim.boot)
    pkimod.write_file(os.path.join(args.state, "ports.json"), json.dumps(info).encode())
    log(f"listening on {args.host}: enroll {ports['enroll']} (server-TLS), control "
        f"{ports['control']} (mTLS), admin {ports['admin']} (HTTP); state {args.state}")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    log(f"stopping (grace {args.grace} s)")
    for s in list(sim.streams.values()):
        s.request_end(grpc.StatusCode.UNAVAILABLE, "shutdown", "the simulator is stopping")
    admin.close()
    await asyncio.gather(*(srv.stop(args.grace) for srv in servers))
    sim.record("sim_stop")


def main(argv=None):
    global pb
    args = parse_args(sys.argv[1:] if argv is None else argv)
    pb = protos.load()
    asyncio.run(amain(args))
