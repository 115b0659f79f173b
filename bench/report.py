"""RESULTS.md from what a run measured (Results): the budgets, the counts and their
decomposition, their run-to-run spread, CPU time and peak RSS with the A/A floor, the
worst single Lua call."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench import budgets
from bench.timing import Runs
from bench.worstcase import Worst

ARM_TEXT = {
    "none": "no rules",
    "bare-lua": "Suricata: one rule per UDP and per TCP direction on the decoder rules' port "
                "lists, flow and dsize, whose script's `match` returns 0; Snort 3: the pack's "
                "rules with option scripts whose `eval` returns false at once",
    "decoder": "the decoder rules alone (the rules that call the script)",
    "signatures": "the signature rules alone (they read the script's verdict; here never set)",
    "signatures+bare-lua": "the signature rules and the bare-lua rules",
    "pack": "the whole pack",
    "bundled": "the engine's bundled rules (Suricata: /etc/suricata/rules/*.rules, less the "
               "protocols the default suricata.yaml does not detect; Snort 3: its own snort.lua, "
               "inspectors and rules)",
    "bundled+pack": "the bundled rules and the pack (Snort 3: its own snort.lua with the "
                    "pack's snippet included)",
}


@dataclass
class Results:
    started: str
    machine: str
    pack: str  # the snapshot: digest and commit
    versions: dict[str, str]  # engine -> version
    packets: dict[str, int]  # input -> packets counted
    inputs: dict[str, str]  # input -> what it is (packets in full)
    counts: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    count_seconds: dict[tuple[str, str, str], float] = field(default_factory=dict)
    rules: dict[tuple[str, str], int] = field(default_factory=dict)  # (engine, arm) -> loaded
    runs: dict[tuple[str, str], Runs] = field(default_factory=dict)
    worst: dict[str, list[Worst]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    command: str = "make bench"

    def rows(self) -> list[budgets.Row]:
        return budgets.check(self.counts, self.runs, self.worst)

    def missed(self) -> list[str]:
        return [f"{r.engine} {r.input}: {r.what} = {r.value} (budget {r.limit})"
                for r in self.rows() if not r.met] + self.problems

    def ir(self, eng: str, inp: str, arm: str) -> int | None:
        v = self.counts.get((eng, inp, arm))
        return v[0] if v else None

    def markdown(self) -> str:
        engines = [e for e in ("suricata7", "suricata8", "snort3") if e in self.versions]
        out = [
            "# What the Conficker P2P pack costs Suricata 7, Suricata 8 and Snort 3", "",
            f"Written by `{self.command}`, {self.started} UTC, in {self.seconds / 60:.1f} min. "
            f"Machine: {self.machine}. Pack: {self.pack}. Engines: "
            + ", ".join(f"{e} {v}" for e, v in self.versions.items()) + ".", "",
            "**The measure is a count.** Each arm runs under valgrind's callgrind on the first "
            "packets of each input (" + ", ".join(f"{k}: {v:,}" for k, v in self.packets.items())
            + "), and only the packet path is counted: Suricata's `PcapFileDispatch` with "
            "`--runmode single` (reading, decoding, flows, detection and output of every "
            "packet), Snort 3's `PacketManager::decode` and `DetectionEngine::inspect`. "
            "Start-up, rule loading and idle threads are left out; bench/fixedseed.c fixes "
            "the engines' random seeds (hashes, LuaJIT's PRNG), so a count repeats to a few "
            "instructions in a million (spread "
            "below). `python -m bench.count` gives one count. The budgets on instructions are "
            "checked on these counts; CPU time, what an operator sees, is shown with its A/A "
            "noise floor but decides nothing.", "",
            "Arms: " + "; ".join(f"`{a}` {t}" for a, t in ARM_TEXT.items()) + ".", "",
            "Inputs: " + "; ".join(f"`{k}` {v}" for k, v in self.inputs.items()) + ".", "",
            "## Budgets", "",
            "| engine | input | measure | budget | measured | met |", "|---|---|---|---|---|---|",
        ]
        for r in self.rows():
            out.append(f"| {r.engine} | {r.input} | {r.what} | {r.limit} | {r.value} | "
                       f"{'yes' if r.met else '**no**'} |")
        for p in self.problems:
            out.append(f"| - | - | problem | none | {p} | **no** |")
        out += ["", "## Packet-path instructions (Ir)", "",
                "| engine | input | arm | Ir | Ir per packet | arm/none | rules loaded | "
                "count took |", "|---|---|---|---|---|---|---|---|"]
        for (eng, inp, arm), irs in self.counts.items():
            none = self.ir(eng, inp, "none")
            ratio = f"{irs[0] / none:.3f}" if none else "-"
            out.append(f"| {eng} | {inp} | {arm} | {irs[0]:,} | "
                       f"{irs[0] / self.packets[inp]:,.0f} | {ratio} | "
                       f"{self.rules.get((eng, arm), '-')} | "
                       f"{self.count_seconds.get((eng, inp, arm), 0):.0f} s |")
        out += self._decomposition(engines) + self._spread() + self._cpu() + self._worst()
        return "\n".join(out) + "\n"

    def _decomposition(self, engines: list[str]) -> list[str]:
        out = ["", "## Where the pack's instructions go", "",
               "Extra instructions over `none` per counted packet, as a chain of arms that each "
               "add one part, so the parts add up to the whole by construction: detection "
               "switched on with the signature rules (`signatures` - `none`); the Lua call "
               "on every packet the decoder rules select, with a script that does nothing "
               "(`signatures+bare-lua` - `signatures`; Snort 3: `bare-lua` - `none`, the pack's "
               "rules with empty options); the script's own work (`pack` - the arm before). "
               "Measured apart instead, the decoder rules and the signatures each pay for "
               "switching detection on: (decoder - none) + (signatures - none) exceeds "
               "(pack - none) by the `overlap` column's share.", "",
               "| engine | input | detection + signatures | Lua call | script's work | pack "
               "| pack/none | overlap |", "|---|---|---|---|---|---|---|---|"]
        for eng in engines:
            chain = (("none", "bare-lua", "pack") if eng == "snort3" else
                     ("none", "signatures", "signatures+bare-lua", "pack"))
            for inp, n in self.packets.items():
                irs = [self.ir(eng, inp, a) for a in chain]
                if irs[0] is None or irs[-1] is None:
                    continue
                steps = [None if a is None or b is None else (b - a) / n
                         for a, b in zip(irs, irs[1:], strict=False)]
                if eng == "snort3":
                    steps.insert(0, None)
                cells = [f"{v:,.0f}" if v is not None else "-" for v in steps]
                whole = irs[-1] - irs[0]
                dec, sig = self.ir(eng, inp, "decoder"), self.ir(eng, inp, "signatures")
                overlap = ("-" if dec is None or sig is None or not whole else
                           f"{(dec - irs[0] + sig - irs[0] - whole) / whole:+.1%}")
                out.append(f"| {eng} | {inp} | {' | '.join(cells)} | {whole / n:,.0f} | "
                           f"{irs[-1] / irs[0]:.3f} | {overlap} |")
        return out

    def _spread(self) -> list[str]:
        rows = [(k, v) for k, v in self.counts.items() if len(v) > 1]
        if not rows:
            return []
        out = ["", "## Run-to-run spread of a count", "",
               "The same arm counted twice: (max - min) / min.", "",
               "| engine | input | arm | Ir, each run | spread |", "|---|---|---|---|---|"]
        for (eng, inp, arm), v in rows:
            out.append(f"| {eng} | {inp} | {arm} | {', '.join(f'{x:,}' for x in v)} | "
                       f"{(max(v) - min(v)) / min(v):.4%} |")
        return out

    def _cpu(self) -> list[str]:
        if not self.runs:
            return []
        out = ["", "## CPU time and peak RSS (whole inputs)", "",
               "What an operator sees, on this shared machine: user+system CPU of the engine "
               "reading the whole input (`-k none`, Suricata `--runmode single`), the arms "
               "taking turns; ratio of the fastest runs. The A/A floor is the largest "
               "deviation from 1 of `none-b`/`none` (the same empty rules again): a CPU ratio "
               "closer to 1 than the floor says nothing. Peak RSS: GNU time's %M, ratio of "
               "the medians.", "",
               "| engine | input | runs per arm | CPU none (fastest) | CPU pack/none | A/A floor "
               "| CPU bundled+pack/bundled | RSS none | RSS pack/none |",
               "|---|---|---|---|---|---|---|---|---|"]
        for (eng, inp), r in self.runs.items():
            floor = r.floor()
            bund = (f"{r.ratio('cpu', 'bundled+pack', 'bundled'):.3f}"
                    if "bundled" in r.cpu else "-")
            out.append(f"| {eng} | {inp} | {len(r.cpu['none'])} | {min(r.cpu['none']):.2f} s | "
                       f"{r.ratio('cpu'):.3f} | "
                       f"{'-' if floor is None else f'±{floor:.1%}'} | {bund} | "
                       f"{min(r.rss['none']):.0f} MB | {r.ratio('rss'):.3f} |")
        return out

    def _worst(self) -> list[str]:
        if not self.worst:
            return []
        out = ["", "## The costliest single call (Lua VM instructions)", "",
               "The pack's script under lupa (tests/lua/stand_in.py; LuaJIT with the JIT off "
               "for Suricata 7, Lua 5.4 for 8) with a count hook, on crafted valid messages of "
               "the largest sizes (bench/worstcase.py).", "",
               "| engine | case | data length | instructions | bytes deciphered |",
               "|---|---|---|---|---|"]
        for eng, ws in self.worst.items():
            for w in ws:
                d = "-" if w.data_len is None else f"{w.data_len:,}"
                out.append(f"| {eng} | {w.case}: {w.what} | {d} | {w.instructions:,} | "
                           f"{w.deciphered:,} |")
        return out
