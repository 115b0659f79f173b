"""`make bench` (`python -m bench`): run Suricata on the benchmark inputs without rules, with
the pack, with the engine's bundled rules and with both, and Snort 3 without rules and with
the pack's snort3/ files; count what the pack's Lua does; write RESULTS.md.

Modules: bench.inputs writes the cached inputs; bench.arms stages the arms (bench.harness:
the engine harness of tests/engine); bench.runner runs Suricata and samples CPU and RSS
into bench.stats's cells (bench.snort: the Snort 3 arms, the same way); bench.luacount and
bench.worstcase count the Lua outside Suricata; bench.budgets and bench.report give the
budgets and RESULTS.md; bench.replay saves a run for --replay.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from bench import inputs, snort
from bench.arms import (
    BUNDLED_ARMS,
    BUNDLED_INPUTS,
    MAIN_ARMS,
    PROFILE_ARMS,
    PROFILE_SKIP,
    Pack,
    bundled_rules,
    predict_invocations,
)
from bench.harness import ENGINES, ROOT
from bench.inputs import PROFILE_INPUTS
from bench.replay import load_run, save_run
from bench.report import Report
from bench.runner import Bench, count_invocations, lua_counter, measure_plan, worst_calls

RESULTS = ROOT / "bench" / "RESULTS.md"


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
                    help="only this engine (suricata7, suricata8, snort3); repeatable")
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
    snort_on = snort.available() and (not args.engine or snort.NAME in args.engine)
    if not snort_on:
        why = f"not installed at {snort.SNORT3}" if not snort.available() else "not selected"
        log(f"{snort.NAME}: skipped ({why})")
    if not engines and not snort_on:
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

    if snort_on:
        _run_snort(report, infos, args, log)
    report.seconds = time.monotonic() - t_start
    args.cache.mkdir(parents=True, exist_ok=True)
    save_run(report, args.cache / ("last-run-small.json" if args.small else "last-run.json"))
    return _finish(report, args.out)


def _run_snort(report: Report, infos: dict, args: argparse.Namespace, log) -> None:  # noqa: ANN001
    """Snort 3's arms on the main inputs, as many runs as the Suricata main arms; every
    run's output searched for Lua errors."""
    report.snort_version = snort.version()
    sp = report.snort_pack = snort.SnortPack.render()
    log(f"{snort.NAME}: Snort {report.snort_version}, snort3/ snapshot {sp.digest()}: "
        f"{sp.rules()} rules")
    sb = snort.SnortBench(sp)
    problems: list[str] = []
    try:
        for spec in inputs.INPUTS:
            log(f"{snort.NAME} on {spec.name}:")
            runs = args.mix_runs if spec.name == "mix" else args.runs
            cell = measure_plan(sb, Path(infos[spec.name].path), dict.fromkeys(snort.ARMS, runs),
                                log)
            for arm, samples in cell.samples.items():
                problems += [f"{spec.name} {arm}: {p}" for s in samples for p in s.lua_problems]
            report.snort_rules = cell.samples["pack"][0].rules
            report.snort[spec.name] = cell
            r = cell.compare("cpu")
            log(f"    cpu pack/none fastest {r.fastest:.3f} median {r.median:.3f}, "
                f"A/A noise ±{cell.noise():.1%}")
    finally:
        sb.close()
    report.snort_problems = sorted(set(problems))


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
