"""The Suricata rules file: decoder rules (one set per engine, by `requires:`) and the
signature rules, rendered from the spec and the render options; and the revs they carry,
read from the rev lock (lock.py) against the rules rendered with the spec's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ...spec import DecoderRule, Options, Rule, Signature, Spec, rule_sid
from .. import lock
from ..common import (
    Names,
    banner,
    environment,
    listener_header,
    metadata,
    options_line,
    port_ranges,
    rule_lines,
    session_bit,
)

_env = environment(Path(__file__).resolve().parent / "templates")


def _keywords(spec: Spec, rule: Rule, opts: Options, names: Names, matches: str,
              direction: str) -> str:
    """What a signature rule tests: the packets its decoder rules ran on (UDP datagrams
    that can hold a message; TCP segments with data, since a message may be split
    across segments) and the decoder's per-packet verdict. The `ip` rule of the scan
    count sees packets the decoder did not run on too, so it consumes the verdict.
    The scan rule only looks at packets to servers, where attempts are counted.
    Switched to drop by block_tcp, a TCP rule drops every segment with data of a session
    that carried a valid message: retransmissions and bytes sent behind it too."""
    verdict = f"flowint:{getattr(names, matches)},>,0; "
    if rule.blocks_session(opts):
        verdict = f"flowint:{names.session},>,0; "
    if rule.transport == "udp":
        return f"flow:{direction}; dsize:>={spec.protocol.min_message}; {verdict}"
    if rule.transport == "tcp":
        return f"flow:established,{direction}; dsize:>0; {verdict}"
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
    return f"[{port_ranges(ranges, ',')}]"


def _ports(spec: Spec) -> str:
    """Suricata port list of the listener ports the blacklist allows, in at most
    decoder.port_ranges ranges (and short enough for Suricata): the narrowest blacklisted
    gaps are let through, and the decoder tests the blacklist again, exactly."""
    ranges = spec.protocol.listener_ports()
    while len(ranges) > spec.decoder.port_ranges or len(_port_list(ranges)) > MAX_PORT_LIST:
        gaps = [(ranges[i + 1][0] - ranges[i][1], i) for i in range(len(ranges) - 1)]
        _, i = min(gaps)
        ranges[i : i + 2] = [(ranges[i][0], ranges[i + 1][1])]
    return _port_list(ranges)


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
        bit = session_bit(spec, sig)
        return f"flowbits:isnotset,{bit}; flowbits:set,{bit}; "
    return ""


def action(rule: Rule, opts: Options) -> str:
    return "drop" if rule.blocks_session(opts) else rule.action


def rule_name(rule: Rule | DecoderRule, spec: Spec) -> str:
    """A rule's name in the rev lock: Signature/transport, or decoder/transport/direction."""
    if isinstance(rule, DecoderRule):
        return f"decoder/{rule.engine.name}/{rule.transport}/{rule.role}"
    sig = next(s for s in spec.signatures if rule in s.rules)
    return f"{sig.name}/{rule.transport}"


def all_rules(spec: Spec) -> list[Rule | DecoderRule]:
    return [*spec.decoder.rules, *(r for s in spec.signatures for r in s.rules)]


def default_rules(spec: Spec) -> dict[int, tuple[str, str]]:
    """sid -> (lock name, rule text) of the ruleset rendered with the spec's defaults:
    what the rev lock hashes."""
    opts = spec.defaults
    lines = rule_lines(render_rules(spec, opts, {}))
    sids = {rule_sid(opts, r): rule_name(r, spec) for r in all_rules(spec)}
    return {sid: (name, lines[sid]) for sid, name in sids.items()}


def current_revs(spec: Spec) -> dict[int, int]:
    """Rev of each rule, by sid offset, from the lock beside the spec (read only)."""
    locked = lock.read_lock(lock.lock_path(spec.source))
    by_sid = lock.resolve(locked, default_rules(spec)).revs
    return {r.sid_offset: by_sid[rule_sid(spec.defaults, r)] for r in all_rules(spec)}


def render_rules(spec: Spec, opts: Options, revs: Mapping[int, int] | None = None) -> str:
    """The rules file. `revs` maps sid offsets to revs; by default they come from the
    rev lock. A rule missing from it renders rev 0, which only the lock's hashing uses."""
    revs = current_revs(spec) if revs is None else revs
    names = Names.of(spec)
    ports = _ports(spec)  # one port list for every rule
    return _env.get_template("rules.j2").render(
        banner=banner(spec),
        options_line=options_line(opts),
        spec=spec,
        o=opts,
        names=names,
        # only packets whose listener end is on a port the blacklist allows reach Lua
        header=lambda direction: listener_header(direction, opts.src_net, opts.dst_net, ports),
        sides=spec.sides,
        decoder_keywords=lambda d: _decoder_keywords(spec, d, names),
        keywords=lambda s, r, side: _keywords(spec, r, opts, names, s.matches, side.direction),
        sid=lambda rule: rule_sid(opts, rule),
        rev=lambda rule: revs.get(rule.sid_offset, 0),
        action=lambda rule: action(rule, opts),
        report=lambda sig, rule: _report_keywords(spec, sig, rule, opts),
        metadata=lambda sig: metadata(spec, sig),
    )
