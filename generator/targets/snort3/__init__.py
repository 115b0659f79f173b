"""The Snort 3 target: the signatures as Snort 3 rules calling one LuaJIT IPS option
(render.py, templates/), the shared decoder with a Snort adapter (templates/lua/), a
snippet an operator adds to snort.lua, and a standalone configuration for the tests."""

from .render import render_snort3, snort3_rules

__all__ = ["render_snort3", "snort3_rules"]
