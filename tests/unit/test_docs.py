"""Docs: a page per signature with the spec's text and the pack's facts, an index, and
suricata-update tuning examples that never touch a decoder rule."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
import suricata.update.main
import suricata.update.matchers
import suricata.update.rule

from generator import spec
from generator.targets import docs, pack
from generator.targets.suricata import rules

SPEC = spec.load()
OPTS = SPEC.defaults
FILES = pack.render(SPEC, OPTS)
DOCS = {rel.removeprefix("docs/"): text for rel, text in FILES.items() if rel.startswith("docs/")}
RULES = [
    suricata.update.rule.parse(line)
    for line in FILES[f"rules/{SPEC.pack.rules_file}"].splitlines()
    if line and not line.startswith("#")
]
DECODER_SIDS = {spec.rule_sid(OPTS, d) for d in SPEC.decoder.rules}
REVS = rules.current_revs(SPEC)


def test_a_page_per_signature_and_an_index():
    pages = {rel for rel in DOCS if rel.startswith("signatures/")}
    assert pages == {f"signatures/{s.name}.md" for s in SPEC.signatures}
    for sig in SPEC.signatures:
        assert f"(signatures/{sig.name}.md)" in DOCS["index.md"]
    for sid in DECODER_SIDS:
        assert f"| {sid} |" in DOCS["index.md"]


@pytest.mark.parametrize("sig", SPEC.signatures, ids=lambda s: s.name)
def test_page_states_the_spec_and_the_rules(sig):
    page = DOCS[f"signatures/{sig.name}.md"]
    for field in dataclasses.fields(spec.Docs):
        assert getattr(sig.docs, field.name) in page, field.name
    sections = [line for line in page.splitlines() if line.startswith("## ")]
    assert sections == [
        "## About this signature",
        "## Default action and tuning",
        "## False positives",
        "## False negatives",
        "## Default risk",
        "## Systems affected",
        "## How to remove the infection",
        "## References",
        "## Example alert",
    ]
    for rule in sig.rules:
        sid = spec.rule_sid(OPTS, rule)
        assert f"| {sid} | {REVS[rule.sid_offset]} |" in page
    for ref in SPEC.references:
        assert ref.split(",", 1)[1] in page


@pytest.mark.parametrize("sig", SPEC.signatures, ids=lambda s: s.name)
def test_example_alert_matches_the_rules(sig):
    """The committed example is an alert of this signature's current rules: its sid,
    rev and message are those rendered (the engine re-run is tests/dist/test_examples)."""
    example = docs.read_examples(docs.examples_path(SPEC.source)).signatures[sig.name]
    alert = example.alert["alert"]
    by_id = {(r.gid, r.sid): r for r in RULES}
    assert alert["signature_id"] in {spec.rule_sid(OPTS, r) for r in sig.rules}
    rule = by_id[alert["gid"], alert["signature_id"]]
    assert (alert["rev"], alert["signature"]) == (rule.rev, rule.msg)
    assert json.dumps(example.alert, indent=2) in DOCS[f"signatures/{sig.name}.md"]


def _matchers(text: str) -> list:
    return suricata.update.main.parse_matchers(io.StringIO(text))


def _modify_filters(tmp_path, text: str) -> list:
    path = tmp_path / "modify.conf"
    path.write_text(text)
    return suricata.update.main.load_filters(str(path))


@pytest.mark.parametrize("name", ["drop.conf", "disable.conf", "modify.conf"])
def test_tuning_files_never_touch_decoder_rules(tmp_path, name):
    text = DOCS[f"tuning/{name}"]
    if name == "modify.conf":
        matchers = _modify_filters(tmp_path, text)
    else:
        matchers = _matchers(text)
    assert matchers, f"{name} has no active line"
    hit = {r.sid for r in RULES for m in matchers if m.match(r)}
    assert hit, f"{name} matches no rule of the pack"
    assert not hit & DECODER_SIDS, f"{name} touches decoder rules {sorted(hit & DECODER_SIDS)}"


def test_modify_conf_changes_the_report_interval(tmp_path):
    (flt,) = _modify_filters(tmp_path, DOCS["tuning/modify.conf"])
    changed = [flt.run(r) for r in RULES if flt.match(r)]
    # every rule of the limited control signatures, on both sides of the listener
    limited = [r for s in SPEC.signatures if s.matches == "control" for r in s.rules
               if r.report == "once_per_source"]
    assert {(r.gid, r.sid) for r in changed} == {
        (side.gid, spec.rule_sid(OPTS, r)) for r in limited for side in SPEC.sides(r)}
    assert len(changed) > len(limited)
    assert changed and all(
        f"seconds {docs.EXAMPLE_REPORT_INTERVAL};" in r.format()
        and f"seconds {OPTS.report_interval};" not in r.format()
        for r in changed
    )


def test_a_decoder_sid_in_a_tuning_file_would_be_caught():
    """The check above can fail: a line naming a decoder rule is seen."""
    matchers = _matchers(f"1:{min(DECODER_SIDS)}\nre:Conficker\n")
    hit = {r.sid for r in RULES for m in matchers if m.match(r)}
    assert DECODER_SIDS <= hit


def test_bad_examples_file(tmp_path):
    path = tmp_path / "x.examples.json"
    path.write_text('{"signatures": {"A": {"engine": "suricata8", "pcap": 1}}}')
    with pytest.raises(docs.ExamplesError, match=r"signatures\.A\.pcap"):
        docs.read_examples(path)
