"""`python -m generator.targets.suricata.revs` (`make rules`): bump the rev of every rule
whose text changed and write the rev lock (lock.py) beside the spec."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ... import spec
from ...spec import SpecError
from . import lock, rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator.targets.suricata.revs",
        description="Bump the rev of every rule whose rendered text changed; write the lock.",
    )
    parser.add_argument("--spec", type=Path, default=spec.DEFAULT_SPEC, help="spec file")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the lock is out of date"
    )
    args = parser.parse_args(argv)
    try:
        loaded = spec.load(args.spec)
        path = lock.lock_path(loaded.source)
        resolved = lock.resolve(lock.read_lock(path), rules.default_rules(loaded))
    except SpecError as err:
        print(f"revs: error: {err}", file=sys.stderr)
        return 2
    if args.check:
        for line in resolved.changed:
            print(f"revs: out of date: {line}", file=sys.stderr)
        return 1 if resolved.changed else 0
    if resolved.changed or not path.exists():
        lock.write_lock(path, resolved.lock)
    for line in resolved.changed:
        print(f"revs: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
