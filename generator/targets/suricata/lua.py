"""The Lua decoder script of one Suricata engine, from templates/lua/decoder.lua.j2: the
parts every engine shares (frame.lua.j2, stream.lua.j2, ports.lua.j2, match.lua.j2) and the
engine's own primitives (luajit.lua.j2, lua54.lua.j2: cipher, checksum, bit operations) and
adapter (suricata7.lua.j2, suricata8.lua.j2: buffers, flowints, flowvars)."""

from __future__ import annotations

from pathlib import Path

from ...spec import EngineTarget, Options, Spec, rule_sid
from ..common import Names, banner, environment

_env = environment(Path(__file__).resolve().parent / "templates")

# What setting up a frame counts as against the per-call budget, in bytes deciphered,
# so that the budget bounds a call's VM instructions however the bytes are cut into
# messages. Measured under Lua 5.4 (count hook, Suricata 8's script): a data block costs
# about 9 instructions a byte; a 56-byte message with every fixed block about 1,090 (of
# which its 40 hashed bytes count as work), a 14-byte one about 450. At 64, a 20,000-byte
# budget spends at most about 210,000.
FRAME_COST = 64


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
