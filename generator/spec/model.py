"""The spec model: the typed, frozen objects a loaded spec is made of.

Every target renders from a `Spec` and the `Options` it is rendered with. Bad input
raises `SpecError`, which names the file, the field and what was expected; the checks
that a `Spec.options()` override must pass too (option ranges, sid ranges) live here,
the YAML reader in generator.spec.load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "spec" / "conficker-p2p.yaml"

ACTIONS = ("alert", "drop")
TRANSPORTS = ("udp", "tcp")
# A signature rule may also be an `ip` rule: it sees both transports (the scan count).
RULE_TRANSPORTS = (*TRANSPORTS, "ip")
DIRECTIONS = ("to_server", "to_client")
REPORTS = ("every", "once_per_source", "once_per_flow", "after_scan_count")
MATCHES = ("control", "data", "any", "scan")
# sid ranges owned by other rulesets (Snort/Talos, Emerging Threats).
RESERVED_SIDS = ((1, 999_999), (2_000_000, 2_999_999))
MAX_SID = 2**31 - 1


class SpecError(ValueError):
    """Bad input: where it is (file and field) and what was expected."""

    def __init__(self, source: str | Path, where: str, problem: str):
        self.source, self.where, self.problem = str(source), where, problem
        super().__init__(f"{source}: {where}: {problem}")


@dataclass(frozen=True)
class Options:
    """Render-time tuning; defaults come from the spec's `parameters`."""

    report_interval: int
    block_tcp: bool
    src_net: str
    dst_net: str
    sid_base: int
    scan_count: int
    scan_seconds: int
    strict_flags: bool  # opt-in: only messages with the flags every one seen has


@dataclass(frozen=True)
class Rule:
    transport: str
    sid_offset: int
    action: str
    report: str
    drop_when_block_tcp: bool = False

    def blocks_session(self, opts: Options) -> bool:
        """Switched by block_tcp: the rule drops every segment of a session that carried a
        message (on Suricata a drop rule that matches each of them, on Snort a block)."""
        return self.drop_when_block_tcp and opts.block_tcp


@dataclass(frozen=True)
class EngineTarget:
    """A Suricata engine family with a decoder script of its own. `requires` keeps each
    engine to its own decoder rules: the other engine skips them without an error."""

    name: str  # suricata7, suricata8
    lua: str  # luajit (Lua 5.1 with the bit library) or lua54 (native integer operators)
    requires: str  # the rules' `requires:` condition, e.g. "version >= 8"
    lua_script: str
    sid_offset: int  # added to each decoder rule's sid_offset

    family = "suricata"
    # The packet's time is there (Suricata 8 gives it, Suricata 7 too): the computed ports
    # of the port generator's week can be known, so can port_match and the scan count.
    packet_time = True

    @property
    def title(self) -> str:
        """The engine's name in prose: Suricata 7, Suricata 8."""
        return self.name.replace("suricata", "Suricata ")


@dataclass(frozen=True)
class Snort3Target:
    """Snort 3: the signatures as Snort 3 rules that call one LuaJIT IPS option. The
    option sees its buffer only (no packet time, no flow storage), so its script keeps
    the per-flow state itself, in `flows` entries per Lua state."""

    rules_file: str  # must not end in .rules: suricata-update would load it from the release
    lua_script: str
    option: str  # the IPS option's name in the rules
    flows: int  # flows a Lua state keeps (its stand-ins for flowints), emptied when full

    name = "snort3"
    title = "Snort 3"
    lua = "luajit"
    family = "snort"
    packet_time = False
    # What the option can count in a packet; the scan count needs the packet's time.
    kinds = ("control", "data", "any")

    def renders(self, sig: Signature) -> bool:
        return sig.matches in self.kinds

    @property
    def kind_option(self) -> str:
        """The option that tells a valid UDP message's kind from its flags alone."""
        return f"{self.option}_kind"

    @property
    def kind_script(self) -> str:
        return self.lua_script.removesuffix(".lua") + "_kind.lua"


@dataclass(frozen=True)
class DecoderRule:
    """One decoder rule of one engine (the spec lists each rule once; loading gives every
    engine its own copy, with the engine's sid offset added)."""

    transport: str
    direction: str
    sid_offset: int
    syn: bool = False  # the handshake (SYN to_server, SYN-ACK to_client) instead of payload
    engine: EngineTarget | None = None

    @property
    def listener(self) -> str:
        """Which end of the packet is the Conficker listener: dst (to_server) or src."""
        return "dst" if self.direction == "to_server" else "src"

    @property
    def role(self) -> str:
        """What the rule runs on, as the rev lock names it: syn, synack or its direction."""
        if self.syn:
            return "syn" if self.direction == "to_server" else "synack"
        return self.direction

    @property
    def label(self) -> str:
        """What the rule runs on, in words (its msg, the docs)."""
        return {"syn": "connection attempt", "synack": "connection accepted"}.get(
            self.role, self.direction
        )

    @property
    def counts_attempts(self) -> bool:
        """Its packets are attempts on the destination for the scan count: UDP
        messages to a server, TCP connection attempts."""
        return self.role == "syn" or (self.transport, self.role) == ("udp", "to_server")


@dataclass(frozen=True)
class Decoder:
    msg: str
    max_streams: int
    budget: int
    port_cache: int
    udp_flows: int
    week_slop: int
    reorder_bytes: int  # TCP bytes held ahead of a gap, per direction
    reorder_segments: int  # ... in at most this many pieces
    reorder_total: int  # TCP bytes held ahead of gaps by all directions of a Lua state
    port_ranges: int  # ranges of a Suricata rule header's listener port list, at most
    engines: tuple[EngineTarget, ...]
    rules: tuple[DecoderRule, ...]  # every engine's, in engine order

    def rules_of(self, engine: EngineTarget) -> tuple[DecoderRule, ...]:
        return tuple(d for d in self.rules if d.engine == engine)


@dataclass(frozen=True)
class Docs:
    about: str
    false_positives: str
    false_negatives: str
    default_risk: str
    systems_affected: str
    remediation: str


@dataclass(frozen=True)
class Signature:
    name: str
    msg: str
    classtype: str
    priority: int
    severity: str
    matches: str
    created_at: str
    updated_at: str
    rules: tuple[Rule, ...]
    docs: Docs


@dataclass(frozen=True)
class Block:
    name: str
    flag: int
    size: int
    length_at: int | None = None


@dataclass(frozen=True)
class Protocol:
    key_size: int
    flags_size: int
    checksum_size: int
    tcp_length_size: int
    data_flag: int
    # strict_flags: flag bits every message seen carries, per transport
    seen_flags: dict[str, int]
    blocks: tuple[Block, ...]
    week_offset: int
    week_seconds: int
    port_multiplier: int
    port_blacklist: tuple[int, ...]

    @property
    def min_message(self) -> int:
        return self.key_size + self.flags_size + self.checksum_size

    def blacklisted(self, port: int) -> bool:
        return bool((self.port_blacklist[port >> 10] >> ((port >> 5) & 31)) & 1)

    def listener_ports(self) -> list[tuple[int, int]]:
        """The ports a Conficker host may listen on, as inclusive ranges."""
        ranges: list[tuple[int, int]] = []
        for port in range(0x10000):
            if self.blacklisted(port):
                continue
            if ranges and ranges[-1][1] == port - 1:
                ranges[-1] = (ranges[-1][0], port)
            else:
                ranges.append((port, port))
        return ranges


@dataclass(frozen=True)
class Pack:
    name: str
    rules_file: str
    flowint_prefix: str
    reply_gid: int  # of a signature's rule for packets from the listener (gid 1: to it)


@dataclass(frozen=True)
class Side:
    """Which packets of a signature rule's transport one rendered rule sees: those to the
    listener (gid 1) or those from it (the pack's reply_gid), filed by the listener's port
    as the decoder rules are."""

    direction: str  # to_server, to_client
    gid: int


@dataclass(frozen=True)
class Spec:
    source: str
    pack: Pack
    decoder: Decoder
    defaults: Options
    signatures: tuple[Signature, ...]
    metadata: dict[str, str]
    references: tuple[str, ...]
    protocol: Protocol
    snort3: Snort3Target

    def sides(self, rule: Rule) -> tuple[Side, ...]:
        """A signature rule renders one rule per side, both with its sid, so that a packet
        to a port the blacklist rules out has none of the pack's rules to run (`any any`
        signatures cost Suricata 8 about 1,160 instructions on every packet of the bench's
        mix). The scan count only counts attempts, on packets to the listener."""
        if rule.transport == "ip":
            return (Side("to_server", 1),)
        return (Side("to_server", 1), Side("to_client", self.pack.reply_gid))

    def options(self, **overrides: Any) -> Options:
        """The spec's defaults with the given (non-None) overrides, validated."""
        given = {k: v for k, v in overrides.items() if v is not None}
        opts = dataclasses.replace(self.defaults, **given)
        _check_options(opts, self.source, "option")
        _check_sids(self, opts)
        return opts


# --- checks every Options and Spec must pass (loading and Spec.options()) -----------


def _check_options(opts: Options, source: str, where: str) -> None:
    for name, unit in (
        ("report_interval", "seconds"),
        ("scan_count", "attempts"),
        ("scan_seconds", "seconds"),
    ):
        if getattr(opts, name) <= 0:
            raise SpecError(
                source,
                f"{where}.{name}",
                f"expected a positive number of {unit}, got {getattr(opts, name)}",
            )
    for name in ("src_net", "dst_net"):
        value = getattr(opts, name)
        if not value or any(c in value for c in " ;()\"'"):
            raise SpecError(
                source,
                f"{where}.{name}",
                f"expected a Suricata address (any, $HOME_NET, 10.0.0.0/8, [..]), got {value!r}",
            )
    if opts.sid_base <= 0:
        raise SpecError(
            source, f"{where}.sid_base", f"expected a positive sid, got {opts.sid_base}"
        )


def _all_rules(spec: Spec) -> list[tuple[str, Rule | DecoderRule]]:
    """Every rendered rule with the spec path that defines it."""
    found: list[tuple[str, Rule | DecoderRule]] = [
        (f"decoder.rules[{j}]", rule) for j, rule in enumerate(spec.decoder.rules)
    ]
    for i, sig in enumerate(spec.signatures):
        found += [(f"signatures[{i}].rules[{j}]", rule) for j, rule in enumerate(sig.rules)]
    return found


def _check_sids(spec: Spec, opts: Options) -> None:
    for where, rule in _all_rules(spec):
        sid = opts.sid_base + rule.sid_offset
        owned = [r for r in RESERVED_SIDS if r[0] <= sid <= r[1]]
        if owned:
            why = f"inside {owned[0][0]}-{owned[0][1]}, which other rulesets own"
        elif sid > MAX_SID:
            why = f"above the largest sid {MAX_SID}"
        else:
            continue
        raise SpecError(
            spec.source,
            f"{where}.sid_offset",
            f"sid {sid} (sid_base {opts.sid_base} + {rule.sid_offset}) is {why}; "
            f"choose another sid_base",
        )


def rule_sid(opts: Options, rule: Rule | DecoderRule) -> int:
    return opts.sid_base + rule.sid_offset
