"""The Lua decoder script of one Suricata engine, from templates/lua/decoder.lua.j2: the
parts every engine shares (frame.lua.j2, stream.lua.j2, packet.lua.j2, ports.lua.j2,
match.lua.j2) and the
engine's own primitives (luajit.lua.j2, lua54.lua.j2: cipher, checksum, bit operations) and
adapter (suricata7.lua.j2, suricata8.lua.j2: buffers, flowints, flowvars)."""

from __future__ import annotations

from pathlib import Path

from ...spec import EngineTarget, Options, Spec, rule_sid
from ..common import Names, banner, environment

_env = environment(Path(__file__).resolve().parent / "templates")

# What setting up a frame counts as against the per-call budget, beside its hashed bytes,
# so that the budget bounds a call's VM instructions however the bytes are cut into
# messages. Measured under Lua 5.4 (count hook, Suricata 8's script, bench.luacount's
# adversarial cases): a data block costs about 9 instructions a byte, and a segment packed
# with messages that carry every block and a short data block costs the most per byte;
# at 64 such a segment reached 190,000 instructions, at 96 every case stays at or under
# about 175,000 (a datagram or data block at the budget).
FRAME_COST = 96


def render_lua(spec: Spec, opts: Options, engine: EngineTarget) -> str:
    """The decoder script of one engine: the shared parts and the engine's own
    primitives (cipher, checksum, bit operations) and adapter (buffers, flowints)."""
    return _env.get_template("lua/decoder.lua.j2").render(
        banner=banner(spec),
        engine=engine,
        rules=spec.decoder.rules_of(engine),
        p=spec.protocol,
        d=spec.decoder,
        frame_cost=FRAME_COST,
        o=opts,
        names=Names.of(spec),
        sid=lambda rule: rule_sid(opts, rule),
    )
