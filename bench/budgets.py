"""The budgets: what the pack may cost (CPU and peak RSS ratios per input and engine, the
costliest single Lua call on Suricata 8), and the budget table's rows checked against a
run's report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.report import Report

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


def budget_rows(report: Report) -> list[tuple[str, str, str, str, str, str, bool]]:
    """(engine, input, measure, budget, measured, noise floor, met)"""
    rows = []
    for eng in report._engines():
        for b in BUDGETS:
            cell = report.cells.get((eng.name, b.input))
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
        if eng.major >= 8 and report.worst.get(eng.name):
            w = max(report.worst[eng.name], key=lambda w: w.instructions)
            rows.append((eng.name, "adversarial", "Lua VM instructions of one call, worst "
                         "case", f"<= {WORST_CALL_LIMIT:,}", f"{w.instructions:,} ({w.case})",
                         "-", w.instructions <= WORST_CALL_LIMIT))
        probs = report.problems.get(eng.name, [])
        rows.append((eng.name, "all", "Lua errors / instruction or memory limit hits",
                     "none", str(len(probs)), "-", not probs))
        v = report.version(eng)
        want = {"pack": (len(report.pack.rule_lines(v)), 0, report.pack.skipped(v))}
        if eng.name in report.bundled:
            want["bundled+pack"] = (want["pack"][0] + report.bundled[eng.name].rules, 0,
                                    want["pack"][2])
        for arm, w in want.items():
            got = report.rules.get(eng.name, {}).get(arm)
            if got is None:
                continue
            rows.append((eng.name, "all", f"{arm} rules loaded (failed, skipped)",
                         f"{w[0]} ({w[1]}, {w[2]})", f"{got[0]} ({got[1]}, {got[2]})", "-",
                         got == w))
    if report.snort_version:  # no CPU budgets for Snort 3: its health only
        rows.append(("snort3", "all", "Lua errors, ERROR or FATAL lines in Snort's output",
                     "none", str(len(report.snort_problems)), "-", not report.snort_problems))
        got, want = report.snort_rules, (report.snort_pack.rules(), 0, 0)
        if got is not None:
            rows.append(("snort3", "all", "pack rules loaded", str(want[0]), str(got[0]), "-",
                         got == want))
    return rows

def missed(report: Report) -> list[str]:
    return [f"{e} {i}: {w} {m} (limit {lim})"
            for e, i, w, lim, m, _, ok in report.budget_rows() if not ok]
