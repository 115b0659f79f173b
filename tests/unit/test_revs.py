"""Automatic revs: the committed lock is current; a changed rule, and only it, gets a
new rev; re-rendering changes nothing; other render options never touch the lock; a
bad lock is refused with its file and field, exit 2, nothing written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from generator import cli, spec
from generator.targets import lock, revs
from generator.targets.snort3 import render as snort3
from generator.targets.suricata import rules

SPEC = spec.load()
LOCK = lock.lock_path(SPEC.source)
SNORT_LOCK = lock.lock_path(SPEC.source, "snort3")


@pytest.fixture
def copy(tmp_path) -> Path:
    """The spec and its lock in a folder of their own; returns the spec's path."""
    src = tmp_path / "spec" / Path(SPEC.source).name
    src.parent.mkdir()
    shutil.copy(SPEC.source, src)
    shutil.copy(LOCK, lock.lock_path(src))
    shutil.copy(SNORT_LOCK, lock.lock_path(src, "snort3"))
    return src


def rendered_revs(spec_path: Path, *options: str, out: Path) -> dict[int, int]:
    assert cli.main(["render", "--spec", str(spec_path), "--out", str(out), *options]) == 0
    text = (out / "rules" / SPEC.pack.rules_file).read_text()
    return {int(s): int(r) for s, r in re.findall(r"sid:(\d+); rev:(\d+);", text)}


def tree(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_committed_lock_is_current():
    assert revs.main(["--check"]) == 0, "spec changed without `make rules`"


def test_lock_covers_every_rule():
    locked = lock.read_lock(LOCK)
    assert set(rules.default_rules(SPEC)) <= set(locked)
    assert set(snort3.default_rules(SPEC)) <= set(lock.read_lock(SNORT_LOCK))


def test_a_snort_only_change_bumps_only_snort_revs(copy, tmp_path):
    """The Snort rules carry the Suricata rules' sids with revs of their own text."""
    suricata_lock = lock.lock_path(copy).read_bytes()
    before = lock.read_lock(lock.lock_path(copy, "snort3"))
    text = copy.read_text()
    assert "  option: conficker_p2p\n" in text
    copy.write_text(text.replace("  option: conficker_p2p\n", "  option: conficker_p2p_c\n"))
    assert revs.main(["--spec", str(copy), "--check"]) == 1
    assert revs.main(["--spec", str(copy)]) == 0
    after = lock.read_lock(lock.lock_path(copy, "snort3"))
    assert {s: e.rev for s, e in after.items()} == {s: e.rev + 1 for s, e in before.items()}
    assert lock.lock_path(copy).read_bytes() == suricata_lock
    out = tmp_path / "out"
    assert cli.main(["render", "--spec", str(copy), "--out", str(out)]) == 0
    snort = (out / "snort3" / SPEC.snort3.rules_file).read_text()
    got = {int(s): int(r) for s, r in re.findall(r"sid:(\d+); rev:(\d+);", snort)}
    assert got == {s: e.rev for s, e in after.items()}


def test_changing_one_rule_bumps_exactly_its_rev(copy, tmp_path):
    before = lock.read_lock(lock.lock_path(copy))
    snort_before = lock.read_lock(lock.lock_path(copy, "snort3"))
    text = copy.read_text()
    # Data_Transfer over TCP reports once per flow instead of every message
    old = "{transport: tcp, sid_offset: 4, action: alert, report: every}"
    assert old in text
    copy.write_text(text.replace(old, old.replace("every", "once_per_flow")))
    assert revs.main(["--spec", str(copy)]) == 0
    after = lock.read_lock(lock.lock_path(copy))
    sid = SPEC.defaults.sid_base + 4
    assert after[sid].rev == before[sid].rev + 1
    assert after[sid].sha256 != before[sid].sha256
    assert {s: e for s, e in after.items() if s != sid} == {
        s: e for s, e in before.items() if s != sid
    }
    got = rendered_revs(copy, out=tmp_path / "out")
    assert got == {s: e.rev for s, e in after.items()}
    snort = lock.read_lock(lock.lock_path(copy, "snort3"))
    bumped = {s for s, e in snort.items() if e.rev != snort_before[s].rev}
    assert bumped == {sid} and snort[sid].rev == snort_before[sid].rev + 1, "its Snort rule too"


def test_rerendering_is_idempotent(copy, tmp_path):
    lock_bytes = lock.lock_path(copy).read_bytes()
    assert revs.main(["--spec", str(copy)]) == 0
    assert revs.main(["--spec", str(copy)]) == 0
    assert lock.lock_path(copy).read_bytes() == lock_bytes
    first = rendered_revs(copy, out=tmp_path / "a")
    assert rendered_revs(copy, out=tmp_path / "b") == first
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_other_options_do_not_touch_the_lock(copy, tmp_path):
    lock_bytes = lock.lock_path(copy).read_bytes()
    locked = {s: e.rev for s, e in lock.read_lock(lock.lock_path(copy)).items()}
    base = SPEC.defaults.sid_base
    got = rendered_revs(
        copy,
        "--block-tcp",
        "true",
        "--report-interval",
        "60",
        "--sid-base",
        str(base + 1000),
        out=tmp_path / "out",
    )
    assert revs.main(["--spec", str(copy), "--check"]) == 0
    assert lock.lock_path(copy).read_bytes() == lock_bytes
    # the custom ruleset carries the revs of the default rules it derives from
    assert got == {s + 1000: r for s, r in locked.items() if s - base in _offsets()}


def _offsets() -> set[int]:
    return {r.sid_offset for r in rules.all_rules(SPEC)}


def test_missing_lock_starts_every_rule_at_rev_1(copy, tmp_path):
    lock.lock_path(copy).unlink()
    got = rendered_revs(copy, out=tmp_path / "out")
    assert set(got.values()) == {1}
    assert not lock.lock_path(copy).exists(), "render reads the lock, never writes it"


@pytest.mark.parametrize(
    "lock_text, where",
    [
        ("9310001: {rule: x, rev: two, sha256: " + "0" * 64 + "}\n", "9310001.rev"),
        ("9310001: {rule: x, rev: 1, sha256: abc}\n", "9310001.sha256"),
        ("9310001: {rule: x, rev: 1}\n", "9310001.sha256"),
        ("sid: {rule: x, rev: 1, sha256: " + "0" * 64 + "}\n", "sid"),
        ("9310001: [1, 2]\n", "9310001"),
        ("9310001: {rule: x\n", "line"),
        ("- a list\n", "top level"),
    ],
)
def test_bad_lock_is_refused(copy, tmp_path, capsys, lock_text, where):
    lock.lock_path(copy).write_text(lock_text)
    out = tmp_path / "out"
    assert cli.main(["render", "--spec", str(copy), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{lock.lock_path(copy)}: {where}" in err
    assert not out.exists() or not any(out.iterdir()), "no partial output"
    assert revs.main(["--spec", str(copy)]) == 2
    assert lock.lock_path(copy).read_text() == lock_text, "a bad lock is left as it is"
