"""Saving a run (everything its report is rendered from) as JSON and reading it back, so
that `python -m bench --replay FILE` renders the report again."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

from bench import inputs, luacount, worstcase
from bench.arms import Bundled, Pack
from bench.report import Report
from bench.snort import SnortPack
from bench.stats import Cell, Sample


def _cell_json(cell: Cell) -> dict:
    return {
        "samples": [{"arm": x.arm, "cpu": x.cpu, "wall": x.wall, "rss_mb": x.rss_mb,
                     "alerts": {str(k): v for k, v in x.alerts.items()},
                     "lua_problems": x.lua_problems, "rules": list(x.rules)}
                    for v in cell.samples.values() for x in v],
        "invocations": cell.invocations, "predicted": cell.predicted,
        "counts": None if cell.counts is None else vars(cell.counts),
    }


def _cell_from(d: dict) -> Cell:
    cell = Cell(invocations=d["invocations"], predicted=d["predicted"],
                counts=None if d["counts"] is None else luacount.Counts(**d["counts"]))
    for x in d["samples"]:
        cell.add(Sample(x["arm"], x["cpu"], x["wall"], x["rss_mb"], {},
                        Counter({int(k): v for k, v in x["alerts"].items()}),
                        x["lua_problems"], tuple(x["rules"])))
    return cell


def save_run(report: Report, path: Path) -> None:
    """Everything the report is rendered from, so that `--replay` renders it again."""
    data = {
        "started": report.started.isoformat(), "scale": report.scale, "runs": report.runs,
        "pack": vars(report.pack), "infos": {k: json.loads(v.to_json())
                                             for k, v in report.infos.items()},
        "versions": report.versions,
        "cells": {f"{e}|{i}": _cell_json(c) for (e, i), c in report.cells.items()},
        "profile": {f"{e}|{i}": _cell_json(c) for (e, i), c in report.profile.items()},
        "problems": report.problems, "rules": report.rules,
        "bundled": {k: vars(v) for k, v in report.bundled.items()},
        "worst": {k: [vars(w) for w in v] for k, v in report.worst.items()},
        "seconds": report.seconds, "profile_runs": report.profile_runs,
        "mix_runs": report.mix_runs, "sample": report.sample,
        "snort_version": report.snort_version,
        "snort_pack": None if report.snort_pack is None else vars(report.snort_pack),
        "snort": {i: _cell_json(c) for i, c in report.snort.items()},
        "snort_problems": report.snort_problems, "snort_rules": report.snort_rules,
    }
    path.write_text(json.dumps(data))


def load_run(path: Path) -> Report:
    d = json.loads(path.read_text())
    rep = Report(dt.datetime.fromisoformat(d["started"]), d["scale"], d["runs"],
                 Pack(**d["pack"]),
                 {k: inputs.InputInfo.from_json(json.dumps(v)) for k, v in d["infos"].items()},
                 versions=d["versions"], problems=d["problems"],
                 rules={e: {a: tuple(r) for a, r in v.items()} for e, v in d["rules"].items()},
                 seconds=d["seconds"], profile_runs=d["profile_runs"], mix_runs=d["mix_runs"],
                 sample=d["sample"])
    for key, target in (("cells", rep.cells), ("profile", rep.profile)):
        for k, v in d[key].items():
            e, i = k.split("|")
            target[(e, i)] = _cell_from(v)
    rep.bundled = {k: Bundled(v["text"], v["files"], v["rules"], Counter(v["left_out"]))
                   for k, v in d["bundled"].items()}
    rep.worst = {k: [worstcase.Worst(**w) for w in v] for k, v in d["worst"].items()}
    rep.snort_version = d.get("snort_version", "")  # runs saved before Snort 3 lack these
    rep.snort_pack = SnortPack(**d["snort_pack"]) if d.get("snort_pack") else None
    rep.snort = {i: _cell_from(v) for i, v in d.get("snort", {}).items()}
    rep.snort_problems = d.get("snort_problems", [])
    rep.snort_rules = tuple(d["snort_rules"]) if d.get("snort_rules") else None
    return rep
