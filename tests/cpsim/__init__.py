"""The Control Plane simulator of axion-agent's tests (tests/cpsim/README.md).

Tests put tests/ on sys.path and import this package; the server runs in a subprocess
(cpsim.py), driven through its JSON admin interface:

    sys.path.insert(0, os.path.join(SOURCE_DIR, "tests"))
    from cpsim import Simulator          # the server as a subprocess + its admin API
    from cpsim import pki, protos        # keys and CSRs; the generated proto classes
"""

from .client import FINAL_OUTCOMES, Admin, SimError, Simulator, Timeout  # noqa: F401
