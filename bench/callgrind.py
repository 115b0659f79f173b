"""Deterministic instruction counts of Suricata 7 (host) with and without the pack: a profile
tool, not a budget. `python -m bench.callgrind` writes bench/CALLGRIND.md.

For each input (mix, flood) the first N packets (default 20,000) of the cached full-scale
input are cut into a slice, and Suricata runs under `valgrind --tool=callgrind
--separate-threads=yes` on it with the `none` and `pack` arms. Counted is the thread that
processes the packets (the thread with the most instructions in Decode*, Detect*, Sig* and
Flow* functions; the main thread's start-up and rule loading and the other threads' waiting
are left out): reading, decoding, flows, detection and output of
the slice, and that thread's own set-up (the pack's Lua states). Debian's suricata is stripped
to its exported symbols, so the per-function table attributes static functions to `???` and an
address; it says where the pack's extra instructions go, at that resolution.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from bench import inputs
from bench.arms import Pack
from bench.harness import ENGINES, ROOT
from bench.runner import Bench, machine

OUT = ROOT / "bench" / "CALLGRIND.md"


def slice_pcap(src: Path, dest: Path, n: int) -> None:
    with open(dest, "wb") as out:
        out.write(inputs.PCAP_GLOBAL)
        for i, (ts, frame) in enumerate(inputs.iter_records(src)):
            if i >= n:
                break
            sec, usec = int(ts), round((ts - int(ts)) * 1e6)
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            out.write(inputs.RECORD.pack(sec, usec, len(frame), len(frame)) + frame)


def _annotate(path: Path) -> Counter:
    ann = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", str(path)],
                         capture_output=True, text=True, check=True).stdout
    funcs: Counter = Counter()
    for line in ann.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if m and ":" in m.group(2) and "PROGRAM TOTALS" not in m.group(2):
            funcs[m.group(2).split(" [")[0]] += int(m.group(1).replace(",", ""))
    total = re.search(r"([\d,]+)\s+(?:\([^)]*\)\s+)?PROGRAM TOTALS", ann)
    funcs["TOTAL"] = int(total.group(1).replace(",", "")) if total else sum(funcs.values())
    return funcs


def callgrind(bench: Bench, arm: str, pcap: Path, out: Path) -> Counter:
    """Instructions (Ir) per function of the packet thread of one run under callgrind."""
    eng, a = bench.engine, bench.arms[arm]
    armdir = bench.work / "arms" / arm
    logdir = bench.work / "logs" / f"cg-{arm}-{pcap.stem}"
    logdir.mkdir(parents=True)
    cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
           f"--callgrind-out-file={out}", "suricata", "-r", str(pcap), "-S",
           str(armdir / a.rules), "-l", str(logdir), "-k", "none", "--runmode", "single",
           *eng._settings(armdir)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=3600)
    shutil.rmtree(logdir, ignore_errors=True)
    counts = [_annotate(t) for t in sorted(out.parent.glob(out.name + "-*"))]

    def packet_work(c: Counter) -> int:  # decoding and detection: the packet thread's work
        return sum(v for f, v in c.items() if re.search(r":(Decode|Detect|Sig|Flow)", f))

    return max(counts, key=packet_work)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.callgrind", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=20_000)
    ap.add_argument("--input", action="append", default=[], help="mix, flood (default both)")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    eng = next(e for e in ENGINES if e.root is None)
    if shutil.which("valgrind") is None or not eng.available():
        print("valgrind or the host's Suricata is missing")
        return 1
    started = dt.datetime.now(dt.UTC)
    pack = Pack.load(ROOT / "rules", ROOT / "lua")
    specs = [s for s in inputs.INPUTS if s.name in (args.input or ["mix", "flood"])]
    bench = Bench(eng, {k: v for k, v in pack.arms().items() if k in ("none", "pack")})
    lines = [
        "# Suricata 7 instructions with and without the pack (callgrind)", "",
        f"`python -m bench.callgrind`, {started:%Y-%m-%d %H:%M} UTC, Suricata "
        f"{eng.version()} on the host. Machine: {machine()}. Pack snapshot {pack.digest()}.",
        "", __doc__.split("\n\n", 1)[1].strip().replace("\n", " "), "",
        "| input | packets | Ir none (packet thread) | Ir pack | pack/none | extra Ir per packet |",
        "|---|---|---|---|---|---|",
    ]
    tops = []
    try:
        for spec in specs:
            info = inputs.ensure(spec, 1.0)
            sl = bench.work / "inputs" / f"{spec.name}-{args.packets}.pcap"
            slice_pcap(Path(info.path), sl, args.packets)
            work = {}
            for arm in ("none", "pack"):
                print(f"callgrind {arm} on {sl.name}", flush=True)
                work[arm] = callgrind(bench, arm, sl, bench.work / f"cg.{spec.name}.{arm}")
            none, pk = work["none"]["TOTAL"], work["pack"]["TOTAL"]
            lines.append(f"| {spec.name} | {args.packets:,} | {none:,} | {pk:,} | "
                         f"{pk / none:.3f} | {(pk - none) / args.packets:,.0f} |")
            diff = Counter({f: work["pack"][f] - work["none"].get(f, 0)
                            for f in work["pack"] if f != "TOTAL"})
            tops.append((spec.name, pk - none, diff.most_common(args.top)))
    finally:
        bench.close()
    for name, extra, top in tops:
        lines += ["", f"## {name}: where the pack's extra instructions go", "",
                  "| function (self Ir) | extra Ir | share of the extra |", "|---|---|---|"]
        lines += [f"| `{f}` | {d:,} | {d / extra:.1%} |" for f, d in top]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
