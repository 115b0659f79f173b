"""Samples of one engine on one input and their statistics: ratios of the fastest runs,
of the medians and per round; the noise floor (the A/A arm's spread); what a part of
the pack costs beyond it."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from bench import luacount


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
