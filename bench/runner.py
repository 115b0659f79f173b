"""Running Suricata on the benchmark inputs and sampling what each run costs.

Every run is `suricata -r INPUT -S RULES -k none --runmode single` with the harness's
settings (tests/engine/engines.py), timed from the parent: user+system CPU time comes
from os.wait4's resource usage of the suricata process (`chroot` execs it, so for
Suricata 8 the child is suricata too), peak RSS from GNU time around it (timed_run says
why), wall time from the clock around it. The arms take
turns (measure_plan); the count arm gives the decoder invocations as Suricata counts them.

Outside Suricata (bench/luacount.py, bench/worstcase.py): Lua VM instructions and bytes
deciphered per decoder call on a sample of each input's candidate packets, and the
costliest single call over adversarial inputs.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from bench import luacount, worstcase
from bench.arms import Arm, Pack, Version
from bench.harness import Engine, lua_problems
from bench.rulemodel import admits, parse_version, rule_lines, selectors
from bench.stats import Cell, Sample

RUN_TIMEOUT = 900
TIME = Path("/usr/bin/time")  # GNU time, for the peak RSS (timed_run)

class Bench:
    """One engine's staging folder: arms and input pcaps, and the runs on them."""

    def __init__(self, engine: Engine, arms: dict[str, Arm]) -> None:
        self.engine = engine
        self.version = parse_version(engine.version())
        self.work = engine._workdir()
        self.arms = arms
        for arm in arms.values():
            d = self.work / "arms" / arm.name
            d.mkdir(parents=True)
            for name, data in arm.files.items():
                (d / name).write_bytes(data)
        (self.work / "inputs").mkdir()
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.n = 0

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def stage_input(self, path: Path) -> Path:
        """The pcap inside the engine's view (a hard link when on the same file system)."""
        dest = self.work / "inputs" / path.name
        if not dest.exists():
            try:
                os.link(path, dest)
            except OSError:
                shutil.copy(path, dest)
        return dest

    def run(self, arm_name: str, pcap: Path) -> Sample:
        eng, arm = self.engine, self.arms[arm_name]
        self.n += 1
        logdir = self.logs / f"{self.n:04d}-{arm_name}"
        logdir.mkdir()
        armdir = self.work / "arms" / arm_name
        args = ["-r", eng._inside(pcap), "-S", eng._inside(armdir / arm.rules),
                "-l", eng._inside(logdir), "-k", "none", "--runmode", "single",
                *eng._settings(armdir)]
        rc, cpu, wall, rss_mb = timed_run(eng._cmd(args), logdir / "console.txt")
        log = (logdir / "console.txt").read_text(errors="replace")
        if (logdir / "suricata.log").exists():
            log += (logdir / "suricata.log").read_text(errors="replace")
        if rc != 0:
            raise RuntimeError(f"{eng.name} {arm_name} on {pcap.name} exited "
                               f"{rc}: {log[-3000:]}")
        stats, alerts = _read_eve(logdir / "eve.json")
        shutil.rmtree(logdir, ignore_errors=True)
        return Sample(arm_name, cpu, wall, rss_mb, stats, alerts,
                      lua_problems(eng.major, log, stats), rules_loaded(stats))


def timed_run(cmd: list[str], console: Path, cwd: Path | None = None
              ) -> tuple[int, float, float, float]:
    """Exit status, user+system CPU seconds and peak RSS MB of the child (os.wait4: its
    own resource usage, the engine's when the command execs it), wall seconds; killed
    after RUN_TIMEOUT. Output to `console`.

    The peak RSS comes from GNU time (TIME, installed by `make bench`): Linux carries the
    peak of the mm a process forks from across exec, so os.wait4's ru_maxrss of a child of
    this Python is at least this Python's own peak (over 100 MB after the Lua counts) and
    hides an engine's smaller one; GNU time forks the engine from its own small process.
    Its own CPU time (about a millisecond) is in every arm's."""
    if not TIME.exists():
        raise RuntimeError(f"{TIME} (GNU time) is missing: run `make gnu-time`")
    rss_file = console.with_suffix(".rss")
    cmd = [str(TIME), "-f", "%M", "-o", str(rss_file), *cmd]
    with open(console, "wb") as out:
        t0 = time.perf_counter()
        # a session of its own, so that a timeout kills the engine, not only GNU time
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
        timer = threading.Timer(RUN_TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    rss_kb = int(rss_file.read_text().split()[-1]) if proc.returncode == 0 else 0
    return (proc.returncode, usage.ru_utime + usage.ru_stime, wall, rss_kb / 1024)


def _read_eve(path: Path) -> tuple[dict, Counter]:
    """Last stats record and alerts per sid (the only eve lines parsed)."""
    stats: dict = {}
    alerts: Counter = Counter()
    if not path.exists():
        return stats, alerts
    with open(path, "rb") as f:
        for line in f:
            if b'"event_type":"alert"' in line:
                alerts[json.loads(line)["alert"]["signature_id"]] += 1
            elif b'"event_type":"stats"' in line:
                stats = json.loads(line)["stats"]
    return stats, alerts


def rules_loaded(stats: dict) -> tuple[int, int, int]:
    """Rules loaded, failed and skipped (`requires:` not met) as the stats give them."""
    eng = (stats.get("detect", {}).get("engines") or [{}])[0]
    return eng.get("rules_loaded", -1), eng.get("rules_failed", -1), eng.get("rules_skipped", 0)



def measure_plan(bench: Bench, pcap: Path, plan: dict[str, int], log) -> Cell:  # noqa: ANN001
    """An untimed warm-up run, then rounds over the arms, each arm taking part in as many
    rounds as the plan gives it, the order rotating by one each round."""
    cell = Cell()
    staged = bench.stage_input(pcap)
    arms = list(plan)
    bench.run(arms[0], staged)  # warm-up, not counted: page cache, first-run effects
    for r in range(max(plan.values())):
        current = [a for a in arms if plan[a] > r]
        k = r % len(current)
        for arm in current[k:] + current[:k]:
            s = bench.run(arm, staged)
            cell.add(s)
            log(f"    {arm:<12} round {r + 1}: cpu {s.cpu:7.2f} s  wall {s.wall:7.2f} s  "
                f"rss {s.rss_mb:6.1f} MB")
    return cell


def measure(bench: Bench, pcap: Path, arms: list[str], runs: int, log,  # noqa: ANN001
            main: list[str] | None = None, main_runs: int = 0) -> Cell:
    """`runs` rounds over the arms, then rounds over the `main` arms only up to
    `main_runs` rounds (measure_plan)."""
    plan = dict.fromkeys(arms, runs)
    for a in main or []:
        plan[a] = max(plan.get(a, 0), main_runs)
    return measure_plan(bench, pcap, plan, log)


def count_invocations(bench: Bench, pcap: Path, expected_rules: int | None = None
                      ) -> tuple[int, list[str]]:
    """Decoder invocations as Suricata counts them (the count arm). The rules loaded must
    be the count arm's rules this engine admits, the others skipped."""
    s = bench.run("count", bench.stage_input(pcap))
    arm = bench.arms["count"]
    lines = rule_lines(arm.files[arm.rules].decode())
    admitted = sum(admits(ln, bench.version) for ln in lines)
    want = (admitted if expected_rules is None else expected_rules, 0, len(lines) - admitted)
    problems = list(s.lua_problems)
    if s.rules != want:
        problems.append(f"count arm: {s.rules[0]} rules loaded, {s.rules[1]} failed, "
                        f"{s.rules[2]} skipped (expected {want[0]}, 0, {want[2]})")
    det = s.stats.get("detect", {})
    return det.get("alert", 0) + det.get("alerts_suppressed", 0), problems



def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{model}, {os.cpu_count()} cores{mem}, Linux {platform.release()}"



def lua_counter(pack: Pack, version: Version, major: int):  # noqa: ANN201
    """A function (pcap, sample) -> luacount.Counts for the decoder rules an engine of this
    version loads, or returning None when the rules use what bench.rulemodel does not
    model."""
    sels = selectors(pack.decoder_lines(version))
    scripts = pack.scripts(version)

    def count(pcap: Path, sample: int) -> luacount.Counts | None:
        if not sels:
            return None
        return luacount.count_input(pcap, sels, scripts, luacount.runtime_for(major), sample,
                                    every=100)

    return count


def worst_calls(pack: Pack, version: Version, major: int, points: int) -> list[worstcase.Worst]:
    """The adversarial cases on the script of the engine's UDP and TCP to_server decoder
    rules (each case's Lua state serves the rule it would serve in Suricata)."""
    sels = selectors(pack.decoder_lines(version)) or []
    out: list[worstcase.Worst] = []
    by_script: dict[str, dict[str, int]] = {}
    for sel in sels:
        for transport in ("udp", "tcp"):
            if f"{transport}/c2s" in sel.roles:
                by_script.setdefault(sel.script, {}).setdefault(transport, sel.sid)
    for script, sids in by_script.items():
        out += worstcase.worst_cases(pack.lua[script], luacount.runtime_for(major), sids, points)
    return out
