"""The engine harness bench runs Suricata with: tests/engine/engines.py (ENGINES, each
engine's root, command line and settings; lua_problems, the Lua errors a run's log and
stats show), and the repository root."""

from __future__ import annotations

import sys

from bench.inputs import ROOT

sys.path.insert(0, str(ROOT / "tests" / "engine"))
from engines import ENGINES, Engine, lua_problems  # noqa: E402

__all__ = ["ENGINES", "ROOT", "Engine", "lua_problems"]
