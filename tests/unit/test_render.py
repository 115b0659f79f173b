"""Rendering: deterministic, parseable by idstools and suricata-update, and faithful to
the spec and the options."""

from __future__ import annotations

from pathlib import Path

import idstools.rule
import pytest
import suricata.update.rule

from generator import spec
from generator.targets import pack
from generator.targets.suricata import lua, rules

ROOT = Path(__file__).resolve().parents[2]
SPEC = spec.load()


def rules_of(text: str, parser) -> list:
    parsed = [parser(line) for line in text.splitlines() if line and not line.startswith("#")]
    assert all(parsed), "every rule line parses"
    return parsed


def test_committed_files_are_what_make_rules_renders():
    for rel, text in pack.render(SPEC, SPEC.defaults).items():
        assert (ROOT / rel).read_text() == text, f"{rel} is stale: run `make rules`"


def test_rendering_is_deterministic():
    assert pack.render(SPEC, SPEC.defaults) == pack.render(spec.load(), SPEC.defaults)


@pytest.mark.parametrize("parser", [idstools.rule.parse, suricata.update.rule.parse])
def test_every_rule_parses(parser):
    parsed = rules_of(rules.render_rules(SPEC, SPEC.defaults), parser)
    expected = {(side.gid, spec.rule_sid(SPEC.defaults, r))
                for s in SPEC.signatures for r in s.rules for side in SPEC.sides(r)}
    expected |= {(1, spec.rule_sid(SPEC.defaults, d)) for d in SPEC.decoder.rules}
    assert {(r.gid, r.sid) for r in parsed} == expected
    assert len(parsed) == len(expected)


def signature_rules(opts: spec.Options) -> dict[str, object]:
    by_sid = {r.sid: r for r in rules_of(rules.render_rules(SPEC, opts), idstools.rule.parse)
              if r.gid == 1}  # the rule for packets to the listener
    return {
        f"{s.name}/{r.transport}": by_sid[spec.rule_sid(opts, r)]
        for s in SPEC.signatures
        for r in s.rules
    }


def test_msg_names_signature_and_metadata_follows_et():
    for name, rule in signature_rules(SPEC.defaults).items():
        assert name.split("/")[0] in rule.msg
        assert rule.classtype == "trojan-activity"
        meta = " ".join(rule.metadata)
        for key in (
            "affected_product",
            "attack_target",
            "deployment",
            "signature_severity",
            "malware_family",
            "created_at",
            "updated_at",
        ):
            assert key in meta
        assert any(ref.startswith("url,") for ref in rule.references)


def test_report_interval_becomes_the_threshold():
    rules = signature_rules(SPEC.options(report_interval=77))
    for name in (
        "Conficker_P2P_Detected/udp",
        "Conficker_P2P_Data_Transfer/udp",
        "Conficker_P2P_Protection/udp",
    ):
        assert "threshold:type limit, track by_src, count 1, seconds 77;" in rules[name].raw
    assert "threshold" not in rules["Conficker_P2P_Detected/tcp"].raw
    assert "flowbits:isnotset" in rules["Conficker_P2P_Detected/tcp"].raw


def test_block_tcp_turns_tcp_detected_into_drop():
    assert signature_rules(SPEC.defaults)["Conficker_P2P_Detected/tcp"].action == "alert"
    blocking = signature_rules(SPEC.options(block_tcp=True))
    assert blocking["Conficker_P2P_Detected/tcp"].action == "drop"
    assert blocking["Conficker_P2P_Detected/udp"].action == "alert"
    assert blocking["Conficker_P2P_Protection/udp"].action == "drop"
    # a drop rule must match every message of the session, retransmissions included
    assert "flowbits" not in blocking["Conficker_P2P_Detected/tcp"].raw


def test_nets_and_sid_base_reach_every_rule():
    opts = SPEC.options(src_net="$HOME_NET", dst_net="$EXTERNAL_NET", sid_base=5_000_000)
    parsed = rules_of(rules.render_rules(SPEC, opts), idstools.rule.parse)
    assert all(
        r.raw.split()[2] == "$HOME_NET" and r.raw.split()[5] == "$EXTERNAL_NET" for r in parsed
    )
    assert all(5_000_000 <= r.sid < 5_001_000 for r in parsed)


def test_decoder_rules_never_alert_and_run_first():
    """The decoder is a pass rule that never matches (its Lua returns 0) and is marked as a
    flowint setter, so that Suricata orders it before every signature that reads it."""
    for d in SPEC.decoder.rules:
        rule = next(
            r
            for r in rules_of(rules.render_rules(SPEC, SPEC.defaults), idstools.rule.parse)
            if r.sid == spec.rule_sid(SPEC.defaults, d)
        )
        assert rule.action == "pass" and "noalert;" in rule.raw and "flowint:" in rule.raw
        # each engine's decoder rules call its own script and are skipped by the other
        assert f"lua:{d.engine.lua_script};" in rule.raw
        assert f"requires:{d.engine.requires};" in rule.raw


def test_lua_carries_the_decoder_sids_and_protocol():
    opts = SPEC.options(sid_base=7_000_000)
    for e in SPEC.decoder.engines:
        script = lua.render_lua(SPEC, opts, e)
        for d in SPEC.decoder.rules:
            # a script knows its own engine's decoder rules, and only those
            assert (f"[{spec.rule_sid(opts, d)}] = " in script) == (d.engine == e)
        assert f"local BUDGET = {SPEC.decoder.budget}" in script
        assert f"local REORDER_BYTES = {SPEC.decoder.reorder_bytes}" in script
