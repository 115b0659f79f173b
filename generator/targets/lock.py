"""Automatic revs: a committed lock records every rule's rev and a hash of its text.

A target's lock (beside the spec: spec/conficker-p2p.lock.yaml for the Suricata rules,
spec/conficker-p2p.snort3.lock.yaml for Snort 3's) maps each sid to the rule's name, its
rev, and the sha256 of the rule as rendered with the spec's default options, without its
`rev:`. A rule whose rendered text changed gets
the locked rev + 1; a new sid starts at rev 1; an unchanged rule keeps its rev.

Revs follow the default ruleset, the one the repository publishes: the hashes are
always taken from the default render, so rendering with other options (`--block-tcp
true`, another `--sid-base`) never bumps a rev; such a ruleset carries the revs of the
default rules it derives from. Only revs.py (`python -m generator.targets.revs`, run by
`make rules`) writes the locks; `cfp2p render` reads them (each target's current_revs)
and renders with the revs they resolve to. This module knows the lock file only: it renders
nothing, so the rules import it and not the other way round.

An entry whose sid left the spec stays in the lock, so that a sid that comes back
continues from its last rev.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec import SpecError
from ..spec.load import read_yaml

_SHA256 = re.compile(r"[0-9a-f]{64}")
_REV = re.compile(r" rev:\d+;")
HEADER = """\
# Revs of the rendered rules: sid -> rule, rev, sha256 of the rule rendered with the
# spec's default options, without its rev. Written by `make rules` (python -m
# generator.targets.revs), which bumps the rev of a rule whose text changed; do not edit.
"""


class LockError(SpecError):
    """A lock file that cannot be read: which file, which entry and field."""


@dataclass(frozen=True)
class Entry:
    rule: str  # e.g. Conficker_P2P_Detected/udp, decoder/tcp/to_server
    rev: int
    sha256: str


@dataclass(frozen=True)
class Resolved:
    revs: dict[int, int]  # sid -> rev, for the default sids
    lock: dict[int, Entry]  # the lock as it should be written
    changed: list[str]  # "sid rule rev" for every entry that is new or bumped


def lock_path(spec_source: str | Path, target: str = "") -> Path:
    """The lock of a target's rules beside the spec (the Suricata rules': no target name)."""
    src = Path(spec_source)
    return src.with_name(f"{src.stem}{'.' + target if target else ''}.lock.yaml")


def strip_rev(rule_text: str) -> str:
    return _REV.sub("", rule_text)


def fingerprint(rule_text: str) -> str:
    return hashlib.sha256(strip_rev(rule_text).encode("utf-8")).hexdigest()


def read_lock(path: Path) -> dict[int, Entry]:
    """The lock's entries; a missing lock is empty (every rule starts at rev 1)."""
    data = read_yaml(path, LockError, missing=None)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LockError(path, "top level", "expected a mapping of sid to entry")
    return {_sid(path, key): _entry(path, key, value) for key, value in data.items()}


def _sid(path: Path, key: Any) -> int:
    if isinstance(key, bool) or not isinstance(key, int) or key <= 0:
        raise LockError(path, str(key), "expected a sid (a positive integer) as key")
    return key


def _entry(path: Path, sid: Any, value: Any) -> Entry:
    if not isinstance(value, dict):
        raise LockError(path, str(sid), "expected a mapping with rule, rev and sha256")
    unknown = sorted(set(value) - {"rule", "rev", "sha256"}, key=str)
    if unknown:
        raise LockError(path, f"{sid}.{unknown[0]}", "unknown key")
    for key in ("rule", "rev", "sha256"):
        if key not in value:
            raise LockError(path, f"{sid}.{key}", "missing")
    rule, rev, digest = value["rule"], value["rev"], value["sha256"]
    if not isinstance(rule, str) or not rule:
        raise LockError(path, f"{sid}.rule", f"expected a rule name, got {rule!r}")
    if isinstance(rev, bool) or not isinstance(rev, int) or rev < 1:
        raise LockError(path, f"{sid}.rev", f"expected an integer of 1 or more, got {rev!r}")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise LockError(path, f"{sid}.sha256", f"expected 64 hex digits, got {digest!r}")
    return Entry(rule, rev, digest)


def format_lock(lock: dict[int, Entry]) -> str:
    lines = [
        f"{sid}: {{rule: {e.rule}, rev: {e.rev}, sha256: {e.sha256}}}"
        for sid, e in sorted(lock.items())
    ]
    return HEADER + "\n".join(lines) + "\n"


def resolve(lock: dict[int, Entry], rules: dict[int, tuple[str, str]]) -> Resolved:
    """Revs for the default rules (sid -> (name, text)) against the lock."""
    revs: dict[int, int] = {}
    new = dict(lock)
    changed = []
    for sid, (name, text) in sorted(rules.items()):
        digest = fingerprint(text)
        old = lock.get(sid)
        if old is not None and old.sha256 == digest and old.rule == name:
            revs[sid] = old.rev
            continue
        revs[sid] = old.rev + 1 if old is not None else 1
        new[sid] = Entry(name, revs[sid], digest)
        changed.append(f"{sid} {name} rev {revs[sid]}")
    return Resolved(revs, new, changed)


def write_lock(path: Path, lock: dict[int, Entry]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(format_lock(lock), encoding="utf-8")
    tmp.replace(path)
