"""Tests for generator.traffic: determinism, decoded message counts, port rules, TCP sanity."""

from __future__ import annotations

import pathlib
import random
import struct
import zlib
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
import yaml
from scapy.layers.inet import IP, TCP, UDP, defragment
from scapy.packet import Packet
from scapy.utils import rdpcap

from generator import codec
from generator.codec import DecodeError, Message, TcpStreamDecoder
from generator.traffic import pcaps, positive, reassembly

NAMES = [s.name for s in pcaps.SCENARIOS]
POSITIVE = [s.name for s in pcaps.SCENARIOS if not s.negative]
NEGATIVE = [s.name for s in pcaps.SCENARIOS if s.negative]

REQUIRED = {
    "udp-probe",
    "udp-reply-sysinfo",
    "udp-data-transfer",
    "udp-noise",
    "udp-burst",
    "tcp-session",
    "tcp-multi-segment",
    "tcp-split",
    "tcp-data-transfer",
    "neg-bad-checksum",
    "neg-truncated",
    "neg-random-udp",
    "neg-services",
    "neg-random-tcp",
    "tcp-large-message",
    "udp-large-fragmented",
    "scan-sweep",
    "scan-week-rollover",
    "p2p-other-ports",
    "neg-benign-computed-ports",
    "udp-peer-data",
    "udp-data-vector",
    "tcp-peer-data",
    *(
        REORDERED := {
            "tcp-reorder-first-segment",
            "tcp-reorder-middle",
            "tcp-retransmit-exact",
            "tcp-retransmit-partial",
            "tcp-repacketized",
            "tcp-overlap-fed-first",
            "tcp-overlap-held-first",
            "tcp-spurious-retransmit",
            "tcp-reorder-bytes-limit",
            "tcp-reorder-bytes-over",
            "tcp-reorder-segments-limit",
            "tcp-reorder-segments-over",
            "neg-tcp-gap-never-fills",
        }
    ),
}
ENGINE_CASES_ALL = yaml.safe_load(
    (pathlib.Path(__file__).parents[1] / "engine" / "cases.yaml").read_text()
)
# Messages deliberately sent on ports the generator does not give the listener.
OFF_GENERATOR = {"p2p-other-ports"}


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("pcaps")
    pcaps.write_pcaps(out)
    return out


# --- reading pcaps back ----------------------------------------------------------------------

FlowKey = tuple[str, int, str, int]


@dataclass
class Decoded:
    """What the reference codec finds in one pcap."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(pcaps.EXPECT_KEYS, 0))
    udp_hits: list[tuple[Packet, Message]] = field(default_factory=list)
    tcp_hits: dict[FlowKey, list[Message]] = field(default_factory=dict)
    udp_datagrams: int = 0
    tcp_bytes: int = 0


def _is_fragment(pkt: Packet) -> bool:
    return bool(pkt[IP].flags.MF) or pkt[IP].frag != 0


def tcp_streams(packets: list[Packet]) -> dict[FlowKey, bytes]:
    """Each TCP direction's payload, segments sorted by seq (relative to the SYN) and joined."""
    isn: dict[FlowKey, int] = {}
    segments: dict[FlowKey, dict[int, bytes]] = defaultdict(dict)
    for pkt in packets:
        if TCP not in pkt:
            continue
        ip, tcp = pkt[IP], pkt[TCP]
        key = (ip.src, tcp.sport, ip.dst, tcp.dport)
        if tcp.flags.S:
            isn[key] = (tcp.seq + 1) & 0xFFFFFFFF
        payload = bytes(tcp.payload)
        if payload:
            rel = (tcp.seq - isn[key]) & 0xFFFFFFFF
            assert segments[key].get(rel, payload) == payload, "conflicting retransmission"
            segments[key][rel] = payload
    streams: dict[FlowKey, bytes] = {}
    for key, by_seq in segments.items():
        data = bytearray()
        for rel in sorted(by_seq):
            assert rel == len(data), f"gap or overlap in {key} at {rel}"
            data += by_seq[rel]
        streams[key] = bytes(data)
    return streams


_M32 = 0xFFFFFFFF


def _rel(seq: int, base: int) -> int:
    """seq - base in 32-bit sequence space, as a signed number."""
    diff = (seq - base) & _M32
    return diff - (1 << 32) if diff & 0x80000000 else diff


@dataclass
class Bounds:
    """What one TCP direction may hold beyond a hole (spec decoder.reorder_*)."""

    reorder_bytes: int = pcaps.REORDER_BYTES
    reorder_segments: int = pcaps.REORDER_SEGMENTS


@dataclass
class _Direction:
    next_seq: int | None = None
    held: dict[int, int] = field(default_factory=dict)  # offset past next_seq -> byte
    pieces: list[set[int]] = field(default_factory=list)  # offsets of each held piece
    decoder: TcpStreamDecoder = field(default_factory=TcpStreamDecoder)
    abandoned: bool = False


@dataclass
class _Session:
    dirs: dict[bool, _Direction] = field(
        default_factory=lambda: {True: _Direction(), False: _Direction()}
    )
    valid: bool = False  # has carried a valid message
    skipped: bool = False  # its first frame was not a message: not Conficker


@dataclass
class Completed:
    """The messages one data segment completed (index: the packet's place in the pcap)."""

    index: int
    flow: FlowKey
    messages: list[Message]
    session_valid: bool  # the session had carried a valid message by the end of this packet


class SeqReassembler:
    """Each TCP direction followed by sequence number, as the decoder does it: from the
    handshake (SYN seq + 1), else from the first data segment; bytes before the next expected
    number ignored (the first copy wins), bytes beyond a hole held (first copy wins among
    them too) until the hole fills, at most `bounds` bytes and pieces held, or the direction
    is abandoned (no verdict: the session is not skipped). A session whose first frame fed in
    sequence is not a message, before any valid one, is skipped."""

    def __init__(self, bounds: Bounds | None = None) -> None:
        self.bounds = bounds or Bounds()
        self.sessions: dict[frozenset, _Session] = {}
        self.completed: list[Completed] = []
        self.data_segments: list[tuple[int, frozenset]] = []
        self.payload_bytes = 0

    def packet(self, index: int, pkt: Packet) -> None:
        ip, tcp = pkt[IP], pkt[TCP]
        key = (ip.src, tcp.sport, ip.dst, tcp.dport)
        ends = frozenset({key[:2], key[2:]})
        session = self.sessions.setdefault(ends, _Session())
        # True for the direction from the lower end (a stable name for each direction)
        direction = session.dirs[key[:2] < key[2:]]
        if tcp.flags.S and direction.next_seq is None:
            direction.next_seq = (tcp.seq + 1) & _M32
        payload = bytes(tcp.payload)
        if not payload:
            return
        self.payload_bytes += len(payload)
        self.data_segments.append((index, ends))
        if session.skipped or direction.abandoned or direction.decoder.failed:
            return
        if direction.next_seq is None:
            direction.next_seq = tcp.seq
        rel = _rel(tcp.seq, direction.next_seq)
        fresh = {
            rel + i: b
            for i, b in enumerate(payload)
            if rel + i >= 0 and rel + i not in direction.held
        }
        if 0 not in fresh:
            if not fresh:
                return  # nothing new: a retransmission
            over_bytes = len(direction.held) + len(fresh) > self.bounds.reorder_bytes
            if over_bytes or len(direction.pieces) + 1 > self.bounds.reorder_segments:
                direction.abandoned = True
                direction.held, direction.pieces = {}, []
                return
            direction.held.update(fresh)
            direction.pieces.append(set(fresh))
            return
        merged = {**direction.held, **fresh}
        run = bytearray()
        while len(run) in merged:
            run.append(merged[len(run)])
        n = len(run)
        direction.held = {off - n: b for off, b in merged.items() if off >= n}
        direction.pieces = [{o - n for o in p if o >= n} for p in direction.pieces]
        direction.pieces = [p for p in direction.pieces if p]
        direction.next_seq = (direction.next_seq + n) & _M32
        msgs = direction.decoder.feed(bytes(run))
        if msgs:
            session.valid = True
        elif direction.decoder.failed and not session.valid:
            session.skipped = True
        self.completed.append(Completed(index, key, msgs, session.valid))


def reassemble(packets: list[Packet], bounds: Bounds | None = None) -> SeqReassembler:
    out = SeqReassembler(bounds)
    for index, pkt in enumerate(packets):
        if TCP in pkt:
            out.packet(index, pkt)
    return out


def decode_pcap(path: pathlib.Path, bounds: Bounds | None = None) -> Decoded:
    packets = list(defragment(rdpcap(str(path))))
    out = Decoded()
    for pkt in packets:
        if UDP not in pkt:
            continue
        assert not _is_fragment(pkt), "fragment left after defragment()"
        payload = bytes(pkt[UDP].payload)
        assert pkt[UDP].len == 8 + len(payload)
        out.udp_datagrams += 1
        try:
            msg = codec.decode(payload)
        except DecodeError:
            continue
        out.counts[f"udp_{msg.kind}"] += 1
        out.udp_hits.append((pkt, msg))
    tcp = reassemble(packets, bounds)
    out.tcp_bytes = tcp.payload_bytes
    for done in tcp.completed:
        for msg in done.messages:
            out.counts[f"tcp_{msg.kind}"] += 1
            out.tcp_hits.setdefault(done.flow, []).append(msg)
    return out


# --- registry --------------------------------------------------------------------------------


def test_scenario_names_and_expectations() -> None:
    assert set(NAMES) == REQUIRED
    assert len(NAMES) == len(set(NAMES))
    for s in pcaps.SCENARIOS:
        assert set(s.expect) == set(pcaps.EXPECT_KEYS)
        assert pcaps.EXPECTED[s.name] == s.expect
        assert s.description and "correct" in s.description
        assert s.negative == s.name.startswith("neg-")
    assert pcaps.by_name("udp-burst").expect["udp_control"] == 12
    assert pcaps.by_name("tcp-multi-segment").expect["tcp_control"] == 3
    assert pcaps.by_name("tcp-large-message").expect["tcp_data"] == 1
    assert pcaps.by_name("udp-large-fragmented").expect["udp_data"] == 1


def test_seed_is_stable_crc32() -> None:
    for s in pcaps.SCENARIOS:
        assert s.seed == zlib.crc32(s.name.encode())


# --- (a) determinism -------------------------------------------------------------------------


def test_write_twice_identical(tmp_path: pathlib.Path) -> None:
    first = pcaps.write_pcaps(tmp_path / "a")
    second = pcaps.write_pcaps(tmp_path / "b")
    assert [p.name for p in first] == [f"{n}.pcap" for n in NAMES]
    assert [p.name for p in second] == [p.name for p in first]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


# --- file format -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_pcap_header_time_and_size(outdir: pathlib.Path, name: str) -> None:
    path = outdir / f"{name}.pcap"
    raw = path.read_bytes()
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from("<IHHiIII", raw)
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)
    assert snaplen >= 1514
    if not pcaps.by_name(name).large:
        assert len(raw) < 200_000
    packets = rdpcap(str(path))
    times = [p.time for p in packets]
    assert times == sorted(times)
    if name != "scan-week-rollover":  # see test_week_rollover_times
        assert times[0] == pcaps.BASE_TS
        assert times[-1] - times[0] < 900  # well inside epoch week 2968
        assert codec.epoch_week(float(times[-1])) == codec.epoch_week(pcaps.BASE_TS) == 2968
    for pkt in packets:
        assert IP in pkt
        for addr in (pkt[IP].src, pkt[IP].dst):
            assert addr.startswith(("192.0.2.", "198.51.100.", "203.0.113.", "239.255.255.250"))


@pytest.mark.parametrize("name", NAMES)
def test_checksums_valid(outdir: pathlib.Path, name: str) -> None:
    """IP, UDP and TCP checksums as written equal the ones scapy recomputes."""
    for pkt in rdpcap(str(outdir / f"{name}.pcap")):
        layers = [IP]
        if not _is_fragment(pkt):
            layers += [layer for layer in (UDP, TCP) if layer in pkt]
        fresh = pkt.copy()
        for layer in layers:
            del fresh[layer].chksum
        fresh = fresh.__class__(bytes(fresh))
        for layer in layers:
            assert pkt[layer].chksum == fresh[layer].chksum, (name, layer.__name__)


# --- (b) + (c) decoded counts ----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_decoded_counts_match_expected(outdir: pathlib.Path, name: str) -> None:
    decoded = decode_pcap(outdir / f"{name}.pcap")
    assert decoded.counts == pcaps.EXPECTED[name]


def _computed(ip: str, ts: float, indexes: tuple[int, ...]) -> set[int]:
    """ip's computed ports of these indexes in ts's epoch week, and the neighbouring week's
    when ts is within the slop of a rollover."""
    weeks = {codec.epoch_week(ts + d) for d in (-pcaps.WEEK_SLOP, 0, pcaps.WEEK_SLOP)}
    return {codec.ports(ip, week)[i] for week in weeks for i in indexes}


def _is_message(payload: bytes) -> bool:
    try:
        codec.decode(payload)
    except DecodeError:
        return False
    return True


def count_attempts(packets: list[Packet]) -> dict[str, int]:
    """Per source, what the scan count should see: datagrams holding a valid message from a
    UDP flow's initiator to a computed UDP port of the destination, and connections whose
    first SYN goes to a computed TCP port of the destination."""
    found: dict[str, int] = defaultdict(int)
    udp_flows: set[frozenset] = set()
    initiators: set[tuple] = set()
    connections: set[tuple] = set()
    for pkt in packets:
        ip, ts = pkt[IP], float(pkt.time)
        if UDP in pkt:
            key = (ip.src, pkt[UDP].sport, ip.dst, pkt[UDP].dport)
            ends = frozenset({key[:2], key[2:]})
            if ends not in udp_flows:
                udp_flows.add(ends)
                initiators.add(key)
            computed = pkt[UDP].dport in _computed(ip.dst, ts, (1, 3))
            if key in initiators and computed and _is_message(bytes(pkt[UDP].payload)):
                found[ip.src] += 1
        elif TCP in pkt and pkt[TCP].flags == "S":
            key = (ip.src, pkt[TCP].sport, ip.dst, pkt[TCP].dport)
            if key not in connections and pkt[TCP].dport in _computed(ip.dst, ts, (0, 2)):
                found[ip.src] += 1
            connections.add(key)
    return dict(found)


@pytest.mark.parametrize("name", NAMES)
def test_attempts_match_expected(outdir: pathlib.Path, name: str) -> None:
    packets = list(defragment(rdpcap(str(outdir / f"{name}.pcap"))))
    assert count_attempts(packets) == pcaps.by_name(name).attempts


def test_scan_sweep_not_attempts(outdir: pathlib.Path) -> None:
    """The sweep also holds SYN retransmissions and traffic to the wrong ports: 10 SYNs (6
    connections, 2 retransmissions, 2 to other ports) and 7 datagrams (5 probes, 2 without a
    message) from the scanner."""
    packets = rdpcap(str(outdir / "scan-sweep.pcap"))
    syns = [p for p in packets if TCP in p and p[TCP].flags == "S"]
    datagrams = [p for p in packets if UDP in p]
    assert (len(syns), len(datagrams)) == (10, 7)
    assert {p[IP].src for p in syns + datagrams} == {pcaps.SCANNER}


def test_week_rollover_times(outdir: pathlib.Path) -> None:
    """The rollover scan straddles Monday 00:00 UTC, from 20 minutes before to 20 after."""
    times = [
        float(p.time) - pcaps.ROLLOVER_TS for p in rdpcap(str(outdir / "scan-week-rollover.pcap"))
    ]
    assert codec.epoch_week(pcaps.ROLLOVER_TS) == codec.epoch_week(pcaps.BASE_TS) + 1
    assert (pcaps.ROLLOVER_TS - 345600) % 604800 == 0
    assert min(times) < -pcaps.WEEK_SLOP and max(times) > pcaps.WEEK_SLOP


@pytest.mark.parametrize("name", NEGATIVE)
def test_negatives_decode_to_nothing(outdir: pathlib.Path, name: str) -> None:
    decoded = decode_pcap(outdir / f"{name}.pcap")
    assert decoded.udp_hits == []
    assert decoded.tcp_hits == {}
    assert decoded.udp_datagrams + decoded.tcp_bytes > 0  # there is traffic, just no messages


def test_negative_volumes(outdir: pathlib.Path) -> None:
    random_udp = rdpcap(str(outdir / "neg-random-udp.pcap"))
    assert len(random_udp) == 200
    for pkt in random_udp:
        assert 14 <= len(bytes(pkt[UDP].payload)) <= 1400
        assert pkt[UDP].sport >= 2048 and pkt[UDP].dport >= 2048
        assert not codec.is_blacklisted(pkt[UDP].sport)
        assert not codec.is_blacklisted(pkt[UDP].dport)
    random_tcp = rdpcap(str(outdir / "neg-random-tcp.pcap"))
    syns = [p for p in random_tcp if p[TCP].flags == "S"]
    assert len(syns) == 10
    streams = tcp_streams(list(random_tcp))
    assert len(streams) == 20  # data in both directions of every session
    services = rdpcap(str(outdir / "neg-services.pcap"))
    ports = {p[UDP].dport for p in services} | {p[UDP].sport for p in services}
    assert {53, 123, 1900, 443} <= ports
    dns_high = [
        p
        for p in services
        if p[UDP].dport == 53 and p[UDP].sport >= 49152 and not codec.is_blacklisted(p[UDP].sport)
    ]
    assert dns_high
    quic = [p for p in services if 443 in (p[UDP].sport, p[UDP].dport)]
    assert quic and all(
        len(bytes(p[UDP].payload)) == 1200 and bytes(p[UDP].payload)[0] >= 0xC0 for p in quic
    )


def test_bad_checksum_only_differs_in_checksum(outdir: pathlib.Path) -> None:
    """The neg-bad-checksum messages become valid if the checksum's low bit is flipped back."""
    packets = list(rdpcap(str(outdir / "neg-bad-checksum.pcap")))
    fixed = 0
    for pkt in packets:
        if UDP in pkt:
            fixed += _decodes_after_fixing_checksum(bytes(pkt[UDP].payload))
    for data in tcp_streams(packets).values():
        pos = 0
        while pos + 2 <= len(data):
            (length,) = struct.unpack_from("<H", data, pos)
            fixed += _decodes_after_fixing_checksum(data[pos + 2 : pos + 2 + length])
            pos += 2 + length
    assert fixed == 5


def _decodes_after_fixing_checksum(payload: bytes) -> bool:
    """Try flipping the low bit of the checksum at every plausible checksum offset."""
    for pos in range(8 + 2, len(payload) - 3):
        candidate = bytearray(payload)
        candidate[pos] ^= 1  # flipping a ciphertext bit flips the same plaintext bit
        try:
            codec.decode(bytes(candidate))
        except DecodeError:
            continue
        return True
    return False


# --- positives in detail ---------------------------------------------------------------------


def test_udp_burst_timing(outdir: pathlib.Path) -> None:
    packets = rdpcap(str(outdir / "udp-burst.pcap"))
    assert [p.time - pcaps.BASE_TS for p in packets] == [60 * i for i in range(12)]
    assert len({p[IP].src for p in packets}) == 1
    assert len({p[IP].dst for p in packets}) == 12


def test_udp_noise_lengths(outdir: pathlib.Path) -> None:
    decoded = decode_pcap(outdir / "udp-noise.pcap")
    noise = [len(msg.noise) for _, msg in decoded.udp_hits]
    assert noise[0] == 0 and all(0 < n <= 40 for n in noise[1:])
    assert len({p[IP].src for p, _ in decoded.udp_hits}) == 3
    assert len({p[IP].dst for p, _ in decoded.udp_hits}) == 3


def test_udp_reply_sysinfo(outdir: pathlib.Path) -> None:
    decoded = decode_pcap(outdir / "udp-reply-sysinfo.pcap")
    (probe_pkt, probe), (reply_pkt, reply) = decoded.udp_hits
    assert probe.flags == 0x8001 and probe.noise == b""
    assert reply.flags & 0x0088 == 0x0088 and not reply.flags & codec.FLAG_DATA
    assert reply.sysinfo is not None and len(reply.sysinfo) == 26
    assert (reply_pkt[IP].src, reply_pkt[UDP].sport) == (probe_pkt[IP].dst, probe_pkt[UDP].dport)
    assert (reply.peer_ip, reply.peer_port) == (probe_pkt[IP].src, probe_pkt[UDP].sport)


def test_udp_data_transfer_block(outdir: pathlib.Path) -> None:
    ((_, msg),) = decode_pcap(outdir / "udp-data-transfer.pcap").udp_hits
    assert msg.flags == 0x8049 and msg.data is not None and len(msg.data) == 200


def test_tcp_split_layout(outdir: pathlib.Path) -> None:
    packets = rdpcap(str(outdir / "tcp-split.pcap"))
    payloads = [bytes(p[TCP].payload) for p in packets if len(p[TCP].payload)]
    assert len(payloads) == 3
    (first_len,) = struct.unpack_from("<H", payloads[0])
    assert first_len + 2 == 300 and len(payloads[0]) < 300
    assert len(payloads[0]) + len(payloads[1]) == 300 + 1  # ends after 1st length byte of msg 2
    second_len = payloads[1][-1] | payloads[2][0] << 8
    assert len(payloads[2]) == 1 + second_len
    decoded = decode_pcap(outdir / "tcp-split.pcap")
    (msgs,) = decoded.tcp_hits.values()
    assert msgs[0].sysinfo is not None and msgs[0].noise


def test_tcp_multi_segment_single_segment(outdir: pathlib.Path) -> None:
    packets = rdpcap(str(outdir / "tcp-multi-segment.pcap"))
    payloads = [bytes(p[TCP].payload) for p in packets if len(p[TCP].payload)]
    assert len(payloads) == 1
    assert len(TcpStreamDecoder().feed(payloads[0])) == 3


def test_tcp_data_transfer_sizes(outdir: pathlib.Path) -> None:
    (msgs,) = decode_pcap(outdir / "tcp-data-transfer.pcap").tcp_hits.values()
    assert [len(m.data or b"") for m in msgs] == [500, 500]


# --- issue 19: blocks of known content ------------------------------------------------------

# PROTOCOL.md's UDP data-transfer vector, as printed there.
VECTOR_HEX = (
    "efbeadde0403020197f89f800001409d051f4068656c6d6b30236f6e6669626e71227374ff12aebaebafbe"
)


def _looks_like_pe(block: bytes, size: int) -> None:
    assert len(block) == size and block[:2] == b"MZ"
    assert b"This program cannot be run in DOS mode" in block[:0x80]
    (e_lfanew,) = struct.unpack_from("<I", block, 0x3C)
    assert block[e_lfanew : e_lfanew + 4] == b"PE\0\0"


def test_udp_peer_data_content(outdir: pathlib.Path) -> None:
    """One datagram carries the whole PE-like block; a second the control message's peer."""
    (data_pkt, data), (control_pkt, control) = decode_pcap(outdir / "udp-peer-data.pcap").udp_hits
    assert not _is_fragment(data_pkt) and len(data_pkt) < 1514
    assert (data.flags, data.data_flags, data.data) == (0x8049, 1, positive.BLOCK_UDP)
    assert (data.peer_ip, data.peer_port) == positive.PEER_UDP_DATA == ("192.0.2.1", 38636)
    _looks_like_pe(positive.BLOCK_UDP, 1200)
    assert control.flags == 0x8009 and control.data is None
    assert (control.peer_ip, control.peer_port) == positive.PEER_UDP_CONTROL
    assert (data_pkt[IP].src, control_pkt[IP].src) == (pcaps.PROBER, pcaps.PROBER2)


def test_udp_data_vector_is_protocol_md(outdir: pathlib.Path) -> None:
    ((pkt, msg),) = decode_pcap(outdir / "udp-data-vector.pcap").udp_hits
    assert bytes(pkt[UDP].payload).hex() == VECTOR_HEX
    assert (msg.peer_ip, msg.peer_port, msg.data_flags, msg.data) == (
        "127.0.0.1",
        40000,
        1,
        b"hello conficker",
    )


def test_tcp_peer_data_content(outdir: pathlib.Path) -> None:
    """The same block twice, each message cut into three segments at the MSS."""
    packets = list(rdpcap(str(outdir / "tcp-peer-data.pcap")))
    sizes = [len(p[TCP].payload) for p in packets if TCP in p and len(p[TCP].payload)]
    framed = 2 + 8 + 2 + 6 + 3 + 4000 + 4
    control = 2 + 8 + 2 + 6 + 4
    rest = framed - 2 * pcaps.MSS
    assert sizes == [control, pcaps.MSS, pcaps.MSS, rest, pcaps.MSS, pcaps.MSS, rest]
    (msgs,) = decode_pcap(outdir / "tcp-peer-data.pcap").tcp_hits.values()
    first, *data = msgs
    assert first.flags == 0x800D and (first.peer_ip, first.peer_port) == positive.PEER_TCP_CONTROL
    assert len(data) == 2 and data[0].key_lo != data[1].key_lo  # two messages, one content
    for msg in data:
        assert (msg.flags, msg.data_flags, msg.data) == (0x804D, 2, positive.BLOCK_TCP)
        assert (msg.peer_ip, msg.peer_port) == positive.PEER_TCP_DATA
    _looks_like_pe(positive.BLOCK_TCP, 4000)
    assert positive.BLOCK_TCP[0x84:] == random.Random(2026).randbytes(4000 - 0x84)


ISSUE19 = ("udp-peer-data", "udp-data-vector", "tcp-peer-data")
BLOCK_KEYS = {"peer", "data_len", "data_flags", "data_head"}


def _facts_of(msg: Message) -> dict[str, str]:
    """The block facts PROTOCOL.md's layout gives a message (the engine cases' format)."""
    out = {}
    if msg.peer_ip is not None:
        out["peer"] = f"{msg.peer_ip}:{msg.peer_port}"
    if msg.data is not None:
        out["data_len"] = str(len(msg.data))
        out["data_flags"] = f"0x{msg.data_flags:02x}"
        out["data_head"] = msg.data[:16].hex()
    return out


@pytest.mark.parametrize("case", [c for c in ENGINE_CASES_ALL if c["pcap"][:-5] in ISSUE19])
def test_engine_case_block_facts_match_the_content(outdir: pathlib.Path, case: dict) -> None:
    """cases.yaml's peer and data facts (written by hand) are what the codec decodes from the
    pcap: for each rule, the facts of every message of the rule's kind and transport."""
    decoded = decode_pcap(outdir / case["pcap"])
    by_rule: dict[str, list[Message]] = defaultdict(list)
    sent = [("udp", m) for _, m in decoded.udp_hits]
    sent += [("tcp", m) for msgs in decoded.tcp_hits.values() for m in msgs]
    for proto, msg in sent:
        name = "Data_Transfer" if msg.kind == "data" else "Detected"
        by_rule[f"Conficker_P2P_{name}/{proto}"].append(msg)
    facts = case["expect"]["facts"]
    for rule, want in facts.items():
        block = {k: v for k, v in want.items() if k in BLOCK_KEYS}
        assert block, f"{rule}: no peer or data facts"
        found = [{k: v for k, v in _facts_of(m).items() if k in block} for m in by_rule[rule]]
        assert found and all(f == block for f in found), rule
        assert all(f"0x{m.flags:04x}" == want["flags"] for m in by_rule[rule])


def test_large_inputs(outdir: pathlib.Path) -> None:
    packets = rdpcap(str(outdir / "tcp-large-message.pcap"))
    (stream,) = tcp_streams(list(packets)).values()
    assert stream[:2] == b"\xff\xff" and len(stream) == 2 + 65535
    assert max(len(p[TCP].payload) for p in packets) == pcaps.MSS
    (msgs,) = decode_pcap(outdir / "tcp-large-message.pcap").tcp_hits.values()
    assert msgs[0].kind == "data"

    frags = rdpcap(str(outdir / "udp-large-fragmented.pcap"))
    assert len(frags) > 40 and all(_is_fragment(p) for p in frags)
    assert max(len(p[IP].payload) for p in frags) == 1480
    ((pkt, msg),) = decode_pcap(outdir / "udp-large-fragmented.pcap").udp_hits
    assert 64_000 <= len(pkt[UDP].payload) <= 65_507 and msg.kind == "data"


# --- (d) ports -------------------------------------------------------------------------------


def _listener_ports(ip: str, ts: float, indexes: tuple[int, ...]) -> set[int]:
    ports = codec.ports(ip, codec.epoch_week(ts))
    return {ports[i] for i in indexes}


@pytest.mark.parametrize("name", sorted(OFF_GENERATOR))
def test_messages_off_generator_ports(outdir: pathlib.Path, name: str) -> None:
    """Every message of these scenarios is on a port that is none of the listener's."""
    decoded = decode_pcap(outdir / f"{name}.pcap")
    assert decoded.udp_hits and decoded.tcp_hits
    for pkt, _ in decoded.udp_hits:
        ts = float(pkt.time)
        assert pkt[UDP].dport not in _computed(pkt[IP].dst, ts, (0, 1, 2, 3))
    for _client, _cport, server, sport in decoded.tcp_hits:
        assert sport not in codec.ports_at(server, pcaps.BASE_TS)


@pytest.mark.parametrize("name", [n for n in POSITIVE if n not in OFF_GENERATOR])
def test_positive_ports(outdir: pathlib.Path, name: str) -> None:
    """Every message travels to or from a real, non-blacklisted Conficker listener port, and the
    other end uses a non-blacklisted port too."""
    decoded = decode_pcap(outdir / f"{name}.pcap")
    for pkt, _ in decoded.udp_hits:
        ts = float(pkt.time)
        ip, udp = pkt[IP], pkt[UDP]
        to_listener = udp.dport in _listener_ports(ip.dst, ts, (1, 3))
        from_listener = udp.sport in _listener_ports(ip.src, ts, (1, 3))
        assert to_listener or from_listener
        assert not codec.is_blacklisted(udp.sport)
        assert not codec.is_blacklisted(udp.dport)

    packets = rdpcap(str(outdir / f"{name}.pcap"))
    syns = {
        (p[IP].src, p[TCP].sport, p[IP].dst, p[TCP].dport): float(p.time)
        for p in packets
        if TCP in p and p[TCP].flags == "S"
    }
    for key in decoded.tcp_hits:
        client, cport, server, sport = key if key in syns else (key[2], key[3], key[0], key[1])
        ts = syns[(client, cport, server, sport)]
        assert sport in _listener_ports(server, ts, (0, 2))
        assert not codec.is_blacklisted(sport)
        assert not codec.is_blacklisted(cport)


# --- TCP well-formedness ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [n for n in NAMES if ("tcp" in n or n.startswith("neg-")) and n not in REORDERED]
)
def test_tcp_sessions_well_formed(outdir: pathlib.Path, name: str) -> None:
    """Handshake first, every data segment acked by the peer, FIN from both ends, final ACK."""
    for pkts in _tcp_flows(outdir / f"{name}.pcap"):
        client, ack = _handshake(pkts)
        nxt = {True: ack[TCP].seq, False: ack[TCP].ack}
        acked = {True: ack[TCP].seq, False: ack[TCP].ack}
        fins = {True: False, False: False}
        for pkt in pkts[3:]:
            from_client = (pkt[IP].src, pkt[TCP].sport) == client
            tcp = pkt[TCP]
            assert tcp.seq == nxt[from_client], "out-of-order or overlapping segment"
            assert "A" in tcp.flags and tcp.ack == nxt[not from_client]
            acked[not from_client] = tcp.ack
            nxt[from_client] = (nxt[from_client] + len(tcp.payload)) & 0xFFFFFFFF
            if "F" in tcp.flags:
                fins[from_client] = True
                nxt[from_client] = (nxt[from_client] + 1) & 0xFFFFFFFF
        assert fins == {True: True, False: True}
        assert acked == nxt, "every byte and FIN acknowledged"


def _handshake(pkts: list[Packet]) -> tuple[tuple[str, int], Packet]:
    """The three-way handshake a session starts with: the client end and the final ACK."""
    syn, synack, ack = pkts[:3]
    assert syn[TCP].flags == "S" and synack[TCP].flags == "SA" and ack[TCP].flags == "A"
    assert synack[TCP].ack == (syn[TCP].seq + 1) & 0xFFFFFFFF
    assert ack[TCP].ack == (synack[TCP].seq + 1) & 0xFFFFFFFF
    return (syn[IP].src, syn[TCP].sport), ack


def _tcp_flows(path: pathlib.Path) -> list[list[Packet]]:
    flows: dict[frozenset, list[Packet]] = defaultdict(list)
    for pkt in rdpcap(str(path)):
        if TCP in pkt:
            ends = frozenset({(pkt[IP].src, pkt[TCP].sport), (pkt[IP].dst, pkt[TCP].dport)})
            flows[ends].append(pkt)
    return list(flows.values())


@pytest.mark.parametrize("name", sorted(REORDERED))
def test_tcp_reordered_sessions_well_formed(outdir: pathlib.Path, name: str) -> None:
    """Segments out of order, repeated or overlapping, but consistent TCP: after the
    handshake every segment lies inside its direction's byte range (from SYN + 1 to the FIN
    or RST), each end acks exactly the bytes it holds in sequence or fewer (never a byte not
    yet sent), and the session ends with FINs from both ends, all acked, or with a RST."""
    for pkts in _tcp_flows(outdir / f"{name}.pcap"):
        client, ack = _handshake(pkts)
        start = {True: ack[TCP].seq, False: ack[TCP].ack}
        have: dict[bool, set[int]] = {True: set(), False: set()}
        end: dict[bool, int | None] = {True: None, False: None}  # FIN or RST offset
        fins = {True: False, False: False}
        last_ack = {True: 0, False: 0}
        reset = False
        for pkt in pkts[3:]:
            assert not reset, "nothing after the RST"
            side, tcp = (pkt[IP].src, pkt[TCP].sport) == client, pkt[TCP]
            rel = _rel(tcp.seq, start[side])
            payload = len(tcp.payload)
            if end[side] is not None:  # after its FIN: only ACKs, at the FIN's seq + 1
                assert payload == 0 and rel == end[side] + 1 and fins[side]
            assert rel >= 0
            have[side].update(range(rel, rel + payload))
            if "F" in tcp.flags or "R" in tcp.flags:
                assert payload == 0 and end[side] is None
                end[side] = rel
                fins[side] = "F" in tcp.flags
                reset = "R" in tcp.flags
            assert "A" in tcp.flags
            other = not side
            in_order = next(i for i in range(len(have[other]) + 1) if i not in have[other])
            if fins[other] and in_order == end[other]:
                in_order += 1  # the FIN
            acks = _rel(tcp.ack, start[other])
            assert 0 <= acks <= in_order, "acks bytes it does not hold in sequence"
            last_ack[other] = acks
        assert all(end[side] is None or max(have[side], default=-1) < end[side] for side in end)
        if not reset:
            assert fins == {True: True, False: True}
            assert all(last_ack[side] == end[side] + 1 for side in end), "all acknowledged"


# --- TCP as real networks deliver it ---------------------------------------------------------


def _arrival_order_counts(packets: list[Packet]) -> dict[str, int]:
    """What a decoder that feeds each direction segment by segment in arrival order finds."""
    decoders: dict[FlowKey, TcpStreamDecoder] = defaultdict(TcpStreamDecoder)
    counts = dict.fromkeys(("tcp_control", "tcp_data"), 0)
    for pkt in packets:
        if TCP in pkt and len(pkt[TCP].payload):
            key = (pkt[IP].src, pkt[TCP].sport, pkt[IP].dst, pkt[TCP].dport)
            for msg in decoders[key].feed(bytes(pkt[TCP].payload)):
                counts[f"tcp_{msg.kind}"] += 1
    return counts


# Where arrival order happens to give the same counts: the bound is passed (the server's
# in-order message is what counts) or nothing is ever complete in sequence.
SAME_IN_ARRIVAL_ORDER = {
    "tcp-reorder-bytes-over",
    "tcp-reorder-segments-over",
    "neg-tcp-gap-never-fills",
}


@pytest.mark.parametrize("name", sorted(REORDERED - SAME_IN_ARRIVAL_ORDER))
def test_reordered_scenarios_need_sequence_order(outdir: pathlib.Path, name: str) -> None:
    """Each of these scenarios tells a decoder that follows sequence numbers from one that
    feeds segments as they arrive (the expect counts are not what arrival order gives)."""
    packets = list(rdpcap(str(outdir / f"{name}.pcap")))
    expect = pcaps.EXPECTED[name]
    assert _arrival_order_counts(packets) != {k: expect[k] for k in ("tcp_control", "tcp_data")}


def test_reorder_bounds_are_exact(outdir: pathlib.Path) -> None:
    """The bound scenarios sit exactly at the bound and one past it: a bound one smaller
    loses the message at the bound, one larger finds the message past it."""
    b, n = pcaps.REORDER_BYTES, pcaps.REORDER_SEGMENTS
    tighter = (Bounds(b - 1, n), Bounds(b, n - 1))
    looser = (Bounds(b + 1, n), Bounds(b, n + 1))
    for kind, less, more in zip(("bytes", "segments"), tighter, looser, strict=True):
        at = outdir / f"tcp-reorder-{kind}-limit.pcap"
        past = outdir / f"tcp-reorder-{kind}-over.pcap"
        assert decode_pcap(at).counts["tcp_control"] == 1
        assert decode_pcap(at, less).counts["tcp_control"] == 0
        assert decode_pcap(past).counts["tcp_control"] == 1  # the server's answer only
        assert decode_pcap(past, more).counts["tcp_control"] == 2
    sizes = [len(p[TCP].payload) for p in rdpcap(str(outdir / "tcp-reorder-bytes-limit.pcap"))]
    assert sum(sizes) == reassembly._HOLE + b  # one message: the hole and the bytes held


ENGINE_CASES = ENGINE_CASES_ALL
REORDERED_CASES = [c for c in ENGINE_CASES if c["pcap"].removesuffix(".pcap") in REORDERED]


def predicted_alerts(packets: list[Packet], block_tcp: bool) -> tuple[dict[str, int], int, dict]:
    """The TCP alerts, blocked packets and Detected's flags the decoder semantics give:
    Detected/tcp once per session that carries a control message (with block_tcp: a drop of
    every data segment, both directions, from the one that completes the session's first
    valid message on); Data_Transfer/tcp once per packet completing a data message."""
    tcp = reassemble(packets)
    data_packets = sum(any(m.kind == "data" for m in c.messages) for c in tcp.completed)
    first_control: dict[frozenset, Message] = {}
    first_valid: dict[frozenset, int] = {}
    for c in tcp.completed:
        ends = frozenset({c.flow[:2], c.flow[2:]})
        for msg in c.messages:
            first_valid.setdefault(ends, c.index)
            if msg.kind == "control":
                first_control.setdefault(ends, msg)
    blocked = sum(1 for i, ends in tcp.data_segments if i >= first_valid.get(ends, len(packets)))
    detected = blocked if block_tcp else len(first_control)
    alerts = {
        "Conficker_P2P_Detected/tcp": detected,
        "Conficker_P2P_Data_Transfer/tcp": data_packets,
    }
    flags = {f"0x{m.flags:04x}" for m in first_control.values()}
    return {k: v for k, v in alerts.items() if v}, blocked if block_tcp else 0, {"flags": flags}


@pytest.mark.parametrize("case", REORDERED_CASES, ids=[c["name"] for c in REORDERED_CASES])
def test_engine_cases_follow_sequence_reassembly(outdir: pathlib.Path, case: dict) -> None:
    """tests/engine/cases.yaml's expectations for these pcaps are what reassembly by sequence
    number predicts (the engine tests then hold Suricata to them)."""
    packets = list(rdpcap(str(outdir / case["pcap"])))
    block_tcp = case.get("options", {}).get("block_tcp", False)
    alerts, blocked, facts = predicted_alerts(packets, block_tcp)
    expect = case["expect"]
    assert expect.get("alerts", {}) == alerts
    assert expect.get("blocked", 0) == (blocked if case["mode"] == "ips" else 0)
    detected = expect.get("facts", {}).get("Conficker_P2P_Detected/tcp")
    if detected and not block_tcp:
        assert facts["flags"] == {detected["flags"]}
