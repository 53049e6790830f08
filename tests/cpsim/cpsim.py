#!/usr/bin/env python3
"""Runs the Control Plane simulator in the foreground (tests/cpsim/README.md):

    tests/cpsim/cpsim.py --state DIR [--enroll-port P] [--control-port Q] [--admin-port A]
                         [--token TOKEN[=AGENT_ID]] [--cert-lifetime S] [--strict-pings]

Needs grpcio, grpcio-tools and cryptography (tests/requirements.txt; tests/env/venv.sh)."""
import os
import sys

# Import the package, not this file: the package's parent (tests/) first on the path.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from cpsim import server  # noqa: E402

if __name__ == "__main__":
    server.main()
