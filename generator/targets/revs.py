"""`python -m generator.targets.revs` (`make rules`): bump the rev of every rule whose
text changed and write the rev locks (lock.py) beside the spec: one for the Suricata
rules, one for Snort 3's (its rules carry the same sids, with revs of their own text)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import spec
from ..spec import Spec, SpecError
from . import lock
from .snort3 import render as snort3
from .suricata import rules as suricata


def locks(loaded: Spec) -> list[tuple[Path, lock.Resolved]]:
    """Each target's lock file and what it resolves to against the default rules."""
    found = []
    for target, rules in (
        ("", suricata.default_rules(loaded)),
        ("snort3", snort3.default_rules(loaded)),
    ):
        path = lock.lock_path(loaded.source, target)
        found.append((path, lock.resolve(lock.read_lock(path), rules)))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator.targets.revs",
        description="Bump the rev of every rule whose rendered text changed; write the locks.",
    )
    parser.add_argument("--spec", type=Path, default=spec.DEFAULT_SPEC, help="spec file")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a lock is out of date"
    )
    args = parser.parse_args(argv)
    try:
        resolved = locks(spec.load(args.spec))
    except SpecError as err:
        print(f"revs: error: {err}", file=sys.stderr)
        return 2
    changed = [f"{path.name}: {line}" for path, r in resolved for line in r.changed]
    if args.check:
        for line in changed:
            print(f"revs: out of date: {line}", file=sys.stderr)
        return 1 if changed else 0
    for path, r in resolved:
        if r.changed or not path.exists():
            lock.write_lock(path, r.lock)
    for line in changed:
        print(f"revs: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
