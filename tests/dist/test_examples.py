"""The example alerts in the docs are what a real engine writes.

spec/conficker-p2p.examples.json names, per signature, an engine, a pcap and a mode,
and holds the first alert of that signature the engine wrote there with the default
ruleset. This runs the engine again and compares every field but the unstable ones
(docs.UNSTABLE); it also checks the engine versions the docs name. With
CFP2P_UPDATE_EXAMPLES=1 it rewrites the file instead (then `make rules`)."""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
from pathlib import Path

import pytest
from engines import ENGINES, ROOT

from generator import spec
from generator.targets import docs
from generator.targets import common, pack

SPEC = spec.load()
PATH = docs.examples_path(SPEC.source)
EXAMPLES = docs.read_examples(PATH)
UPDATE = os.environ.get("CFP2P_UPDATE_EXAMPLES") == "1"
BY_NAME = {e.name: e for e in ENGINES}


@functools.cache
def ruleset() -> tuple[Path, Path]:
    out = Path(tempfile.mkdtemp(prefix="cfp2p-examples-"))
    common.write_tree(pack.render(SPEC, SPEC.defaults), out)
    return out / "rules" / SPEC.pack.rules_file, out / "lua"


def first_alert(example: docs.Example) -> dict:
    engine = BY_NAME[example.engine]
    sig = next(s for s in SPEC.signatures if s.name == example.signature)
    sids = {spec.rule_sid(SPEC.defaults, r) for r in sig.rules}
    rules, lua = ruleset()
    run = engine.read_pcap(ROOT / "pcaps" / example.pcap, rules, lua, ips=example.mode == "ips")
    found = [a for a in run.alerts if a["alert"]["signature_id"] in sids]
    assert found, f"{engine.name} wrote no {sig.name} alert on {example.pcap}"
    return found[0]


def test_every_signature_has_an_example():
    assert sorted(EXAMPLES.signatures) == sorted(s.name for s in SPEC.signatures)


def test_examples_are_what_the_engine_writes():
    for engine in ENGINES:
        if not engine.available():
            pytest.fail(f"{engine.name} is not installed: run `make engines`")
    versions = {e.name: e.version() for e in ENGINES}
    captured = {
        name: dataclasses.replace(ex, alert=first_alert(ex))
        for name, ex in EXAMPLES.signatures.items()
    }
    if UPDATE:
        PATH.write_text(docs.format_examples(docs.Examples(versions, captured)))
        pytest.skip(f"rewrote {PATH}; run `make rules` to render the docs")
    assert EXAMPLES.engines == versions, "engine versions the docs name"
    for name, ex in EXAMPLES.signatures.items():
        assert docs.stable(captured[name].alert) == docs.stable(ex.alert), name
