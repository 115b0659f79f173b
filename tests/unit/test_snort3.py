"""The Snort 3 target: its rules say what the Suricata rules say (sids, revs, msg,
classtype, metadata) for the signatures it renders, the snippet carries the report
interval, and the option is the shared decoder with the Snort adapter."""

from __future__ import annotations

import re

from generator import spec
from generator.targets import snort3
from generator.targets.suricata import rules as suricata_rules

SPEC = spec.load()
FIELDS = re.compile(r"(msg|classtype|priority|sid|rev|metadata):([^;]*);")


def snort_files(opts) -> dict[str, str]:
    files = snort3.render_snort3(SPEC, opts)
    return {rel.split("/", 1)[1]: text for rel, text in files.items()}


def by_sid(text: str) -> dict[str, dict[str, str]]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            fields = dict(FIELDS.findall(line))
            found[fields["sid"]] = {**fields, "action": line.split()[0], "raw": line}
    return found


def test_rules_carry_the_suricata_sids_msg_and_metadata():
    snort = by_sid(snort_files(SPEC.defaults)[SPEC.snort3.rules_file])
    suricata = by_sid(suricata_rules.render_rules(SPEC, SPEC.defaults))
    rendered = {str(spec.rule_sid(SPEC.defaults, r)) for _, r in snort3.snort3_rules(SPEC)}
    assert set(snort) == rendered and len(rendered) == 5
    for sid, rule in snort.items():
        for key in ("msg", "classtype", "priority", "metadata", "action"):
            assert rule[key] == suricata[sid][key], f"{key} of sid {sid}"
    # the scan count needs the packet's time: not rendered, and the file says why
    scan = next(s for s in SPEC.signatures if s.matches == "scan")
    assert str(spec.rule_sid(SPEC.defaults, scan.rules[0])) not in snort
    assert (
        f"# {scan.name} is not rendered for Snort 3"
        in snort_files(SPEC.defaults)[SPEC.snort3.rules_file]
    )


def test_each_rule_asks_the_option_for_its_signatures_count():
    """TCP rules name the option with their kind; UDP rules all start with the same
    option (kind 'any'), so that Snort decodes a datagram once for all of them, and then
    name the kind option with theirs."""
    snort = by_sid(snort_files(SPEC.defaults)[SPEC.snort3.rules_file])
    s3 = SPEC.snort3
    udp_heads = set()
    for sig, rule in snort3.snort3_rules(SPEC):
        raw = snort[str(spec.rule_sid(SPEC.defaults, rule))]["raw"]
        assert ("flow:no_stream;" in raw) == (rule.transport == "tcp")
        if rule.transport == "tcp":
            assert f"{s3.option}:kind='{sig.matches}';" in raw and s3.kind_option not in raw
            continue
        head = raw[raw.index("dsize:") : raw.index(f"{s3.option}:kind='any';")]
        udp_heads.add(head)
        assert (f"{s3.kind_option}:kind='{sig.matches}';" in raw) == (sig.matches != "any")
    assert len(udp_heads) == 1, "every UDP rule's options up to the decoder are the same"


def test_report_interval_goes_to_the_event_filters():
    snippet = snort_files(SPEC.options(report_interval=77))[snort3.render.SNIPPET]
    filters = re.findall(
        r"sid = (\d+), type = 'limit', track = 'by_src', count = 1, seconds = (\d+)", snippet
    )
    once = [r for _, r in snort3.snort3_rules(SPEC) if r.report == "once_per_source"]
    assert sorted(filters) == sorted((str(spec.rule_sid(SPEC.defaults, r)), "77") for r in once)


def test_block_tcp_blocks_the_session():
    snort = by_sid(snort_files(SPEC.options(block_tcp=True))[SPEC.snort3.rules_file])
    detected = next(r for s, r in snort3.snort3_rules(SPEC) if r.drop_when_block_tcp)
    rule = snort[str(spec.rule_sid(SPEC.defaults, detected))]
    assert rule["action"] == "block" and "flowbits" not in rule["raw"]


def test_option_is_the_shared_decoder_with_the_snort_adapter():
    lua = snort_files(SPEC.defaults)[SPEC.snort3.lua_script]
    assert f'name = "{SPEC.snort3.option}"' in lua and "function eval()" in lua
    assert "function match(" not in lua and "ScFlowint" not in lua
    # the partials every engine shares
    for part in ("local function feed(", "local function segment(", "local function whole("):
        assert lua.count(part) == 1, part
    assert f"local FLOWS = {SPEC.snort3.flows}" in lua
