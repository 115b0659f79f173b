"""Documentation: one page per signature, an index, and example suricata-update tuning files.

Every page is a function of the spec, the render options, the revs and the example
alerts. The examples (`<spec>.examples.json` beside the spec) are eve.json alerts that
a real engine wrote on the pack's pcaps; tests/dist/test_examples.py re-runs the engine
and checks them (CFP2P_UPDATE_EXAMPLES=1 rewrites them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ...spec import DecoderRule, Options, Rule, Signature, Spec, SpecError, rule_sid
from ..common import banner, environment, options_line

_env = environment(Path(__file__).resolve().parent / "templates")

# Fields of an eve alert that differ between runs of the same pcap (flow_id) or with
# the engine's time zone (timestamps); everything else must match on a re-run.
UNSTABLE = ("flow_id", "timestamp", "flow.start")
# An example value for modify.conf: the new report interval, in seconds.
EXAMPLE_REPORT_INTERVAL = 120


class ExamplesError(SpecError):
    """An examples file that cannot be read: which file and which field."""


@dataclass(frozen=True)
class Example:
    signature: str
    engine: str  # suricata7 or suricata8
    pcap: str  # a file of pcaps/
    mode: str  # ids or ips
    alert: dict[str, Any]


@dataclass(frozen=True)
class Examples:
    engines: dict[str, str]  # engine name -> version the examples were checked on
    signatures: dict[str, Example]


def examples_path(spec_source: str | Path) -> Path:
    src = Path(spec_source)
    return src.with_name(f"{src.stem}.examples.json")


def read_examples(path: Path) -> Examples:
    """The captured alerts; a missing file means none were captured yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Examples({}, {})
    except (OSError, ValueError) as err:
        raise ExamplesError(path, "file", f"cannot read JSON: {err}") from None
    if not isinstance(data, dict):
        raise ExamplesError(path, "top level", "expected an object")
    engines = data.get("engines", {})
    if not isinstance(engines, dict) or not all(isinstance(v, str) for v in engines.values()):
        raise ExamplesError(path, "engines", "expected an object of engine name to version")
    sigs = data.get("signatures", {})
    if not isinstance(sigs, dict):
        raise ExamplesError(path, "signatures", "expected an object of signature name to example")
    found = {}
    for name, item in sigs.items():
        if not isinstance(item, dict):
            raise ExamplesError(path, f"signatures.{name}", "expected an object")
        for key, kind in (("engine", str), ("pcap", str), ("mode", str), ("alert", dict)):
            if not isinstance(item.get(key), kind):
                raise ExamplesError(path, f"signatures.{name}.{key}", f"expected a {kind.__name__}")
        found[name] = Example(name, item["engine"], item["pcap"], item["mode"], item["alert"])
    return Examples(engines, found)


def format_examples(examples: Examples) -> str:
    data = {
        "engines": dict(sorted(examples.engines.items())),
        "signatures": {
            name: {"engine": e.engine, "pcap": e.pcap, "mode": e.mode, "alert": e.alert}
            for name, e in sorted(examples.signatures.items())
        },
    }
    return json.dumps(data, indent=2) + "\n"


def stable(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The alert without the fields that change between runs."""
    out = json.loads(json.dumps(alert))
    for dotted in UNSTABLE:
        *parents, last = dotted.split(".")
        node = out
        for key in parents:
            node = node.get(key, {})
        node.pop(last, None)
    return out


# --- facts the pages state, each computed from the spec --------------------------------


def _action(rule: Rule, opts: Options) -> str:
    if rule.blocks_session(opts):
        return "`drop` (`block_tcp` is on)"
    if rule.drop_when_block_tcp:
        return "`alert`; `drop` with `block_tcp: true`"
    if rule.action == "drop":
        return "`drop`: in IPS mode every matching packet is dropped, reported or not"
    return f"`{rule.action}`"


def _reporting(rule: Rule, opts: Options) -> str:
    if rule.report == "once_per_source":
        return f"at most once per source per `report_interval` ({opts.report_interval} s)"
    if rule.report == "after_scan_count":
        return (
            f"when one source made `scan_count` ({opts.scan_count}) attempts within "
            f"`scan_seconds` ({opts.scan_seconds} s); then at most once per source per window"
        )
    if rule.report == "once_per_flow" and rule.blocks_session(opts):
        return "every segment that carries a message (so that a retransmission is dropped too)"
    if rule.report == "once_per_flow":
        return "once per flow"
    return "every packet that completes a message"


def _tuning(sig: Signature) -> list[str]:
    """The render options that change this signature's rules."""
    used = {r.report for r in sig.rules}
    names = []
    if "once_per_source" in used:
        names.append("report_interval")
    if any(r.drop_when_block_tcp for r in sig.rules):
        names.append("block_tcp")
    if "after_scan_count" in used:
        names += ["scan_count", "scan_seconds"]
    return names + ["src_net", "dst_net", "sid_base"]


def _reference(ref: str) -> str:
    kind, value = ref.split(",", 1)
    # Suricata's reference.config maps `url` to http://.
    return f"<http://{value}>" if kind == "url" else f"{kind}: {value}"


@dataclass(frozen=True)
class RuleFacts:
    name: str
    transport: str
    sid: int
    rev: int
    action: str
    reporting: str
    rule: Rule
    ids: str  # gid:sid of each of its rendered rules, for suricata-update's files


def _rule_facts(
    spec: Spec, sig: Signature, opts: Options, revs: Mapping[int, int]
) -> list[RuleFacts]:
    return [
        RuleFacts(
            f"{sig.name}/{r.transport}",
            r.transport.upper() if r.transport != "ip" else "UDP and TCP",
            rule_sid(opts, r),
            revs.get(r.sid_offset, 0),
            _action(r, opts),
            _reporting(r, opts),
            r,
            _ids(spec, opts, r),
        )
        for r in sig.rules
    ]


def _ids(spec: Spec, opts: Options, rule: Rule) -> str:
    """gid:sid of each rule a signature rule renders, as suricata-update's files take them."""
    return ",".join(f"{side.gid}:{rule_sid(opts, rule)}" for side in spec.sides(rule))


def _decoder_label(d: DecoderRule) -> str:
    return f"{d.engine.title}: {d.transport.upper()} {d.label}"


def _example_sids(sig: Signature, opts: Options) -> set[int]:
    return {rule_sid(opts, r) for r in sig.rules}


def tuning_files(spec: Spec, opts: Options) -> dict[str, str]:
    """Example suricata-update tuning files (drop.conf, disable.conf, modify.conf): each
    acts on signature rules only, never on a decoder rule."""
    control = [s for s in spec.signatures if s.matches == "control"]
    scan = [s for s in spec.signatures if s.matches == "scan"]
    limited = [(s, r) for s in control for r in s.rules if r.report == "once_per_source"]
    ctx = dict(
        banner=banner(spec),
        spec=spec,
        o=opts,
        control=control,
        scan=scan,
        limited=limited,
        sid=lambda r: rule_sid(opts, r),
        ids=lambda r: _ids(spec, opts, r),
        new_interval=EXAMPLE_REPORT_INTERVAL,
        decoder_sids=sorted(rule_sid(opts, d) for d in spec.decoder.rules),
    )
    return {
        f"tuning/{name}": _env.get_template(f"{name}.j2").render(**ctx)
        for name in ("drop.conf", "disable.conf", "modify.conf")
    }


def render_docs(spec: Spec, opts: Options, revs: Mapping[int, int]) -> dict[str, str]:
    """docs/ by path: index.md, signatures/<name>.md, tuning/*.conf."""
    examples = read_examples(examples_path(spec.source))
    decoder = [(d, rule_sid(opts, d), revs.get(d.sid_offset, 0)) for d in spec.decoder.rules]
    decoder_sids = sorted(s for _, s, _ in decoder)
    common = dict(
        banner=banner(spec),
        options_line=options_line(opts),
        spec=spec,
        o=opts,
        defaults_differ=opts != spec.defaults,
        option_names=[f.name for f in fields(Options)],
        decoder=decoder,
        decoder_label=_decoder_label,
        decoder_range=f"{decoder_sids[0]}–{decoder_sids[-1]}",
        engines=examples.engines,
        engine_label=lambda name: (
            f"Suricata {examples.engines[name]}" if name in examples.engines else name
        ),
        reference=_reference,
        unstable=", ".join(f"`{f}`" for f in UNSTABLE),
        new_interval=EXAMPLE_REPORT_INTERVAL,
        value=lambda v: str(v).lower() if isinstance(v, bool) else str(v),
    )
    pages = {
        "index.md": _env.get_template("index.md.j2").render(
            **common,
            signatures=[(s, _rule_facts(spec, s, opts, revs)) for s in spec.signatures],
        )
    }
    for sig in spec.signatures:
        example = examples.signatures.get(sig.name)
        pages[f"signatures/{sig.name}.md"] = _env.get_template("signature.md.j2").render(
            **common,
            s=sig,
            rules=_rule_facts(spec, sig, opts, revs),
            tuning=_tuning(sig),
            example=example,
            example_json=json.dumps(example.alert, indent=2) if example else "",
        )
    pages.update(tuning_files(spec, opts))
    return pages


__all__ = [
    "Example",
    "Examples",
    "ExamplesError",
    "examples_path",
    "read_examples",
    "format_examples",
    "stable",
    "render_docs",
    "tuning_files",
]
