"""The Lua decoder script of one Suricata engine: the shared decoder (generator.targets.
luadecoder) with this target's adapters (templates/lua/suricata7.lua.j2, suricata8.lua.j2:
buffers, flowints, flowvars) and about text."""

from __future__ import annotations

from pathlib import Path

from ...spec import EngineTarget, Options, Spec, rule_sid
from ..luadecoder import decoder_environment, render_decoder

_env = decoder_environment(Path(__file__).resolve().parent / "templates")

MODES_ABOUT = """This engine's decoder rules (sid -> transport, listener side, whether its packets
are attempts on the destination, whether they are the handshake, the flowint that
holds its direction's first sequence number), so that a Lua state knows which rule
it serves without asking per packet."""


def render_lua(spec: Spec, opts: Options, engine: EngineTarget) -> str:
    """The decoder script of one engine, serving that engine's decoder rules."""
    return render_decoder(
        _env,
        spec,
        opts,
        engine,
        spec.decoder.rules_of(engine),
        lambda rule: str(rule_sid(opts, rule)),
        modes_about=MODES_ABOUT,
    )
