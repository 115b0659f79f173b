"""The Lua decoder every engine runs, written once as template partials
(templates/lua/): decoder.lua.j2 assembles the protocol constants (protocol.lua.j2), one
primitives partial per Lua (luajit, lua54: cipher, checksum, bit operations), the frame
and stream parts, the raw-packet and port-generator parts where the engine has them, and
the verdict (match.lua.j2). Each target supplies, from its own templates folder (searched
first), the about text (lua/about.lua.j2), the adapter (lua/<engine>.lua.j2: buffers, flow
state, the packet's mode) and the entry point of its family (lua/entry-<family>.lua.j2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jinja2

from ...spec import DecoderRule, EngineTarget, Options, Snort3Target, Spec
from ..common import Names, banner, environment

TEMPLATES = Path(__file__).resolve().parent / "templates"

# What setting up a frame counts as against the per-call budget, beside its hashed bytes,
# so that the budget bounds a call's VM instructions however the bytes are cut into
# messages. Measured under Lua 5.4 (count hook, Suricata 8's script, bench.luacount's
# adversarial cases): a data block costs about 9 instructions a byte, and a segment packed
# with messages that carry every block and a short data block costs the most per byte;
# at 64 such a segment reached 190,000 instructions, at 96 every case stays at or under
# about 175,000 (a datagram or data block at the budget).
FRAME_COST = 96


def decoder_environment(target_templates: Path) -> jinja2.Environment:
    """A target's jinja environment: its own templates first, then the shared partials."""
    env = environment(target_templates)
    env.loader = jinja2.ChoiceLoader([env.loader, jinja2.FileSystemLoader(TEMPLATES)])
    return env


def render_decoder(
    env: jinja2.Environment,
    spec: Spec,
    opts: Options,
    engine: EngineTarget | Snort3Target,
    rules: tuple[DecoderRule, ...],
    mode_key: Callable[[DecoderRule], str],
    **extra: object,
) -> str:
    """One engine's decoder script. `rules` are the packet roles it tells apart (MODES),
    each keyed in the script by `mode_key`; `extra` goes to the target's own partials."""
    return env.get_template("lua/decoder.lua.j2").render(
        banner=banner(spec),
        engine=engine,
        rules=rules,
        mode_key=mode_key,
        p=spec.protocol,
        d=spec.decoder,
        frame_cost=FRAME_COST,
        o=opts,
        names=Names.of(spec),
        **extra,
    )
