"""`cfp2p decode`: capture formats, stream and fragment reassembly, summary, errors, bounds.

Expected counts come from the scenarios' own `expect` (and `attempts` where the scenario
declares it) in generator/traffic/; captures in other formats are written here from the
committed pcaps (read back with scapy's RawPcapReader) by small writers of this file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pathlib
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import RawPcapReader

from generator import codec, spec
from generator.analysis import capture, report, triage
from generator.cli import main
from generator.codec import DecodeError, Message, decode, encode, encode_tcp
from generator.traffic import pcaps, positive

PCAPS = pathlib.Path(__file__).resolve().parents[2] / "pcaps"
SCENARIOS = {s.name: s for s in pcaps.SCENARIOS}
NAMES = list(SCENARIOS)
ROLLOVER = int(datetime(2026, 11, 30, tzinfo=UTC).timestamp())  # Monday, week 2968 -> 2969


@pytest.fixture(scope="module")
def pcap_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The committed pcaps; a scenario whose pcap is not committed yet is generated."""
    if all((PCAPS / s.filename).exists() for s in pcaps.SCENARIOS):
        return PCAPS
    out = tmp_path_factory.mktemp("pcaps")
    pcaps.write_pcaps(out)
    return out


# --- capture writers (independent of generator.analysis.capture) -----------------------------

Frames = list[tuple[int, bytes]]  # (time in ns, link-layer bytes)


def frames_of(path: pathlib.Path) -> Frames:
    return [
        (meta.sec * 1_000_000_000 + meta.usec * 1000, data)
        for data, meta in RawPcapReader(str(path))
    ]


def write_pcap(
    path: pathlib.Path,
    frames: Iterable[tuple[int, bytes]],
    *,
    linktype: int = 1,
    big_endian: bool = False,
    nanoseconds: bool = False,
) -> pathlib.Path:
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for ts_ns, data in frames:
        sec, ns = divmod(ts_ns, 1_000_000_000)
        out.append(
            struct.pack(
                order + "IIII", sec, ns if nanoseconds else ns // 1000, len(data), len(data)
            )
        )
        out.append(data)
    path.write_bytes(b"".join(out))
    return path


def block(order: str, block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    total = len(body) + 12
    return struct.pack(order + "II", block_type, total) + body + struct.pack(order + "I", total)


def shb(order: str) -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, linktype: int, tsresol: int | None = None, tsoffset: int | None = None):
    options = b""
    if tsresol is not None:
        options += struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
    if tsoffset is not None:
        options += struct.pack(order + "HHq", 14, 8, tsoffset)
    if options:
        options += struct.pack(order + "HH", 0, 0)
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, 0) + options)


def epb(order: str, iface: int, ticks: int, data: bytes) -> bytes:
    head = struct.pack(
        order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return block(order, 6, head + data)


def spb(order: str, data: bytes) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(data)) + data)


def strip_ethernet(data: bytes) -> bytes:
    assert data[12:14] == b"\x08\x00"
    return data[14:]


def sll(data: bytes) -> bytes:
    """Linux cooked header (16 bytes) instead of Ethernet's."""
    return struct.pack("!HHH8sH", 0, 1, 6, data[6:12] + b"\0\0", 0x0800) + data[14:]


def sll2(data: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", 0x0800, 0, 3, 1, 0, 6, data[6:12] + b"\0\0") + data[14:]


def vlan(data: bytes) -> bytes:
    return data[:12] + b"\x81\x00\x00\x07" + data[12:]


# --- running the triage ----------------------------------------------------------------------


def decode_file(path: pathlib.Path, limits: triage.Limits | None = None):
    run = triage.Triage(limits)
    records = [r.to_json() for r in run.run(path)]
    return records, run.summary(), run


def cli_json(capsys: pytest.CaptureFixture[str], path: pathlib.Path) -> tuple[int, list, str]:
    rc = main(["decode", str(path), "--json"])
    out, err = capsys.readouterr()
    return rc, [json.loads(line) for line in out.splitlines()], err


def counts(records: list[dict]) -> dict[str, int]:
    out = dict.fromkeys(pcaps.EXPECT_KEYS, 0)
    for r in records:
        out[f"{r['proto']}_{r['kind']}"] += 1
    return out


# --- the committed pcaps ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_scenario_counts(pcap_dir: pathlib.Path, name: str) -> None:
    scenario = SCENARIOS[name]
    records, summary, _ = decode_file(pcap_dir / scenario.filename)
    assert summary["messages"] == scenario.expect
    assert counts(records) == scenario.expect
    # datagrams + connections to computed ports, as the scan sees them (per source)
    per_source = {r["host"]: r["udp"] + r["tcp"] for r in summary["scanners"]}
    attempts = getattr(scenario, "attempts", None)
    if isinstance(attempts, dict):
        assert per_source == attempts
    elif isinstance(attempts, int):
        assert sum(per_source.values()) == attempts
    if name == "p2p-other-ports":
        assert summary["port_mismatch"] == len(records) == 2
        assert all(r["listener"] is None and not r["port_match"] for r in records)
    elif name.startswith(("udp-", "tcp-")):  # PROTOCOL.md: only real listener ports
        assert summary["port_mismatch"] == 0
        assert all(r["port_match"] for r in records)


@pytest.mark.parametrize("name", NAMES)
def test_cli_json_lines(capsys: pytest.CaptureFixture[str], pcap_dir: pathlib.Path, name: str):
    rc, objs, err = cli_json(capsys, pcap_dir / f"{name}.pcap")
    assert rc == 0 and err == ""  # no progress bar: stderr is not a terminal
    *messages, summary = objs
    assert summary["type"] == "summary" and all(m["type"] == "message" for m in messages)
    assert summary["messages"] == SCENARIOS[name].expect == counts(messages)
    for m in messages:
        assert set(m) >= {"time", "src", "dst", "proto", "flags", "kind", "port_match", "noise"}
        assert m["time"].endswith("Z") and m["flags"].startswith("0x") and len(m["flags"]) == 6
        assert (m["kind"] == "data") == bool(int(m["flags"], 16) & codec.FLAG_DATA)
        assert m["listener"] in (m["src"], m["dst"], None)


def test_udp_reply_details(pcap_dir: pathlib.Path) -> None:
    """The probe goes to the listener's port, the reply comes back from it (generator/traffic/)."""
    records, summary, _ = decode_file(pcap_dir / "udp-reply-sysinfo.pcap")
    probe, reply = records
    assert probe["time"] == "2026-11-26T12:00:00.000000Z"  # BASE_TS
    assert reply["time"] == "2026-11-26T12:00:00.045000Z"  # gap=0.045
    assert probe["flags"] == "0x8001" and probe["noise"] == 0 and probe["length"] == 14
    assert probe["listener"] == probe["dst"] == reply["src"] == reply["listener"]
    assert reply["dst"] == probe["src"] and reply["kind"] == "control"
    assert int(reply["flags"], 16) & 0x0088 == 0x0088
    port = int(probe["dst"].split(":")[1])
    assert port in codec.ports(pcaps.LISTENER, 2968)[1::2]
    assert summary["scanners"] == [
        {"host": pcaps.PROBER, "destinations": 1, "udp": 1, "tcp": 0, "messages": 1}
    ]
    assert summary["listeners"] == [
        {"host": pcaps.LISTENER, "peers": 1, "udp": 1, "tcp": 0, "messages": 1}
    ]


def test_data_transfer_summary(pcap_dir: pathlib.Path) -> None:
    records, summary, _ = decode_file(pcap_dir / "tcp-data-transfer.pcap")
    assert [r["data_bytes"] for r in records] == [500, 500]  # pcaps.py: two 500-byte blocks
    assert summary["transfers"] == [
        {"proto": "tcp", "src": pcaps.PROBER2, "dst": pcaps.LISTENER3, "messages": 2, "bytes": 1000}
    ]
    _, summary, _ = decode_file(pcap_dir / "udp-large-fragmented.pcap")
    (transfer,) = summary["transfers"]
    assert transfer["bytes"] == 65000 - 23 and summary["ip"]["reassembled"] == 1
    assert summary["ip"]["fragments"] == 44


def test_human_output(capsys: pytest.CaptureFixture[str], pcap_dir: pathlib.Path) -> None:
    assert main(["decode", str(pcap_dir / "udp-burst.pcap")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("time (UTC)")
    rows = [line for line in lines if line.startswith("2026-11-26T")]
    assert len(rows) == 12 and all(" udp " in r and "0x8001" in r for r in rows)
    assert "12 Conficker P2P messages" in out
    host_row = next(line for line in lines if line.strip().startswith(pcaps.PROBER))
    assert host_row.split()[1:3] == ["12", "12"]  # 12 distinct destinations, 12 datagrams


def test_human_output_without_messages(capsys, pcap_dir: pathlib.Path) -> None:
    assert main(["decode", str(pcap_dir / "neg-random-udp.pcap")]) == 0
    out, _ = capsys.readouterr()
    assert not out.startswith("time") and "0 Conficker P2P messages" in out


# --- other capture formats -------------------------------------------------------------------

CONVERTED = ["udp-reply-sysinfo", "tcp-split", "udp-large-fragmented", "tcp-large-message"]


def converted_variants(src: pathlib.Path, out: pathlib.Path) -> dict[str, pathlib.Path]:
    frames = frames_of(src)
    shifted = [(ts, data) for ts, data in frames]
    paths = {
        "pcap-be-ns": write_pcap(out / "be-ns.pcap", shifted, big_endian=True, nanoseconds=True),
        "pcap-le-ns": write_pcap(out / "le-ns.pcap", shifted, nanoseconds=True),
        "pcap-be-us": write_pcap(out / "be-us.pcap", shifted, big_endian=True),
        "pcap-raw": write_pcap(
            out / "raw.pcap", [(t, strip_ethernet(d)) for t, d in frames], linktype=101
        ),
        "pcap-ipv4": write_pcap(
            out / "ipv4.pcap", [(t, strip_ethernet(d)) for t, d in frames], linktype=228
        ),
        "pcap-sll": write_pcap(out / "sll.pcap", [(t, sll(d)) for t, d in frames], linktype=113),
        "pcap-sll2": write_pcap(out / "sll2.pcap", [(t, sll2(d)) for t, d in frames], linktype=276),
        "pcap-vlan": write_pcap(out / "vlan.pcap", [(t, vlan(d)) for t, d in frames]),
        "pcap-null": write_pcap(  # BSD loopback: AF_INET (2) in the capturing host's order
            out / "null.pcap", [(t, b"\2\0\0\0" + strip_ethernet(d)) for t, d in frames], linktype=0
        ),
    }
    for order, name in (("<", "pcapng-le"), (">", "pcapng-be")):
        # two interfaces with their own link type and resolution: µs Ethernet, ns raw IPv4
        blocks = [shb(order), idb(order, 1), idb(order, 101, tsresol=9)]
        for i, (ts, data) in enumerate(frames):
            if i % 2:
                blocks.append(epb(order, 1, ts, strip_ethernet(data)))
            else:
                blocks.append(epb(order, 0, ts // 1000, data))
        paths[name] = out / f"{name}.pcapng"
        paths[name].write_bytes(b"".join(blocks))
    # binary resolution (2^-20 s) and a timestamp offset of BASE_TS seconds
    blocks = [shb("<"), idb("<", 1, tsresol=0x80 | 20, tsoffset=pcaps.BASE_TS)]
    for ts, data in frames:
        blocks.append(epb("<", 0, (ts - pcaps.BASE_TS * 10**9) * 2**20 // 10**9, data))
    paths["pcapng-bin-offset"] = out / "bin.pcapng"
    paths["pcapng-bin-offset"].write_bytes(b"".join(blocks))
    # two sections of opposite byte order, the packets split between them
    half = len(frames) // 2
    first = [shb("<"), idb("<", 1)] + [epb("<", 0, t // 1000, d) for t, d in frames[:half]]
    second = [shb(">"), idb(">", 1)] + [epb(">", 0, t // 1000, d) for t, d in frames[half:]]
    paths["pcapng-sections"] = out / "sections.pcapng"
    paths["pcapng-sections"].write_bytes(b"".join(first + second))
    return paths


@pytest.mark.parametrize("name", CONVERTED)
def test_converted_formats_decode_the_same(
    pcap_dir: pathlib.Path, tmp_path: pathlib.Path, name: str
) -> None:
    original, summary, _ = decode_file(pcap_dir / f"{name}.pcap")
    assert summary["messages"] == SCENARIOS[name].expect
    for variant, path in converted_variants(pcap_dir / f"{name}.pcap", tmp_path).items():
        records, summary, _ = decode_file(path)
        if variant == "pcapng-bin-offset":  # 2^-20 s ticks: same second, microseconds differ
            assert [r["time"][:19] for r in records] == [r["time"][:19] for r in original]
            strip = [{k: v for k, v in r.items() if k != "time"} for r in records]
            assert strip == [{k: v for k, v in r.items() if k != "time"} for r in original]
        else:
            assert records == original, variant
        assert summary["messages"] == SCENARIOS[name].expect, variant


def test_pcapng_simple_packet_blocks(pcap_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """SPBs carry no time: they take the previous packet's time (here the EPB before them)."""
    frames = frames_of(pcap_dir / "tcp-split.pcap")
    blocks = [shb("<"), idb("<", 1), epb("<", 0, frames[0][0] // 1000, frames[0][1])]
    blocks += [spb("<", data) for _, data in frames[1:]]
    path = tmp_path / "spb.pcapng"
    path.write_bytes(b"".join(blocks))
    records, summary, _ = decode_file(path)
    assert summary["messages"] == SCENARIOS["tcp-split"].expect
    assert {r["time"] for r in records} == {"2026-11-26T12:00:00.000000Z"}


def test_nanosecond_times(tmp_path: pathlib.Path) -> None:
    ts = pcaps.BASE_TS * 10**9 + 123_456_789
    frame = udp_frame("192.0.2.1", 40000, "203.0.113.200", WEEK_2968_UDP_B, probe())
    for path in (
        write_pcap(tmp_path / "ns.pcap", [(ts, frame)], nanoseconds=True),
        write_pcap(tmp_path / "ns-be.pcap", [(ts, frame)], nanoseconds=True, big_endian=True),
    ):
        (record,), _, _ = decode_file(path)
        assert record["time"] == "2026-11-26T12:00:00.123456Z"
    path = tmp_path / "ns.pcapng"
    path.write_bytes(shb("<") + idb("<", 1, tsresol=9) + epb("<", 0, ts, frame))
    (record,), _, _ = decode_file(path)
    assert record["time"] == "2026-11-26T12:00:00.123456Z"


def pb(order: str, iface: int, ticks: int, data: bytes) -> bytes:
    """An obsolete pcapng Packet Block (type 2): u16 interface, u16 drops, then as an EPB."""
    head = struct.pack(
        order + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)
    )
    return block(order, 2, head + data)


@pytest.mark.parametrize("order", ["<", ">"])
def test_capture_keeps_nanoseconds_exactly(tmp_path: pathlib.Path, order: str) -> None:
    """Times stay integer nanoseconds in every format and byte order (a float would not
    hold the last digits of a 2026 time)."""
    ts = pcaps.BASE_TS * 10**9 + 123_456_789
    frame = udp_frame("192.0.2.1", 40000, "203.0.113.200", WEEK_2968_UDP_B, probe())
    pcap_path = write_pcap(
        tmp_path / "ns.pcap", [(ts, frame)], nanoseconds=True, big_endian=order == ">"
    )
    ng_path = tmp_path / "ns.pcapng"
    ng_path.write_bytes(
        shb(order) + idb(order, 1, tsresol=9) + epb(order, 0, ts, frame) + pb(order, 0, ts, frame)
    )
    assert [f.ts_ns for f in capture.read(pcap_path)] == [ts]
    got = list(capture.read(ng_path))
    assert [(f.ts_ns, f.linktype, f.data) for f in got] == [(ts, 1, frame)] * 2


# --- hand-built packets ----------------------------------------------------------------------

WEEK_2968_UDP_B = 54685  # PROTOCOL.md §3: 203.0.113.200's udpB in week 2968
WEEK_2969_UDP_B = 43676  # ... and in week 2969


def probe(seed: int = 1, flags: int = 0x8001) -> bytes:
    rng = random.Random(seed)
    return encode(Message(rng.getrandbits(32), rng.getrandbits(32), flags))


def ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int = 1, frag: int = 0) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        frag,
        64,
        proto,
        0,
        bytes(map(int, src.split("."))),
        bytes(map(int, dst.split("."))),
    )
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + header + payload


def udp_frame(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    return ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def tcp_frame(
    src: str, sport: int, dst: str, dport: int, seq: int, flags: int, payload: bytes = b""
) -> bytes:
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 0x50, flags, 65535, 0, 0)
    return ipv4(src, dst, 6, header + payload)


SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


def test_week_slop_at_rollover(tmp_path: pathlib.Path) -> None:
    """A probe to next week's port counts as on-port from 15 minutes before the rollover; one to
    last week's port until 15 minutes after it (PROTOCOL.md §1, 15-minute slop)."""
    cases = [
        (ROLLOVER - 901, WEEK_2969_UDP_B, False),
        (ROLLOVER - 900, WEEK_2969_UDP_B, True),
        (ROLLOVER - 1, WEEK_2968_UDP_B, True),
        (ROLLOVER, WEEK_2969_UDP_B, True),
        (ROLLOVER + 900, WEEK_2968_UDP_B, True),
        (ROLLOVER + 901, WEEK_2968_UDP_B, False),
        (ROLLOVER + 3600, WEEK_2969_UDP_B, True),
    ]
    frames = [
        (ts * 10**9, udp_frame("192.0.2.1", 40000 + i, "203.0.113.200", port, probe(i)))
        for i, (ts, port, _) in enumerate(cases)
    ]
    records, summary, _ = decode_file(write_pcap(tmp_path / "slop.pcap", frames))
    assert [r["port_match"] for r in records] == [match for _, _, match in cases]
    assert [r["week"] for r in records] == [2968, 2968, 2968, 2969, 2969, 2969, 2969]
    assert summary["scanners"][0]["udp"] == 5


def test_ipv6_is_skipped_and_counted(tmp_path: pathlib.Path, capsys) -> None:
    v6 = Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=40000, dport=40001)
    frames = [
        (pcaps.BASE_TS * 10**9, bytes(v6 / Raw(probe(1)))),
        (pcaps.BASE_TS * 10**9, udp_frame("192.0.2.1", 40000, "203.0.113.200", 9999, probe(2))),
        (pcaps.BASE_TS * 10**9, b"\xff" * 12 + b"\x08\x06" + bytes(28)),  # ARP
    ]
    path = write_pcap(tmp_path / "v6.pcap", frames)
    records, summary, _ = decode_file(path)
    assert len(records) == 1 and records[0]["src"] == "192.0.2.1:40000"
    assert summary["skipped"]["ipv6"] == 1 and summary["skipped"]["non_ip"] == 1
    assert summary["packets"] == 3
    assert main(["decode", str(path)]) == 0
    assert "1 IPv6 packets (Conficker P2P is IPv4 only)" in capsys.readouterr().out


def test_unknown_link_type_and_snapped_packets(tmp_path: pathlib.Path) -> None:
    frame = udp_frame("192.0.2.1", 40000, "203.0.113.200", WEEK_2968_UDP_B, probe(3, 0x8003))
    t = pcaps.BASE_TS * 10**9
    _, summary, _ = decode_file(write_pcap(tmp_path / "ppp.pcap", [(t, frame)], linktype=9))
    assert summary["skipped"]["unknown_link"] == 1 and summary["packets"] == 1
    cut = [(t, frame[:40]), (t, frame)]  # the first copy lost its tail to the snapshot length
    records, summary, _ = decode_file(write_pcap(tmp_path / "snap.pcap", cut))
    assert summary["skipped"]["snapped"] == 1 and len(records) == 1


# --- TCP reassembly --------------------------------------------------------------------------


def data_segments(frames: Frames) -> list[int]:
    return [i for i, (_, d) in enumerate(frames) if len(Ether(d)[TCP].payload)]


def rebuilt(frame: bytes, seq_shift: int, payload: bytes) -> bytes:
    pkt = Ether(frame)
    pkt[TCP].seq = (pkt[TCP].seq + seq_shift) & 0xFFFFFFFF
    pkt[TCP].remove_payload()
    pkt = pkt / Raw(payload)
    del pkt[IP].len, pkt[IP].chksum, pkt[TCP].chksum
    return bytes(pkt)


@pytest.mark.parametrize("name", ["tcp-split", "tcp-session", "tcp-data-transfer"])
def test_retransmitted_segments_decode_once(
    pcap_dir: pathlib.Path, tmp_path: pathlib.Path, name: str
) -> None:
    frames = frames_of(pcap_dir / f"{name}.pcap")
    doubled: Frames = []
    for i, frame in enumerate(frames):
        doubled.append(frame)
        if i in data_segments(frames):
            doubled.append(frame)  # an exact duplicate
    _, summary, _ = decode_file(write_pcap(tmp_path / "dup.pcap", doubled))
    assert summary["messages"] == SCENARIOS[name].expect
    assert summary["tcp"]["retransmitted"] == len(data_segments(frames))


def test_overlapping_retransmission(pcap_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Between tcp-split's 1st and 2nd data segments, a segment resends the 1st's last 50 bytes
    with the 2nd's first 30: both overlaps (50 old bytes, then 30 in the 2nd) are trimmed."""
    frames = frames_of(pcap_dir / "tcp-split.pcap")
    first, second, _third = data_segments(frames)
    p1 = bytes(Ether(frames[first][1])[TCP].payload)
    p2 = bytes(Ether(frames[second][1])[TCP].payload)
    resend = rebuilt(frames[first][1], len(p1) - 50, p1[-50:] + p2[:30])
    edited = frames[:second] + [(frames[second][0], resend)] + frames[second:]
    _, summary, _ = decode_file(write_pcap(tmp_path / "overlap.pcap", edited))
    assert summary["messages"] == SCENARIOS["tcp-split"].expect
    assert summary["tcp"]["retransmitted"] == 2


def test_out_of_order_segments(pcap_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    frames = frames_of(pcap_dir / "tcp-split.pcap")
    first, second, third = data_segments(frames)
    order = list(range(len(frames)))
    order[first], order[third] = order[third], order[first]  # 3rd segment first, 1st last
    swapped = [frames[i] for i in order]
    _, summary, _ = decode_file(write_pcap(tmp_path / "ooo.pcap", swapped))
    assert summary["messages"] == SCENARIOS["tcp-split"].expect
    assert summary["tcp"]["out_of_order"] >= 1


def test_missing_segment_decodes_nothing_after_it(pcap_dir, tmp_path: pathlib.Path) -> None:
    frames = frames_of(pcap_dir / "tcp-split.pcap")
    _, second, _ = data_segments(frames)
    _, summary, _ = decode_file(
        write_pcap(tmp_path / "hole.pcap", frames[:second] + frames[second + 1 :])
    )
    assert sum(summary["messages"].values()) == 0


def test_syn_retransmission_counts_one_connection(tmp_path: pathlib.Path) -> None:
    """Two SYNs with the same seq are one connection; a new seq on the same ports is another."""
    dport = codec.ports("203.0.113.200", 2968)[0]
    t = pcaps.BASE_TS * 10**9
    frames = [
        (t, tcp_frame("192.0.2.1", 40000, "203.0.113.200", dport, 1000, SYN)),
        (t + 3 * 10**9, tcp_frame("192.0.2.1", 40000, "203.0.113.200", dport, 1000, SYN)),
        (t + 9 * 10**9, tcp_frame("192.0.2.1", 40000, "203.0.113.200", dport, 5000, SYN)),
        (t + 9 * 10**9, tcp_frame("192.0.2.1", 40001, "203.0.113.200", dport + 1, 7, SYN)),
    ]
    _, summary, _ = decode_file(write_pcap(tmp_path / "syn.pcap", frames))
    assert summary["scanners"] == [
        {"host": "192.0.2.1", "destinations": 1, "udp": 0, "tcp": 2, "messages": 0}
    ]


def test_first_held_copy_wins(tmp_path: pathlib.Path) -> None:
    """Beyond a hole, bytes 160-259 of a data transfer are held; then a longer segment at the
    same seq brings a different copy of them and the rest of the stream; then the hole fills.
    The first copy of every byte wins: the held 160-259 are kept, only bytes 260 on are taken
    from the later segment, and the message decodes (it does not with the later copy)."""
    stream = encode_tcp(Message(1, 2, 0x8005)) + encode_tcp(
        Message(3, 4, 0x8045, data_flags=1, data=random.Random(5).randbytes(400))
    )
    later = bytes(b ^ 0x5A for b in stream[160:260]) + stream[260:]
    assert not decodes((stream[:160] + later)[CTL + 2 :])  # the later copy spoils the message
    t = pcaps.BASE_TS * 10**9
    conn = ("192.0.2.1", 40000, "203.0.113.200", 19190)
    frames = [(t, tcp_frame(*conn, 0, SYN))]
    for seq, payload in ((0, stream[:CTL]), (160, stream[160:260]), (160, later), (CTL, None)):
        payload = stream[CTL:160] if payload is None else payload
        frames.append((t, tcp_frame(*conn, 1 + seq, ACK, payload)))
    records, summary, _ = decode_file(write_pcap(tmp_path / "held.pcap", frames))
    assert counts(records) == {**counts([]), "tcp_control": 1, "tcp_data": 1}
    assert summary["tcp"]["out_of_order"] == 2 and summary["tcp"]["gaps"] == 0


CTL = len(encode_tcp(Message(1, 2, 0x8005)))  # a bare control message, with its length prefix


def test_reorder_bound_defaults_to_the_spec() -> None:
    decoder = spec.load().decoder
    limits = triage.Limits()
    bound = (limits.reorder_bytes, limits.reorder_segments)
    assert bound == (decoder.reorder_bytes, decoder.reorder_segments) == (8192, 8)
    assert triage.Limits(reorder_segments=3).reorder_bytes == decoder.reorder_bytes


def reorder_frames(held: list[tuple[int, int]], fill: tuple[int, int], size: int) -> Frames:
    """A SYN, then the segments `held` (start, end offsets of one control message of `size`
    bytes framed) beyond the hole, then `fill`, from the hole's start."""
    stream = encode_tcp(Message(1, 2, 0x8005, noise=random.Random(size).randbytes(size - CTL)))
    assert len(stream) == size
    t = pcaps.BASE_TS * 10**9
    conn = ("192.0.2.1", 40000, "203.0.113.200", 19190)
    frames = [(t, tcp_frame(*conn, 0, SYN))]
    for a, b in [*held, fill]:
        frames.append((t, tcp_frame(*conn, 1 + a, ACK, stream[a:b])))
    return frames


@pytest.mark.parametrize("over", [0, 1], ids=["at-limit", "past-limit"])
def test_reorder_bytes_bound(tmp_path: pathlib.Path, over: int) -> None:
    """Exactly reorder_bytes bytes held beyond a 10-byte hole (in 1400-byte segments, the first
    sent again: bytes already held add nothing), then the hole fills: the message decodes. One
    byte more gives the direction up at its last segment: nothing decodes."""
    limit = triage.Limits().reorder_bytes
    size = 10 + limit + over
    held = [(a, min(a + 1400, size)) for a in range(10, size, 1400)]
    assert len(held) < triage.Limits().reorder_segments
    frames = reorder_frames([*held, held[0]], (0, 10), size)
    _, summary, _ = decode_file(write_pcap(tmp_path / "bytes.pcap", frames))
    assert summary["messages"]["tcp_control"] == 1 - over
    assert summary["tcp"]["gaps"] == over
    kept = held[:-1] if over else held  # held bytes at their peak: all, or all but the last
    assert summary["tcp"]["peak_buffered_bytes"] == sum(b - a for a, b in kept)


@pytest.mark.parametrize("over", [0, 1], ids=["at-limit", "past-limit"])
def test_reorder_segments_bound(tmp_path: pathlib.Path, over: int) -> None:
    """Beyond a hole, bytes 20-29 are held, then a segment with bytes 15-34 straddles them:
    a piece on each side, three pieces; then 10-byte segments up to exactly reorder_segments
    pieces, and the whole message fills the hole: it decodes. One piece more gives the
    direction up: nothing decodes, not even the in-sequence copy of the whole message."""
    limit = triage.Limits().reorder_segments
    held = [(20, 30), (15, 35)] + [(40 + 10 * j, 50 + 10 * j) for j in range(limit - 3 + over)]
    frames = reorder_frames(held, (0, 200), 200)
    _, summary, _ = decode_file(write_pcap(tmp_path / "pieces.pcap", frames))
    assert summary["messages"]["tcp_control"] == 1 - over
    assert summary["tcp"]["gaps"] == over


def test_mid_stream_pickup(tmp_path: pathlib.Path) -> None:
    """No handshake in the capture: the first segment seen starts the stream."""
    framed = b"".join(encode_tcp(Message(i, i + 1, 0x8005)) for i in range(3))
    t = pcaps.BASE_TS * 10**9
    frames = [
        (t, tcp_frame("192.0.2.1", 40000, "203.0.113.200", 19190, 77, ACK | PSH, framed[:20])),
        (t, tcp_frame("192.0.2.1", 40000, "203.0.113.200", 19190, 97, ACK | PSH, framed[20:])),
    ]
    records, summary, _ = decode_file(write_pcap(tmp_path / "mid.pcap", frames))
    assert summary["messages"]["tcp_control"] == 3 and all(r["port_match"] for r in records)
    assert summary["scanners"][0]["tcp"] == 1  # the connection, counted once


# --- bounded state ---------------------------------------------------------------------------


def test_tcp_state_stays_under_its_caps(tmp_path: pathlib.Path) -> None:
    """5000 connections each leave a plausible 1000-byte start of a 60 KB data message in
    flight and never close: tracked connections and buffered bytes stay under the caps, and a
    complete session after them still decodes."""
    big = encode_tcp(Message(5, 6, 0x8045, data_flags=1, data=bytes(60000)))
    head = big[:1000]
    assert codec.message_verdict(head, len(big) - 2, start=2) is None  # undecided: buffered
    t = pcaps.BASE_TS * 10**9
    frames: Frames = []
    for i in range(5000):
        src = f"10.{i >> 8 & 255}.{i & 255}.1"
        frames.append((t, tcp_frame(src, 40000, "203.0.113.200", 19190, 10, SYN)))
        frames.append((t, tcp_frame(src, 40000, "203.0.113.200", 19190, 11, ACK | PSH, head)))
    session = encode_tcp(Message(1, 2, 0x8005)) + encode_tcp(Message(3, 4, 0x8007))
    frames.append((t, tcp_frame("192.0.2.9", 40000, "203.0.113.200", 19190, 10, SYN)))
    frames.append((t, tcp_frame("192.0.2.9", 40000, "203.0.113.200", 19190, 11, ACK, session)))
    limits = triage.Limits(max_connections=300, max_buffered=200_000)
    _, summary, run = decode_file(write_pcap(tmp_path / "many.pcap", frames), limits)
    tcp = summary["tcp"]
    assert 0 < tcp["peak_connections"] <= 300 and len(run.tcp.conns) <= 300
    assert 150_000 < tcp["peak_buffered_bytes"] <= 200_000  # the buffers were really used
    assert tcp["evicted"] >= 5000 - 300
    assert summary["messages"]["tcp_control"] == 2


def test_connection_count_is_capped(tmp_path: pathlib.Path) -> None:
    """Bare SYNs hold no bytes: only the connection cap bounds them. Each is still counted."""
    t = pcaps.BASE_TS * 10**9
    dport = codec.ports("203.0.113.200", 2968)[0]
    frames = [
        (t, tcp_frame(f"10.0.{i >> 8}.{i & 255}", 40000, "203.0.113.200", dport, i, SYN))
        for i in range(2000)
    ]
    limits = triage.Limits(max_connections=50)
    _, summary, run = decode_file(write_pcap(tmp_path / "syns.pcap", frames), limits)
    assert summary["tcp"]["peak_connections"] == 50 and len(run.tcp.conns) == 50
    assert sum(r["tcp"] for r in summary["scanners"]) == 2000


def test_finished_connections_are_evicted_before_live_ones(tmp_path: pathlib.Path) -> None:
    """A message in flight survives 200 short sessions opening and closing meanwhile, though
    only 50 connections are tracked: finished ones go first."""
    t = pcaps.BASE_TS * 10**9
    framed = encode_tcp(Message(1, 2, 0x8005, noise=bytes(30)))
    live = ("192.0.2.1", 40000, "203.0.113.200", 19190)
    frames = [(t, tcp_frame(*live, 10, SYN)), (t, tcp_frame(*live, 11, ACK, framed[:20]))]
    for i in range(200):
        src = f"10.1.{i}.1"
        frames.append((t, tcp_frame(src, 40000, "203.0.113.9", 5000, 0, SYN)))
        frames.append((t, tcp_frame(src, 40000, "203.0.113.9", 5000, 1, ACK | FIN, b"hello")))
        frames.append((t, tcp_frame("203.0.113.9", 5000, src, 40000, 7, ACK | FIN)))
    frames.append((t, tcp_frame(*live, 31, ACK, framed[20:])))
    limits = triage.Limits(max_connections=50)
    _, summary, _ = decode_file(write_pcap(tmp_path / "churn.pcap", frames), limits)
    assert summary["messages"]["tcp_control"] == 1 and summary["tcp"]["evicted"] == 0


def test_out_of_order_flood_is_capped(tmp_path: pathlib.Path) -> None:
    """Segments past a hole that never fills: held up to reorder_bytes, then the direction is
    given up."""
    t = pcaps.BASE_TS * 10**9
    frames = [(t, tcp_frame("192.0.2.1", 40000, "203.0.113.200", 19190, 0, SYN))]
    for i in range(100):  # byte 1 never arrives
        seq = 2 + i * 1000
        frames.append(
            (t, tcp_frame("192.0.2.1", 40000, "203.0.113.200", 19190, seq, ACK, bytes(1000)))
        )
    limits = triage.Limits(reorder_bytes=20_000, reorder_segments=100)
    _, summary, _ = decode_file(write_pcap(tmp_path / "flood.pcap", frames), limits)
    assert summary["tcp"]["gaps"] == 1
    assert summary["tcp"]["peak_buffered_bytes"] <= 20_000


def test_impossible_frames_are_dropped_early(tmp_path: pathlib.Path) -> None:
    """A stream announcing a 60000-byte frame whose first bytes already fail the checksum (key
    0:0 leaves flags 0x8001 in clear, a control message with a zero checksum) is dropped at its
    first segment instead of being buffered to 60 KB."""
    head = struct.pack("<H", 60000) + bytes(8) + b"\x01\x80" + bytes(4)
    assert not decodes(head[2:16])
    t = pcaps.BASE_TS * 10**9
    frames = [(t, tcp_frame("192.0.2.1", 40000, "203.0.113.200", 19190, 0, SYN))]
    seq = 1
    for i in range(40):
        chunk = head + bytes(1400 - len(head)) if i == 0 else random.Random(i).randbytes(1400)
        frames.append((t, tcp_frame("192.0.2.1", 40000, "203.0.113.200", 19190, seq, ACK, chunk)))
        seq += len(chunk)
    _, summary, run = decode_file(write_pcap(tmp_path / "bulk.pcap", frames))
    assert summary["tcp"]["peak_buffered_bytes"] == 0 and run.tcp.buffered == 0


def test_random_streams_leave_nothing_buffered(pcap_dir: pathlib.Path) -> None:
    _, summary, run = decode_file(pcap_dir / "neg-random-tcp.pcap")
    assert summary["tcp"]["peak_buffered_bytes"] < 10 * 1400
    assert run.tcp.buffered == 0


def test_fragments_shuffled_duplicated_and_missing(pcap_dir, tmp_path: pathlib.Path) -> None:
    frames = frames_of(pcap_dir / "udp-large-fragmented.pcap")
    shuffled = frames[::-1] + frames[3:9]  # reversed, then a few duplicates
    _, summary, _ = decode_file(write_pcap(tmp_path / "shuffled.pcap", shuffled))
    assert summary["messages"]["udp_data"] == 1 and summary["ip"]["reassembled"] == 1
    _, summary, _ = decode_file(write_pcap(tmp_path / "missing.pcap", frames[:10] + frames[11:]))
    assert summary["messages"]["udp_data"] == 0 and summary["ip"]["reassembled"] == 0


def test_fragment_state_is_capped(tmp_path: pathlib.Path) -> None:
    """5000 first fragments that never complete: at most 100 datagrams are held."""
    t = pcaps.BASE_TS * 10**9
    frames = [
        (t + i, ipv4("192.0.2.1", "203.0.113.200", 17, bytes(1480), ident=i, frag=0x2000))
        for i in range(5000)
    ]
    limits = triage.Limits(max_fragment_datagrams=100, max_fragment_bytes=10**9)
    _, summary, run = decode_file(write_pcap(tmp_path / "frags.pcap", frames), limits)
    assert len(run.defrag.held) == 100 and summary["ip"]["fragments_dropped"] == 4900
    limits = triage.Limits(max_fragment_bytes=50 * 1480)
    _, summary, run = decode_file(write_pcap(tmp_path / "frags.pcap", frames), limits)
    assert len(run.defrag.held) == 50 and run.defrag.bytes == 50 * 1480


def test_fragments_time_out(tmp_path: pathlib.Path) -> None:
    """An incomplete datagram is dropped 30 s (packet time) after its first fragment; a late
    complete one still reassembles."""
    t = pcaps.BASE_TS * 10**9
    whole = struct.pack("!HHHH", 40000, WEEK_2968_UDP_B, 8 + 14, 0) + probe(9)
    frames = [
        (t, ipv4("192.0.2.1", "203.0.113.200", 17, bytes(1480), ident=1, frag=0x2000)),
        (t + 31 * 10**9, ipv4("192.0.2.7", "203.0.113.200", 17, whole[:16], 9, 0x2000)),
        (t + 31 * 10**9, ipv4("192.0.2.7", "203.0.113.200", 17, whole[16:], 9, 2)),
    ]
    _, summary, run = decode_file(write_pcap(tmp_path / "late.pcap", frames))
    assert summary["ip"]["fragments_dropped"] == 1 and not run.defrag.held
    assert summary["messages"]["udp_control"] == 1 and summary["ip"]["reassembled"] == 1


# --- errors ----------------------------------------------------------------------------------


def expect_error(capsys, path: pathlib.Path, *phrases: str) -> None:
    rc, objs, err = cli_json(capsys, path)
    assert rc == 2
    assert all(o["type"] == "message" for o in objs)  # never a summary
    assert err.startswith(f"cfp2p: error: {path}")
    for phrase in phrases:
        assert phrase in err
    assert main(["decode", str(path)]) == 2
    out, human_err = capsys.readouterr()
    assert human_err == err
    assert "messages" not in out  # no summary in the human output either


def test_missing_file(capsys, tmp_path: pathlib.Path) -> None:
    expect_error(capsys, tmp_path / "nope.pcap", "No such file")


def test_directory(capsys, tmp_path: pathlib.Path) -> None:
    expect_error(capsys, tmp_path, "directory")


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"", "not a pcap or pcapng"),
        (b"GET / HTTP/1.1\r\n\r\n", "not a pcap or pcapng capture (magic 0x47455420)"),
        (b"\x1f\x8b\x08" + bytes(40), "gzip"),
    ],
)
def test_not_a_capture(capsys, tmp_path: pathlib.Path, content: bytes, phrase: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    expect_error(capsys, path, phrase, "offset 0")


def test_truncated_pcap(capsys, pcap_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    raw = (pcap_dir / "udp-burst.pcap").read_bytes()
    records = frames_of(pcap_dir / "udp-burst.pcap")
    # cut inside the 6th record's data: 5 messages already out, then the error, no summary
    start = 24 + sum(16 + len(d) for _, d in records[:5])
    path = tmp_path / "cut.pcap"
    path.write_bytes(raw[: start + 16 + 10])
    rc, objs, err = cli_json(capsys, path)
    assert rc == 2 and len(objs) == 5 and all(o["type"] == "message" for o in objs)
    assert f"at offset {start}: truncated packet record" in err
    path.write_bytes(raw[: start + 7])
    expect_error(capsys, path, f"at offset {start}", "truncated record header")
    path.write_bytes(raw[:20])
    expect_error(capsys, path, "truncated pcap file header")


def test_corrupt_pcap_record_length(capsys, pcap_dir: pathlib.Path, tmp_path) -> None:
    raw = bytearray((pcap_dir / "udp-probe.pcap").read_bytes())
    struct.pack_into("<I", raw, 24 + 8, 0x7FFFFFFF)  # first record's captured length
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(raw))
    expect_error(capsys, path, "offset 24", "captured length 2147483647")


def test_truncated_and_corrupt_pcapng(capsys, pcap_dir: pathlib.Path, tmp_path) -> None:
    frames = frames_of(pcap_dir / "udp-reply-sysinfo.pcap")
    head = shb("<") + idb("<", 1)
    blocks = [epb("<", 0, t // 1000, d) for t, d in frames]
    path = tmp_path / "x.pcapng"
    path.write_bytes(head + blocks[0] + blocks[1][:-6])
    expect_error(capsys, path, f"at offset {len(head) + len(blocks[0])}", "truncated block")
    bad = bytearray(blocks[1])
    bad[-4:] = struct.pack("<I", len(bad) + 4)
    path.write_bytes(head + blocks[0] + bytes(bad))
    expect_error(capsys, path, "trailing length")
    path.write_bytes(head + epb("<", 3, 0, frames[0][1]))
    expect_error(capsys, path, "interface 3")
    path.write_bytes(head + struct.pack("<II", 6, 10) + bytes(8))
    expect_error(capsys, path, "total length 10")
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 28) + b"XXXX" + bytes(16))
    expect_error(capsys, path, "byte-order magic")


def test_gzip_message_names_the_fix(capsys, pcap_dir: pathlib.Path, tmp_path) -> None:
    path = tmp_path / "c.pcap.gz"
    path.write_bytes(gzip.compress((pcap_dir / "udp-probe.pcap").read_bytes()))
    expect_error(capsys, path, "decompress it first")


# --- what the messages carry: --json fields, the summary, --extract (issue 19) ------------------

# The scenarios' known content (generator/traffic/positive.py), restated where it is a fact.
HELLO = b"hello conficker"  # PROTOCOL.md's vector
PE_HEAD = "4d5a90000300000004000000ffff0000"  # the DOS header every PE file starts with


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def listing(folder: pathlib.Path) -> dict[str, bytes]:
    """Every file under folder (hidden ones too), by relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def extract_json(capsys, path: pathlib.Path, folder: pathlib.Path) -> tuple[int, list, str]:
    rc = main(["decode", str(path), "--json", "--extract", str(folder)])
    out, err = capsys.readouterr()
    return rc, [json.loads(line) for line in out.splitlines()], err


def index_of(folder: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines()]


def test_json_fields_of_the_vector(pcap_dir: pathlib.Path) -> None:
    ((record,), _, _) = decode_file(pcap_dir / "udp-data-vector.pcap")
    assert record["peer"] == "127.0.0.1:40000"  # u32 0x0100007F
    assert (record["data_flags"], record["data_len"], record["data_bytes"]) == ("0x01", 15, 15)
    assert record["sha256"] == sha(HELLO)
    assert record["data_head"] == HELLO.hex()  # shorter than 16 bytes: all of it


def test_json_fields_peer_without_data(pcap_dir: pathlib.Path) -> None:
    data, control = decode_file(pcap_dir / "udp-peer-data.pcap")[0]
    assert data["peer"] == "192.0.2.1:38636" and data["data_flags"] == "0x01"
    assert data["data_len"] == 1200 and data["data_head"] == PE_HEAD
    assert data["sha256"] == sha(positive.BLOCK_UDP)
    assert control["peer"] == "198.51.100.77:59288"
    assert [control[k] for k in ("data_flags", "data_len", "sha256", "data_head")] == [None] * 4
    # a message without either block
    ((probe,), _, _) = decode_file(pcap_dir / "udp-probe.pcap")
    assert probe["peer"] is None and probe["sha256"] is None


def test_summary_lists_what_each_host_carried(pcap_dir: pathlib.Path) -> None:
    _, summary, _ = decode_file(pcap_dir / "tcp-peer-data.pcap")
    block = {"sha256": sha(positive.BLOCK_TCP), "length": 4000}
    assert summary["carried"] == [
        {
            "host": pcaps.PROBER3,
            "announced": ["192.0.2.1:17075", "203.0.113.200:43880"],
            "sent": [block],  # twice, one distinct block
            "received": [],
        },
        {"host": pcaps.LISTENER3, "announced": [], "sent": [], "received": [block]},
    ]
    _, summary, _ = decode_file(pcap_dir / "udp-probe.pcap")
    assert summary["carried"] == []


def test_summary_carried_is_capped(pcap_dir: pathlib.Path) -> None:
    # the SYN's and SYN/ACK's peers take two of the three, the first announced peer the third
    limits = triage.Limits(max_summary_pairs=3)
    _, summary, _ = decode_file(pcap_dir / "tcp-peer-data.pcap", limits)
    (prober,) = summary["carried"]
    assert prober["announced"] == ["203.0.113.200:43880"] and prober["sent"] == []
    assert summary["summary_capped"] is True


def test_human_summary_and_extract_line(capsys, pcap_dir, tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "blocks"
    assert main(["decode", str(pcap_dir / "tcp-peer-data.pcap"), "--extract", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "peers announced and data blocks (SHA-256) per host: 2" in out
    assert "    announced  192.0.2.1:17075, 203.0.113.200:43880" in out
    assert f"    sent       {sha(positive.BLOCK_TCP)}  4000 bytes" in out
    assert f"    received   {sha(positive.BLOCK_TCP)}  4000 bytes" in out
    assert out.rstrip().endswith(
        f"extracted into {folder}: 2 index lines ({folder / 'index.jsonl'}), 1 new block files"
    )


def test_extract_writes_each_block_once(capsys, pcap_dir, tmp_path: pathlib.Path) -> None:
    """The same block in two messages: one file, byte for byte, and two index lines."""
    folder = tmp_path / "new" / "blocks"  # created, parents too
    rc, objs, err = extract_json(capsys, pcap_dir / "tcp-peer-data.pcap", folder)
    assert rc == 0 and err == ""
    *messages, summary = objs
    name = f"{sha(positive.BLOCK_TCP)}.bin"
    files = listing(folder)
    assert set(files) == {name, "index.jsonl"}  # no staging or temporary file left
    assert files[name] == positive.BLOCK_TCP
    assert summary["extracted"] == {"dir": str(folder), "index_lines": 2, "new_files": 1}
    carrying = [m for m in messages if m["sha256"]]
    assert len(carrying) == 2
    assert index_of(folder) == [
        {
            "time": m["time"],
            "src": "192.0.2.30:" + m["src"].split(":")[1],
            "dst": m["dst"],
            "proto": "tcp",
            "flags": "0x804d",
            "data_flags": "0x02",
            "length": 4000,
            "sha256": sha(positive.BLOCK_TCP),
            "port_match": True,
            "capture": str(pcap_dir / "tcp-peer-data.pcap"),
        }
        for m in carrying
    ]
    assert carrying[0]["time"] < carrying[1]["time"]
    assert (folder / name).stat().st_mode & 0o777 == 0o644


def test_extract_adds_to_an_existing_folder(capsys, pcap_dir, tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "case-17"
    folder.mkdir()
    (folder / "notes.txt").write_text("the analyst's own file\n")
    old_line = '{"earlier": "capture"}\n'
    (folder / "index.jsonl").write_text(old_line)
    # a block already present (from an earlier run) is not written again
    present = folder / f"{sha(positive.BLOCK_UDP)}.bin"
    present.write_bytes(positive.BLOCK_UDP)
    before = present.stat().st_mtime_ns
    for name in ("udp-peer-data", "udp-data-vector", "tcp-peer-data"):
        rc, objs, _ = extract_json(capsys, pcap_dir / f"{name}.pcap", folder)
        assert rc == 0
    assert objs[-1]["extracted"]["new_files"] == 1
    files = listing(folder)
    assert files.pop("notes.txt") == b"the analyst's own file\n"
    assert files.pop("index.jsonl").decode().startswith(old_line)
    assert files == {
        f"{sha(positive.BLOCK_UDP)}.bin": positive.BLOCK_UDP,
        f"{sha(HELLO)}.bin": HELLO,
        f"{sha(positive.BLOCK_TCP)}.bin": positive.BLOCK_TCP,
    }
    assert present.stat().st_mtime_ns == before
    lines = index_of(folder)
    assert lines[0] == {"earlier": "capture"}
    assert [(x["proto"], x["data_flags"], x["length"]) for x in lines[1:]] == [
        ("udp", "0x01", 1200),
        ("udp", "0x01", 15),
        ("tcp", "0x02", 4000),
        ("tcp", "0x02", 4000),
    ]
    assert [x["src"].split(":")[0] for x in lines[1:]] == [
        pcaps.PROBER,
        pcaps.PROBER3,
        *[pcaps.PROBER3] * 2,
    ]
    # the same capture again: no new file, two more index lines
    rc, objs, _ = extract_json(capsys, pcap_dir / "tcp-peer-data.pcap", folder)
    assert rc == 0 and objs[-1]["extracted"] == {
        "dir": str(folder),
        "index_lines": 2,
        "new_files": 0,
    }
    assert len(index_of(folder)) == 1 + 4 + 2 and len(listing(folder)) == 5


def test_extract_without_data_blocks(capsys, pcap_dir, tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "empty"
    rc, objs, _ = extract_json(capsys, pcap_dir / "udp-probe.pcap", folder)
    assert rc == 0 and objs[-1]["extracted"]["index_lines"] == 0
    assert folder.is_dir() and listing(folder) == {}


def expect_extract_error(capsys, capture: pathlib.Path, folder: pathlib.Path, *phrases: str):
    for args in (["--json"], []):
        rc = main(["decode", str(capture), *args, "--extract", str(folder)])
        out, err = capsys.readouterr()
        assert rc == 2 and out == ""  # checked before anything is decoded or printed
        assert err.startswith(f"cfp2p: error: {folder}: cannot extract data blocks there")
        for phrase in phrases:
            assert phrase in err


def test_extract_into_a_file(capsys, pcap_dir, tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "blocks"
    folder.write_text("not a folder")
    expect_extract_error(capsys, pcap_dir / "tcp-peer-data.pcap", folder, "not a directory")
    assert listing(tmp_path) == {"blocks": b"not a folder"}
    # a file where a parent should be
    expect_extract_error(capsys, pcap_dir / "tcp-peer-data.pcap", folder / "sub", "Not a directory")
    assert listing(tmp_path) == {"blocks": b"not a folder"}
    # an index that is not a file
    other = tmp_path / "other"
    (other / "index.jsonl").mkdir(parents=True)
    expect_extract_error(capsys, pcap_dir / "tcp-peer-data.pcap", other, "index.jsonl")
    assert [p.name for p in other.rglob("*")] == ["index.jsonl"]


def _as_nobody(argv: list[str]) -> tuple[int, str]:
    """main(argv) in a child process that runs as nobody (root ignores permission bits)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        code = 99
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
            sys.stderr = os.fdopen(write, "w")
            code = main(argv)
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        err = pipe.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


def test_extract_under_an_unwritable_parent(capsys, pcap_dir) -> None:
    top = pathlib.Path(tempfile.mkdtemp(prefix="cfp2p-ro-"))  # readable by nobody, unlike tmp_path
    try:
        top.chmod(0o755)
        capture_file = top / "c.pcap"
        capture_file.write_bytes((pcap_dir / "tcp-peer-data.pcap").read_bytes())
        capture_file.chmod(0o644)
        parent = top / "ro"
        parent.mkdir()
        parent.chmod(0o555)
        for folder in (parent / "blocks", parent / "blocks" / "deeper"):
            argv = ["decode", str(capture_file), "--extract", str(folder)]
            if os.geteuid() == 0:
                rc, err = _as_nobody(argv)
            else:
                rc = main(argv)
                err = capsys.readouterr().err
            assert rc == 2, err
            assert err.startswith(f"cfp2p: error: {folder}: cannot extract data blocks there")
            assert "Permission denied" in err
            assert list(parent.iterdir()) == []
        # the folder exists but cannot be written: nothing is added to it
        parent.chmod(0o755)
        (parent / "blocks").mkdir(mode=0o555)
        (parent / "blocks").chmod(0o555)
        argv = ["decode", str(capture_file), "--extract", str(parent / "blocks")]
        rc, err = _as_nobody(argv) if os.geteuid() == 0 else (main(argv), capsys.readouterr().err)
        assert rc == 2 and "Permission denied" in err and str(parent / "blocks") in err
        assert list((parent / "blocks").iterdir()) == []
    finally:
        for p in (top / "ro" / "blocks", top / "ro"):
            if p.exists():
                p.chmod(0o755)
        shutil.rmtree(top)


def test_bad_capture_extracts_nothing(capsys, pcap_dir, tmp_path: pathlib.Path) -> None:
    """A capture cut after its first data transfer: exit 2, and the folder as it was."""
    raw = (pcap_dir / "tcp-peer-data.pcap").read_bytes()
    frames = frames_of(pcap_dir / "tcp-peer-data.pcap")
    cut = tmp_path / "cut.pcap"
    # through the first data message's last segment (packet 10), then half a record header
    end = 24 + sum(16 + len(d) for _, d in frames[:11])
    cut.write_bytes(raw[: end + 8])
    new = tmp_path / "new"
    rc, objs, err = extract_json(capsys, cut, new)
    assert rc == 2 and "truncated record header" in err
    assert [o["type"] for o in objs] == ["message", "message"]  # as without --extract
    assert not new.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "index.jsonl").write_text('{"earlier": "capture"}\n')
    rc, _, _ = extract_json(capsys, cut, kept)
    assert rc == 2 and listing(kept) == {"index.jsonl": b'{"earlier": "capture"}\n'}
    rc, _, _ = extract_json(capsys, tmp_path / "missing.pcap", new)
    assert rc == 2 and not new.exists()


def test_extract_survives_a_closed_pipe(pcap_dir, tmp_path: pathlib.Path) -> None:
    """`cfp2p decode ... --extract DIR | head -1`: the reader leaves, the extraction completes."""
    folder = tmp_path / "blocks"
    cfp2p = pathlib.Path(sys.executable).parent / "cfp2p"
    command = (
        f"'{cfp2p}' decode '{pcap_dir / 'tcp-peer-data.pcap'}' --extract '{folder}' | head -c 1"
    )
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(index_of(folder)) == 2
    assert (folder / f"{sha(positive.BLOCK_TCP)}.bin").read_bytes() == positive.BLOCK_TCP


# --- progress bar ----------------------------------------------------------------------------


def test_progress_bar() -> None:
    import io

    stream = io.StringIO()
    bar = report.ProgressBar(stream)
    bar.update(50, 200)  # tqdm draws the first state at once
    assert "25%" in stream.getvalue() and stream.getvalue().startswith("\r")
    bar.update(100, 200)  # within 0.2 s of the previous draw: not redrawn
    assert "50%" not in stream.getvalue()
    bar.close()  # leave=False: the line is erased
    assert stream.getvalue().endswith("\r")


# --- the cheap verdict agrees with the codec -------------------------------------------------

messages = st.builds(
    lambda lo, hi, flags, peer, u0, u1, data, sysinfo, noise: Message(
        lo,
        hi,
        flags,
        peer_ip="192.0.2.1" if flags & codec.FLAG_PEER else None,
        peer_port=peer if flags & codec.FLAG_PEER else None,
        unknown0=u0 if flags & codec.FLAG_UNKNOWN0 else None,
        unknown1=u1 if flags & codec.FLAG_UNKNOWN1 else None,
        data_flags=1 if flags & codec.FLAG_DATA else None,
        data=data if flags & codec.FLAG_DATA else None,
        sysinfo=sysinfo if flags & codec.FLAG_SYSINFO else None,
        noise=noise,
    ),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=300),
    st.binary(min_size=26, max_size=26),
    st.binary(max_size=40),
)


def decodes(payload: bytes) -> bool:
    try:
        decode(payload)
    except DecodeError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(messages, st.data())
def test_verdict_accepts_every_valid_message_and_prefix(msg: Message, data: st.DataObject):
    payload = encode(msg)
    assert codec.message_verdict(payload, len(payload)) is True
    cut = data.draw(st.integers(0, len(payload)))
    assert codec.message_verdict(payload[:cut], len(payload)) is not False
    framed = b"xx" + payload[:cut]
    assert codec.message_verdict(framed, len(payload), start=2) is not False


@settings(max_examples=300, deadline=None)
@given(messages, st.data())
def test_verdict_matches_decode_on_damaged_messages(msg: Message, data: st.DataObject):
    payload = bytearray(encode(msg))
    pos = data.draw(st.integers(0, len(payload) - 1))
    payload[pos] ^= 1 << data.draw(st.integers(0, 7))
    cut = data.draw(st.integers(0, len(payload)))
    for candidate in (bytes(payload), bytes(payload[:cut])):
        assert codec.message_verdict(candidate, len(candidate)) is decodes(candidate)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_verdict_matches_decode_on_random_bytes(payload: bytes) -> None:
    assert codec.message_verdict(payload, len(payload)) is decodes(payload)
