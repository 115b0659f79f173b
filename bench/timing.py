"""What an operator sees: CPU time and peak RSS of whole runs on the full inputs, beside the
counts. Not a budget for CPU (this machine's noise is larger than the budgets), the
budget for peak RSS.

Every run reads a whole input (`-k none`; Suricata `--runmode single`), timed from the
parent: user+system CPU of the engine (os.wait4; `chroot` execs it), peak RSS from GNU time
around it (os.wait4's would be at least this Python's own peak, which Linux carries across
fork and exec). The arms take turns, one later each round; `none-b` is `none` again, the
A/A arm: how far none-b/none strays from 1 is the noise floor of that engine and input.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.arms import Ruleset
from bench.harness import ENGINES, SNORT3, pack_args

RUN_TIMEOUT = 900
TIME = Path("/usr/bin/time")  # GNU time, `make gnu-time`


@dataclass
class Runs:
    """CPU seconds and peak RSS MB of each run, by arm, of one engine on one input."""

    cpu: dict[str, list[float]] = field(default_factory=dict)
    rss: dict[str, list[float]] = field(default_factory=dict)

    def ratio(self, what: str, arm: str = "pack", base: str = "none") -> float:
        """Ratio of the fastest runs for CPU (contention only adds time), of the medians
        for RSS."""
        v = getattr(self, what)
        pick = min if what == "cpu" else statistics.median
        return pick(v[arm]) / pick(v[base])

    def floor(self) -> float | None:
        """The A/A noise floor: the largest deviation from 1 of none-b/none, per round and
        of the fastest runs."""
        if "none-b" not in self.cpu:
            return None
        rounds = [b / a for a, b in zip(self.cpu["none"], self.cpu["none-b"], strict=False)]
        return max(abs(x - 1) for x in (self.ratio("cpu", "none-b"), *rounds))


def timed_run(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """(CPU seconds, peak RSS MB, output) of one engine run; killed after RUN_TIMEOUT."""
    if not TIME.exists():
        raise SystemExit(f"{TIME} (GNU time) is missing: run `make gnu-time`")
    rss_file, console = cwd / "rss.txt", cwd / "console.txt"
    with open(console, "wb") as out:
        proc = subprocess.Popen([str(TIME), "-f", "%M", "-o", str(rss_file), *cmd], stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        timer = threading.Timer(RUN_TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
    log = console.read_text(errors="replace")
    if (cwd / "suricata.log").exists():
        log += (cwd / "suricata.log").read_text(errors="replace")
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise RuntimeError(f"{cmd[:3]} exited {rc}: {log[-3000:]}")
    rss_kb = int(rss_file.read_text().split()[-1])
    return usage.ru_utime + usage.ru_stime, rss_kb / 1024, log


class Stage:
    """An engine's arms staged in a folder it can read, and runs of them on a pcap."""

    def __init__(self, engine: str, arms: dict[str, Ruleset]) -> None:
        self.engine = engine
        self.eng = next((e for e in ENGINES if e.name == engine), None)
        self.work = (self.eng._workdir() if self.eng
                     else Path(tempfile.mkdtemp(prefix="cfp2p-timing-")))
        self.arms = arms
        for name, rs in arms.items():
            d = self.work / "arms" / name
            d.mkdir(parents=True)
            for f, text in rs.files.items():
                (d / f).write_text(text)
        self.n = 0

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def pcap(self, path: Path) -> Path:
        """The pcap where the engine sees it (a hard link into a chroot)."""
        if self.eng is None or self.eng.root is None:
            return path.resolve()
        dest = self.work / path.name
        if not dest.exists():
            try:
                os.link(path, dest)
            except OSError:
                shutil.copy(path, dest)
        return dest

    def run(self, arm: str, pcap: Path) -> tuple[float, float, str]:
        self.n += 1
        log = self.work / "logs" / f"{self.n:04d}"
        log.mkdir(parents=True)
        d, rules = self.work / "arms" / arm, self.arms[arm].rules
        try:
            if self.eng is None:
                return timed_run([str(SNORT3), *pack_args(d / "snort.lua", d, rules), "-r",
                                  str(pcap), "-k", "none", "-A", "none", "-l", str(log)], log)
            e = self.eng
            return timed_run(e._cmd(["-r", e._inside(pcap), "-S", e._inside(d / rules),
                                     "-l", e._inside(log), "-k", "none", "--runmode", "single",
                                     *e._settings(d)]), log)
        finally:
            shutil.rmtree(log, ignore_errors=True)


def measure(stage: Stage, pcap: Path, arms: list[str], rounds: int, log) -> Runs:  # noqa: ANN001
    """An untimed warm-up run, then `rounds` rounds over the arms, rotating."""
    runs = Runs()
    staged = stage.pcap(pcap)
    stage.run(arms[0], staged)
    for r in range(rounds):
        for arm in arms[r % len(arms):] + arms[:r % len(arms)]:
            t0 = time.monotonic()
            cpu, rss, _ = stage.run(arm, staged)
            runs.cpu.setdefault(arm, []).append(cpu)
            runs.rss.setdefault(arm, []).append(rss)
            log(f"    {stage.engine} {pcap.stem} {arm:<12} round {r + 1}: cpu {cpu:6.2f} s "
                f"rss {rss:6.1f} MB ({time.monotonic() - t0:.0f} s)")
    return runs
