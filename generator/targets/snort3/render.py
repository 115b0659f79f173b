"""Snort 3 files rendered from the spec: the rules file, the decoder option, the snippet
an operator adds to their snort.lua (event filters: Snort 3 rules carry no threshold)
and a standalone configuration (snort.lua) the tests run with.

Snort's rules keep the Suricata rules' sids, msg, classtype and metadata; their revs
follow their own text, in a rev lock of their own (generator.targets.lock, target
"snort3"). A signature whose count needs the packet's time (the scan count, on the port
generator's week) is left out: the option cannot see it.

Each signature rule is two Snort rules (spec.sides), as on Suricata:
one for packets to the server on a port Conficker may listen on (gid 1), one for packets
from the server's such port (gid pack.reply_gid), both with the signature's sid. Snort keeps one
rule per gid:sid, and a rule cannot tie its flow direction to which of its ports the
listener's is (`<>` takes either port in either direction: nearly every packet of a
client on an ephemeral port)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ...spec import Options, Rule, Signature, Spec, rule_sid
from .. import lock
from ..common import (
    banner,
    listener_header,
    metadata,
    options_line,
    port_ranges,
    rule_lines,
    session_bit,
)
from ..luadecoder import decoder_environment, render_decoder

_env = decoder_environment(Path(__file__).resolve().parent / "templates")

FOLDER = "snort3"  # of the rendered tree
SNIPPET = "snort3-snippet.lua"
CONFIG = "snort.lua"

MODES_ABOUT = """What a packet is, by transport and role (transport, listener side, whether it
counts as an attempt where the packet's time is known, whether it is the handshake, the
flowint that holds its direction's first sequence number): the option's Lua state serves
every rule that names its kind, so it looks this up per packet."""


def snort3_rules(spec: Spec) -> list[tuple[Signature, Rule]]:
    """The signature rules Snort 3 renders, in spec order."""
    return [(s, r) for s in spec.signatures if spec.snort3.renders(s) for r in s.rules]


def left_out(spec: Spec) -> list[Signature]:
    return [s for s in spec.signatures if not spec.snort3.renders(s)]


def action(rule: Rule, opts: Options) -> str:
    """Snort's `drop` drops the packet; `block` the packet and the rest of its flow."""
    if rule.blocks_session(opts):
        return "block"
    return rule.action


def port_var(spec: Spec) -> str:
    """The port variable of the ports Conficker may listen on (the snippet defines it)."""
    return f"{spec.pack.flowint_prefix.upper()}_PORTS"


def bleedover(spec: Spec) -> int:
    """The least search_engine.bleedover_port_limit under which Snort files the rules by
    port: with as many ports as the limit or more, a rule goes to the group of rules every
    packet is tried on, and its header is checked only after its options (the Lua call)."""
    return sum(b - a + 1 for a, b in spec.protocol.listener_ports()) + 1


def _header(spec: Spec, rule: Rule, opts: Options, direction: str) -> str:
    """Only packets whose listener end is on a port the blacklist allows reach the option."""
    ports = f"${port_var(spec)}"
    return f"{rule.transport} {listener_header(direction, opts.src_net, opts.dst_net, ports)}"


def _keywords(spec: Spec, sig: Signature, rule: Rule, opts: Options, direction: str) -> str:
    """UDP: datagrams that can hold a message, every rule's decoded by the one option
    node they share (kind 'any'), then told apart by the kind option, which reads the
    flags alone. TCP: the packets off the wire, SYNs too (their sequence numbers start
    each direction), not Snort's reassembled PDUs: the option follows each direction by
    sequence number as on Suricata, one Lua state per kind. Detected on TCP reports once
    per session (a flowbit), unless it blocks the session (block_tcp). The flow direction
    comes first: most packets on a listed port are on a client's, and fail it."""
    snort = spec.snort3
    if rule.transport == "udp":
        kind = "" if sig.matches == "any" else f"{snort.kind_option}:kind='{sig.matches}'; "
        return (
            f"flow:{direction}; dsize:>={spec.protocol.min_message}; "
            f"{snort.option}:kind='any'; {kind}"
        )
    option = f"{snort.option}:kind='{sig.matches}'; "
    flow = f"flow:{direction},no_stream; "
    if rule.report == "once_per_flow" and action(rule, opts) == "alert":
        bit = session_bit(spec, sig)
        return f"{flow}flowbits:isnotset,{bit}; {option}flowbits:set,{bit}; "
    return f"{flow}{option}"


def _event_filters(spec: Spec, opts: Options) -> list[dict[str, object]]:
    """Snort 3's stand-in for the rules' threshold: once per source per report_interval,
    for each of a signature's two rules. Its windows are fixed (0, interval, 2 x interval
    from the first event), where Suricata's limit opens a window at each report."""
    return [
        {
            "gid": side.gid,
            "sid": rule_sid(opts, r),
            "seconds": opts.report_interval,
            "name": f"{s.name}/{r.transport} {side.direction}",
        }
        for s, r in snort3_rules(spec)
        if r.report == "once_per_source"
        for side in spec.sides(r)
    ]


def default_rules(spec: Spec) -> dict[int, tuple[str, str]]:
    """sid -> (lock name, text of the sid's rules) of the Snort rules rendered with the
    spec's defaults: what the Snort rev lock hashes (both rules of a sid carry its rev)."""
    opts = spec.defaults
    text = render_snort3(spec, opts, {})[f"{FOLDER}/{spec.snort3.rules_file}"]
    lines = rule_lines(text)
    return {
        rule_sid(opts, r): (f"{s.name}/{r.transport}", lines[rule_sid(opts, r)])
        for s, r in snort3_rules(spec)
    }


def current_revs(spec: Spec) -> dict[int, int]:
    """Rev of each Snort rule, by sid offset, from the Snort lock (read only)."""
    locked = lock.read_lock(lock.lock_path(spec.source, "snort3"))
    by_sid = lock.resolve(locked, default_rules(spec)).revs
    return {r.sid_offset: by_sid[rule_sid(spec.defaults, r)] for _, r in snort3_rules(spec)}


def render_snort3(
    spec: Spec, opts: Options, revs: Mapping[int, int] | None = None
) -> dict[str, str]:
    """The Snort 3 files, by path under snort3/. `revs` maps sid offsets to revs; by
    default they come from the Snort rev lock."""
    revs = current_revs(spec) if revs is None else revs
    common = dict(
        banner=banner(spec), options_line=options_line(opts), spec=spec, snort=spec.snort3, o=opts
    )
    rules = _env.get_template("rules.j2").render(
        **common,
        rules=snort3_rules(spec),
        left_out=left_out(spec),
        sides=spec.sides,
        port_var=port_var(spec),
        action=lambda r: action(r, opts),
        header=lambda r, direction: _header(spec, r, opts, direction),
        keywords=lambda s, r, direction: _keywords(spec, s, r, opts, direction),
        sid=lambda r: rule_sid(opts, r),
        rev=lambda r: revs.get(r.sid_offset, 0),
        metadata=lambda s: metadata(spec, s),
    )
    roles = spec.decoder.rules_of(spec.decoder.engines[0])
    lua = render_decoder(
        _env,
        spec,
        opts,
        spec.snort3,
        roles,
        lambda r: f'"{r.transport}/{r.role}"',
        snort=spec.snort3,
        modes_about=MODES_ABOUT,
    )
    kind = _env.get_template("lua/kind.lua.j2").render(
        **common, p=spec.protocol, engine=spec.snort3
    )
    snippet = _env.get_template("snippet.lua.j2").render(
        **common,
        filters=_event_filters(spec, opts),
        port_var=port_var(spec),
        ports=port_ranges(spec.protocol.listener_ports(), " "),
        bleedover=bleedover(spec),
    )
    config = _env.get_template("snort.lua.j2").render(**common, snippet=SNIPPET)
    files = {
        spec.snort3.rules_file: rules,
        spec.snort3.lua_script: lua,
        spec.snort3.kind_script: kind,
        SNIPPET: snippet,
        CONFIG: config,
    }
    return {f"{FOLDER}/{name}": text for name, text in files.items()}
