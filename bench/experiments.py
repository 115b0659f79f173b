"""Profile experiments: where the pack's cost goes inside its Lua script.

`python -m bench.experiments` runs Suricata on the benchmark inputs with modified copies of
the pack's script (staged in a temp folder; the pack itself is never touched), each cut
short at a later point of `match`, so the differences between neighbouring arms are the
cost of one part of the script:

  lua-noop     a script that asks for no buffer and returns 0 (Suricata's call cost)
  prologue     the pack's match up to its blacklist test: resetting the per-packet
               flowints, reading the packet tuple and payload
  no-decode    also the port-generator check, but no deciphering
  no-portgen   the whole pack with the port generator answering "no" at once
  no-reset     the whole pack without resetting the flowints on every call (memory)
  pack         the pack

Each cut is a text substitution of a line of the rendered script; an experiment whose line
is not found (the script changed) is left out with a note. Writes bench/PROFILE.md.

With --variants it measures changed copies of the pack that would cut its cost instead
(VARIANTS: a per-direction verdict cache tested in the rule before Lua runs, an early test
of the deciphered flags), each with its own invocation count, and writes bench/VARIANTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import time
from pathlib import Path

from bench import inputs
from bench.arms import Arm, Pack
from bench.harness import ENGINES, ROOT
from bench.inputs import PROFILE_INPUTS
from bench.rulemodel import LUA_KEYWORD
from bench.runner import Bench, count_invocations, machine, measure

OUT = ROOT / "bench" / "PROFILE.md"
OUT_VARIANTS = ROOT / "bench" / "VARIANTS.md"

# name -> alternatives of (pattern in the script, replacement); the first that is found
CUTS: dict[str, list[tuple[str, str]]] = {
    "prologue": [(r"^(\s*)if blacklisted\(lport\) then return 0 end$", r"\1do return 0 end")],
    "no-decode": [(r"^(\s*)if p == nil then return 0 end$", r"\1do return 0 end")],
    "no-portgen": [(r"^(local function computed_port\([^)]*\)\n)", r"\1  do return false end\n")],
    "no-reset": [
        (r"^(function match\(args\)\n)\s*clear_counts\(\)\n", r"\1"),
        (r"^(function match\(args\)\n)\s*set_counts\(0, 0\)\n\s*set_scan\(0\)\n", r"\1"),
    ],
}
# Variants: changed copies of the pack that would cut its cost, measured with their own
# invocation counts. name -> (rules transform, script transform), each returning None when
# the text to change is not found.
VERDICT_CACHE_LUA = """
-- bench variant: a flow direction whose first frame is not a message is not looked at again
local cfp2p_bench_names = { "cfp2p_bench_dead_ts", "cfp2p_bench_dead_tc" }
local cfp2p_bench_base = #FLOWINTS
for _, n in ipairs(cfp2p_bench_names) do FLOWINTS[#FLOWINTS + 1] = n end
local cfp2p_bench_thread_init, cfp2p_bench_fi = thread_init, {}
function thread_init(args)
  if cfp2p_bench_thread_init ~= nil then cfp2p_bench_thread_init(args) end
  if not ENGINE7 then
    local flowint = require("suricata.flowint")
    for k, n in ipairs(cfp2p_bench_names) do cfp2p_bench_fi[k] = flowint.get(n) end
  end
end
function cfp2p_bench_mark_dead()
  local k = 2
  if mode.listener_is_dst then k = 1 end
  if ENGINE7 then ScFlowintSet(cfp2p_bench_base + k - 1, 1) else cfp2p_bench_fi[k]:set(1) end
end
"""


def _cache_rules(rules: str) -> str | None:
    def one(line: str) -> str:
        if not LUA_KEYWORD.search(line) or re.search(r"\bflags:\s*S", line):
            return line
        side = "tc" if re.search(r"\bflow:[^;]*\bto_client", line) else "ts"
        return LUA_KEYWORD.sub(lambda m: f"flowint:cfp2p_bench_dead_{side},notset; {m.group(0)}",
                               line)
    return "\n".join(one(ln) for ln in rules.splitlines()) + "\n"


def _cache_lua(text: str) -> str | None:
    new, n = re.subn(r"^(  if kind > 0 then\n)",
                     r"  if kind == 0 and (not mode.tcp or streams[flow_id()] == nil) then "
                     r"cfp2p_bench_mark_dead() end\n\1", text, flags=re.M)
    if n != 1 or not re.search(r"^local FLOWINTS = ", text, re.M):
        return None
    return new + VERDICT_CACHE_LUA


def _flags_lua(text: str) -> str | None:
    new, n = re.subn(r"^(\s*)(layout\(s\)\n)",
                     r"\1\2\1if floor(s.flags / 256) % 128 ~= 0 then s.pos = pos; "
                     r"return i + 1, false end\n", text, count=1, flags=re.M)
    return new if n == 1 else None


def _same(text: str) -> str | None:
    return text


VARIANTS = {
    "verdict-cache": (_cache_rules, _cache_lua),
    "flags-filter": (_same, _flags_lua),
    "both": (_cache_rules, lambda t: _cache_lua(t) and _flags_lua(_cache_lua(t) or "")),
}


def variant_packs(pack: Pack) -> tuple[dict[str, Pack], list[str]]:
    out, notes = {}, []
    for name, (rules_fn, lua_fn) in VARIANTS.items():
        rules = rules_fn(pack.rules)
        lua = {k: lua_fn(v) for k, v in pack.lua.items()}
        if rules is None or any(v is None for v in lua.values()):
            notes.append(f"variant {name}: the text to change was not found; left out")
            continue
        out[name] = Pack(pack.rules_name, rules, lua)  # type: ignore[arg-type]
    return out, notes


CHAIN = ["none", "rules-only", "lua-noop", "prologue", "no-decode", "pack"]  # each adds a part
SIDE = ["no-portgen", "no-reset"]  # the pack without one part


def experiment_arms(pack: Pack) -> tuple[dict[str, Arm], list[str]]:
    arms = pack.arms()
    notes = []
    for name, alternatives in CUTS.items():
        lua = {}
        for script, text in pack.lua.items():
            for pattern, repl in alternatives:
                new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
                if n == 1:
                    lua[script] = new
                    break
            else:
                notes.append(f"{name}: no cut point found in {script}; left out")
                break
        else:
            arms[name] = pack._with_rules(name, pack.rules, lua)
    return arms, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engine", action="append", default=[])
    ap.add_argument("--input", action="append", default=[],
                    help="mix, flood, tcp, flood-short, flood-long (default: all)")
    ap.add_argument("--out", type=Path, default=None,
                    help="default bench/PROFILE.md, with --variants bench/VARIANTS.md")
    ap.add_argument("--variants", action="store_true",
                    help="measure the variants (verdict cache, flags filter) instead of the cuts")
    args = ap.parse_args(argv)
    if args.out is None:
        args.out = OUT_VARIANTS if args.variants else OUT
    if args.variants:
        return run_variants(args)
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    pack = Pack.load(ROOT / "rules", ROOT / "lua")
    arms, notes = experiment_arms(pack)
    order = [a for a in CHAIN + SIDE if a in arms]
    chain = [a for a in CHAIN if a in arms]
    specs = [s for s in inputs.INPUTS + PROFILE_INPUTS if not args.input or s.name in args.input]
    infos = {s.name: inputs.ensure(s, args.scale) for s in specs}
    engines = [e for e in ENGINES if e.available() and (not args.engine or e.name in args.engine)]
    lines = [
        "# Profile experiments: where the pack's Lua time goes",
        "",
        f"`python -m bench.experiments`, {started:%Y-%m-%d %H:%M} UTC. Machine: {machine()}. "
        f"Pack snapshot {pack.digest()}. {args.runs} runs per arm, arms rotating; median CPU "
        "(user+system) seconds of the suricata process. In brackets, µs per decoder "
        "invocation: for " + ", ".join(chain[1:]) + " the increment over the arm before it; "
        "for " + ", ".join(SIDE) + " what the pack costs more than the arm (pack - arm). "
        "`rules-only`: the pack's rules with `lua:` replaced by a never-set flowbit. See the "
        "module docstring for the other arms.",
        "",
        *(f"- {n}" for n in notes),
        "",
        "| engine | input | invocations | " + " | ".join(order) + " | RSS MB "
        + " / ".join(order) + " |",
        "|---|---|---|" + "---|" * len(order) + "---|",
    ]
    for eng in engines:
        bench = Bench(eng, arms)
        try:
            for name, info in infos.items():
                print(f"{eng.name} on {name}:", flush=True)
                cell = measure(bench, Path(info.path), order, args.runs,
                               lambda m: print(m, flush=True))
                inv, _ = count_invocations(bench, Path(info.path))
                cpu = {a: statistics.median(s.cpu for s in cell.samples[a]) for a in order}
                rss = {a: statistics.median(s.rss_mb for s in cell.samples[a]) for a in order}
                cols = [f"{cpu['none']:.2f}"]
                for arm in order[1:]:
                    if arm in SIDE:
                        step = cpu["pack"] - cpu[arm]
                    else:
                        step = cpu[arm] - cpu[chain[chain.index(arm) - 1]]
                    cols.append(f"{cpu[arm]:.2f} ({step / inv * 1e6 if inv else 0:+.1f})")
                lines.append(f"| {eng.name} | {name} | {inv:,} | " + " | ".join(cols) + " | "
                             + " / ".join(f"{rss[a]:.0f}" for a in order) + " |")
                print(lines[-1], flush=True)
        finally:
            bench.close()
    lines += ["", f"Took {(time.monotonic() - t0) / 60:.1f} min."]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)
    return 0


def run_variants(args: argparse.Namespace) -> int:
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    pack = Pack.load(ROOT / "rules", ROOT / "lua")
    variants, notes = variant_packs(pack)
    arms = pack.arms()
    for name, vp in variants.items():
        arms[name] = vp._with_rules(name, vp.rules)
        counting = vp.arms()["count"]
        arms[f"count-{name}"] = Arm(f"count-{name}", counting.files, counting.rules)
    order = ["none", "pack", *variants]
    specs = [s for s in inputs.INPUTS + PROFILE_INPUTS if not args.input or s.name in args.input]
    infos = {s.name: inputs.ensure(s, args.scale) for s in specs}
    engines = [e for e in ENGINES if e.available() and (not args.engine or e.name in args.engine)]
    lines = [
        "# Variants of the pack that would cut its cost",
        "",
        f"`python -m bench.experiments --variants`, {started:%Y-%m-%d %H:%M} UTC. Machine: "
        f"{machine()}. Pack snapshot {pack.digest()}. {args.runs} runs per arm, arms rotating; "
        "median CPU (user+system) seconds of the suricata process, ratio to `none`, decoder "
        "invocations counted for each arm.",
        "",
        "- verdict-cache: a flow direction whose first frame is not a valid message is marked "
        "in a flowint that the decoder rules test (`flowint:...,notset`) before calling Lua.",
        "- flags-filter: the decoder gives up when the deciphered flags have a bit of "
        "0x7F00 set (bits no Conficker message is known to use).",
        "- both: the two together.",
        *(f"- {n}" for n in notes),
        "",
        "| engine | input | arm | invocations | CPU s | CPU / none | peak RSS MB | alerts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for eng in engines:
        bench = Bench(eng, arms)
        try:
            for name, info in infos.items():
                print(f"{eng.name} on {name}:", flush=True)
                cell = measure(bench, Path(info.path), order, args.runs,
                               lambda m: print(m, flush=True))
                base = statistics.median(s.cpu for s in cell.samples["none"])
                for arm in order:
                    inv = "-"
                    if arm != "none":
                        count_arm = "count" if arm == "pack" else f"count-{arm}"
                        s = bench.run(count_arm, bench.stage_input(Path(info.path)))
                        det = s.stats.get("detect", {})
                        inv = f"{det.get('alert', 0) + det.get('alerts_suppressed', 0):,}"
                    cpu = statistics.median(s.cpu for s in cell.samples[arm])
                    rss = statistics.median(s.rss_mb for s in cell.samples[arm])
                    alerts = sum(cell.samples[arm][0].alerts.values())
                    lines.append(f"| {eng.name} | {name} | {arm} | {inv} | {cpu:.2f} | "
                                 f"{cpu / base:.3f} | {rss:.0f} | {alerts} |")
                    print(lines[-1], flush=True)
        finally:
            bench.close()
    lines += ["", f"Took {(time.monotonic() - t0) / 60:.1f} min."]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
