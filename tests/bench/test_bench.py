"""`make bench` on a small input: the inputs are well-formed and deterministic, and the
report has a table per available engine with sane numbers (no timing assertions)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engines import ENGINES  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

from bench import arms as bench_arms  # noqa: E402
from bench import cli, inputs, luacount, replay, rulemodel, snort, stats, worstcase  # noqa: E402
from bench import report as bench_report  # noqa: E402
from generator import codec as protocol  # noqa: E402


def _engines(config: pytest.Config) -> list:
    wanted = config.getoption("--engine")
    return [e for e in ENGINES if e.available() and (not wanted or e.name in wanted)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, inputs.InputInfo]:
    out = tmp_path_factory.mktemp("bench-inputs")
    return {s.name: inputs.generate(s, 0.003, out / f"{s.name}.pcap") for s in inputs.INPUTS}


def test_inputs_are_deterministic(tiny, tmp_path):
    again = inputs.generate(inputs.INPUTS[0], 0.003, tmp_path / "again.pcap")
    assert Path(again.path).read_bytes() == Path(tiny["mix"].path).read_bytes()
    assert again.roles == tiny["mix"].roles


def test_frames_have_correct_checksums(tiny):
    """scapy recomputes every checksum; the frames must come out byte for byte."""
    checked = 0
    for info in tiny.values():
        for i, (_, frame) in enumerate(inputs.iter_records(Path(info.path))):
            if i % 5:
                continue
            pkt = Ether(frame)
            layer = TCP if TCP in pkt else UDP
            del pkt[IP].chksum
            del pkt[layer].chksum
            assert bytes(Ether(bytes(pkt))) == frame, f"{info.name} record {i}"
            checked += 1
    assert checked > 300


def test_input_shapes(tiny):
    mix, flood, tcp = tiny["mix"], tiny["flood"], tiny["tcp"]
    for info in tiny.values():
        n = sum(1 for _ in inputs.iter_records(Path(info.path)))
        assert n == info.packets >= 50
    assert {"https", "dns", "quic", "conficker-udp"} <= set(mix.by_kind)
    assert mix.blacklisted > mix.decoded > 0  # mostly service ports the worm never uses
    # every flood datagram is a candidate on allowed ports on both sides
    assert flood.decoded == flood.packets == flood.count(("udp/c2s",))
    assert tcp.decoded > 0 and tcp.syn_allowed == tcp.flows and tcp.blacklisted == 0
    ports = [p for r in flood.roles.values() for p in r]
    assert not any(protocol.is_blacklisted(p) for p in ports)


def test_predicted_invocations_follow_the_rule_headers(tiny):
    flood = tiny["flood"]
    some = sorted(flood.roles["udp/c2s"])[:3]

    def pack(*lines: str) -> bench_arms.Pack:
        return bench_arms.Pack("x.rules", "\n".join(lines) + "\n", {"x.lua": ""})

    any_port = "pass udp any any -> any any (flow:to_server; dsize:>=14; lua:x.lua; sid:1;)"
    assert bench_arms.predict_invocations(pack(any_port), flood) == flood.packets
    listed = (
        f"pass udp any any -> any [{some[0]},{some[1]}:{some[2]}] "
        "(flow:to_server; lua:x.lua; sid:1;)"
    )
    want = sum(flood.roles["udp/c2s"][p] for p in some)
    assert bench_arms.predict_invocations(pack(listed), flood) == want
    to_client = "pass udp any any -> any any (flow:to_client; lua:x.lua; sid:2;)"
    assert bench_arms.predict_invocations(pack(to_client), flood) == 0
    negated = "pass udp any any -> any [!53] (flow:to_server; lua:x.lua; sid:3;)"
    assert bench_arms.predict_invocations(pack(negated), flood) is None


def test_instrumented_arms_keep_the_decoder_rules():
    p = bench_arms.Pack.load(ROOT / "rules", ROOT / "lua")
    arms = p.arms()
    count = arms["count"].files[p.rules_name].decode().splitlines()
    assert len(count) == len(p.decoder_lines()) > 0
    assert all(
        ln.startswith("alert ") and "noalert" not in ln and "track by_rule" in ln for ln in count
    )
    script = next(v for k, v in arms["count"].files.items() if k.endswith(".lua")).decode()
    assert script.rstrip().endswith("return 1\nend")
    rules_only = arms["rules-only"].files[p.rules_name].decode()
    assert "lua:" not in rules_only and rules_only.count("cfp2p.bench.never") == len(count)
    assert arms["none-b"].files == arms["none"].files  # the A/A arm: the baseline again
    assert "bundled" not in arms


V7, V8 = (7, 0, 10), (8, 0, 8)
S7_RULE = ("pass udp any any -> any [1000:2000] (flow:to_server; dsize:>=14; "
           "requires: version >= 7 < 8; lua:s7.lua; noalert; sid:71;)")
S8_RULE = ("pass udp any any -> any [1000:2000] (flow:to_server; dsize:>=14; "
           "requires: version >= 8; lua:s8.lua; noalert; sid:81;)")
S8_SYNACK = ("pass tcp any [1000:2000] -> any any (flow:to_client,not_established; flags:SA; "
             "requires: version >= 8; lua:s8.lua; noalert; sid:82;)")
SIGNATURE = 'alert udp any any -> any any (msg:"x"; flowint:v,>,0; sid:90;)'
SCRIPT = "function init(args)\n  return {}\nend\n\nfunction match(args)\n  return 0\nend\n"


def _two_engine_pack() -> bench_arms.Pack:
    rules = "\n".join(["# comment", S7_RULE, S8_RULE, S8_SYNACK, SIGNATURE]) + "\n"
    return bench_arms.Pack("x.rules", rules, {"s7.lua": SCRIPT, "s8.lua": SCRIPT})


def test_requires_admits_one_engine_each():
    assert rulemodel.admits(S7_RULE, V7) and not rulemodel.admits(S7_RULE, V8)
    assert rulemodel.admits(S8_RULE, V8) and not rulemodel.admits(S8_RULE, V7)
    assert rulemodel.admits(SIGNATURE, V7) and rulemodel.admits(S8_RULE, None)
    assert rulemodel.admits("alert ip any any -> any any (requires: version >= 7.0.10; sid:1;)",
                            V7)
    assert not rulemodel.admits("alert ip any any -> any any (requires: version >= 7.0.11; "
                                "sid:1;)", V7)
    p = _two_engine_pack()
    assert len(p.rule_lines()) == 4 and len(p.rule_lines(V7)) == 2 and len(p.rule_lines(V8)) == 3
    assert p.skipped(V7) == 2 and p.skipped(V8) == 1
    assert list(p.scripts(V7)) == ["s7.lua"] and list(p.scripts(V8)) == ["s8.lua"]


def test_per_engine_scripts_are_all_instrumented():
    p = _two_engine_pack()
    arms = p.arms()
    count = arms["count"]
    assert {"s7.lua", "s8.lua"} <= set(count.files)
    for name in ("s7.lua", "s8.lua"):
        assert count.files[name].decode().rstrip().endswith("return 1\nend")
    lines = count.files["x.rules"].decode().splitlines()
    assert len(lines) == 3 and sum("requires:" in ln for ln in lines) == 3  # gating kept


def test_predicted_invocations_count_only_the_engines_rules(tiny):
    mix = tiny["mix"]
    p = _two_engine_pack()
    udp = sum(n for port, n in mix.roles.get("udp/c2s", {}).items() if 1000 <= port <= 2000)
    synack = sum(n for port, n in mix.roles.get("tcp/synack", {}).items()
                 if 1000 <= port <= 2000)
    assert bench_arms.predict_invocations(p, mix, V7) == udp
    assert bench_arms.predict_invocations(p, mix, V8) == udp + synack
    assert bench_arms.predict_invocations(p, mix) == 2 * udp + synack
    assert sum(mix.roles["tcp/synack"].values()) > 0  # the mix has handshakes


def test_bundled_arms():
    p = bench_arms.Pack.load(ROOT / "rules", ROOT / "lua")
    bundled = 'alert ip any any -> any any (msg:"bundled"; sid:2200000;)\n'
    arms = p.arms(bundled)
    assert arms["bundled"].files == {"bundled.rules": bundled.encode()}
    both = arms["bundled+pack"]
    text = both.files[both.rules].decode()
    assert text.startswith(bundled) and text.endswith(p.rules)
    assert set(p.lua) <= set(both.files)  # the pack's scripts beside the rules


def _sample(arm: str, cpu: float, rss: float = 100.0) -> stats.Sample:
    return stats.Sample(arm, cpu, cpu, rss, {}, stats.Counter(), [], (1, 0, 0))


def _cell(runs: dict[str, list[float]]) -> stats.Cell:
    cell = stats.Cell()
    for r in range(max(len(v) for v in runs.values())):
        for arm, values in runs.items():
            if r < len(values):
                cell.add(_sample(arm, values[r]))
    return cell


def test_ratios_fastest_median_and_range():
    cell = _cell({"none": [1.0, 1.2, 0.9], "pack": [2.0, 1.5, 3.0]})
    r = cell.compare("cpu")
    assert r.fastest == pytest.approx(1.5 / 0.9)  # the fastest runs: contention only adds
    assert r.median == pytest.approx(2.0 / 1.0)
    assert (r.lo, r.hi) == (pytest.approx(1.25), pytest.approx(3.0 / 0.9))


def test_noise_floor_and_below_noise():
    cell = _cell({"none": [1.00, 1.10, 1.00], "none-b": [1.05, 1.00, 0.96],
                  "detect-on": [1.02, 1.03, 1.10], "pack": [1.50, 1.60, 1.55]})
    aa = cell.compare("cpu", "none-b", "none")
    assert aa.fastest == pytest.approx(0.96)
    # the largest deviation of any A/A ratio from 1: round 2, 1.00 / 1.10
    assert cell.noise() == pytest.approx(1 - 1.00 / 1.10)
    assert cell.part("detect-on", "none") is None  # 0.02 s: within ±9.1% of 1.00 s
    assert cell.part("pack", "none") == pytest.approx(0.50)
    quiet = _cell({"none": [1.0, 1.0], "none-b": [1.0, 1.0], "detect-on": [1.02, 1.02]})
    assert quiet.noise() == 0 and quiet.part("detect-on", "none") == pytest.approx(0.02)
    assert _cell({"none": [1.0], "pack": [1.1]}).noise() is None


def _report(cells: dict[str, stats.Cell], profile: bool = False) -> bench_report.Report:
    p = bench_arms.Pack.load(ROOT / "rules", ROOT / "lua")
    infos = {name: inputs.InputInfo(name, name, "-", packets=1000) for name in cells}
    rep = bench_report.Report(bench_report.dt.datetime.now(bench_report.dt.UTC), 1.0, 3, p, infos,
                     versions={"suricata8": "8.0.8"})
    for name, cell in cells.items():
        cell.invocations = cell.predicted = 500
        (rep.profile if profile else rep.cells)[("suricata8", name)] = cell
    return rep


def test_budgets_use_the_fastest_runs_and_print_the_noise_floor():
    none = [1.0, 1.3, 1.2]
    mix = _cell({"none": none, "none-b": [1.02, 1.25, 1.3], "pack": [1.09, 1.5, 1.6],
                 "bundled": [2.0, 2.4, 2.2], "bundled+pack": [2.1, 2.2, 2.3]})
    flood = _cell({"none": none, "none-b": none, "pack": [1.31, 1.4, 1.5]})
    rows = {(i, m): (meas, nf, ok) for e, i, m, lim, meas, nf, ok
            in _report({"mix": mix, "flood": flood}).budget_rows()}
    meas, nf, ok = rows[("mix", "CPU time pack/none, fastest runs")]
    assert ok and meas.startswith("1.090 (median 1.250") and nf == "±8.3%"  # round 3: 1.3 / 1.2
    meas, nf, ok = rows[("mix", "CPU time bundled+pack/bundled, fastest runs")]
    assert meas.startswith("1.050") and not ok  # > 1.03
    assert not rows[("flood", "CPU time pack/none, fastest runs")][2]  # 1.31 > 1.30
    assert rows[("flood", "CPU time pack/none, fastest runs")][1] == "±0.0%"


def test_report_tables_print_the_aa_arm_and_below_noise():
    arms = {a: [1.0, 1.1, 1.05] for a in bench_arms.PROFILE_ARMS}
    arms["none-b"] = [1.1, 1.0, 1.05]
    arms["pack"] = [3.0, 3.1, 3.2]
    rep = _report({"flood": _cell(arms)}, profile=True)
    rep.cells[("suricata8", "flood")] = rep.profile[("suricata8", "flood")]
    text = rep.markdown()
    engine = _table(text, "suricata8")["flood"]
    assert engine["A/A none-b/none: fastest; median (range)"] == "1.000; 1.000 (0.91-1.10)"
    assert engine["noise floor"] == "±10.0%"
    assert engine["CPU pack/none: fastest; median (range)"].startswith("3.000; 2.952")
    prof = [ln for ln in text.splitlines() if ln.startswith("| suricata8 | flood | 500 |")]
    assert len(prof) == 1
    cells = [c.strip() for c in prof[0].strip("|").split("|")]
    assert cells[6:10] == ["below noise"] * 4  # every part but the script: A/A-sized
    assert float(cells[10]) == pytest.approx((3.0 - 1.0) / 500 * 1e6)


def test_a_negative_part_beyond_the_floor_is_labelled_noise():
    cell = _cell({"none": [1.0, 1.0, 1.01], "none-b": [1.0, 1.01, 1.0],
                  "detect-on": [0.8, 0.9], "pack": [1.5, 1.6]})
    assert cell.noise() == pytest.approx(0.01)
    assert bench_report._part(cell.part("detect-on", "none"), 1000) == "noise (-200.00)"
    assert bench_report._part(cell.part("pack", "none"), 1000) == "500.00"
    assert bench_report._part(cell.part("none-b", "none"), 1000) == "below noise"


def test_a_saved_run_renders_the_same_report(tmp_path):
    mix = _cell({"none": [1.0, 1.3, 1.2], "none-b": [1.02, 1.25, 1.3], "pack": [1.09, 1.5, 1.6],
                 "bundled": [2.0, 2.4, 2.2], "bundled+pack": [2.1, 2.2, 2.3]})
    rep = _report({"mix": mix})
    mix.counts = luacount.Counts("lua54", candidates=10, invocations=8, instructions=8000,
                                 max_call=2000, deciphered=80, scripts=["x.lua"])
    rep.worst["suricata8"] = [worstcase.Worst("udp-max-data", "a datagram", 10, 300_000, 59)]
    replay.save_run(rep, tmp_path / "run.json")
    text = rep.markdown()
    assert replay.load_run(tmp_path / "run.json").markdown() == text
    assert "| udp-max-data | a datagram | 300,000 (10; 59) |" in text
    assert "| suricata8 | adversarial | Lua VM instructions of one call, worst case | <= 250,000 " \
           "| 300,000 (udp-max-data) | - | **NOT MET** |" in text


def test_bytes_deciphered_follow_the_codec():
    msg = protocol.Message(1, 2, 0x8001 | protocol.FLAG_DATA, data_flags=0, data=b"x" * 100,
                           noise=b"n" * 30)
    wire = protocol.encode(msg)
    assert luacount.deciphered(wire, len(wire)) == len(wire) - 8 - 30  # noise not deciphered
    assert luacount.deciphered(wire[:40], len(wire)) == 32  # what has arrived so far
    tcp = protocol.encode_tcp(msg)
    assert luacount.stream_deciphered(tcp + tcp) == 2 * (len(wire) - 38)
    # a frame whose length prefix is below a message's size is not deciphered at all
    assert luacount.stream_deciphered(b"\x05\x00" + bytes(5) + tcp) == 0


@pytest.mark.parametrize("runtime", ["lua54", "luajit"])
def test_lua_instructions_are_counted_on_a_tiny_input(tiny, runtime):
    p = bench_arms.Pack.load(ROOT / "rules", ROOT / "lua")
    version = V8 if runtime == "lua54" else V7
    sels = rulemodel.selectors(p.decoder_lines(version))
    flood = Path(tiny["flood"].path)
    exact = luacount.count_input(flood, sels, p.scripts(version), runtime, 300, every=1)
    fast = luacount.count_input(flood, sels, p.scripts(version), runtime, 300, every=100)
    # every flood datagram is a candidate and, a new flow each, is decoded
    assert exact.candidates == exact.invocations == 300 and exact.truncated
    assert 200 < exact.per_call("instructions") < 100_000
    assert exact.per_call("deciphered") >= 2  # at least the flags of each datagram
    assert fast.instructions == pytest.approx(exact.instructions, rel=0.01)
    assert fast.deciphered == exact.deciphered and fast.invocations == exact.invocations
    mix = luacount.count_input(Path(tiny["mix"].path), sels, p.scripts(version), runtime,
                               10**6, every=100)
    assert not mix.truncated and 0 < mix.invocations <= mix.candidates
    assert mix.candidates == bench_arms.predict_invocations(p, tiny["mix"], version)


def test_worst_case_search_finds_a_costlier_call(monkeypatch):
    p = bench_arms.Pack.load(ROOT / "rules", ROOT / "lua")
    monkeypatch.setattr(worstcase, "CASES", [c for c in worstcase.CASES
                                            if c.name in ("udp-mtu-data", "tcp-mss-minimal")])
    sels = rulemodel.selectors(p.decoder_lines(V8))
    script = next(iter(p.scripts(V8).values()))
    sids = {"udp": next(s.sid for s in sels if "udp/c2s" in s.roles),
            "tcp": next(s.sid for s in sels if "tcp/c2s" in s.roles)}
    worst = {w.case: w for w in worstcase.worst_cases(script, "lua54", sids, points=3)}
    udp = worst["udp-mtu-data"]
    assert udp.data_len > 0 and udp.deciphered > udp.data_len
    plain = luacount.Counted(script, "lua54", sids["udp"]).call(
        sec=worstcase.ROLLOVER_SEC, **worstcase._udp_call(worstcase._pad(worstcase.message(None),
                                                                     1472))[0])
    assert udp.instructions > plain > 0  # a data block costs more than the fixed blocks
    assert worst["tcp-mss-minimal"].instructions > udp.instructions / 2


def _section(report: str, engine: str, title: str = "Suricata") -> str:
    section = re.search(rf"^## {engine}: {title} (\S+)\n\n(.*?)(?=^## |\Z)", report, re.M | re.S)
    assert section, f"no section for {engine}"
    return section.group(2)


def _parse(table: str) -> dict[str, dict[str, str]]:
    lines = table.strip().splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(head, cells, strict=True))
    return rows


def _table(report: str, engine: str, index: int = 0, title: str = "Suricata"
           ) -> dict[str, dict[str, str]]:
    tables = [t for t in _section(report, engine, title).split("\n\n") if t.startswith("|")]
    return _parse(tables[index])


def _num(text: str) -> float:
    return float(text.split()[0].rstrip(";").replace(",", "").lstrip("~±").rstrip("%"))


def test_small_bench_writes_a_report(request, tmp_path, capsys):
    engines = _engines(request.config)
    if not engines:
        pytest.skip("no Suricata engine installed (make engines)")
    out = tmp_path / "RESULTS.md"
    argv = ["--small", "--out", str(out), "--cache", str(tmp_path / "cache")]
    for e in engines:
        argv += ["--engine", e.name]
    assert cli.main(argv) == 0
    report = out.read_text()
    assert report in capsys.readouterr().out  # printed as written
    assert "## Budgets" in report and "Machine:" in report and "**Noise floor**" in report
    pack = bench_arms.Pack.load(ROOT / "rules", ROOT / "lua")
    flood_packets = int(
        re.search(r"\| flood \(.*?\) \| ([\d,]+) \|", report).group(1).replace(",", "")
    )
    for eng in engines:
        rows = _table(report, eng.name)
        assert set(rows) == {"mix", "flood", "tcp"}
        for name, row in rows.items():
            for col in ("CPU s none", "CPU s none-b", "CPU s pack"):
                fastest, median = (float(x) for x in row[col].split(" / "))
                assert 0 < fastest <= median < 120, (eng.name, name, col, row[col])
            aa = row["A/A none-b/none: fastest; median (range)"]
            assert 0.2 < _num(aa) < 5 and re.fullmatch(r"[\d.]+; [\d.]+ \([\d.]+-[\d.]+\)", aa)
            assert row["noise floor"].startswith("±") and 0 <= _num(row["noise floor"]) < 500
            assert 0.2 < _num(row["CPU pack/none: fastest; median (range)"]) < 100
            bundled = row["CPU bundled+pack/bundled: fastest; median (range)"]
            assert (bundled != "-") == (name in bench_arms.BUNDLED_INPUTS)
            if name in bench_arms.BUNDLED_INPUTS:
                assert 0.2 < _num(bundled) < 100 and _num(row["CPU s bundled"]) > 0
        mem = _table(report, eng.name, 1)
        for name, row in mem.items():
            sizes = [float(x) for x in row["peak RSS MB none / pack / bundled / bundled+pack"]
                     .split(" / ")]
            assert len(sizes) == (4 if name in bench_arms.BUNDLED_INPUTS else 2)
            assert all(10 < x < 4000 for x in sizes), (eng.name, name, sizes)
        # every flood datagram goes to an allowed port: the decoder runs on each one
        assert _num(mem["flood"]["invocations"]) == flood_packets
        assert _num(mem["mix"]["invocations"]) > 0
    # measured invocations agree with the count predicted from the input and the rules
    # (at most that count when the decoder rules also test per-flow state)
    checked = 0
    for line in report.splitlines():
        m = re.match(r"\| (mix|flood|tcp) \(.*?\) \|(?:[^|]*\|){4} ([\d,/ ]+) \| ([^|]+) \|",
                     line)
        if m:
            measured = [int(x.replace(",", "")) for x in m.group(2).split("/")]
            predicted = m.group(3).split(" / ")
            assert len(measured) == len(predicted) == len(engines), line
            for got, want in zip(measured, predicted, strict=True):
                bound = want.startswith("≤ ")
                want = int(want.removeprefix("≤ ").replace(",", ""))
                assert (got <= want) if bound else (got == want), line
                assert bound == bench_arms.stateful(pack)
            checked += 1
    assert checked == 3
    # the deterministic counts: instructions and bytes per call for every input and engine
    counts = re.search(r"^## Deterministic counts\n\n.*?\n\n(\|.*?)\n\n", report,
                       re.M | re.S).group(1).splitlines()[2:]
    assert len(counts) == 3 * len(engines)
    for line in counts:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert 100 < _num(cells[5]) < 500_000 and _num(cells[4]) > 0, line
    worst = re.search(r"^## Worst case of one call.*?\n\n.*?\n\n(\|.*?)\n\n", report,
                      re.M | re.S).group(1).splitlines()[2:]
    assert len(worst) == len(worstcase.CASES)
    budgets = re.search(r"^## Budgets\n\n(\|.*?)\n\n", report, re.M | re.S).group(1)
    for eng in engines:
        for what in ("Lua errors", "pack rules loaded", "bundled\\+pack rules loaded"):
            row = re.search(rf"\| {eng.name} \| all \| {what}[^\n]*", budgets).group(0)
            assert row.endswith("| met |"), row
        assert re.search(rf"\| {eng.name} \| mix \| CPU time bundled\+pack/bundled", budgets)
    if any(e.major >= 8 for e in engines):
        assert "| adversarial | Lua VM instructions of one call" in budgets


# --- Snort 3 ------------------------------------------------------------------------------


def _snort_wanted(config: pytest.Config) -> bool:
    wanted = config.getoption("--engine")
    return snort.available() and (not wanted or snort.NAME in wanted)


def test_snort_arms_differ_only_by_the_rules():
    sp = snort.SnortPack.render()
    arms = sp.arm_files()
    assert list(arms) == snort.ARMS
    assert arms["none-b"] == arms["none"]  # the A/A arm: the baseline again
    (none, none_rules), (pack, pack_rules) = arms["none"], arms["pack"]
    assert none[none_rules] == "" and pack_rules == sp.rules_name and sp.rules() > 0
    assert {k: v for k, v in none.items() if k != none_rules} == {
        k: v for k, v in pack.items() if k != pack_rules}  # snort.lua, snippet, script
    assert sp.script in none and "snort.lua" in none


def test_snort_lua_problems_are_found_in_the_output():
    log = ("Loading snort3/snort.lua:\n"
           "conficker_p2p.lua:12: attempt to index a nil value\n"
           "ERROR: something\n   total rules loaded: 5\n")
    assert snort.lua_problems(log) == ["conficker_p2p.lua:12: attempt to index a nil value",
                                       "ERROR: something"]
    assert snort._stat(log, "total rules loaded") == 5 and snort._stat(log, "alerts") == 0


def test_snort_run_reports_an_injected_lua_error(request, tiny):
    """Snort exits 0 on a Lua error in the option: the bench must find it in the output."""
    if not _snort_wanted(request.config):
        pytest.skip(f"Snort 3 not installed at {snort.SNORT3} (or not selected)")
    sp = snort.SnortPack.render()
    text = sp.files[sp.script]
    assert text.count("  decode(pk)\n") == 1
    faulty = snort.SnortPack({**sp.files, sp.script: text.replace(
        "  decode(pk)\n", '  decode(pk)\n  error("injected fault")\n')}, sp.rules_name, sp.script)
    flood = Path(tiny["flood"].path)
    for pack, bad in ((sp, False), (faulty, True)):
        bench = snort.SnortBench(pack)
        try:
            s = bench.run("pack", bench.stage_input(flood))
            none = bench.run("none", bench.stage_input(flood))
        finally:
            bench.close()
        assert any("injected fault" in p for p in s.lua_problems) == bad, s.lua_problems
        assert s.rules == (sp.rules(), 0, 0) and none.rules == (0, 0, 0)
        assert none.lua_problems == [] and s.cpu > 0 and s.rss_mb > 10
        assert s.stats["analyzed"] == none.stats["analyzed"] == tiny["flood"].packets


def _snort_report() -> bench_report.Report:
    rep = _report({})
    rep.snort_version, rep.snort_pack = "3.12.2.0", snort.SnortPack.render()
    rep.infos = {n: inputs.InputInfo(n, n, "-", packets=1000) for n in ("mix", "flood")}
    rep.snort = {"mix": _cell({"none": [1.0, 1.1, 1.05], "none-b": [1.1, 1.0, 1.05],
                               "pack": [1.2, 1.3, 1.25]}),
                 "flood": _cell({"none": [1.0], "none-b": [1.0], "pack": [2.0]})}
    rep.snort_rules = (rep.snort_pack.rules(), 0, 0)
    return rep


def test_snort_section_and_budget_rows(tmp_path):
    rep = _snort_report()
    text = rep.markdown()
    rows = _table(text, snort.NAME, title="Snort")
    assert set(rows) == {"mix", "flood"}
    mix = rows["mix"]
    assert mix["A/A none-b/none: fastest; median (range)"] == "1.000; 1.000 (0.91-1.10)"
    assert mix["noise floor"] == "±10.0%"
    assert mix["CPU pack/none: fastest; median (range)"] == "1.200; 1.190 (1.18-1.20)"
    assert mix["CPU s pack"] == "1.20 / 1.25"
    assert rows["flood"]["CPU pack/none: fastest; median (range)"].startswith("2.000; 2.000")
    assert "snort3 = Snort 3.12.2.0" in text and "Lua health: no `<script>.lua" in text
    assert rep.missed() == []
    rep.snort_problems = ["mix pack: conficker_p2p.lua:3: boom"]
    rep.snort_rules = (0, 0, 0)
    assert len(rep.missed()) == 2  # the Lua error and the rules that did not load
    replay.save_run(rep, tmp_path / "run.json")
    assert replay.load_run(tmp_path / "run.json").markdown() == rep.markdown()


def test_small_bench_snort3(request, tmp_path, capsys):
    if not _snort_wanted(request.config):
        pytest.skip(f"Snort 3 not installed at {snort.SNORT3} (or not selected)")
    out = tmp_path / "RESULTS.md"
    argv = ["--small", "--out", str(out), "--cache", str(tmp_path / "cache"),
            "--engine", snort.NAME]
    assert cli.main(argv) == 0
    report = out.read_text()
    assert report in capsys.readouterr().out
    rows = _table(report, snort.NAME, title="Snort")
    assert set(rows) == {"mix", "flood", "tcp"}
    for name, row in rows.items():
        for col in ("CPU s none", "CPU s none-b", "CPU s pack"):
            fastest, median = (float(x) for x in row[col].split(" / "))
            assert 0 < fastest <= median < 120, (name, col, row[col])
        aa = row["A/A none-b/none: fastest; median (range)"]
        assert 0.2 < _num(aa) < 5 and re.fullmatch(r"[\d.]+; [\d.]+ \([\d.]+-[\d.]+\)", aa)
        assert row["noise floor"].startswith("±") and 0 <= _num(row["noise floor"]) < 500
        assert 0.2 < _num(row["CPU pack/none: fastest; median (range)"]) < 100
        sizes = [float(x) for x in row["peak RSS MB none / pack"].split(" / ")]
        assert all(10 < x < 4000 for x in sizes), (name, sizes)
    assert _num(rows["mix"]["alerts pack"]) > 0  # the mix's infected hosts
    budgets = re.search(r"^## Budgets\n\n(\|.*?)\n\n", report, re.M | re.S).group(1)
    for what in ("Lua errors", "pack rules loaded"):
        row = re.search(rf"\| {snort.NAME} \| all \| {what}[^\n]*", budgets).group(0)
        assert row.endswith("| met |"), row
