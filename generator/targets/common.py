"""What every target renders with: the names the rules and scripts share, the banner atop
each generated file, the options line, a jinja environment over a target's templates, and
write_tree (all files at once, never a partial tree).

Every target imports this module and generator.spec; no target imports another for these.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import jinja2

from ..spec import Options, Signature, Spec

BANNER = "Generated from {source} by `cfp2p render`; do not edit: change the spec and render."


def environment(templates: Path) -> jinja2.Environment:
    """The jinja environment of one target's template folder: strict, no autoescape, with
    the whitespace rules every template is written for."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
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
    peer: str  # flowvar: the peer block's address and port, a.b.c.d:port
    data_len: str  # flowvar: the data block's length, decimal
    data_flags: str  # flowvar: the data block's data_flags, 0x..
    data_head: str  # flowvar: the data block's first 16 deciphered bytes, hex
    seq_to_server: str  # per flow: sequence number the client's data starts at (SYN)
    seq_to_client: str  # per flow: sequence number the server's data starts at (SYN-ACK)

    @classmethod
    def of(cls, spec: Spec) -> Names:
        p = spec.pack.flowint_prefix
        return cls(**{f.name: f"{p}_{f.name}" for f in fields(cls)} | {"any": f"{p}_messages"})


def banner(spec: Spec) -> str:
    # The file name only: the output must not depend on where the spec was read from.
    return BANNER.format(source=Path(spec.source).name)


def options_line(opts: Options) -> str:
    return ", ".join(f"{f.name}={getattr(opts, f.name)}" for f in fields(opts))


def session_bit(spec: Spec, sig: Signature) -> str:
    """The flowbit that reports a signature once per session, on every engine."""
    return f"{spec.pack.flowint_prefix}.{sig.name}"


def port_ranges(ranges: list[tuple[int, int]], sep: str) -> str:
    """Port ranges as rule headers and port variables write them (`a:b`, or `a` alone)."""
    return sep.join(f"{a}:{b}" if a != b else str(a) for a, b in ranges)


def listener_header(direction: str, src_net: str, dst_net: str, ports: str) -> str:
    """A rule header's addresses and ports that file the rule by the listener's port: the
    destination of packets to the server, the source of packets from it (both engines)."""
    if direction == "to_server":
        return f"{src_net} any -> {dst_net} {ports}"
    return f"{src_net} {ports} -> {dst_net} any"


def metadata(spec: Spec, sig: Signature) -> str:
    """A signature's metadata keyword value (Emerging Threats keys), on every engine."""
    items = dict(spec.metadata)
    items.update(
        signature_severity=sig.severity,
        created_at=sig.created_at.replace("-", "_"),
        updated_at=sig.updated_at.replace("-", "_"),
    )
    return ", ".join(f"{k} {v}" for k, v in sorted(items.items()))


_SID = re.compile(r"[(; ]sid:(\d+);")


def rule_lines(text: str) -> dict[int, str]:
    """The rules of a rendered rules file, by sid: the lines of a sid's rules (one per gid)
    joined, so that a rev moves when any of them changes."""
    by_sid: dict[int, list[str]] = {}
    for line in text.splitlines():
        m = None if line.startswith("#") else _SID.search(line)
        if m:
            by_sid.setdefault(int(m[1]), []).append(line)
    return {sid: "\n".join(lines) for sid, lines in by_sid.items()}


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
