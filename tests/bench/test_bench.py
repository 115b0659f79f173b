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

from bench import inputs, run  # noqa: E402
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

    def pack(*lines: str) -> run.Pack:
        return run.Pack("x.rules", "\n".join(lines) + "\n", {"x.lua": ""})

    any_port = "pass udp any any -> any any (flow:to_server; dsize:>=14; lua:x.lua; sid:1;)"
    assert run.predict_invocations(pack(any_port), flood) == flood.packets
    listed = (
        f"pass udp any any -> any [{some[0]},{some[1]}:{some[2]}] "
        "(flow:to_server; lua:x.lua; sid:1;)"
    )
    want = sum(flood.roles["udp/c2s"][p] for p in some)
    assert run.predict_invocations(pack(listed), flood) == want
    to_client = "pass udp any any -> any any (flow:to_client; lua:x.lua; sid:2;)"
    assert run.predict_invocations(pack(to_client), flood) == 0
    negated = "pass udp any any -> any [!53] (flow:to_server; lua:x.lua; sid:3;)"
    assert run.predict_invocations(pack(negated), flood) is None


def test_instrumented_arms_keep_the_decoder_rules():
    p = run.Pack.load(ROOT / "rules", ROOT / "lua")
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


def _table(report: str, engine: str) -> dict[str, dict[str, str]]:
    section = re.search(rf"^## {engine}: Suricata (\S+)\n\n(.*?)\n\n", report, re.M | re.S)
    assert section, f"no table for {engine}"
    lines = section.group(2).splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(head, cells, strict=True))
    return rows


def _num(text: str) -> float:
    return float(text.split()[0].replace(",", ""))


def test_small_bench_writes_a_report(request, tmp_path, capsys):
    engines = _engines(request.config)
    if not engines:
        pytest.skip("no Suricata engine installed (make engines)")
    out = tmp_path / "RESULTS.md"
    argv = ["--small", "--out", str(out), "--cache", str(tmp_path / "cache")]
    for e in engines:
        argv += ["--engine", e.name]
    assert run.main(argv) == 0
    report = out.read_text()
    assert report in capsys.readouterr().out  # printed as written
    assert "## Budgets" in report and "Machine:" in report
    for eng in engines:
        rows = _table(report, eng.name)
        assert set(rows) == {"mix", "flood", "tcp"}
        for name, row in rows.items():
            for col in ("CPU none s", "CPU pack s", "wall none s", "wall pack s"):
                assert 0 < _num(row[col]) < 120, (eng.name, name, col, row[col])
            for col in ("peak RSS none MB", "peak RSS pack MB"):
                assert 10 < _num(row[col]) < 4000, (eng.name, name, col, row[col])
            assert 0.2 < _num(row["CPU pack/none (range; fastest)"]) < 100
        # every flood datagram goes to an allowed port: the decoder runs on each one
        flood_packets = int(
            re.search(r"\| flood \(.*?\) \| ([\d,]+) \|", report).group(1).replace(",", "")
        )
        assert _num(rows["flood"]["invocations"]) == flood_packets
        assert _num(rows["mix"]["invocations"]) > 0
    # measured invocations agree with the count predicted from the input and the rules
    # (at most that count when the decoder rules also test per-flow state)
    checked = 0
    for line in report.splitlines():
        m = re.match(r"\| (mix|flood|tcp) \(.*?\) \|(?:[^|]*\|){4} ([\d,/ ]+) \| (≤ )?([\d,]+) \|",
                     line)
        if m:
            measured = {int(x.replace(",", "")) for x in m.group(2).split("/")}
            predicted = int(m.group(4).replace(",", ""))
            assert (max(measured) <= predicted) if m.group(3) else (measured == {predicted}), line
            assert (m.group(3) is not None) == run.stateful(run.Pack.load(ROOT / "rules",
                                                                          ROOT / "lua"))
            checked += 1
    assert checked == 3
    for eng in engines:
        row = re.search(rf"\| {eng.name} \| all \| Lua errors[^\n]*", report).group(0)
        assert row.endswith("| met |"), row
