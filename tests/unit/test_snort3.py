"""The Snort 3 target: its rules say what the Suricata rules say (sids, revs, msg,
classtype, metadata) for the signatures it renders, two rules a signature rule (to the
listener's port, from it), the snippet carries the listener ports and the report
interval, and the option is the shared decoder with the Snort adapter."""

from __future__ import annotations

import re

from generator import codec as P
from generator import spec
from generator.targets import snort3
from generator.targets.suricata import rules as suricata_rules

SPEC = spec.load()
FIELDS = re.compile(r"(msg|classtype|priority|gid|sid|rev|metadata):([^;]*);")
REPLY = str(SPEC.pack.reply_gid)


def snort_files(opts) -> dict[str, str]:
    files = snort3.render_snort3(SPEC, opts)
    return {rel.split("/", 1)[1]: text for rel, text in files.items()}


def rules(text: str) -> list[dict[str, str]]:
    found = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            fields = dict(FIELDS.findall(line))
            found.append({"gid": "1", **fields, "action": line.split()[0], "raw": line})
    return found


def by_sid(text: str, gid: str = "1") -> dict[str, dict[str, str]]:
    return {r["sid"]: r for r in rules(text) if r["gid"] == gid}


def test_rules_carry_the_suricata_sids_msg_and_metadata():
    text = snort_files(SPEC.defaults)[SPEC.snort3.rules_file]
    suricata = by_sid(suricata_rules.render_rules(SPEC, SPEC.defaults))
    rendered = {str(spec.rule_sid(SPEC.defaults, r)) for _, r in snort3.snort3_rules(SPEC)}
    assert len(rendered) == 5 and len(rules(text)) == 10
    for gid in ("1", REPLY):
        snort = by_sid(text, gid)
        assert set(snort) == rendered, f"gid {gid}"
        for sid, rule in snort.items():
            for key in ("msg", "classtype", "priority", "metadata", "action"):
                assert rule[key] == suricata[sid][key], f"{key} of {gid}:{sid}"
            assert rule["rev"] == by_sid(text)[sid]["rev"], "a sid's two rules share its rev"
    # the scan count needs the packet's time: not rendered, and the file says why
    scan = next(s for s in SPEC.signatures if s.matches == "scan")
    assert str(spec.rule_sid(SPEC.defaults, scan.rules[0])) not in snort
    assert (
        f"# {scan.name} is not rendered for Snort 3"
        in snort_files(SPEC.defaults)[SPEC.snort3.rules_file]
    )


def test_each_rule_asks_the_option_for_its_signatures_count():
    """TCP rules name the option with their kind; UDP rules of a direction all start with
    the same options up to the option (kind 'any'), so that Snort decodes a datagram once
    for all of them, and then name the kind option with theirs."""
    text = snort_files(SPEC.defaults)[SPEC.snort3.rules_file]
    s3 = SPEC.snort3
    udp_heads = set()
    for gid, direction in (("1", "to_server"), (REPLY, "to_client")):
        snort = by_sid(text, gid)
        for sig, rule in snort3.snort3_rules(SPEC):
            raw = snort[str(spec.rule_sid(SPEC.defaults, rule))]["raw"]
            stream = ",no_stream" if rule.transport == "tcp" else ""
            flow = f"flow:{direction}{stream};"
            assert raw.index("(msg:") < raw.index(flow) < raw.index(f"{s3.option}:")
            if rule.transport == "tcp":
                assert f"{s3.option}:kind='{sig.matches}';" in raw and s3.kind_option not in raw
                continue
            head = raw[raw.index(flow) : raw.index(f"{s3.option}:kind='any';")]
            udp_heads.add(head)
            assert (f"{s3.kind_option}:kind='{sig.matches}';" in raw) == (sig.matches != "any")
    assert len(udp_heads) == 2, "the UDP rules of a direction share their options up to the option"


def test_rules_reach_the_option_on_the_listeners_side_of_an_allowed_port():
    """To the server, the destination port is listed; from it, the source port: the
    snippet's port variable, every port the blacklist allows and no other, with the
    port-group limit raised past their number so that Snort files the rules by port."""
    files = snort_files(SPEC.defaults)
    var = snort3.render.port_var(SPEC)
    for rule in rules(files[SPEC.snort3.rules_file]):
        head = rule["raw"][: rule["raw"].index("(")].split()
        if rule["gid"] == "1":
            assert head[2:] == ["any", "any", "->", "any", f"${var}"], rule["raw"]
        else:
            assert rule["gid"] == REPLY and head[2:] == ["any", f"${var}", "->", "any", "any"]
    snippet = files[snort3.render.SNIPPET]
    listed = re.search(rf"ips\.variables\.ports\.{var} = \[\[([\d: ]+)\]\]", snippet)
    ports = set()
    for item in listed[1].split():
        a, _, b = item.partition(":")
        ports.update(range(int(a), int(b or a) + 1))
    assert ports == {p for p in range(65536) if not P.is_blacklisted(p)}
    limit = re.search(r"search_engine\.bleedover_port_limit = (\d+)", snippet)
    assert int(limit[1]) == len(ports) + 1


def test_report_interval_goes_to_the_event_filters():
    snippet = snort_files(SPEC.options(report_interval=77))[snort3.render.SNIPPET]
    filters = re.findall(
        r"gid = (\d+), sid = (\d+), type = 'limit', track = 'by_src', count = 1, "
        r"seconds = (\d+)",
        snippet,
    )
    once = [r for _, r in snort3.snort3_rules(SPEC) if r.report == "once_per_source"]
    assert sorted(filters) == sorted(
        (gid, str(spec.rule_sid(SPEC.defaults, r)), "77") for r in once for gid in ("1", REPLY)
    )


def test_block_tcp_blocks_the_session():
    text = snort_files(SPEC.options(block_tcp=True))[SPEC.snort3.rules_file]
    detected = next(r for s, r in snort3.snort3_rules(SPEC) if r.drop_when_block_tcp)
    for gid in ("1", REPLY):
        rule = by_sid(text, gid)[str(spec.rule_sid(SPEC.defaults, detected))]
        assert rule["action"] == "block" and "flowbits" not in rule["raw"]


def test_option_is_the_shared_decoder_with_the_snort_adapter():
    lua = snort_files(SPEC.defaults)[SPEC.snort3.lua_script]
    assert f'name = "{SPEC.snort3.option}"' in lua and "function eval()" in lua
    assert "function match(" not in lua and "ScFlowint" not in lua
    # the partials every engine shares
    for part in ("local function feed(", "local function segment(", "local function whole("):
        assert lua.count(part) == 1, part
    assert f"local FLOWS = {SPEC.snort3.flows}" in lua
