"""Renderers: each output is a small function of the Spec and the render Options."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import jinja2

from . import revs as revs_mod
from .spec import DecoderRule, EngineTarget, Options, Rule, Signature, Spec, rule_sid

TEMPLATES = Path(__file__).resolve().parent / "templates"
BANNER = "Generated from {source} by `cfp2p render`; do not edit: change the spec and render."

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
    autoescape=False,
)


@dataclass(frozen=True)
class Names:
    """Names of the flowints, flowvars and flowbits the rules and the decoder share."""

    decoded: str  # never set: makes Suricata run the decoder rules first
    control: str  # per packet: valid control messages
    data: str  # per packet: valid data-transfer messages
    any: str  # per packet: valid messages of either kind
    scan: str  # per packet: 1 for an attempt on a computed port
    syn: str  # per flow: connection attempts the decoder has seen
    session: str  # per flow: 1 once the flow carried a valid message
    skip: str  # per flow: 1 once the flow showed it is not Conficker
    flags: str  # flowvar: flags of the last valid message
    kind: str  # flowvar: control or data
    port_match: str  # flowvar: whether the listener port is a computed port
    seq_to_server: str  # per flow: sequence number the client's data starts at (SYN)
    seq_to_client: str  # per flow: sequence number the server's data starts at (SYN-ACK)

    @classmethod
    def of(cls, spec: Spec) -> Names:
        p = spec.pack.flowint_prefix
        return cls(**{f.name: f"{p}_{f.name}" for f in fields(cls)} | {"any": f"{p}_messages"})


def _keywords(spec: Spec, rule: Rule, opts: Options, names: Names, matches: str) -> str:
    """What a signature rule tests: the packets its decoder rules ran on (UDP datagrams
    that can hold a message; TCP segments with data, since a message may be split
    across segments) and the decoder's per-packet verdict. The `ip` rule of the scan
    count sees packets the decoder did not run on too, so it consumes the verdict.
    The scan rule only looks at packets to servers, where attempts are counted.
    Switched to drop by block_tcp, a TCP rule drops every segment with data of a session
    that carried a valid message: retransmissions and bytes sent behind it too."""
    verdict = f"flowint:{getattr(names, matches)},>,0; "
    if rule.drop_when_block_tcp and opts.block_tcp:
        verdict = f"flowint:{names.session},>,0; "
    if rule.transport == "udp":
        return f"dsize:>={spec.protocol.min_message}; {verdict}"
    if rule.transport == "tcp":
        return f"flow:established; dsize:>0; {verdict}"
    # Attempts are only ever counted on packets to the server: the rule is then left out
    # of the detection groups for packets to clients.
    return f"flow:to_server; {verdict}flowint:{getattr(names, matches)},=,0; "


def _decoder_keywords(spec: Spec, d: DecoderRule, names: Names) -> str:
    if d.syn:
        flags = "S" if d.direction == "to_server" else "SA"
        return f"flow:{d.direction},not_established; flags:{flags},CE; "
    if d.transport == "tcp":
        return f"flow:established,{d.direction}; dsize:>0; flowint:{names.skip},notset; "
    return f"flow:{d.direction}; dsize:>={spec.protocol.min_message}; flowint:{names.skip},notset; "


# Suricata rejects a longer port list (measured: 1,093 characters fail on 7.0.10).
MAX_PORT_LIST = 1000


def _port_list(ranges: list[tuple[int, int]]) -> str:
    return "[" + ",".join(f"{a}:{b}" if a != b else str(a) for a, b in ranges) + "]"


def _ports(spec: Spec) -> str:
    """Suricata port list of the listener ports the blacklist allows. Where the exact
    list is too long for Suricata, the narrowest blacklisted gaps are let through:
    the decoder tests the blacklist again, exactly."""
    ranges = spec.protocol.listener_ports()
    while len(_port_list(ranges)) > MAX_PORT_LIST:
        gaps = [(ranges[i + 1][0] - ranges[i][1], i) for i in range(len(ranges) - 1)]
        _, i = min(gaps)
        ranges[i : i + 2] = [(ranges[i][0], ranges[i + 1][1])]
    return _port_list(ranges)


def _banner(spec: Spec) -> str:
    # The file name only: the output must not depend on where the spec was read from.
    return BANNER.format(source=Path(spec.source).name)


def options_line(opts: Options) -> str:
    return ", ".join(f"{f.name}={getattr(opts, f.name)}" for f in fields(opts))


def _report_keywords(spec: Spec, sig: Signature, rule: Rule, opts: Options) -> str:
    if rule.report == "once_per_source":
        return f"threshold:type limit, track by_src, count 1, seconds {opts.report_interval}; "
    if rule.report == "after_scan_count":
        return (
            f"threshold:type both, track by_src, count {opts.scan_count}, "
            f"seconds {opts.scan_seconds}; "
        )
    if rule.report == "once_per_flow" and action(rule, opts) == "alert":
        # As a drop rule (block_tcp) it must match every segment of the session, so
        # that a retransmitted one is dropped again: then it reports each one.
        bit = f"{spec.pack.flowint_prefix}.{sig.name}"
        return f"flowbits:isnotset,{bit}; flowbits:set,{bit}; "
    return ""


def _metadata(spec: Spec, sig: Signature) -> str:
    items = dict(spec.metadata)
    items.update(
        signature_severity=sig.severity,
        created_at=sig.created_at.replace("-", "_"),
        updated_at=sig.updated_at.replace("-", "_"),
    )
    return ", ".join(f"{k} {v}" for k, v in sorted(items.items()))


def action(rule: Rule, opts: Options) -> str:
    return "drop" if rule.drop_when_block_tcp and opts.block_tcp else rule.action


def _decoder_header(d: DecoderRule, opts: Options, ports: str) -> str:
    """Only packets whose listener end is on a port the blacklist allows reach Lua."""
    if d.direction == "to_server":
        return f"{opts.src_net} any -> {opts.dst_net} {ports}"
    return f"{opts.src_net} {ports} -> {opts.dst_net} any"


def rule_name(rule: Rule | DecoderRule, spec: Spec) -> str:
    """A rule's name in the rev lock: Signature/transport, or decoder/transport/direction."""
    if isinstance(rule, DecoderRule):
        what = (
            ("syn" if rule.direction == "to_server" else "synack") if rule.syn else rule.direction
        )
        return f"decoder/{rule.engine.name}/{rule.transport}/{what}"
    sig = next(s for s in spec.signatures if rule in s.rules)
    return f"{sig.name}/{rule.transport}"


def all_rules(spec: Spec) -> list[Rule | DecoderRule]:
    return [*spec.decoder.rules, *(r for s in spec.signatures for r in s.rules)]


_SID = re.compile(r"[(; ]sid:(\d+);")


def rule_lines(text: str) -> dict[int, str]:
    """The rules of a rendered rules file, by sid."""
    found = (_SID.search(line) for line in text.splitlines() if not line.startswith("#"))
    return {int(m[1]): m.string for m in found if m}


def default_rules(spec: Spec) -> dict[int, tuple[str, str]]:
    """sid -> (lock name, rule text) of the ruleset rendered with the spec's defaults:
    what the rev lock hashes."""
    opts = spec.defaults
    lines = rule_lines(render_rules(spec, opts, {}))
    sids = {rule_sid(opts, r): rule_name(r, spec) for r in all_rules(spec)}
    return {sid: (name, lines[sid]) for sid, name in sids.items()}


def current_revs(spec: Spec) -> dict[int, int]:
    """Rev of each rule, by sid offset, from the lock beside the spec (read only)."""
    lock = revs_mod.read_lock(revs_mod.lock_path(spec.source))
    by_sid = revs_mod.resolve(lock, default_rules(spec)).revs
    return {r.sid_offset: by_sid[rule_sid(spec.defaults, r)] for r in all_rules(spec)}


def render_rules(spec: Spec, opts: Options, revs: Mapping[int, int] | None = None) -> str:
    """The rules file. `revs` maps sid offsets to revs; by default they come from the
    rev lock. A rule missing from it renders rev 0, which only the lock's hashing uses."""
    revs = current_revs(spec) if revs is None else revs
    names = Names.of(spec)
    ports = _ports(spec)  # one port list for every decoder rule
    return _env.get_template("rules.j2").render(
        banner=_banner(spec),
        options_line=options_line(opts),
        spec=spec,
        o=opts,
        names=names,
        decoder_header=lambda d: _decoder_header(d, opts, ports),
        decoder_keywords=lambda d: _decoder_keywords(spec, d, names),
        keywords=lambda s, r: _keywords(spec, r, opts, names, s.matches),
        sid=lambda rule: rule_sid(opts, rule),
        rev=lambda rule: revs.get(rule.sid_offset, 0),
        action=lambda rule: action(rule, opts),
        report=lambda sig, rule: _report_keywords(spec, sig, rule, opts),
        metadata=lambda sig: _metadata(spec, sig),
    )


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
        banner=_banner(spec),
        engine=engine,
        rules=spec.decoder.rules_of(engine),
        p=spec.protocol,
        d=spec.decoder,
        frame_cost=FRAME_COST,
        o=opts,
        names=Names.of(spec),
        sid=lambda rule: rule_sid(opts, rule),
    )


def render(spec: Spec, opts: Options, revs: Mapping[int, int] | None = None) -> dict[str, str]:
    """Every rendered file, by its path relative to the output folder. Revs (by sid
    offset) come from the rev lock beside the spec unless given."""
    from .docs import render_docs  # docs builds on this module

    revs = current_revs(spec) if revs is None else revs
    return {
        f"rules/{spec.pack.rules_file}": render_rules(spec, opts, revs),
        **{f"lua/{e.lua_script}": render_lua(spec, opts, e) for e in spec.decoder.engines},
        **{f"docs/{rel}": text for rel, text in render_docs(spec, opts, revs).items()},
    }


def write_tree(files: dict[str, str], out: Path) -> None:
    """Write the files under `out` all at once: into a temporary folder first, then
    move each top-level folder into place, so that a failure leaves no partial output."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".render-") as tmp:
        for rel, text in files.items():
            path = Path(tmp, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for top in sorted({Path(rel).parts[0] for rel in files}):
            dest = out / top
            if dest.exists():
                old = Path(tmp, f".old-{top}")
                dest.rename(old)
            Path(tmp, top).rename(dest)


__all__ = [
    "render",
    "render_rules",
    "render_lua",
    "default_rules",
    "current_revs",
    "rule_lines",
    "rule_name",
    "write_tree",
    "Names",
    "options_line",
]
