"""The Snort 3 arms: Snort 3 without rules against Snort 3 with the pack's snort3/ files,
measured like the Suricata arms (measure_plan takes turns over a SnortBench's arms).

  none    the pack's snort.lua and its option script on the script path, an empty rules
          file: everything but the pack's rules
  none-b  the same again in its own folder: the A/A arm
  pack    the pack's rules (conficker-p2p.snort) as rendered

Every run: `snort -c snort.lua --script-path ARM -R RULES -r INPUT -k none -A none -l LOG`
in LOG as working directory (the output goes nowhere). Not -q: the exit statistics give the
rules loaded and the alerts. The snort3/ files are rendered once at start from the spec
(generator.targets.snort3), a snapshot like the Suricata pack's. The binary, its version
and the Lua errors of a run's output (Snort prints them and still exits 0) come from the
engine tests' Snort wrapper (bench.harness).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.harness import SNORT3, pack_args, snort_lua_problems, snort_version
from bench.runner import timed_run
from bench.stats import Sample
from generator import spec as spec_mod
from generator.targets.common import rule_lines
from generator.targets.snort3 import render_snort3

NAME = "snort3"
ARMS = ["none", "none-b", "pack"]
EMPTY = "empty.snort"


def available() -> bool:
    return SNORT3.exists()


def version() -> str:
    return snort_version(SNORT3)


lua_problems = snort_lua_problems


def _stat(log: str, name: str) -> int:
    """A counter of Snort's exit statistics (0 when absent: Snort prints no zero rows)."""
    m = re.search(rf"^\s+{re.escape(name)}: (\d+)", log, re.M)
    return int(m.group(1)) if m else 0


@dataclass
class SnortPack:
    """A snapshot of the pack's snort3/ files (by name), which of them are the rules and
    the option script."""

    files: dict[str, str]
    rules_name: str
    script: str

    @classmethod
    def render(cls) -> SnortPack:
        spec = spec_mod.load()
        files = render_snort3(spec, spec.options())  # revs from the Snort rev lock
        return cls(
            {Path(k).name: v for k, v in files.items()},
            spec.snort3.rules_file,
            spec.snort3.lua_script,
        )

    def rules(self) -> int:
        return len(rule_lines(self.files[self.rules_name]))

    def digest(self) -> str:
        h = hashlib.sha256()
        for name, text in sorted(self.files.items()):
            h.update(name.encode() + text.encode())
        return h.hexdigest()[:12]

    def arm_files(self) -> dict[str, tuple[dict[str, str], str]]:
        """Arm -> (files, rules file): the none arms keep every file but the rules."""
        base = {k: v for k, v in self.files.items() if k != self.rules_name}
        empty = ({**base, EMPTY: ""}, EMPTY)
        return {"none": empty, "none-b": empty, "pack": (dict(self.files), self.rules_name)}


class SnortBench:
    """Snort 3's staging folder: an arm folder each, and the runs on them (the interface of
    bench.runner.Bench that measure_plan uses)."""

    def __init__(self, pack: SnortPack, binary: Path = SNORT3) -> None:
        self.binary = binary
        self.work = Path(tempfile.mkdtemp(prefix="cfp2p-snort-bench-"))
        self.arms = {}
        for arm, (files, rules) in pack.arm_files().items():
            d = self.work / "arms" / arm
            d.mkdir(parents=True)
            for name, text in files.items():
                (d / name).write_text(text)
            self.arms[arm] = rules
        self.n = 0

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def stage_input(self, path: Path) -> Path:
        return path.resolve()  # Snort reads the cached pcap where it is (runs in LOG)

    def run(self, arm: str, pcap: Path) -> Sample:
        self.n += 1
        logdir = self.work / "logs" / f"{self.n:04d}-{arm}"
        logdir.mkdir(parents=True)
        d = self.work / "arms" / arm
        cmd = [
            str(self.binary),
            *pack_args(d / "snort.lua", d, self.arms[arm]),
            "-r",
            str(pcap),
            "-k",
            "none",
            "-A",
            "none",
            "-l",
            str(logdir),
        ]
        rc, cpu, wall, rss_mb = timed_run(cmd, logdir / "console.txt", cwd=logdir)
        log = (logdir / "console.txt").read_text(errors="replace")
        shutil.rmtree(logdir, ignore_errors=True)
        if rc != 0:
            raise RuntimeError(f"{NAME} {arm} on {pcap.name} exited {rc}: {log[-3000:]}")
        alerts = Counter({0: _stat(log, "total_alerts")})  # all sids as one
        return Sample(
            arm,
            cpu,
            wall,
            rss_mb,
            {"analyzed": _stat(log, "analyzed")},
            alerts,
            lua_problems(log),
            (_stat(log, "total rules loaded"), 0, 0),
        )


def snort_ruleset(name: str, pack: SnortPack):  # noqa: ANN201 - bench.arms.Ruleset
    """A counted arm of Snort 3 (bench.count)."""
    from bench.arms import SNORT_ARMS, Ruleset

    if name not in ("none", "pack"):
        raise SystemExit(f"--arm {name}: Snort 3 has {', '.join(SNORT_ARMS)}")
    files, rules = pack.arm_files()[name]
    return Ruleset(name, files, rules)
