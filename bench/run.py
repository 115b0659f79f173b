"""Run Suricata on the benchmark inputs without rules and with the pack; write RESULTS.md.

Every run is `suricata -r INPUT -S RULES -k none --runmode single` with the harness's
settings (tests/engine/engines.py), timed from the parent: user+system CPU time and peak
RSS come from os.wait4's resource usage of the suricata process (`chroot` execs it, so for
Suricata 8 the child is suricata too), wall time from the clock around it.

Arms (each a rules folder staged next to the engine):
  none        an empty rules file: the baseline
  pack        the pack's rules and Lua script, copied once at start (a snapshot)
  count       untimed: the decoder rules only, turned into alerts whose script runs the
              decoder and then returns 1, thresholded to one alert per rule; matches =
              detect.alert + detect.alerts_suppressed = decoder invocations
  detect-on   profile: one rule for UDP port 9 (detection on, nothing to inspect)
  signatures  profile: the pack without its decoder rules
  rules-only  profile: the pack with each decoder rule's `lua:` replaced by a never-set
              flowbit (the rules' header/flow/dsize/flowint work without any Lua)
  lua-noop    profile: the decoder rules call a script that asks for no buffer and
              returns 0 (Suricata's own cost of a Lua call)
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

from bench import inputs

ROOT = inputs.ROOT
sys.path.insert(0, str(ROOT / "tests" / "engine"))
from engines import ENGINES, Engine, lua_problems  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
RUN_TIMEOUT = 900


# --- budgets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    what: str  # "cpu" or "rss"
    input: str
    major: int | None  # engine major version, None for every engine
    limit: float


BUDGETS = [
    Budget("cpu", "mix", 7, 1.03),
    Budget("cpu", "mix", 8, 1.03),
    Budget("cpu", "flood", 7, 1.25),
    Budget("cpu", "flood", 8, 1.50),
    *(Budget("rss", name, None, 1.05) for name in ("mix", "flood", "tcp")),
]


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
LUA_KEYWORD = re.compile(r"\blua:\s*([^;]+);")


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
        for name in sorted(set(LUA_KEYWORD.findall(text))):
            path = lua_dir / name.strip()
            if not path.exists():
                raise SystemExit(f"{rules_files[0]} names {name}, which is not in {lua_dir}")
            lua[path.name] = path.read_text()
        return cls(rules_files[0].name, text, lua)

    def rule_lines(self) -> list[str]:
        return [ln for ln in self.rules.splitlines() if ln.strip() and not ln.startswith("#")]

    def decoder_lines(self) -> list[str]:
        return [ln for ln in self.rule_lines() if LUA_KEYWORD.search(ln)]

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

    def arms(self) -> dict[str, Arm]:
        count_lua = {}
        for name, text in self.lua.items():
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

        count_rules = "\n".join(counting(ln) for ln in self.decoder_lines()) + "\n"
        signatures = "\n".join(ln for ln in self.rules.splitlines()
                               if not LUA_KEYWORD.search(ln)) + "\n"
        return {
            "none": Arm("none", {"empty.rules": b""}, "empty.rules"),
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


def _ports(spec: str) -> frozenset[int] | None:
    """A rule header's port spec as a set; None for `any`. Raises ValueError on what this
    does not model (negation, variables)."""
    if spec == "any":
        return None
    out: set[int] = set()
    for item in spec.strip("[]").split(","):
        if not re.fullmatch(r"\d*:?\d*", item) or item in ("", ":"):
            raise ValueError(f"port spec {spec!r}")
        if ":" in item:
            lo, hi = item.split(":")
            out.update(range(int(lo or 0), int(hi or 65535) + 1))
        else:
            out.add(int(item))
    return frozenset(out)


STATE_TEST = re.compile(r"\b(flowint:\s*[\w.]+\s*,\s*(isset|notset|isnotset|==|!=|<=|>=|<|>)"
                        r"|flowbits:\s*(isset|isnotset)|xbits:)")


def stateful(pack: Pack) -> bool:
    """True when a decoder rule also tests per-flow state (flowints, flowbits) that the
    script sets: the input then gives only an upper bound of the invocations."""
    return any(STATE_TEST.search(ln) for ln in pack.decoder_lines())


def predict_invocations(pack: Pack, info: inputs.InputInfo) -> int | None:
    """Decoder invocations the input implies: for each decoder rule, the packets of the role
    its protocol, flow direction and flags select whose server port its header admits.
    None when a rule uses something not modelled here."""
    total = 0
    for line in pack.decoder_lines():
        try:
            _, proto, _, sport, _, _, dport, opts = line.split(None, 7)
            sports, dports = _ports(sport), _ports(dport)
        except ValueError:
            return None
        flow = re.search(r"\bflow:\s*([^;]+);", opts)
        dirs = set(flow.group(1).replace(" ", "").split(",")) if flow else set()
        syn = re.search(r"\bflags:\s*S", opts) is not None
        if proto not in ("udp", "tcp") or (syn and proto != "tcp"):
            return None
        roles = []
        if syn:
            roles = [f"{proto}/syn"]
        else:
            if not dirs & {"to_client", "from_server"}:
                roles.append(f"{proto}/c2s")
            if not dirs & {"to_server", "from_client"}:
                roles.append(f"{proto}/s2c")
        for role in roles:
            c2s = not role.endswith("s2c")
            server, client = (dports, sports) if c2s else (sports, dports)
            if client is not None:
                return None
            total += sum(n for port, n in info.roles.get(role, {}).items()
                         if server is None or port in server)
    return total


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


class Bench:
    """One engine's staging folder: arms and input pcaps, and the runs on them."""

    def __init__(self, engine: Engine, arms: dict[str, Arm]) -> None:
        self.engine = engine
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
                      stats, alerts, lua_problems(eng.major, log, stats))


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


def rules_loaded(stats: dict) -> tuple[int, int]:
    eng = (stats.get("detect", {}).get("engines") or [{}])[0]
    return eng.get("rules_loaded", -1), eng.get("rules_failed", -1)


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Cell:
    """All samples of one engine on one input."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)
    invocations: int | None = None
    predicted: int | None = None

    def add(self, s: Sample) -> None:
        self.samples.setdefault(s.arm, []).append(s)

    def med(self, arm: str, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples[arm])

    def span(self, arm: str, attr: str) -> tuple[float, float]:
        values = [getattr(s, attr) for s in self.samples[arm]]
        return min(values), max(values)

    def ratio(self, attr: str, arm: str = "pack", base: str = "none") -> float:
        return self.med(arm, attr) / self.med(base, attr)

    def fastest_ratio(self, attr: str, arm: str = "pack", base: str = "none") -> float:
        return self.span(arm, attr)[0] / self.span(base, attr)[0]

    def paired(self, attr: str, arm: str = "pack", base: str = "none") -> tuple[float, float]:
        """Range of the per-round ratios (round i of arm over round i of base)."""
        pairs = [getattr(a, attr) / getattr(b, attr)
                 for a, b in zip(self.samples[arm], self.samples[base], strict=False)]
        return min(pairs), max(pairs)

    def cost_us(self, arm: str = "pack", base: str = "none") -> float | None:
        if not self.invocations:
            return None
        return (self.med(arm, "cpu") - self.med(base, "cpu")) / self.invocations * 1e6


def measure(bench: Bench, pcap: Path, arms: list[str], runs: int, log,  # noqa: ANN001
            main: list[str] | None = None, main_runs: int = 0) -> Cell:
    """An untimed warm-up run, then `runs` rounds over the arms, the order rotating by one
    each round, then rounds over the `main` arms only up to `main_runs` rounds."""
    cell = Cell()
    staged = bench.stage_input(pcap)
    bench.run(arms[0], staged)  # warm-up, not counted: page cache, first-run effects
    for r in range(max(runs, main_runs)):
        current = arms if r < runs else (main or arms)
        k = r % len(current)
        order = current[k:] + current[:k]
        for arm in order:
            s = bench.run(arm, staged)
            cell.add(s)
            log(f"    {arm:<10} round {r + 1}: cpu {s.cpu:7.2f} s  wall {s.wall:7.2f} s  "
                f"rss {s.rss_mb:6.1f} MB")
    return cell


def count_invocations(bench: Bench, pcap: Path, expected_rules: int) -> tuple[int, list[str]]:
    s = bench.run("count", bench.stage_input(pcap))
    loaded, failed = rules_loaded(s.stats)
    problems = list(s.lua_problems)
    if (loaded, failed) != (expected_rules, 0):
        problems.append(f"count arm: {loaded} rules loaded, {failed} failed "
                        f"(expected {expected_rules}, 0)")
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


def pack_version() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("log", "-1", "--format=%h", "--", "rules", "lua") or "?"
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "rules",
                            "lua"]).returncode
    return f"last commit touching rules/ lua/: {commit}" + (
        "; the working tree differs from it" if dirty else "")


def _f(x: float, nd: int = 2) -> str:
    return f"{x:.{nd}f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**NOT MET**"


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
    rules: dict[str, tuple[int, int]] = field(default_factory=dict)  # engine -> loaded, failed
    seconds: float = 0.0
    profile_runs: int = 0
    mix_runs: int = 0

    def budget_rows(self) -> list[tuple[str, str, str, str, str, bool]]:
        rows = []
        for eng in ENGINES:
            if eng.name not in self.versions:
                continue
            for b in BUDGETS:
                cell = self.cells.get((eng.name, b.input))
                if (b.major not in (None, eng.major)) or cell is None:
                    continue
                if b.what == "cpu":
                    v = cell.ratio("cpu")
                    what = "CPU time pack/none"
                else:
                    v = cell.ratio("rss_mb")
                    what = "peak RSS pack/none"
                rows.append((eng.name, b.input, what, f"<= {b.limit:.2f}", _f(v, 3),
                             v <= b.limit))
            probs = self.problems.get(eng.name, [])
            rows.append((eng.name, "all", "Lua errors / instruction or memory limit hits",
                         "none", str(len(probs)), not probs))
            loaded, failed = self.rules.get(eng.name, (-1, -1))
            expected = len(self.pack.rule_lines())
            rows.append((eng.name, "all", "pack rules loaded (failed)", f"{expected} (0)",
                         f"{loaded} ({failed})", (loaded, failed) == (expected, 0)))
        return rows

    def missed(self) -> list[str]:
        return [f"{e} {i}: {w} {m} (limit {lim})" for e, i, w, lim, m, ok in self.budget_rows()
                if not ok]

    def markdown(self) -> str:
        out = [
            "# What the Conficker P2P pack costs Suricata",
            "",
            f"Written by `make bench` (`python -m bench`), {self.started:%Y-%m-%d %H:%M} UTC, in "
            f"{self.seconds / 60:.1f} min. Machine: {machine()}.",
            "",
            f"Pack: `{self.pack.rules_name}` + {', '.join(f'`{n}`' for n in self.pack.lua)} "
            f"(snapshot {self.pack.digest()}; {pack_version()}); "
            f"{len(self.pack.rule_lines())} rules of which {len(self.pack.decoder_lines())} "
            "decoder rules call Lua.",
            "",
            "Engines: " + ", ".join(f"{n} = Suricata {v}" for n, v in self.versions.items())
            + ". Every run: `suricata -r INPUT -S RULES -k none --runmode single` with the "
            "default suricata.yaml (eve.json with its default event types) and the harness's "
            "settings; `none` is an empty rules file, `pack` the pack. "
            f"{self.runs} runs of each of none and pack ({self.mix_runs} on the mix)"
            + (f" ({self.profile_runs} of each profile arm)" if self.profile_runs else "")
            + ", after an untimed warm-up run, the arms taking turns (each round starts one arm "
            "later); medians, with min-max of the per-round pack/none ratios and the ratio of "
            "the fastest runs (contention on a shared machine only ever adds time). CPU = "
            "user+system time of the suricata process (os.wait4), RSS = its peak resident "
            f"set. Scale {self.scale:g}.",
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
            "## Inputs",
            "",
            "| input | packets | MB | traffic s | flows | decoder invocations measured ("
            + " / ".join(self.versions) + ") | predicted from the input and the rules "
            "| payload packets, listener port allowed | payload packets, listener port "
            "blacklisted | SYNs to allowed ports |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, info in self.infos.items():
            cells = [c for e in self.versions
                     if (c := self.cells.get((e, name)) or self.profile.get((e, name)))]
            inv = " / ".join(f"{c.invocations:,}" for c in cells) or "-"
            pred = predict_invocations(self.pack, info)
            bound = "≤ " if stateful(self.pack) else ""
            out.append(f"| {name} ({info.title}) | {info.packets:,} | {info.bytes / 1e6:.0f} | "
                       f"{info.seconds:.0f} | {info.flows:,} | {inv} | "
                       f"{'-' if pred is None else f'{bound}{pred:,}'} | {info.decoded:,} | "
                       f"{info.blacklisted:,} | {info.syn_allowed:,} |")
        out += ["", "Decoder invocations are counted by Suricata itself: an instrumented copy of "
                "the decoder rules (alert instead of pass, thresholded to one alert per rule) "
                "whose script runs the decoder and returns 1, so detect.alert + "
                "detect.alerts_suppressed = invocations. The prediction counts the input's "
                "packets by role (UDP payload >= 14 bytes, TCP payload, client SYN) and server "
                "port against each decoder rule's protocol, flow direction, flags and port "
                "list" + ("; the decoder rules also test per-flow state that the script sets "
                          "(flowint/flowbits), so the prediction is an upper bound (≤)."
                          if stateful(self.pack) else ".")]
        mix = self.infos.get("mix")
        if mix:
            share = ", ".join(f"{k} {v / mix.packets:.1%}" for k, v in
                              sorted(mix.by_kind.items(), key=lambda kv: -kv[1]))
            out += ["", f"Mix composition (share of packets): {share}."]
        for eng in ENGINES:
            if eng.name not in self.versions:
                continue
            out += ["", f"## {eng.name}: Suricata {self.versions[eng.name]}", "",
                    "| input | CPU none s | CPU pack s | CPU pack/none (range; fastest) "
                    "| wall none s "
                    "| wall pack s | wall pack/none | invocations | cost per invocation µs "
                    "| peak RSS none MB | peak RSS pack MB | RSS pack/none | pack alerts |",
                    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for name in self.infos:
                cell = self.cells.get((eng.name, name))
                if cell is None:
                    continue
                lo, hi = cell.paired("cpu")
                cost = cell.cost_us()
                alerts = Counter()
                for s in cell.samples["pack"][:1]:
                    alerts = s.alerts
                out.append(
                    f"| {name} | {_f(cell.med('none', 'cpu'))} | {_f(cell.med('pack', 'cpu'))} | "
                    f"{_f(cell.ratio('cpu'), 3)} ({_f(lo, 2)}-{_f(hi, 2)}; "
                    f"{_f(cell.fastest_ratio('cpu'), 2)}) | "
                    f"{_f(cell.med('none', 'wall'))} | {_f(cell.med('pack', 'wall'))} | "
                    f"{_f(cell.ratio('wall'), 3)} | {cell.invocations or 0:,} | "
                    f"{'-' if cost is None else _f(cost, 2)} | "
                    f"{_f(cell.med('none', 'rss_mb'), 1)} | {_f(cell.med('pack', 'rss_mb'), 1)} | "
                    f"{_f(cell.ratio('rss_mb'), 3)} | {sum(alerts.values())} |")
            probs = self.problems.get(eng.name, [])
            out += ["", "Lua health: " + ("no Lua errors in suricata.log" +
                    (", detect.lua.{errors, instruction_limit_errors, memory_limit_errors, "
                     "blocked_function_errors} all 0" if eng.major >= 8 else "")
                    + " in every pack run." if not probs else
                    f"{len(probs)} problems, first: " + "; ".join(probs[:5]))]
        out += ["", "## Budgets", "", "| engine | input | measure | budget | measured | |",
                "|---|---|---|---|---|---|"]
        out += [f"| {e} | {i} | {w} | {lim} | {m} | {_met(ok)} |"
                for e, i, w, lim, m, ok in self.budget_rows()]
        missed = self.missed()
        out += ["", f"**{len(missed)} budget(s) missed.**" if missed else "All budgets met."]
        if self.profile:
            out += self.profile_markdown()
        return "\n".join(out) + "\n"

    def profile_markdown(self) -> list[str]:
        out = ["", "## Profile: where the time goes", "",
               "Arms, each adding one part of the pack: `none` (no rules); `detect-on` (one rule "
               "for UDP port 9: detection switched on, nothing inspected); `signatures` (the "
               "pack without its decoder rules: the rules that read the verdict, which never "
               "match); `rules-only` (the whole pack with each decoder rule's `lua:` replaced by "
               "a never-set flowbit); `lua-noop` (the decoder rules call a script that asks "
               "for no buffer and returns 0); `pack`. The difference between neighbouring "
               "arms is the cost of the part added: per packet of the input for detection and "
               "signatures; per header match (packets that pass a decoder rule's header, flow, "
               "dsize and flags, the `predicted` count) for the decoder rules and for the Lua "
               "call (the no-op script sets no per-flow state, so it runs on every header "
               "match); per decoder invocation of the pack for everything the decoder rules and "
               "the script cost (pack - signatures). Median CPU seconds; on a shared machine "
               "differences below about 5-10% of `none` are noise (see the per-round ranges "
               "above). `python -m bench.experiments` cuts the script itself into parts "
               "(bench/PROFILE.md) and measures variants that would cut the cost "
               "(bench/VARIANTS.md).", "",
               "| engine | input | header matches | invocations | CPU s: none / detect-on / "
               "signatures / rules-only / lua-noop / pack | detection on µs/packet "
               "| signatures µs/packet | decoder rules µs/match | Lua call µs/match "
               "| decoder + script µs/invocation | pack/none | RSS MB: none / ... / pack |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for (eng, name), cell in self.profile.items():
            inv = cell.invocations or 0
            matches = cell.predicted or 0
            packets = self.infos[name].packets

            def per(a: str, b: str, n: int, cell: Cell = cell) -> str:
                if not n:
                    return "-"
                return _f((cell.med(a, "cpu") - cell.med(b, "cpu")) / n * 1e6, 2)

            out.append(
                f"| {eng} | {name} | {matches:,} | {inv:,} | "
                + " / ".join(_f(cell.med(a, "cpu")) for a in PROFILE_ARMS) + " | "
                f"{per('detect-on', 'none', packets)} | {per('signatures', 'detect-on', packets)} "
                f"| {per('rules-only', 'signatures', matches)} "
                f"| {per('lua-noop', 'rules-only', matches)} "
                f"| {per('pack', 'signatures', inv)} | {_f(cell.ratio('cpu'), 3)} | "
                + " / ".join(_f(cell.med(a, "rss_mb"), 0) for a in PROFILE_ARMS) + " |")
        return out


# --- main --------------------------------------------------------------------------------------

PROFILE_INPUTS = [
    inputs.InputSpec("flood-short", "UDP flood, 14-100 random bytes",
                     [inputs.Kind("udp-flood-short", inputs.s_flood_short, 1.0)], 50_000, 10_000),
    inputs.InputSpec("flood-long", "UDP flood, 1000-1400 random bytes",
                     [inputs.Kind("udp-flood-long", inputs.s_flood_long, 1.0)], 50_000, 10_000),
]
MAIN_ARMS = ["none", "pack"]
PROFILE_ARMS = ["none", "detect-on", "signatures", "rules-only", "lua-noop", "pack"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="input size relative to the full benchmark (default 1)")
    ap.add_argument("--small", action="store_true",
                    help="a quick check: --scale 0.005 --runs 1 --no-profile")
    ap.add_argument("--runs", type=int, default=5,
                    help="runs of the none and pack arms (default 5)")
    ap.add_argument("--mix-runs", type=int, default=9,
                    help="runs of the none and pack arms on the mix, whose budget is the "
                    "tightest (default 9)")
    ap.add_argument("--profile-runs", type=int, default=3,
                    help="runs of each profile arm (default 3)")
    ap.add_argument("--engine", action="append", default=[],
                    help="only this engine (suricata7, suricata8); repeatable")
    ap.add_argument("--no-profile", action="store_true",
                    help="only the none and pack arms on the three inputs (no profile arms, "
                    "no profile inputs)")
    ap.add_argument("--out", type=Path, default=None,
                    help="report path (default bench/RESULTS.md; with --small "
                    ".cache/bench/RESULTS-small.md)")
    ap.add_argument("--cache", type=Path, default=inputs.CACHE, help="input cache folder")
    ap.add_argument("--rules-dir", type=Path, default=ROOT / "rules")
    ap.add_argument("--lua-dir", type=Path, default=ROOT / "lua")
    args = ap.parse_args(argv)
    if args.small:
        args.scale, args.runs, args.profile_runs, args.no_profile = 0.005, 1, 1, True
        args.mix_runs = 1
    if args.out is None:
        args.out = args.cache / "RESULTS-small.md" if args.small else RESULTS
    profile = not args.no_profile

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
    arms = pack.arms()
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
                    profile_runs=args.profile_runs if profile else 0)
    main_inputs = {s.name for s in inputs.INPUTS}

    for eng in engines:
        report.versions[eng.name] = eng.version()
        bench = Bench(eng, arms)
        problems: list[str] = []
        try:
            for name, info in infos.items():
                log(f"{eng.name} on {name}:")
                runs = args.mix_runs if name == "mix" else args.runs
                if profile:
                    cell = measure(bench, Path(info.path), PROFILE_ARMS, args.profile_runs, log,
                                   MAIN_ARMS, runs)
                else:
                    cell = measure(bench, Path(info.path), MAIN_ARMS, runs, log)
                cell.invocations, count_problems = count_invocations(
                    bench, Path(info.path), len(pack.decoder_lines()))
                cell.predicted = predict_invocations(pack, info)
                problems += count_problems
                for s in cell.samples["pack"]:
                    problems += [f"{name}: {p}" for p in s.lua_problems]
                    report.rules[eng.name] = rules_loaded(s.stats)
                if name in main_inputs:
                    report.cells[(eng.name, name)] = cell
                if profile:
                    report.profile[(eng.name, name)] = cell
                log(f"    cpu pack/none {cell.ratio('cpu'):.3f}, invocations "
                    f"{cell.invocations:,} (input predicts {cell.predicted}), cost "
                    f"{cell.cost_us() or 0:.2f} us/invocation")
        finally:
            bench.close()
        report.problems[eng.name] = sorted(set(problems))

    report.seconds = time.monotonic() - t_start
    text = report.markdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print()
    print(text)
    missed = report.missed()
    if missed:
        print(f"BUDGETS MISSED ({len(missed)}):")
        for m in missed:
            print(f"  - {m}")
    else:
        print("all budgets met")
    print(f"report written to {args.out} in {report.seconds / 60:.1f} min")
    return 0
