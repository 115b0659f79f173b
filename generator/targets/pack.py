"""The whole rendered pack (`cfp2p render`): the Suricata rules and scripts, the Snort 3
files and the docs, by path in one tree, each with the revs of its target's rev lock. It
imports the targets; none of them imports it."""

from __future__ import annotations

from ..spec import Options, Spec
from .docs import render_docs
from .snort3 import render_snort3
from .suricata.lua import render_lua
from .suricata.rules import current_revs, render_rules


def render(spec: Spec, opts: Options) -> dict[str, str]:
    """Every rendered file, by its path relative to the output folder."""
    revs = current_revs(spec)  # the Suricata rules' and their docs'; Snort reads its own
    return {
        f"rules/{spec.pack.rules_file}": render_rules(spec, opts, revs),
        **{f"lua/{e.lua_script}": render_lua(spec, opts, e) for e in spec.decoder.engines},
        **render_snort3(spec, opts),
        **{f"docs/{rel}": text for rel, text in render_docs(spec, opts, revs).items()},
    }
