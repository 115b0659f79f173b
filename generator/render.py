"""Renderers: each output is a small function of the Spec and the render Options."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import jinja2

from .spec import Options, Rule, Signature, Spec, rule_sid

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

    decoded: str
    control: str
    data: str
    any: str
    flags: str
    kind: str

    @classmethod
    def of(cls, spec: Spec) -> Names:
        p = spec.pack.flowint_prefix
        return cls(
            f"{p}_decoded", f"{p}_control", f"{p}_data", f"{p}_messages", f"{p}_flags", f"{p}_kind"
        )


# Smallest payload the decoder looks at, per transport (TCP: any segment, since a
# message may be split across segments).
def _dsize(spec: Spec) -> dict[str, str]:
    return {"udp": f">={spec.protocol.min_message}", "tcp": ">0"}


def _banner(spec: Spec) -> str:
    # The file name only: the output must not depend on where the spec was read from.
    return BANNER.format(source=Path(spec.source).name)


def options_line(opts: Options) -> str:
    return ", ".join(f"{f.name}={getattr(opts, f.name)}" for f in fields(opts))


def _report_keywords(spec: Spec, sig: Signature, rule: Rule, opts: Options) -> str:
    if rule.report == "once_per_source":
        return f"threshold:type limit, track by_src, count 1, seconds {opts.report_interval}; "
    if rule.report == "once_per_flow" and action(rule, opts) == "alert":
        # As a drop rule (block_tcp) it must match every message of the session, so
        # that a retransmitted segment is dropped again: then it reports each one.
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


def render_rules(spec: Spec, opts: Options) -> str:
    return _env.get_template("rules.j2").render(
        banner=_banner(spec),
        options_line=options_line(opts),
        spec=spec,
        o=opts,
        names=Names.of(spec),
        dsize=_dsize(spec),
        sid=lambda rule: rule_sid(opts, rule),
        action=lambda rule: action(rule, opts),
        report=lambda sig, rule: _report_keywords(spec, sig, rule, opts),
        metadata=lambda sig: _metadata(spec, sig),
    )


def render_lua(spec: Spec, opts: Options) -> str:
    return _env.get_template("decoder.lua.j2").render(
        banner=_banner(spec),
        spec=spec,
        p=spec.protocol,
        names=Names.of(spec),
        sid=lambda rule: rule_sid(opts, rule),
    )


def render(spec: Spec, opts: Options) -> dict[str, str]:
    """Every rendered file, by its path relative to the output folder."""
    return {
        f"rules/{spec.pack.rules_file}": render_rules(spec, opts),
        f"lua/{spec.pack.lua_script}": render_lua(spec, opts),
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
    "write_tree",
    "Names",
    "options_line",
]
