"""The report: bench/RESULTS.md rendered from a run's measurements (Report), every table
and the text around it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bench import budgets, inputs, snort, worstcase
from bench.arms import (
    PROFILE_ARMS,
    Bundled,
    Pack,
    Version,
    pack_version,
    predict_invocations,
    stateful,
)
from bench.harness import ENGINES, Engine
from bench.rulemodel import parse_version
from bench.runner import machine
from bench.stats import Cell, Ratio


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
    worst: dict[str, list[worstcase.Worst]] = field(default_factory=dict)
    seconds: float = 0.0
    profile_runs: int = 0
    mix_runs: int = 0
    sample: int = 0
    snort_version: str = ""  # empty when Snort 3 did not run
    snort_pack: snort.SnortPack | None = None
    snort: dict[str, Cell] = field(default_factory=dict)  # input -> Snort 3's cell
    snort_problems: list[str] = field(default_factory=list)
    snort_rules: tuple[int, int, int] | None = None  # rules loaded by the pack arm

    def _engines(self) -> list[Engine]:
        return [e for e in ENGINES if e.name in self.versions]

    def version(self, eng: Engine) -> Version:
        return parse_version(self.versions[eng.name])

    def budget_rows(self) -> list[tuple[str, str, str, str, str, str, bool]]:
        """(engine, input, measure, budget, measured, noise floor, met)"""
        return budgets.budget_rows(self)

    def missed(self) -> list[str]:
        return budgets.missed(self)


    def markdown(self) -> str:
        engines = self._engines()
        out = [
            "# What the Conficker P2P pack costs Suricata"
            + (" and Snort 3" if self.snort_version else ""),
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
            "Engines: " + ", ".join([f"{n} = Suricata {v}" for n, v in self.versions.items()]
                                    + ([f"{snort.NAME} = Snort {self.snort_version} (its own "
                                        "section below)"] if self.snort_version else []))
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
            "resident set (GNU time's %M: os.wait4's would be at least the bench's own). "
            f"Scale {self.scale:g}.",
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
        out += self.snort_markdown()
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

    def snort_markdown(self) -> list[str]:
        if not self.snort_version:
            return []
        sp = self.snort_pack
        out = ["", f"## {snort.NAME}: Snort {self.snort_version}", "",
               f"Pack: the snort3/ files rendered from the spec at start (snapshot "
               f"{sp.digest()}: `{sp.rules_name}`, {sp.rules()} rules, calling the option "
               f"script `{sp.script}`). Every run: "
               "`snort -c snort.lua --script-path ARM -R RULES -r INPUT -k none -A none` with "
               "the pack's standalone snort.lua (its snippet included). Arms: `none` the same "
               "snort.lua and script path with an empty rules file (so the pack's rules are "
               "the only difference); `none-b` the same again (the A/A arm); `pack` the pack's "
               "rules. Runs, rounds, warm-up, CPU (os.wait4 of the snort process), RSS, "
               "ratios and noise floor as for Suricata above. No budgets: these are "
               "measured, not limited.", "",
               "| input | CPU s none | CPU s none-b | CPU s pack | A/A none-b/none: fastest; "
               "median (range) | noise floor | CPU pack/none: fastest; median (range) "
               "| wall pack/none (medians) | peak RSS MB none / pack | RSS pack/none "
               "| alerts pack |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name in self.infos:
            cell = self.snort.get(name)
            if cell is None:
                continue

            def cpu(arm: str, cell: Cell = cell) -> str:
                return f"{_f(cell.fastest(arm))} / {_f(cell.med(arm, 'cpu'))}"

            floor = cell.noise()
            out.append(
                f"| {name} | {cpu('none')} | {cpu('none-b')} | {cpu('pack')} | "
                f"{_r(cell.compare('cpu', 'none-b', 'none'))} | "
                f"{'-' if floor is None else f'±{floor:.1%}'} | {_r(cell.compare('cpu'))} | "
                f"{_f(cell.ratio('wall'), 3)} | {_f(cell.med('none', 'rss_mb'), 1)} / "
                f"{_f(cell.med('pack', 'rss_mb'), 1)} | {_f(cell.ratio('rss_mb'), 3)} | "
                f"{sum(cell.samples['pack'][0].alerts.values())} |")
        probs = self.snort_problems
        out += ["", "CPU seconds as fastest / median run.", "",
                "Lua health: " + ("no `<script>.lua:<line>:` error and no ERROR or FATAL line "
                                  "in the output of any run." if not probs else
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
               f"{budgets.WORST_CALL_LIMIT:,} on Suricata 8 (its limit is "
               "`security.lua.max-instructions`, 500,000 by default: past it the call fails "
               "and the packet goes undecoded).", "",
               "| case | packets | " + " | ".join(
                   f"{e.name} ({ENGINE_RUNTIME.get(e.major, 'Lua 5.4')}): instructions "
                   "(data block bytes; bytes deciphered)" for e in engines) + " |",
               "|---|---|" + "---|" * len(engines)]
        by_case: dict[str, dict[str, worstcase.Worst]] = {}
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
