"""Engine cases (tests/engine/cases.yaml) run on every engine the harness has: Suricata 7
and 8 (engines.py) and Snort 3 (snort_engine.py), one runner for all.

Each case names a pcap, the mode (ids, or ips: --simulate-ips, Snort's -Q with the dump
DAQ), the options the pack is rendered with, and what the engine must log: alerts per
signature rule (exactly; every other rule of the pack must stay silent), blocked packets
(Suricata's ips.blocked; the packets missing from Snort's pass.pcap), and the decoded
facts carried by Suricata's alerts. No case may leave a Lua error behind."""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import snort_engine
import yaml
from engines import ENGINES, ROOT, Engine
from scapy.all import rdpcap
from snort_engine import Snort3

from generator import spec
from generator.targets import common, pack, snort3
from generator.traffic import pcaps

SPEC = spec.load()
NAMES = common.Names.of(SPEC)
CASES = yaml.safe_load((Path(__file__).parent / "cases.yaml").read_text())
PCAPS = ROOT / "pcaps"


@functools.cache
def rendered(**options) -> Path:
    """The pack rendered with these options, in a folder kept for the session."""
    opts = SPEC.options(**options)
    out = Path(tempfile.mkdtemp(prefix="cfp2p-render-"))
    common.write_tree(pack.render(SPEC, opts), out)
    return out


def ruleset(**options) -> tuple[Path, Path]:
    """The Suricata rules file and the folder of its Lua scripts."""
    out = rendered(**options)
    return out / "rules" / SPEC.pack.rules_file, out / "lua"


def sids(options: dict) -> dict[str, int]:
    """'Signature/transport' -> sid, for the options a case renders with."""
    opts = SPEC.options(**options)
    return {
        f"{s.name}/{r.transport}": spec.rule_sid(opts, r) for s in SPEC.signatures for r in s.rules
    }


SNORT = Snort3()
SNORT_STOCK = Snort3(stock=True)  # Snort's own snort.lua with the pack's snippet
SNORT_RULES = {f"{s.name}/{r.transport}" for s, r in snort3.snort3_rules(SPEC)}


@dataclass
class Outcome:
    """What an engine made of a pcap, in the cases' terms: per alert its rule's name,
    action (blocked or allowed), source address and decoded facts (flowvars, Suricata);
    the packets blocked, the packets read (None: not reported), the Lua problems."""

    alerts: list[tuple[str, str, str, dict]]
    blocked: int
    read: int | None
    problems: list[str]


def outcome(engine, pcap: Path, options: dict, ips: bool) -> Outcome:
    by_sid = {v: k for k, v in sids(options).items()}
    if isinstance(engine, Snort3):
        run = engine.read_pcap(pcap, rendered(**options) / "snort3", SPEC.snort3.rules_file, ips)
        alerts = []
        for a in run.alerts:
            sid = int(a["rule"].split(":")[1])
            action = "blocked" if a["action"] in snort_engine.BLOCKING else "allowed"
            alerts.append((by_sid.get(sid, str(sid)), action, a["src_ap"].rsplit(":", 1)[0], {}))
            if action == "blocked":
                assert a["pkt_num"] in run.dropped, f"alert at packet {a['pkt_num']} let it through"
        return Outcome(alerts, len(run.dropped), None, run.lua_problems())
    rules, lua = ruleset(**options)
    run = engine.read_pcap(pcap, rules, lua, ips=ips)
    alerts = []
    for a in run.alerts:
        meta = a.get("metadata", {})
        flowvars = {k: v for d in meta.get("flowvars", []) for k, v in d.items()}
        sid = a["alert"]["signature_id"]
        alerts.append((by_sid.get(sid, str(sid)), a["alert"]["action"], a["src_ip"], flowvars))
    return Outcome(
        alerts,
        run.stats.get("ips", {}).get("blocked", 0),
        run.stats.get("decoder", {}).get("pkts"),
        run.lua_problems(engine),
    )


def expected(engine, case: dict) -> dict:
    """A case's expectations on this engine: its `expect`, with the keys of the case's
    entry for the engine (e.g. `snort3:`) in their place. On Snort 3, the rules it does
    not render (README: engine matrix) are not expected to alert."""
    expect = {**case["expect"], **case.get(engine.name, {})}
    if isinstance(engine, Snort3):
        for key in ("alerts", "actions"):
            expect[key] = {k: v for k, v in expect.get(key, {}).items() if k in SNORT_RULES}
    return expect


def check_engine(request, eng):
    wanted = request.config.getoption("--engine")
    if wanted and eng.name not in wanted:
        pytest.skip(f"--engine {','.join(wanted)} given")
    if isinstance(eng, Snort3) and not eng.available():
        message = snort_engine.HOW_TO.format(path=eng.binary)
        if os.environ.get("CFP2P_REQUIRE_SNORT3"):
            pytest.fail(message)
        pytest.skip(message)
    if not eng.available():
        pytest.fail(f"{eng.name} is not installed: run `make engines`")
    return eng


@pytest.fixture(params=[*ENGINES, SNORT, SNORT_STOCK], ids=lambda e: getattr(e, "id", e.name))
def engine(request):
    return check_engine(request, request.param)


@pytest.fixture(params=ENGINES, ids=lambda e: e.name)
def suricata(request) -> Engine:
    return check_engine(request, request.param)


def test_ruleset_loads(suricata):
    engine = suricata
    rules, lua = ruleset()
    status, log = engine.test_config(rules, lua)
    assert status == 0, log
    loaded = re.search(r"(\d+) rules successfully loaded, (\d+) rules failed", log)
    assert loaded, log
    mine = [d for d in SPEC.decoder.rules if d.engine.name == engine.name]
    assert mine, f"no decoder rules for {engine.name}"
    signature_rules = sum(len(SPEC.sides(r)) for sig in SPEC.signatures for r in sig.rules)
    assert int(loaded[2]) == 0 and int(loaded[1]) == signature_rules + len(mine)
    # the other engine's decoder rules are skipped by `requires:`, without an error
    skipped = re.search(r"(\d+) rules? (?:was|were) skipped", log)
    assert skipped and int(skipped[1]) == len(SPEC.decoder.rules) - len(mine), log


@pytest.mark.parametrize("snort", [SNORT, SNORT_STOCK], ids=lambda e: e.id)
def test_snort3_ruleset_loads(request, snort):
    check_engine(request, snort)
    status, log = snort.test_config(rendered() / "snort3", SPEC.snort3.rules_file)
    assert status == 0, log
    assert "with 0 warnings" in log, log
    # the pack's rules by transport (Snort's own snort.lua adds rules of its own: file_id),
    # each filed by its ports (the snippet's port-group limit), none tried on every packet:
    # the rule to the server by its destination port, the one from it by its source port
    table = re.search(r"port rule counts\s+tcp\s+udp\s+icmp\s+ip\n(.*?)\n-{10}", log, re.S)
    assert table, log
    rows = {r.split()[0]: [int(x) for x in r.split()[1:3]] for r in table[1].splitlines()}
    mine = Counter(name.split("/")[1] for name in SNORT_RULES)
    pair = [mine["tcp"], mine["udp"]]
    assert rows.get("any", [0, 0]) == [0, 0] and rows["src"] == rows["dst"] == pair, log


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(engine, case):
    options = case.get("options", {})
    got = outcome(engine, PCAPS / case["pcap"], options, case["mode"] == "ips")
    expect = expected(engine, case)

    assert dict(Counter(a[0] for a in got.alerts)) == expect.get("alerts", {}), "alerts per rule"
    assert got.blocked == expect.get("blocked", 0), "packets blocked"
    for name, action in expect.get("actions", {}).items():
        assert {a[1] for a in got.alerts if a[0] == name} == {action}, f"action of {name}"
    if not isinstance(engine, Snort3):  # Snort 3 rules carry no flowvars
        for name, facts in expect.get("facts", {}).items():
            for alert in (a for a in got.alerts if a[0] == name):
                flowvars = alert[3]
                found = {k: flowvars.get(getattr(NAMES, k)) for k in facts}
                assert found == facts, f"decoded facts of {name}"

    assert got.problems == []
    if got.read is not None:
        assert got.read == len(rdpcap(str(PCAPS / case["pcap"]))), "every packet of the pcap read"


# Its one probe is past the decoder's per-call budget: not decoded, so not counted
# (a known limit; the udp-large-fragmented case expects no alert at all).
BEYOND_BUDGET = {"udp-large-fragmented"}


@pytest.mark.parametrize(
    "scenario",
    [s for s in pcaps.SCENARIOS if s.attempts and s.name not in BEYOND_BUDGET],
    ids=lambda s: s.name,
)
def test_scan_count(suricata, scenario):
    """Conficker_P2P_Scan counts exactly each source's attempts on computed ports: with
    scan_count at the largest count, one alert per source that made that many; with one
    more, none."""
    most = max(scenario.attempts.values())
    for scan_count, alerts in ((most, list(scenario.attempts.values()).count(most)), (most + 1, 0)):
        options = {"scan_count": scan_count}
        rules, lua = ruleset(**options)
        run = suricata.read_pcap(PCAPS / scenario.filename, rules, lua)
        sid = sids(options)["Conficker_P2P_Scan/ip"]
        got = [a["src_ip"] for a in run.alerts if a["alert"]["signature_id"] == sid]
        assert len(got) == alerts, f"Scan alerts with scan_count {scan_count}"
        assert all(scenario.attempts[ip] == most for ip in got)
        assert run.lua_problems(suricata) == []


def patched_option(tmp_path: Path, after_decode: str) -> Path:
    """A copy of the rendered snort3/ folder whose option runs `after_decode` (Lua) after
    each decode."""
    folder = tmp_path / "snort3"
    shutil.copytree(rendered() / "snort3", folder)
    script = folder / SPEC.snort3.lua_script
    text = script.read_text()
    assert text.count("  decode(pk)\n") == 1
    script.write_text(text.replace("  decode(pk)\n", f"  decode(pk)\n  {after_decode}\n"))
    return folder


def test_snort3_lua_error_is_caught(request, tmp_path):
    """Snort prints a Lua error in the option and still exits 0: the run's output is what
    tells, and a case with an injected fault must fail."""
    check_engine(request, SNORT)
    folder = patched_option(tmp_path, 'error("injected fault")')
    run = SNORT.read_pcap(PCAPS / "udp-probe.pcap", folder, SPEC.snort3.rules_file)
    assert any("injected fault" in p for p in run.lua_problems()), run.log
    clean = SNORT.read_pcap(PCAPS / "udp-probe.pcap", rendered() / "snort3", SPEC.snort3.rules_file)
    assert clean.alerts and clean.lua_problems() == []


def test_missing_snort3_skips_with_how_to_provide_it_and_fails_under_ci(request, monkeypatch):
    nowhere = Snort3()
    nowhere.binary = Path("/nonexistent/snort")
    monkeypatch.delenv("CFP2P_REQUIRE_SNORT3", raising=False)
    with pytest.raises(pytest.skip.Exception, match="set SNORT3 to a Snort 3 binary"):
        check_engine(request, nowhere)
    monkeypatch.setenv("CFP2P_REQUIRE_SNORT3", "1")
    with pytest.raises(pytest.fail.Exception, match="/nonexistent/snort"):
        check_engine(request, nowhere)


def test_snort3_decodes_a_datagram_once_for_every_udp_rule(request, tmp_path):
    """The UDP rules share the decoder's option node (kind 'any'): with all of them
    loaded, the decoder runs once per datagram that reaches it; each TCP kind has a Lua
    state of its own."""
    check_engine(request, SNORT)
    folder = patched_option(tmp_path, 'io.stderr:write("DECODED\\n")')
    for pcap, expect in (("udp-reply-sysinfo.pcap", 2), ("udp-noise.pcap", None)):
        run = SNORT.read_pcap(PCAPS / pcap, folder, SPEC.snort3.rules_file)
        datagrams = [p for p in rdpcap(str(PCAPS / pcap)) if p.haslayer("UDP")]
        candidates = sum(
            1 for p in datagrams if len(bytes(p["UDP"].payload)) >= SPEC.protocol.min_message
        )
        assert run.log.count("DECODED") == (expect or candidates), run.log[-500:]
