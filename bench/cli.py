"""`make bench` (`python -m bench`): what the pack costs Suricata 7, Suricata 8 and Snort 3.

1. Counts (bench.count): every arm of every engine on a slice of each input, under
   callgrind; `pack` counted twice for the run-to-run spread.
2. CPU time and peak RSS (bench.timing): none, none-b (A/A) and pack on each whole input,
   bundled and bundled+pack on the mix.
3. The worst single Lua call (bench.worstcase).
4. Budgets (bench.budgets) checked on those, RESULTS.md written (bench.report). An unmet
   budget is reported, not an error.

Modules: bench.inputs writes and caches the inputs; bench.arms makes the arms from a
snapshot of the pack; bench.harness is the engine harness of tests/engine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import count, inputs, timing, worstcase
from bench.arms import (
    SNORT_ARMS,
    SURICATA_ARMS,
    Pack,
    Ruleset,
    SnortPack,
    bundled_rules,
    pack_version,
    parse_version,
    snort_ruleset,
    suricata_ruleset,
)
from bench.harness import ENGINES, ROOT, SNORT3, snort_version
from bench.report import Results

RESULTS = ROOT / "bench" / "RESULTS.md"
BUNDLED_INPUTS = ("mix",)


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "unknown CPU")
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}"


def rulesets(engine: str, pack: Pack, snort_pack: SnortPack | None, log) -> dict[str, Ruleset]:  # noqa: ANN001
    """Every arm of an engine, from the snapshots taken at start."""
    if engine == "snort3":
        return {a: snort_ruleset(a, snort_pack) for a in SNORT_ARMS}
    eng = next(e for e in ENGINES if e.name == engine)
    bundled = bundled_rules(eng)
    log(f"{engine}: {bundled.rules} bundled rules from {bundled.files} files "
        f"(left out: {dict(bundled.left_out)})")
    version = parse_version(eng.version())
    return {a: suricata_ruleset(a, pack, version, bundled.text) for a in SURICATA_ARMS}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true",
                    help="a check in about a minute: counts of none and pack on 200 packets "
                    "of the flood, one timed round on 0.5%% inputs, a coarse worst-case search")
    ap.add_argument("--engine", action="append", choices=count.ENGINE_NAMES, default=[],
                    help="only this engine; repeatable")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per arm (default 3)")
    ap.add_argument("--jobs", type=int, default=2, help="counts run at once (default 2)")
    ap.add_argument("--out", type=Path, help="default bench/RESULTS.md; with --small "
                    ".cache/bench/RESULTS-small.md")
    args = ap.parse_args(argv)
    started, t0 = dt.datetime.now(dt.UTC), time.monotonic()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is missing: run `make valgrind`")
    scale, packets, points = 1.0, dict(count.PACKETS), 24
    if args.small:
        scale, packets, points, args.rounds = 0.005, {"flood": 200}, 4, 1
    out = args.out or (inputs.CACHE / "RESULTS-small.md" if args.small else RESULTS)

    def log(msg: str) -> None:
        print(msg, flush=True)

    available = {"suricata7": any(e.name == "suricata7" and e.available() for e in ENGINES),
                 "suricata8": any(e.name == "suricata8" and e.available() for e in ENGINES),
                 "snort3": SNORT3.exists()}
    engines = [e for e in count.ENGINE_NAMES if available[e]
               and (not args.engine or e in args.engine)]
    for e in count.ENGINE_NAMES:
        if e not in engines:
            log(f"{e}: skipped ({'not selected' if available[e] else 'not installed'})")
    if not engines:
        log("no engine to run")
        return 1
    pack = Pack.load(ROOT / "rules", ROOT / "lua")
    snort_pack = SnortPack.render() if "snort3" in engines else None
    infos = {s.name: inputs.ensure(s, scale) for s in inputs.INPUTS}
    versions = {e: (snort_version(SNORT3) if e == "snort3" else
                    next(x for x in ENGINES if x.name == e).version()) for e in engines}
    res = Results(
        f"{started:%Y-%m-%d %H:%M}", machine(),
        f"snapshot {pack.digest()} ({pack_version(pack)})"
        + (f", Snort 3 files {snort_pack.digest()}" if snort_pack else ""),
        versions, packets,
        {k: f"{i.title}, {i.packets:,} packets" for k, i in infos.items()},
        command="make bench" + (" BENCH_ARGS=--small" if args.small else ""))
    arms = {e: rulesets(e, pack, snort_pack, log) for e in engines}

    # 1. counts
    jobs = []
    for e in engines:
        for inp, n in packets.items():
            for a in (("none", "pack") if args.small else arms[e]):
                if a.startswith("bundled") and inp not in BUNDLED_INPUTS:
                    continue
                jobs += [(e, inp, a, n)] * (2 if a == "pack" and not args.small else 1)
    slices = {inp: count.input_slice(Path(infos[inp].path), n) for inp, n in packets.items()}

    def one(job: tuple[str, str, str, int]) -> None:
        e, inp, a, n = job
        try:
            c = count.count(e, arms[e][a], slices[inp], n, inp)
        except count.CountError as err:
            res.problems.append(f"{e} {inp} {a}: {str(err)[:300]}")
            log(f"  count {e} {inp} {a}: FAILED {str(err)[:300]}")
            return
        res.counts.setdefault((e, inp, a), []).append(c.ir)
        res.count_seconds[(e, inp, a)] = c.seconds
        res.rules[(e, a)] = c.rules_loaded
        log(f"  count {e} {inp} {a}: {c.ir:,} Ir ({c.seconds:.0f} s)")

    log(f"{len(jobs)} counts, {args.jobs} at a time")
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, jobs))
    order = {(e, i, a): k for k, (e, i, a, _) in enumerate(jobs)}
    res.counts = dict(sorted(res.counts.items(), key=lambda kv: order[kv[0]]))

    # 2. CPU time and peak RSS
    for e in engines:
        stage = timing.Stage(e, {**arms[e], "none-b": arms[e]["none"]})
        try:
            for inp, info in infos.items():
                main = ["none", "none-b", "pack"]
                if inp in BUNDLED_INPUTS:
                    main += ["bundled", "bundled+pack"]
                try:
                    res.runs[(e, inp)] = timing.measure(stage, Path(info.path), main,
                                                        args.rounds, log)
                except RuntimeError as err:
                    res.problems.append(f"{e} {inp} timed run: {str(err)[:300]}")
        finally:
            stage.close()

    # 3. the worst single call
    for e in engines:
        if e != "snort3":
            major = next(x for x in ENGINES if x.name == e).major
            res.worst[e] = worstcase.worst_calls(pack, parse_version(versions[e]), major, points)
            log(f"{e} worst call: " + ", ".join(f"{w.case} {w.instructions:,}"
                                                for w in res.worst[e]))

    res.seconds = time.monotonic() - t0
    text = res.markdown()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n" + text)
    missed = res.missed()
    print(f"BUDGETS MISSED ({len(missed)}):\n  - " + "\n  - ".join(missed) if missed
          else "all budgets met")
    print(f"report written to {out} in {res.seconds / 60:.1f} min")
    return 0
