"""Run Suricata on the benchmark inputs without rules, with the pack, with the engine's bundled
rules and with both; count what the pack's Lua does; write RESULTS.md.

Every run is `suricata -r INPUT -S RULES -k none --runmode single` with the harness's
settings (tests/engine/engines.py), timed from the parent: user+system CPU time and peak
RSS come from os.wait4's resource usage of the suricata process (`chroot` execs it, so for
Suricata 8 the child is suricata too), wall time from the clock around it.

Arms (each a rules folder staged next to the engine):
  none          an empty rules file: the baseline
  none-b        the same empty rules file again, in its own folder: the A/A arm; how far
                none-b/none strays from 1 is the noise floor
  pack          the pack's rules and Lua script(s), copied once at start (a snapshot)
  bundled       the engine's bundled rules (/etc/suricata/rules/*.rules of the engine's own
                root) in one file, less the rules the default suricata.yaml cannot load
                (app-layer protocols whose detection is off by default), as suricata-update
                leaves them out
  bundled+pack  the bundled rules and the pack in one file: what a drop-in user runs
  count         untimed: the decoder rules only, turned into alerts whose script runs the
                decoder and then returns 1, thresholded to one alert per rule; matches =
                detect.alert + detect.alerts_suppressed = decoder invocations
  detect-on     profile: one rule for UDP port 9 (detection on, nothing to inspect)
  signatures    profile: the pack without its decoder rules
  rules-only    profile: the pack with each decoder rule's `lua:` replaced by a never-set
                flowbit (the rules' header/flow/dsize/flowint work without any Lua)
  lua-noop      profile: the decoder rules call a script that asks for no buffer and
                returns 0 (Suricata's own cost of a Lua call)

Outside Suricata (bench/luacount.py): Lua VM instructions and bytes deciphered per decoder
call on a sample of each input's candidate packets, and the costliest single call over
adversarial inputs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import inputs, luacount
from bench.rulemodel import (
    LUA_KEYWORD,
    admits,
    parse_version,
    rule_lines,
    selectors,
    sid_of,
)
from bench.rulemodel import ports as _ports  # noqa: F401 - kept for callers of run._ports

ROOT = inputs.ROOT
sys.path.insert(0, str(ROOT / "tests" / "engine"))
from engines import ENGINES, Engine, lua_problems  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
RUN_TIMEOUT = 900
Version = tuple[int, int, int]


# --- budgets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    what: str  # "cpu" or "rss"
    input: str
    major: int | None  # engine major version, None for every engine
    limit: float
    arm: str = "pack"
    base: str = "none"


BUDGETS = [
    Budget("cpu", "mix", None, 1.03, "bundled+pack", "bundled"),
    Budget("cpu", "mix", None, 1.10),
    Budget("cpu", "flood", 7, 1.20),
    Budget("cpu", "flood", 8, 1.30),
    Budget("cpu", "tcp", 7, 1.50),
    Budget("cpu", "tcp", 8, 3.0),
    *(Budget("rss", name, None, 1.05) for name in ("mix", "flood", "tcp")),
    Budget("rss", "mix", None, 1.05, "bundled+pack", "bundled"),
]
WORST_CALL_LIMIT = 250_000  # Lua VM instructions of one call, Suricata 8's script


# --- arms ------------------------------------------------------------------------------------

NOOP_LUA = """\
-- Benchmark arm: a decoder rule's Lua call with nothing in it. Like the pack's
-- script it asks for no buffer, so Suricata calls it on the same packets.
function init(args)
  return {}
end

function match(args)
  return 0
end
"""
NOOP_NAME = "cfp2p-bench-noop.lua"
# One rule for a port nothing uses: detection is switched on, nothing is inspected.
DETECT_ON_RULE = ('alert udp any any -> any 9 (msg:"cfp2p bench: detection on"; '
                  'content:"cfp2p-bench-never"; sid:9399999; rev:1;)\n')


@dataclass
class Arm:
    name: str
    files: dict[str, bytes]
    rules: str  # name of the rules file among files


@dataclass
class Pack:
    """A snapshot of the pack: one rules file and the Lua script(s) it names."""

    rules_name: str
    rules: str
    lua: dict[str, str]

    @classmethod
    def load(cls, rules_dir: Path, lua_dir: Path) -> Pack:
        rules_files = sorted(rules_dir.glob("*.rules"))
        if len(rules_files) != 1:
            raise SystemExit(f"expected one rules file in {rules_dir}, found {rules_files}")
        text = rules_files[0].read_text()
        lua = {}
        for name in sorted({n.strip() for n in LUA_KEYWORD.findall(text)}):
            path = lua_dir / name
            if not path.exists():
                raise SystemExit(f"{rules_files[0]} names {name}, which is not in {lua_dir}")
            lua[path.name] = path.read_text()
        return cls(rules_files[0].name, text, lua)

    def rule_lines(self, version: Version | None = None) -> list[str]:
        """The rules; with a version, those an engine of that version loads."""
        return [ln for ln in rule_lines(self.rules) if admits(ln, version)]

    def decoder_lines(self, version: Version | None = None) -> list[str]:
        return [ln for ln in self.rule_lines(version) if LUA_KEYWORD.search(ln)]

    def skipped(self, version: Version) -> int:
        """Rules an engine of this version skips (their `requires:` does not admit it)."""
        return len(self.rule_lines()) - len(self.rule_lines(version))

    def scripts(self, version: Version | None = None) -> dict[str, str]:
        """The scripts the decoder rules an engine loads name."""
        names = {LUA_KEYWORD.search(ln).group(1).strip() for ln in self.decoder_lines(version)}
        return {n: self.lua[n] for n in sorted(names)}

    def digest(self) -> str:
        h = hashlib.sha256(self.rules.encode())
        for name, text in sorted(self.lua.items()):
            h.update(name.encode() + text.encode())
        return h.hexdigest()[:12]

    def _with_rules(self, name: str, rules: str, lua: dict[str, str] | None = None) -> Arm:
        files = {self.rules_name: rules.encode()}
        files.update({k: v.encode() for k, v in (self.lua if lua is None else lua).items()})
        return Arm(name, files, self.rules_name)

    def _map_decoders(self, fn) -> str:  # noqa: ANN001 - str -> str
        return "\n".join(fn(ln) if LUA_KEYWORD.search(ln) else ln
                         for ln in self.rules.splitlines()) + "\n"

    def arms(self, bundled: str | None = None) -> dict[str, Arm]:
        """The arms; with the engine's bundled rules (one text), also bundled and
        bundled+pack."""
        count_lua = {}
        for name, text in self.lua.items():  # every script a `lua:` keyword names
            if len(re.findall(r"^function match\(args\)", text, re.M)) != 1:
                raise SystemExit(f"{name}: no single `function match(args)` to instrument")
            count_lua[name] = (
                re.sub(r"^function match\(args\)", "local function cfp2p_bench_match(args)",
                       text, flags=re.M)
                + "\nfunction match(args)\n  cfp2p_bench_match(args)\n  return 1\nend\n")

        def counting(line: str) -> str:
            line = re.sub(r"^(pass|drop|reject|alert)\s", "alert ", line)
            line = re.sub(r"\s*\bnoalert;", "", line)
            line = re.sub(r"\s*\bthreshold:[^;]*;", "", line)
            return re.sub(r"\bsid:", "threshold:type limit, track by_rule, count 1, "
                          "seconds 86400; sid:", line, count=1)

        # every decoder rule, `requires:` kept: each engine counts the ones it loads
        count_rules = "\n".join(counting(ln) for ln in self.decoder_lines()) + "\n"
        signatures = "\n".join(ln for ln in self.rules.splitlines()
                               if not LUA_KEYWORD.search(ln)) + "\n"
        empty = {"empty.rules": b""}
        arms = {
            "none": Arm("none", dict(empty), "empty.rules"),
            "none-b": Arm("none-b", dict(empty), "empty.rules"),
            "detect-on": Arm("detect-on", {"detect-on.rules": DETECT_ON_RULE.encode()},
                             "detect-on.rules"),
            "signatures": self._with_rules("signatures", signatures, {}),
            "pack": self._with_rules("pack", self.rules),
            "count": self._with_rules("count", count_rules, count_lua),
            "rules-only": self._with_rules("rules-only", self._map_decoders(
                lambda ln: LUA_KEYWORD.sub("flowbits:isset,cfp2p.bench.never;", ln)), {}),
            "lua-noop": self._with_rules("lua-noop", self._map_decoders(
                lambda ln: LUA_KEYWORD.sub(f"lua:{NOOP_NAME};", ln)), {NOOP_NAME: NOOP_LUA}),
        }
        if bundled is not None:
            arms["bundled"] = Arm("bundled", {"bundled.rules": bundled.encode()}, "bundled.rules")
            arms["bundled+pack"] = self._with_rules("bundled+pack", bundled + self.rules)
        return arms


STATE_TEST = re.compile(r"\b(flowint:\s*[\w.]+\s*,\s*(isset|notset|isnotset|==|!=|<=|>=|<|>)"
                        r"|flowbits:\s*(isset|isnotset)|xbits:)")


def stateful(pack: Pack, version: Version | None = None) -> bool:
    """True when a decoder rule also tests per-flow state (flowints, flowbits) that the
    script sets: the input then gives only an upper bound of the invocations."""
    return any(STATE_TEST.search(ln) for ln in pack.decoder_lines(version))


def predict_invocations(pack: Pack, info: inputs.InputInfo,
                        version: Version | None = None) -> int | None:
    """Decoder invocations the input implies: for each decoder rule an engine of this
    version loads (all with None), the packets of the roles its protocol, flow direction
    and flags select whose server port its header admits. None when a rule uses something
    not modelled here (bench.rulemodel)."""
    sels = selectors(pack.decoder_lines(version))
    if sels is None:
        return None
    return sum(n for sel in sels for role in sel.roles
               for port, n in info.roles.get(role, {}).items()
               if sel.server is None or port in sel.server)


# --- the engine's bundled rules ----------------------------------------------------------------


@dataclass
class Bundled:
    text: str
    files: int
    rules: int  # rules kept
    left_out: Counter  # protocol -> rules the default configuration cannot load


def bundled_rules(eng: Engine) -> Bundled:
    """The engine's bundled rules in one text, less those `suricata -T` refuses with the
    default suricata.yaml (detection for their app-layer protocol is off by default)."""
    files = sorted(((eng.root or Path("/")) / "etc/suricata/rules").glob("*.rules"))
    # one rule per line: join the lines a trailing backslash continues
    text = re.sub(r"\\\n", "", "".join(f.read_text() + "\n" for f in files))
    left_out: Counter = Counter()
    for attempt in range(2):
        rc, log = _test_rules(eng, text)
        bad = {int(m) for m in re.findall(r'error parsing signature ".*?\bsid:\s*(\d+);', log)}
        if rc == 0 and not bad:
            break
        if attempt or not bad:
            raise SystemExit(f"{eng.name}: the bundled rules do not load: {log[-2000:]}")
        keep = []
        for ln in text.splitlines():
            if ln.strip() and not ln.lstrip().startswith("#") and sid_of(ln) in bad:
                left_out[ln.split()[1]] += 1
            else:
                keep.append(ln)
        text = "\n".join(keep) + "\n"
    return Bundled(text, len(files), len(rule_lines(text)), left_out)


def _test_rules(eng: Engine, text: str) -> tuple[int, str]:
    work = eng._workdir()
    try:
        (work / "bundled.rules").write_text(text)
        proc = subprocess.run(
            eng._cmd(["-T", "-S", eng._inside(work / "bundled.rules"), "-l", eng._inside(work),
                      *eng._settings(work)]), capture_output=True, text=True, timeout=300)
        log = proc.stdout + proc.stderr
        if (work / "suricata.log").exists():
            log += (work / "suricata.log").read_text(errors="replace")
        return proc.returncode, log
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- running ---------------------------------------------------------------------------------


@dataclass
class Sample:
    arm: str
    cpu: float  # user + system seconds
    wall: float
    rss_mb: float
    stats: dict
    alerts: Counter
    lua_problems: list[str]
    rules: tuple[int, int, int] = (-1, -1, -1)  # loaded, failed, skipped


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
        with open(logdir / "console.txt", "wb") as console:
            t0 = time.perf_counter()
            proc = subprocess.Popen(eng._cmd(args), stdout=console, stderr=subprocess.STDOUT)
            timer = threading.Timer(RUN_TIMEOUT, lambda: os.kill(proc.pid, signal.SIGKILL))
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                timer.cancel()
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
        log = (logdir / "console.txt").read_text(errors="replace")
        if (logdir / "suricata.log").exists():
            log += (logdir / "suricata.log").read_text(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"{eng.name} {arm_name} on {pcap.name} exited "
                               f"{proc.returncode}: {log[-3000:]}")
        stats, alerts = _read_eve(logdir / "eve.json")
        shutil.rmtree(logdir, ignore_errors=True)
        return Sample(arm_name, usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024,
                      stats, alerts, lua_problems(eng.major, log, stats), rules_loaded(stats))


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


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Ratio:
    """arm/base of one measure: of the fastest runs, of the medians, and the range of the
    per-round ratios (round i of arm over round i of base)."""

    fastest: float
    median: float
    lo: float
    hi: float


@dataclass
class Cell:
    """All samples of one engine on one input, and the counts beside them."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)
    invocations: int | None = None
    predicted: int | None = None
    counts: luacount.Counts | None = None

    def add(self, s: Sample) -> None:
        self.samples.setdefault(s.arm, []).append(s)

    def has(self, *arms: str) -> bool:
        return all(self.samples.get(a) for a in arms)

    def med(self, arm: str, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples[arm])

    def fastest(self, arm: str, attr: str = "cpu") -> float:
        return min(getattr(s, attr) for s in self.samples[arm])

    def span(self, arm: str, attr: str) -> tuple[float, float]:
        values = [getattr(s, attr) for s in self.samples[arm]]
        return min(values), max(values)

    def ratio(self, attr: str, arm: str = "pack", base: str = "none") -> float:
        """Ratio of the medians."""
        return self.med(arm, attr) / self.med(base, attr)

    def fastest_ratio(self, attr: str, arm: str = "pack", base: str = "none") -> float:
        """Ratio of the fastest runs: contention on a shared machine only ever adds time."""
        return self.span(arm, attr)[0] / self.span(base, attr)[0]

    def paired(self, attr: str, arm: str = "pack", base: str = "none") -> tuple[float, float]:
        """Range of the per-round ratios (round i of arm over round i of base)."""
        pairs = [getattr(a, attr) / getattr(b, attr)
                 for a, b in zip(self.samples[arm], self.samples[base], strict=False)]
        return min(pairs), max(pairs)

    def compare(self, attr: str = "cpu", arm: str = "pack", base: str = "none") -> Ratio:
        return Ratio(self.fastest_ratio(attr, arm, base), self.ratio(attr, arm, base),
                     *self.paired(attr, arm, base))

    def _aa(self, k: int) -> float:
        none, again = self.samples["none"][:k], self.samples["none-b"][:k]
        per_round = [b.cpu / a.cpu for a, b in zip(none, again, strict=False)]
        fastest = min(s.cpu for s in again) / min(s.cpu for s in none)
        median = statistics.median(s.cpu for s in again) / statistics.median(s.cpu for s in none)
        return max(abs(x - 1) for x in (fastest, median, *per_round))

    def noise(self) -> float | None:
        """The noise floor, a fraction of `none`'s CPU time: the largest deviation from 1
        of the A/A ratios none-b/none (each round's, the fastest runs', the medians'), also
        taken over only as many first rounds as an arm with fewer runs has (the profile
        arms), so that the floor holds for statistics of that many runs. None without an
        A/A arm."""
        if not self.has("none", "none-b"):
            return None
        n = min(len(self.samples["none"]), len(self.samples["none-b"]))
        return max(self._aa(k) for k in {min(n, len(v)) for v in self.samples.values()})

    def part(self, arm: str, base: str) -> float | None:
        """CPU seconds arm costs more than base (fastest runs); None when that is within
        the noise floor."""
        d = self.fastest(arm) - self.fastest(base)
        floor = self.noise()
        if floor is not None and abs(d) <= floor * self.fastest("none"):
            return None
        return d

    def cost_us(self, arm: str = "pack", base: str = "none") -> float | None:
        """µs per decoder invocation that arm costs more than base (fastest runs)."""
        if not self.invocations:
            return None
        return (self.fastest(arm) - self.fastest(base)) / self.invocations * 1e6


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


# --- reporting ---------------------------------------------------------------------------------


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


def pack_version(pack: Pack | None = None) -> str:
    """Which commit the snapshot is: the latest of the last 40 commits touching rules/ and
    lua/ whose files give the snapshot's digest (the pack may change while a run goes on)."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    if pack is not None:
        for commit in git("log", "-40", "--format=%h", "--", "rules", "lua").split():
            files = git("ls-tree", "--name-only", commit, "rules/", "lua/").split()
            rules = [f for f in files if f.endswith(".rules")]
            if len(rules) != 1:
                continue
            lua = {Path(f).name: git("show", f"{commit}:{f}") + "\n" for f in files
                   if f.endswith(".lua") and Path(f).name in pack.lua}
            old = Pack(Path(rules[0]).name, git("show", f"{commit}:{rules[0]}") + "\n", lua)
            if old.digest() == pack.digest():
                return f"rules/ and lua/ as of commit {commit}"
        return "rules/ and lua/ as in the working tree, matching none of the last 40 commits"
    commit = git("log", "-1", "--format=%h", "--", "rules", "lua") or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "rules",
                            "lua"]).returncode
    return f"last commit touching rules/ lua/: {commit}" + (
        "; the working tree differs from it" if dirty else "")


def _f(x: float, nd: int = 2) -> str:
    return f"{x:.{nd}f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**NOT MET**"


def _part(d: float | None, n: int) -> str:
    """A part's cost in µs per unit: "below noise" within the noise floor; a negative
    difference beyond it (adding rules cannot make Suricata faster) is noise the floor did
    not catch, printed as such."""
    if not n:
        return "-"
    if d is None:
        return "below noise"
    v = _f(d / n * 1e6, 2)
    return f"noise ({v})" if d < 0 else v


def _r(r: Ratio, nd: int = 3) -> str:
    return f"{_f(r.fastest, nd)}; {_f(r.median, nd)} ({_f(r.lo, 2)}-{_f(r.hi, 2)})"


def _n(x: float | int | None, nd: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{nd}f}"


ENGINE_RUNTIME = {7: "LuaJIT 2.1, JIT off", 8: "Lua 5.4"}


@dataclass
class Report:
    started: dt.datetime
    scale: float
    runs: int
    pack: Pack
    infos: dict[str, inputs.InputInfo]
    versions: dict[str, str] = field(default_factory=dict)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)  # (engine, input)
    profile: dict[tuple[str, str], Cell] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)  # engine -> Lua problems
    rules: dict[str, dict[str, tuple[int, int, int]]] = field(default_factory=dict)
    bundled: dict[str, Bundled] = field(default_factory=dict)
    worst: dict[str, list[luacount.Worst]] = field(default_factory=dict)
    seconds: float = 0.0
    profile_runs: int = 0
    mix_runs: int = 0
    sample: int = 0

    def _engines(self) -> list[Engine]:
        return [e for e in ENGINES if e.name in self.versions]

    def version(self, eng: Engine) -> Version:
        return parse_version(self.versions[eng.name])

    def budget_rows(self) -> list[tuple[str, str, str, str, str, str, bool]]:
        """(engine, input, measure, budget, measured, noise floor, met)"""
        rows = []
        for eng in self._engines():
            for b in BUDGETS:
                cell = self.cells.get((eng.name, b.input))
                if b.major not in (None, eng.major) or cell is None or not cell.has(b.arm,
                                                                                     b.base):
                    continue
                floor = cell.noise()
                noise = "-" if floor is None else f"±{floor:.1%}"
                if b.what == "cpu":
                    r = cell.compare("cpu", b.arm, b.base)
                    rows.append((eng.name, b.input, f"CPU time {b.arm}/{b.base}, fastest runs",
                                 f"<= {b.limit:.2f}", f"{r.fastest:.3f} (median {r.median:.3f},"
                                 f" rounds {r.lo:.2f}-{r.hi:.2f})", noise, r.fastest <= b.limit))
                else:
                    v = cell.ratio("rss_mb", b.arm, b.base)
                    rows.append((eng.name, b.input, f"peak RSS {b.arm}/{b.base}, medians",
                                 f"<= {b.limit:.2f}", f"{v:.3f}", "-", v <= b.limit))
            if eng.major >= 8 and self.worst.get(eng.name):
                w = max(self.worst[eng.name], key=lambda w: w.instructions)
                rows.append((eng.name, "adversarial", "Lua VM instructions of one call, worst "
                             "case", f"<= {WORST_CALL_LIMIT:,}", f"{w.instructions:,} ({w.case})",
                             "-", w.instructions <= WORST_CALL_LIMIT))
            probs = self.problems.get(eng.name, [])
            rows.append((eng.name, "all", "Lua errors / instruction or memory limit hits",
                         "none", str(len(probs)), "-", not probs))
            v = self.version(eng)
            want = {"pack": (len(self.pack.rule_lines(v)), 0, self.pack.skipped(v))}
            if eng.name in self.bundled:
                want["bundled+pack"] = (want["pack"][0] + self.bundled[eng.name].rules, 0,
                                        want["pack"][2])
            for arm, w in want.items():
                got = self.rules.get(eng.name, {}).get(arm)
                if got is None:
                    continue
                rows.append((eng.name, "all", f"{arm} rules loaded (failed, skipped)",
                             f"{w[0]} ({w[1]}, {w[2]})", f"{got[0]} ({got[1]}, {got[2]})", "-",
                             got == w))
        return rows

    def missed(self) -> list[str]:
        return [f"{e} {i}: {w} {m} (limit {lim})"
                for e, i, w, lim, m, _, ok in self.budget_rows() if not ok]

    def markdown(self) -> str:
        engines = self._engines()
        out = [
            "# What the Conficker P2P pack costs Suricata",
            "",
            f"Written by `make bench` (`python -m bench`), {self.started:%Y-%m-%d %H:%M} UTC, in "
            f"{self.seconds / 60:.1f} min. Machine: {machine()}.",
            "",
            f"Pack: `{self.pack.rules_name}` + {', '.join(f'`{n}`' for n in self.pack.lua)} "
            f"(snapshot {self.pack.digest()}; {pack_version(self.pack)}); "
            f"{len(self.pack.rule_lines())} rules of which {len(self.pack.decoder_lines())} "
            "decoder rules call Lua. "
            + " ".join(
                f"{e.name} loads {len(self.pack.rule_lines(self.version(e)))} of them "
                f"({len(self.pack.decoder_lines(self.version(e)))} decoder rules, script "
                f"{', '.join(f'`{n}`' for n in self.pack.scripts(self.version(e)))}) and skips "
                f"{self.pack.skipped(self.version(e))} (`requires:`)." for e in engines),
            "",
            "Engines: " + ", ".join(f"{n} = Suricata {v}" for n, v in self.versions.items())
            + ". Every run: `suricata -r INPUT -S RULES -k none --runmode single` with the "
            "default suricata.yaml (eve.json with its default event types) and the harness's "
            "settings. Arms: `none` an empty rules file; `none-b` the same again (the A/A arm); "
            "`pack` the pack; `bundled` the engine's own bundled rules "
            "(`/etc/suricata/rules/*.rules` of its root, in one file); `bundled+pack` both in "
            f"one file. {self.runs} runs of each of none, none-b and pack ({self.mix_runs} on "
            "the mix, where bundled and bundled+pack run too)"
            + (f", {self.profile_runs} of each profile arm" if self.profile_runs else "")
            + ", after an untimed warm-up run, the arms taking turns (each round starts one arm "
            "later). CPU = user+system time of the suricata process (os.wait4), RSS = its peak "
            f"resident set. Scale {self.scale:g}.",
            "",
            "How to read the ratios: `fastest; median (range)` is the ratio of the fastest runs "
            "of the two arms (contention on a shared machine only ever adds time, so the "
            "fastest run is the least disturbed one: budgets are checked on it), then the ratio "
            "of the medians, then in brackets the lowest and highest per-round ratio (round i "
            "of one arm over round i of the other). **Noise floor**: the largest deviation "
            "from 1 of the A/A ratios none-b/none of the same engine and input (each round's, "
            "the fastest runs', the medians'; the last two also over only the first rounds, "
            "as many as the profile arms run), as a share of `none`'s CPU time. A difference "
            "between two arms no larger than it is printed as \"below noise\"; a negative "
            "one beyond it (adding rules cannot make Suricata faster: noise the floor did not "
            "catch) as \"noise (value)\".",
            "",
            "Why `--runmode single`: the pack's cost is per packet on the thread that runs "
            "detection, and every detection thread has its own Lua states, so the per-packet "
            "cost and the pack/none ratio are the same for each worker of `workers` or "
            "`autofp`. Single keeps that work on one thread with nothing else in the CPU time: "
            "no packet queues between threads and no threads waiting or polling, which on a "
            "2-core machine shared with other jobs would add time to both arms unevenly. It is "
            "also what the engine tests use. With N detection threads the pack's Lua memory "
            "(one state per decoder rule per thread) is N times what is measured here.",
            "",
        ]
        for e in engines:
            b = self.bundled.get(e.name)
            if b is not None:
                gone = ", ".join(f"{p} {n}" for p, n in sorted(b.left_out.items()))
                out.append(f"Bundled rules, {e.name}: {b.rules} rules from {b.files} files"
                           + (f"; left out because the default suricata.yaml has detection "
                              f"off for their protocol (`suricata -T` refuses them, and "
                              f"suricata-update disables them): {gone}" if gone else "")
                           + ". `suricata -T` loads the rest without errors.")
        out += ["", "## Inputs", "",
                "| input | packets | MB | traffic s | flows | decoder invocations measured ("
                + " / ".join(self.versions) + ") | predicted from the input and the rules ("
                + " / ".join(self.versions) + ") | payload packets, listener port allowed "
                "| payload packets, listener port blacklisted | SYNs to allowed ports |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for name, info in self.infos.items():
            cells = [c for e in engines
                     if (c := self.cells.get((e.name, name)) or self.profile.get((e.name, name)))]
            inv = " / ".join(f"{c.invocations:,}" for c in cells) or "-"
            preds = []
            for e in engines:
                pred = predict_invocations(self.pack, info, self.version(e))
                bound = "≤ " if stateful(self.pack, self.version(e)) else ""
                preds.append("-" if pred is None else f"{bound}{pred:,}")
            out.append(f"| {name} ({info.title}) | {info.packets:,} | {info.bytes / 1e6:.0f} | "
                       f"{info.seconds:.0f} | {info.flows:,} | {inv} | {' / '.join(preds)} | "
                       f"{info.decoded:,} | {info.blacklisted:,} | {info.syn_allowed:,} |")
        out += ["", "Decoder invocations are counted by Suricata itself: an instrumented copy of "
                "the decoder rules (alert instead of pass, thresholded to one alert per rule, "
                "`requires:` kept, so each engine counts the rules it loads) whose script runs "
                "the decoder and returns 1, so detect.alert + detect.alerts_suppressed = "
                "invocations. The prediction counts the input's packets by role (UDP payload "
                ">= 14 bytes, TCP payload, client SYN, server SYN-ACK) and server port against "
                "each decoder rule the engine loads: its protocol, flow direction, flags and "
                "port list" + ("; the decoder rules also test per-flow state that the script "
                               "sets (flowint/flowbits), so the prediction is an upper bound "
                               "(≤)." if stateful(self.pack) else ".")]
        mix = self.infos.get("mix")
        if mix:
            share = ", ".join(f"{k} {v / mix.packets:.1%}" for k, v in
                              sorted(mix.by_kind.items(), key=lambda kv: -kv[1]))
            out += ["", f"Mix composition (share of packets): {share}."]
        out += self.counts_markdown()
        for eng in engines:
            out += self.engine_markdown(eng)
        out += self.worst_markdown()
        out += ["", "## Budgets", "",
                "| engine | input | measure | budget | measured | noise floor | |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {e} | {i} | {w} | {lim} | {m} | {nf} | {_met(ok)} |"
                for e, i, w, lim, m, nf, ok in self.budget_rows()]
        missed = self.missed()
        out += ["", f"**{len(missed)} budget(s) missed.**" if missed else "All budgets met."]
        if self.profile:
            out += self.profile_markdown()
        return "\n".join(out) + "\n"

    def counts_markdown(self) -> list[str]:
        out = ["", "## Deterministic counts", "",
               "Per input and engine: decoder invocations as Suricata counts them (the count "
               "arm), and, outside Suricata, the pack's script(s) run by each decoder rule's "
               "own Lua state (tests/lua/stand_in.py's Decoder under lupa: "
               + ", ".join(f"{e.name} {ENGINE_RUNTIME.get(e.major, 'Lua 5.4')}"
                           for e in self._engines())
               + ") on the input's candidate packets in file order (packets a loaded decoder "
               "rule selects by role, listener port, direction and flags; its flowint tests "
               "applied to the flowints the script set), each call given the raw frame as read "
               f"from the pcap. The sample is the first {self.sample:,} candidates. Lua VM "
               "instructions come from a count hook (debug.sethook every 100 instructions, "
               "corrected for the hook function's own instructions that Lua 5.4 also counts; "
               "the stand-in's Lua glue for Suricata 8's `suricata.*` functions, C in "
               "Suricata, adds a few instructions per call). Bytes deciphered per call are "
               "derived with the Python codec (generator/codec.py), not read from the "
               "script: per message frame a call works on, the bytes from the flags to the end "
               "of the checksum, or to where the flags or the data length show the frame "
               "cannot hold a message (noise after the checksum is not deciphered; a TCP "
               "direction stops at its first frame that is not a message; the script's own "
               "per-call budget, which may stop earlier, is not modelled).", "",
               "| input | engine | invocations (Suricata) | sample: candidates / calls | "
               "bytes deciphered per call | Lua VM instructions per call | most instructions "
               "in one call |", "|---|---|---|---|---|---|---|"]
        for name in self.infos:
            for eng in self._engines():
                cell = self.cells.get((eng.name, name)) or self.profile.get((eng.name, name))
                if cell is None or cell.counts is None:
                    continue
                c = cell.counts
                out.append(f"| {name} | {eng.name} | {_n(cell.invocations)} | "
                           f"{c.candidates:,} / {c.invocations:,}"
                           f"{'' if c.truncated else ' (all)'} | "
                           f"{_n(c.per_call('deciphered'), 1)} | "
                           f"{_n(c.per_call('instructions'))} | ~{c.max_call:,} |")
        return out

    def engine_markdown(self, eng: Engine) -> list[str]:
        out = ["", f"## {eng.name}: Suricata {self.versions[eng.name]}", "",
               "| input | CPU s none | CPU s none-b | CPU s pack | A/A none-b/none: fastest; "
               "median (range) | noise floor | CPU pack/none: fastest; median (range) "
               "| CPU s bundled | CPU s bundled+pack | CPU bundled+pack/bundled: fastest; "
               "median (range) | wall pack/none (medians) |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        rows = [(n, c) for n in self.infos if (c := self.cells.get((eng.name, n)))]
        for name, cell in rows:
            bundled = cell.has("bundled", "bundled+pack")

            def cpu(arm: str, cell: Cell = cell) -> str:
                return f"{_f(cell.fastest(arm))} / {_f(cell.med(arm, 'cpu'))}"

            out.append(
                f"| {name} | {cpu('none')} | {cpu('none-b')} | {cpu('pack')} | "
                f"{_r(cell.compare('cpu', 'none-b', 'none'))} | ±{cell.noise():.1%} | "
                f"{_r(cell.compare('cpu'))} | "
                + (f"{cpu('bundled')} | {cpu('bundled+pack')} | "
                   f"{_r(cell.compare('cpu', 'bundled+pack', 'bundled'))} | " if bundled
                   else "- | - | - | ")
                + f"{_f(cell.ratio('wall'), 3)} |")
        out += ["", "CPU seconds as fastest / median run.", "",
                "| input | invocations | pack cost per invocation µs (fastest runs) "
                "| peak RSS MB none / pack / bundled / bundled+pack | RSS pack/none "
                "| RSS bundled+pack/bundled | alerts pack / bundled / bundled+pack |",
                "|---|---|---|---|---|---|---|"]
        for name, cell in rows:
            bundled = cell.has("bundled", "bundled+pack")
            arms = ["none", "pack"] + (["bundled", "bundled+pack"] if bundled else [])
            rss = " / ".join(_f(cell.med(a, "rss_mb"), 1) for a in arms)
            alerts = " / ".join(str(sum(cell.samples[a][0].alerts.values()))
                                for a in arms[1:])
            cost = _part(cell.part("pack", "none"), cell.invocations or 0)
            brss = _f(cell.ratio("rss_mb", "bundled+pack", "bundled"), 3) if bundled else "-"
            out.append(f"| {name} | {cell.invocations or 0:,} | "
                       f"{cost} | {rss} | "
                       f"{_f(cell.ratio('rss_mb'), 3)} | {brss} | {alerts} |")
        probs = self.problems.get(eng.name, [])
        out += ["", "Lua health: " + ("no Lua errors in suricata.log" +
                (", detect.lua.{errors, instruction_limit_errors, memory_limit_errors, "
                 "blocked_function_errors} all 0" if eng.major >= 8 else "")
                + " in every pack and bundled+pack run." if not probs else
                f"{len(probs)} problems, first: " + "; ".join(probs[:5]))]
        return out

    def worst_markdown(self) -> list[str]:
        if not self.worst:
            return []
        engines = [e for e in self._engines() if self.worst.get(e.name)]
        out = ["", "## Worst case of one call: adversarial inputs", "",
               "The costliest single `match` call of each engine's script on crafted packets, "
               "counted exactly (a hook every instruction), outside Suricata as above; each "
               "case starts a fresh Lua state, the packet time is 10 s after a Conficker week "
               "rollover (the port check then also computes the neighbouring week's ports) and "
               "every message is valid (a valid message also runs the port check). Where a "
               "case has a data block, its length was searched for the costliest call (grids "
               f"every 100 instructions, then the best one counted exactly). Budget: at most "
               f"{WORST_CALL_LIMIT:,} on Suricata 8 (its limit is "
               "`security.lua.max-instructions`, 500,000 by default: past it the call fails "
               "and the packet goes undecoded).", "",
               "| case | packets | " + " | ".join(
                   f"{e.name} ({ENGINE_RUNTIME.get(e.major, 'Lua 5.4')}): instructions "
                   "(data block bytes; bytes deciphered)" for e in engines) + " |",
               "|---|---|" + "---|" * len(engines)]
        by_case: dict[str, dict[str, luacount.Worst]] = {}
        what = {}
        for e in engines:
            for w in self.worst[e.name]:
                by_case.setdefault(w.case, {})[e.name] = w
                what[w.case] = w.what
        for case, ws in by_case.items():
            cols = []
            for e in engines:
                w = ws.get(e.name)
                cols.append("-" if w is None else f"{w.instructions:,} "
                            f"({'-' if w.data_len is None else f'{w.data_len:,}'}; "
                            f"{w.deciphered:,})")
            out.append(f"| {case} | {what[case]} | " + " | ".join(cols) + " |")
        return out

    def profile_markdown(self) -> list[str]:
        out = ["", "## Profile: where the time goes", "",
               "Arms, each adding one part of the pack: `none` (no rules); `detect-on` (one rule "
               "for UDP port 9: detection switched on, nothing inspected); `signatures` (the "
               "pack without its decoder rules: the rules that read the verdict, which never "
               "match); `rules-only` (the whole pack with each decoder rule's `lua:` replaced by "
               "a never-set flowbit); `lua-noop` (the decoder rules call a script that asks "
               "for no buffer and returns 0); `pack`. The difference between neighbouring "
               "arms' fastest runs is the cost of the part added: per packet of the input for "
               "detection and signatures; per header match (packets that pass a decoder rule's "
               "header, flow, dsize and flags, the `predicted` count) for the decoder rules and "
               "for the Lua call (the no-op script sets no per-flow state, so it runs on every "
               "header match); per decoder invocation of the pack for everything the decoder "
               "rules and the script cost (pack - signatures). A difference within the noise "
               "floor (the A/A spread of the same engine and input, see above) is printed as "
               "\"below noise\". `python -m bench.experiments` cuts the script itself into parts "
               "(bench/PROFILE.md) and measures variants that would cut the cost "
               "(bench/VARIANTS.md).", "",
               "| engine | input | header matches | invocations | CPU s (fastest): "
               + " / ".join(PROFILE_ARMS) + " | noise floor | detection on µs/packet "
               "| signatures µs/packet | decoder rules µs/match | Lua call µs/match "
               "| decoder + script µs/invocation | pack/none: fastest; median (range) "
               "| RSS MB: none / ... / pack |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for (eng, name), cell in self.profile.items():
            inv = cell.invocations or 0
            matches = cell.predicted or 0
            packets = self.infos[name].packets

            def per(a: str, b: str, n: int, cell: Cell = cell) -> str:
                return _part(cell.part(a, b), n) if n else "-"

            floor = cell.noise()
            out.append(
                f"| {eng} | {name} | {matches:,} | {inv:,} | "
                + " / ".join(_f(cell.fastest(a)) for a in PROFILE_ARMS) + " | "
                f"{'-' if floor is None else f'±{floor:.1%}'} | "
                f"{per('detect-on', 'none', packets)} | {per('signatures', 'detect-on', packets)} "
                f"| {per('rules-only', 'signatures', matches)} "
                f"| {per('lua-noop', 'rules-only', matches)} "
                f"| {per('pack', 'signatures', inv)} | {_r(cell.compare('cpu'))} | "
                + " / ".join(_f(cell.med(a, "rss_mb"), 0) for a in PROFILE_ARMS) + " |")
        return out


# --- saving and replaying a run ------------------------------------------------------------------


def _cell_json(cell: Cell) -> dict:
    return {
        "samples": [{"arm": x.arm, "cpu": x.cpu, "wall": x.wall, "rss_mb": x.rss_mb,
                     "alerts": {str(k): v for k, v in x.alerts.items()},
                     "lua_problems": x.lua_problems, "rules": list(x.rules)}
                    for v in cell.samples.values() for x in v],
        "invocations": cell.invocations, "predicted": cell.predicted,
        "counts": None if cell.counts is None else vars(cell.counts),
    }


def _cell_from(d: dict) -> Cell:
    cell = Cell(invocations=d["invocations"], predicted=d["predicted"],
                counts=None if d["counts"] is None else luacount.Counts(**d["counts"]))
    for x in d["samples"]:
        cell.add(Sample(x["arm"], x["cpu"], x["wall"], x["rss_mb"], {},
                        Counter({int(k): v for k, v in x["alerts"].items()}),
                        x["lua_problems"], tuple(x["rules"])))
    return cell


def save_run(report: Report, path: Path) -> None:
    """Everything the report is rendered from, so that `--replay` renders it again."""
    data = {
        "started": report.started.isoformat(), "scale": report.scale, "runs": report.runs,
        "pack": vars(report.pack), "infos": {k: json.loads(v.to_json())
                                             for k, v in report.infos.items()},
        "versions": report.versions,
        "cells": {f"{e}|{i}": _cell_json(c) for (e, i), c in report.cells.items()},
        "profile": {f"{e}|{i}": _cell_json(c) for (e, i), c in report.profile.items()},
        "problems": report.problems, "rules": report.rules,
        "bundled": {k: vars(v) for k, v in report.bundled.items()},
        "worst": {k: [vars(w) for w in v] for k, v in report.worst.items()},
        "seconds": report.seconds, "profile_runs": report.profile_runs,
        "mix_runs": report.mix_runs, "sample": report.sample,
    }
    path.write_text(json.dumps(data))


def load_run(path: Path) -> Report:
    d = json.loads(path.read_text())
    rep = Report(dt.datetime.fromisoformat(d["started"]), d["scale"], d["runs"],
                 Pack(**d["pack"]),
                 {k: inputs.InputInfo.from_json(json.dumps(v)) for k, v in d["infos"].items()},
                 versions=d["versions"], problems=d["problems"],
                 rules={e: {a: tuple(r) for a, r in v.items()} for e, v in d["rules"].items()},
                 seconds=d["seconds"], profile_runs=d["profile_runs"], mix_runs=d["mix_runs"],
                 sample=d["sample"])
    for key, target in (("cells", rep.cells), ("profile", rep.profile)):
        for k, v in d[key].items():
            e, i = k.split("|")
            target[(e, i)] = _cell_from(v)
    rep.bundled = {k: Bundled(v["text"], v["files"], v["rules"], Counter(v["left_out"]))
                   for k, v in d["bundled"].items()}
    rep.worst = {k: [luacount.Worst(**w) for w in v] for k, v in d["worst"].items()}
    return rep


# --- main --------------------------------------------------------------------------------------

PROFILE_INPUTS = [
    inputs.InputSpec("flood-short", "UDP flood, 14-100 random bytes",
                     [inputs.Kind("udp-flood-short", inputs.s_flood_short, 1.0)], 50_000, 10_000),
    inputs.InputSpec("flood-long", "UDP flood, 1000-1400 random bytes",
                     [inputs.Kind("udp-flood-long", inputs.s_flood_long, 1.0)], 50_000, 10_000),
]
MAIN_ARMS = ["none", "none-b", "pack"]
BUNDLED_ARMS = ["bundled", "bundled+pack"]
BUNDLED_INPUTS = {"mix"}  # where bundled and bundled+pack run
PROFILE_ARMS = ["none", "detect-on", "signatures", "rules-only", "lua-noop", "pack"]
PROFILE_SKIP = {"mix"}  # profiled elsewhere: every input but these


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="input size relative to the full benchmark (default 1)")
    ap.add_argument("--small", action="store_true",
                    help="a quick check: --scale 0.005 --runs 1 --no-profile --sample 500")
    ap.add_argument("--runs", type=int, default=5,
                    help="runs of the none, none-b and pack arms (default 5)")
    ap.add_argument("--mix-runs", type=int, default=5,
                    help="runs of the none, none-b, pack, bundled and bundled+pack arms on the "
                    "mix (default 5)")
    ap.add_argument("--profile-runs", type=int, default=3,
                    help="runs of each profile arm (default 3)")
    ap.add_argument("--sample", type=int, default=20_000,
                    help="candidate packets per input run through the Lua counting (default "
                    "20,000)")
    ap.add_argument("--engine", action="append", default=[],
                    help="only this engine (suricata7, suricata8); repeatable")
    ap.add_argument("--no-profile", action="store_true",
                    help="no profile arms, no profile inputs")
    ap.add_argument("--out", type=Path, default=None,
                    help="report path (default bench/RESULTS.md; with --small "
                    ".cache/bench/RESULTS-small.md)")
    ap.add_argument("--cache", type=Path, default=inputs.CACHE, help="input cache folder")
    ap.add_argument("--rules-dir", type=Path, default=ROOT / "rules")
    ap.add_argument("--lua-dir", type=Path, default=ROOT / "lua")
    ap.add_argument("--replay", type=Path, default=None,
                    help="render the report again from a run saved as JSON (every run saves "
                    "one beside the report's inputs: CACHE/last-run.json, with --small "
                    "CACHE/last-run-small.json) instead of running")
    args = ap.parse_args(argv)
    search_points = 24
    if args.small:
        args.scale, args.runs, args.profile_runs, args.no_profile = 0.005, 1, 1, True
        args.mix_runs, args.sample, search_points = 1, 500, 4
    if args.out is None:
        args.out = args.cache / "RESULTS-small.md" if args.small else RESULTS
    profile = not args.no_profile
    if args.replay is not None:
        report = load_run(args.replay)
        return _finish(report, args.out)

    def log(msg: str) -> None:
        print(msg, flush=True)

    t_start = time.monotonic()
    started = dt.datetime.now(dt.UTC)
    engines = [e for e in ENGINES if (not args.engine or e.name in args.engine) and e.available()]
    for e in ENGINES:
        if e not in engines:
            log(f"{e.name}: skipped ({'not installed' if not e.available() else 'not selected'})")
    if not engines:
        log("no engine to run")
        return 1
    pack = Pack.load(args.rules_dir, args.lua_dir)
    log(f"pack snapshot {pack.digest()}: {len(pack.rule_lines())} rules, "
        f"{len(pack.decoder_lines())} decoder rules")

    specs = inputs.INPUTS + (PROFILE_INPUTS if profile else [])
    infos = {}
    for spec in specs:
        t0 = time.monotonic()
        infos[spec.name] = info = inputs.ensure(spec, args.scale, args.cache)
        log(f"input {spec.name}: {info.packets:,} packets, {info.bytes / 1e6:.0f} MB "
            f"({time.monotonic() - t0:.1f} s)")
    report = Report(started, args.scale, args.runs, pack, infos, mix_runs=args.mix_runs,
                    profile_runs=args.profile_runs if profile else 0, sample=args.sample)
    main_inputs = {s.name for s in inputs.INPUTS}

    for eng in engines:
        report.versions[eng.name] = eng.version()
        version = report.version(eng)
        bundled = report.bundled[eng.name] = bundled_rules(eng)
        log(f"{eng.name}: {bundled.rules} bundled rules (left out: {dict(bundled.left_out)})")
        counts_for = lua_counter(pack, version, eng.major)
        bench = Bench(eng, pack.arms(bundled.text))
        problems: list[str] = []
        try:
            for name, info in infos.items():
                log(f"{eng.name} on {name}:")
                main_runs = args.mix_runs if name == "mix" else args.runs
                plan = dict.fromkeys(MAIN_ARMS, main_runs)
                if name in BUNDLED_INPUTS:
                    plan.update(dict.fromkeys(BUNDLED_ARMS, main_runs))
                profiled = profile and name not in PROFILE_SKIP
                if profiled:
                    for a in PROFILE_ARMS:
                        plan[a] = max(plan.get(a, 0), args.profile_runs)
                cell = measure_plan(bench, Path(info.path), plan, log)
                cell.invocations, count_problems = count_invocations(bench, Path(info.path))
                cell.predicted = predict_invocations(pack, info, version)
                t0 = time.monotonic()
                cell.counts = counts_for(Path(info.path), args.sample)
                log(f"    Lua counts ({time.monotonic() - t0:.1f} s): "
                    f"{cell.counts.per_call('instructions') or 0:.0f} instructions per call")
                problems += count_problems
                for arm in ("pack", "bundled+pack"):
                    for s in cell.samples.get(arm, []):
                        problems += [f"{name}: {p}" for p in s.lua_problems]
                        report.rules.setdefault(eng.name, {})[arm] = s.rules
                if name in main_inputs:
                    report.cells[(eng.name, name)] = cell
                if profiled:
                    report.profile[(eng.name, name)] = cell
                r = cell.compare("cpu")
                log(f"    cpu pack/none fastest {r.fastest:.3f} median {r.median:.3f}, "
                    f"A/A noise ±{cell.noise():.1%}, invocations {cell.invocations:,} "
                    f"(input predicts {cell.predicted})")
        finally:
            bench.close()
        report.problems[eng.name] = sorted(set(problems))
        t0 = time.monotonic()
        report.worst[eng.name] = worst_calls(pack, version, eng.major, search_points)
        log(f"{eng.name}: worst cases ({time.monotonic() - t0:.1f} s): "
            + ", ".join(f"{w.case} {w.instructions:,}" for w in report.worst[eng.name]))

    report.seconds = time.monotonic() - t_start
    args.cache.mkdir(parents=True, exist_ok=True)
    save_run(report, args.cache / ("last-run-small.json" if args.small else "last-run.json"))
    return _finish(report, args.out)


def _finish(report: Report, out: Path) -> int:
    text = report.markdown()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print()
    print(text)
    missed = report.missed()
    if missed:
        print(f"BUDGETS MISSED ({len(missed)}):")
        for m in missed:
            print(f"  - {m}")
    else:
        print("all budgets met")
    print(f"report written to {out} in {report.seconds / 60:.1f} min")
    return 0


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


def worst_calls(pack: Pack, version: Version, major: int, points: int) -> list[luacount.Worst]:
    """The adversarial cases on the script of the engine's UDP and TCP to_server decoder
    rules (each case's Lua state serves the rule it would serve in Suricata)."""
    sels = selectors(pack.decoder_lines(version)) or []
    out: list[luacount.Worst] = []
    by_script: dict[str, dict[str, int]] = {}
    for sel in sels:
        for transport in ("udp", "tcp"):
            if f"{transport}/c2s" in sel.roles:
                by_script.setdefault(sel.script, {}).setdefault(transport, sel.sid)
    for script, sids in by_script.items():
        out += luacount.worst_cases(pack.lua[script], luacount.runtime_for(major), sids, points)
    return out
