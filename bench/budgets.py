"""The budgets (issue 18 §3) and their check against what a run measured. The instruction
budgets are checked on the counts (bench.count), peak RSS on the timed runs
(bench.timing), the worst single call on bench.worstcase; CPU time carries none."""

from __future__ import annotations

from dataclasses import dataclass

from bench.timing import Runs
from bench.worstcase import Worst

SURICATA = ("suricata7", "suricata8")
ALL = (*SURICATA, "snort3")


@dataclass(frozen=True)
class Budget:
    measure: str  # "Ir": packet-path instructions (counts); "RSS": peak RSS (timed runs)
    input: str
    engines: tuple[str, ...]
    limit: float
    arm: str = "pack"
    base: str = "none"


BUDGETS = [
    Budget("Ir", "mix", ALL, 1.03),
    Budget("Ir", "mix", ALL, 1.03, "bundled+pack", "bundled"),
    Budget("Ir", "flood", ("suricata7",), 1.20),
    Budget("Ir", "flood", ("suricata8", "snort3"), 1.30),
    Budget("Ir", "tcp", ("suricata7",), 1.50),
    Budget("Ir", "tcp", ("suricata8",), 2.5),
    Budget("Ir", "tcp", ("snort3",), 2.0),
    *(Budget("RSS", i, SURICATA, 1.05) for i in ("mix", "flood", "tcp")),
    Budget("RSS", "mix", SURICATA, 1.05, "bundled+pack", "bundled"),
    *(Budget("RSS", i, ("snort3",), 1.10) for i in ("mix", "flood", "tcp")),
    Budget("RSS", "mix", ("snort3",), 1.10, "bundled+pack", "bundled"),
]
WORST_CALL_LIMIT = 250_000  # Lua VM instructions of one call of Suricata 8's script
WORST_CALL_ENGINE = "suricata8"


@dataclass
class Row:
    engine: str
    input: str
    what: str
    limit: str
    value: str
    met: bool


def check(counts: dict[tuple[str, str, str], list[int]], runs: dict[tuple[str, str], Runs],
          worst: dict[str, list[Worst]]) -> list[Row]:
    """A row per budget that applies to what was measured (an engine or arm not run has no
    row)."""
    rows = []
    for b in BUDGETS:
        for eng in b.engines:
            what = f"{b.measure} {b.arm}/{b.base}"
            if b.measure == "Ir":
                arm, base = counts.get((eng, b.input, b.arm)), counts.get((eng, b.input, b.base))
                if not arm or not base:
                    continue
                v = arm[0] / base[0]
            else:
                r = runs.get((eng, b.input))
                if r is None or b.arm not in r.rss or b.base not in r.rss:
                    continue
                v, what = r.ratio("rss", b.arm, b.base), what + " (medians)"
            rows.append(Row(eng, b.input, what, f"<= {b.limit:.2f}", f"{v:.3f}", v <= b.limit))
    if worst.get(WORST_CALL_ENGINE):
        w = max(worst[WORST_CALL_ENGINE], key=lambda w: w.instructions)
        rows.append(Row(WORST_CALL_ENGINE, "adversarial", "Lua instructions of one call",
                        f"<= {WORST_CALL_LIMIT:,}", f"{w.instructions:,} ({w.case})",
                        w.instructions <= WORST_CALL_LIMIT))
    return rows
