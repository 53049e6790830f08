"""The Python classes of the project's protos, generated at run time from proto/ with
grpc_tools.protoc into a cache dir (never committed), keyed by a hash of the .proto files and
the grpcio-tools version, so a changed proto is picked up by the next run.

    from cpsim import protos
    pb = protos.load()
    pb.Command, pb.ControlMessage, pb.AgentMessage, pb.TelemetryBatch, ...

Cache: $AXION_CPSIM_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/axion-agent/cpsim-protos.
"""

import hashlib
import importlib
import os
import shutil
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
# Each generated module, by the file it comes from (relative to proto/).
MODULES = {
    "axion/agent/v1/commands.proto": "axion.agent.v1.commands_pb2",
    "axion/agent/v1/deploy.proto": "axion.agent.v1.deploy_pb2",
    "axion/agent/v1/control.proto": "axion.agent.v1.control_pb2",
    "telemetry.proto": "telemetry_pb2",
}

_loaded = None


def _cache_dir():
    if os.environ.get("AXION_CPSIM_CACHE"):
        return os.environ["AXION_CPSIM_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "axion-agent", "cpsim-protos")


def _proto_files(root):
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(".proto"):
                out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


def generate(root=PROTO_ROOT):
    """Generates the modules (if the cache has no current copy) and returns their directory."""
    from grpc_tools import protoc
    import grpc_tools

    files = _proto_files(root)
    if not files:
        raise RuntimeError(f"{root}: no .proto files")
    h = hashlib.sha256()
    h.update(getattr(grpc_tools, "__version__", "").encode())
    try:
        from importlib.metadata import version
        h.update(version("grpcio-tools").encode())
    except Exception:  # noqa: BLE001 - the version only refines the key
        pass
    for f in files:
        h.update(f.encode() + b"\0")
        with open(os.path.join(root, f), "rb") as fh:
            h.update(fh.read() + b"\0")
    out = os.path.join(_cache_dir(), h.hexdigest()[:20])
    if os.path.exists(os.path.join(out, ".complete")):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".gen-", dir=os.path.dirname(out))
    try:
        include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
        args = ["grpc_tools.protoc", f"--proto_path={root}", f"--proto_path={include}",
                f"--python_out={tmp}"] + [os.path.join(root, f) for f in files]
        rc = protoc.main(args)
        if rc != 0:
            raise RuntimeError(f"grpc_tools.protoc failed on {root} (exit {rc}); see above")
        open(os.path.join(tmp, ".complete"), "w").close()
        try:
            os.rename(tmp, out)
        except OSError:
            if not os.path.exists(os.path.join(out, ".complete")):
                raise
            # another process made it first: theirs is the same
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def load(root=PROTO_ROOT):
    """Imports the generated modules; returns a namespace with every message and enum of the
    axion.agent.v1 package as attributes (pb.Command, pb.Outcome, pb.OUTCOME_DONE, ...), and
    the modules as pb.commands, pb.deploy, pb.control, pb.telemetry."""
    global _loaded
    if _loaded is not None:
        return _loaded
    out = generate(root)
    if out not in sys.path:
        sys.path.insert(0, out)
    ns = types.SimpleNamespace()
    for rel, mod in MODULES.items():
        if not os.path.exists(os.path.join(root, rel)):
            continue
        m = importlib.import_module(mod)
        setattr(ns, mod.rsplit(".", 1)[-1].replace("_pb2", ""), m)
        for name in dir(m):
            if not name.startswith("_") and name not in ("DESCRIPTOR", "sys"):
                setattr(ns, name, getattr(m, name))
    _loaded = ns
    return ns
