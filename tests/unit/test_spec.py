"""Spec loading: the shipped spec is valid; bad input names the file and field, exits 2
and writes nothing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from generator import cli, spec

RAW = yaml.safe_load(spec.DEFAULT_SPEC.read_text())


def test_shipped_spec_loads():
    s = spec.load()
    names = [sig.name for sig in s.signatures]
    assert names == [
        "Conficker_P2P_Detected",
        "Conficker_P2P_Data_Transfer",
        "Conficker_P2P_Protection",
        "Conficker_P2P_Scan",
    ]
    assert s.defaults.report_interval == 300 and s.defaults.block_tcp is False
    assert (s.defaults.scan_count, s.defaults.scan_seconds) == (10, 3600)
    assert s.protocol.min_message == 14
    # every engine has its own decoder rules, the handshake ones included
    assert [e.name for e in s.decoder.engines] == ["suricata7", "suricata8"]
    for e in s.decoder.engines:
        mine = s.decoder.rules_of(e)
        assert [(d.direction, d.syn) for d in mine if d.syn] == [
            ("to_server", True),
            ("to_client", True),
        ]
    sids = [d.sid_offset for d in s.decoder.rules]
    assert len(set(sids)) == len(sids)


def test_protocol_section_agrees_with_reference_codec():
    """The decoder is rendered from the spec; the codec is written from PROTOCOL.md."""
    from generator import codec as P

    proto = spec.load().protocol
    assert proto.port_blacklist == P.PORT_BLACKLIST
    assert proto.key_size == P.KEY_SIZE and proto.checksum_size == P.CHECKSUM_SIZE
    assert proto.min_message == P.MIN_MESSAGE
    flags = {b.name: b.flag for b in proto.blocks}
    assert flags == {
        "peer": P.FLAG_PEER,
        "unknown0": P.FLAG_UNKNOWN0,
        "unknown1": P.FLAG_UNKNOWN1,
        "data": P.FLAG_DATA,
        "sysinfo": P.FLAG_SYSINFO,
    }
    assert {b.name: b.size for b in proto.blocks}["sysinfo"] == P.SYSINFO_SIZE
    assert (proto.week_offset, proto.week_seconds) == (P.EPOCH_OFFSET, P.WEEK_SECONDS)
    assert proto.port_multiplier == 0x015A4E35  # PROTOCOL.md 1, as codec.ports() uses it
    assert all(proto.blacklisted(p) == P.is_blacklisted(p) for p in range(0x10000))
    allowed = {p for a, b in proto.listener_ports() for p in range(a, b + 1)}
    assert allowed == {p for p in range(0x10000) if not P.is_blacklisted(p)}


def mutate(change) -> dict:
    data = copy.deepcopy(RAW)
    change(data)
    return data


def _set(path: list, value):
    def change(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


BAD = {
    "unknown key": (
        _set(["parameters", "report_intervall"], 5),
        "parameters.report_intervall",
        "unknown key",
    ),
    "wrong type": (
        _set(["parameters", "report_interval"], "5m"),
        "parameters.report_interval",
        "expected an integer",
    ),
    "bool for int": (
        _set(["signatures", 0, "priority"], True),
        "signatures[0].priority",
        "expected an integer",
    ),
    "negative interval": (
        _set(["parameters", "report_interval"], -1),
        "parameters.report_interval",
        "positive",
    ),
    "unknown action": (
        _set(["signatures", 0, "rules", 0, "action"], "block"),
        "signatures[0].rules[0].action",
        "expected one of alert, drop",
    ),
    "duplicate sid": (
        _set(["signatures", 1, "rules", 0, "sid_offset"], 1),
        "signatures[1].rules[0].sid_offset",
        "duplicate sid offset 1",
    ),
    "reserved sid (ET)": (
        _set(["parameters", "sid_base"], 2_010_000),
        "sid_offset",
        "inside 2000000-2999999",
    ),
    "reserved sid (Talos)": (
        _set(["parameters", "sid_base"], 1000),
        "sid_offset",
        "inside 1-999999",
    ),
    "missing field": (lambda d: d["signatures"][0].pop("msg"), "signatures[0].msg", "missing"),
    "bad flag": (
        _set(["protocol", "blocks", 0, "flag"], 3),
        "protocol.blocks[0].flag",
        "single bit",
    ),
    "short blacklist": (
        _set(["protocol", "port_blacklist"], [0] * 63),
        "protocol.port_blacklist",
        "64 u32 words",
    ),
    "quote in msg": (_set(["signatures", 0, "msg"], 'a "b"'), "signatures[0].msg", "must not"),
    "zero scan count": (
        _set(["parameters", "scan_count"], 0),
        "parameters.scan_count",
        "positive number of attempts",
    ),
    "seen flags without tcp": (
        _set(["protocol", "seen_flags"], {"udp": 0x8000}),
        "protocol.seen_flags.tcp",
        "missing",
    ),
    "syn on udp": (
        _set(["decoder", "rules", 0, "syn"], True),
        "decoder.rules[0].syn",
        "only a tcp rule sees the handshake",
    ),
    "ip rule outside the scan": (
        _set(["signatures", 0, "rules", 0, "transport"], "ip"),
        "signatures[0].rules[0]",
        "matches: scan",
    ),
    "scan on tcp": (
        _set(["signatures", 3, "rules", 0, "transport"], "tcp"),
        "signatures[3].rules[0]",
        "matches: scan",
    ),
    "snort rules file loaded by suricata-update": (
        _set(["snort3", "rules_file"], "conficker-p2p-snort3.rules"),
        "snort3.rules_file",
        "must not end in .rules",
    ),
    "snort option name": (
        _set(["snort3", "option"], "Conficker-P2P"),
        "snort3.option",
        "expected a Snort option name",
    ),
    "snort flows": (_set(["snort3", "flows"], 0), "snort3.flows", "positive number"),
    "unknown transport": (
        _set(["signatures", 0, "rules", 0, "transport"], "sctp"),
        "signatures[0].rules[0].transport",
        "expected one of udp, tcp, ip",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_spec_is_rejected_with_file_and_field(tmp_path, capsys, case):
    change, field, problem = BAD[case]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(mutate(change)))
    with pytest.raises(spec.SpecError) as err:
        spec.load(bad)
    assert err.value.source == str(bad) and field in err.value.where and problem in str(err.value)

    out = tmp_path / "out"
    assert cli.main(["render", "--spec", str(bad), "--out", str(out)]) == 2
    message = capsys.readouterr().err
    assert str(bad) in message and field in message
    assert not out.exists() or not any(out.iterdir()), "nothing written"


def test_not_yaml_and_missing_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("pack: [unclosed\n")
    with pytest.raises(spec.SpecError, match=r"broken.yaml: line \d+: not valid YAML"):
        spec.load(broken)
    with pytest.raises(spec.SpecError, match="cannot read"):
        spec.load(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--report-interval", "0"], "report_interval"),
        (["--sid-base", "2000000"], "inside 2000000-2999999"),
        (["--src-net", "any;"], "src_net"),
        (["--scan-count", "0"], "scan_count"),
        (["--scan-seconds", "-1"], "scan_seconds"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(tmp_path, capsys, args, problem):
    out = tmp_path / "out"
    assert cli.main(["render", "--out", str(out), *args]) == 2
    assert problem in capsys.readouterr().err
    assert not out.exists()


def test_failed_render_keeps_previous_output(tmp_path):
    out = tmp_path / "out"
    assert cli.main(["render", "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert cli.main(["render", "--out", str(out), "--report-interval", "-3"]) == 2
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert Path(out, "rules").is_dir()
