"""The engine harness bench runs Suricata with: tests/engine/engines.py (ENGINES, each
engine's root, command line and settings; lua_problems, the Lua errors a run's log and
stats show), and the repository root; and Snort 3 with tests/engine/snort_engine.py
(SNORT3, the binary; its version; the Lua errors a run's output shows)."""

from __future__ import annotations

import sys

from bench.inputs import ROOT

sys.path.insert(0, str(ROOT / "tests" / "engine"))
from engines import ENGINES, Engine, lua_problems  # noqa: E402
from snort_engine import SNORT3, pack_args  # noqa: E402
from snort_engine import lua_problems as snort_lua_problems  # noqa: E402
from snort_engine import version as snort_version  # noqa: E402

__all__ = [
    "ENGINES",
    "ROOT",
    "SNORT3",
    "Engine",
    "lua_problems",
    "pack_args",
    "snort_lua_problems",
    "snort_version",
]
