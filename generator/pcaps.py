"""Deterministic test traffic for the Conficker C P2P detection pack.

Every scenario in SCENARIOS builds a short list of Ethernet/IPv4 packets; write_pcaps() writes
one classic pcap (linktype 1, microsecond timestamps, little-endian) per scenario. The output is
byte-for-byte reproducible: each scenario draws from its own random.Random seeded with
zlib.crc32 of its name, timestamps start at BASE_TS (2026-11-26T12:00:00Z) and advance by fixed
small steps, MAC addresses are derived from the IPv4 address, and all addresses come from the
documentation ranges 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 (plus the SSDP multicast
group in neg-services).

Positive scenarios only use real Conficker listener ports: protocol.ports(listener, week) at
the packet's time, index 1 or 3 for UDP and index 0 or 2 for TCP, from non-blacklisted ephemeral
source ports. TCP sessions have a full three-way handshake, data segments with correct seq/ack,
receiver ACKs and a FIN/ACK teardown, so Suricata's stream engine sees them as established. The
issue 13 scenarios (tcp-reorder-*, tcp-retransmit-*, tcp-repacketized, tcp-overlap-*,
tcp-spurious-retransmit, neg-tcp-gap-never-fills) send segments out of order, again, overlapping
or never (TcpSession.send_pieces), with the receiver acking only what it holds in sequence; the
session whose hole never fills ends with a RST.

Scenario.expect counts the valid messages a correct decoder finds, per transport and kind:
keys udp_control, udp_data, tcp_control, tcp_data. Negatives expect zero everywhere.
Scenario.attempts counts, per source address, what the scan count sees: UDP datagrams holding a
valid message sent to one of the destination's computed UDP ports, and TCP connections whose SYN
goes to one of its computed TCP ports (once per connection), for the packet's epoch week or,
within WEEK_SLOP seconds of a rollover, the neighbouring one.
"""

from __future__ import annotations

import ipaddress
import itertools
import pathlib
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.layers.ntp import NTPHeader
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

from generator import protocol, spec
from generator.protocol import (
    FLAG_DATA,
    FLAG_ENCODED,
    FLAG_LOCAL_ACK,
    FLAG_MODE,
    FLAG_PEER,
    FLAG_SYSINFO,
    FLAG_TCP,
    Message,
    encode,
    encode_tcp,
)

BASE_TS = 1795694400  # 2026-11-26T12:00:00Z, epoch week 2968
ROLLOVER_TS = 1795996800  # 2026-11-30T00:00:00Z, the next week rollover (Monday)
WEEK_SLOP = 900  # seconds around a rollover when the neighbouring week's ports count too
LINKTYPE_ETHERNET = 1
MSS = 1460
WINDOW = 64240
TTL = 128  # Windows hosts

EXPECT_KEYS = ("udp_control", "udp_data", "tcp_control", "tcp_data")

# Roles (all documentation addresses).
PROBER = "192.0.2.10"
PROBER2 = "192.0.2.20"
PROBER3 = "192.0.2.30"
LISTENER = "203.0.113.200"
LISTENER2 = "203.0.113.77"
LISTENER3 = "198.51.100.77"
RESOLVER = "198.51.100.53"
NTP_SERVER = "198.51.100.123"
WEB_SERVER = "203.0.113.43"
SSDP_GROUP = "239.255.255.250"
SCANNER = "192.0.2.66"
SCANNER2 = "192.0.2.67"
CLIENT = "198.51.100.20"

UDP_INDEXES = (1, 3)
TCP_INDEXES = (0, 2)


# --- scenario registry -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One pcap: its name (file stem), what it holds, how to build it and what it should yield."""

    name: str
    description: str
    build: Callable[[random.Random], list[Packet]]
    expect: dict[str, int] = field(default_factory=dict)
    large: bool = False
    attempts: dict[str, int] = field(default_factory=dict)  # source address -> attempts

    @property
    def seed(self) -> int:
        """Stable per-scenario seed (zlib.crc32 of the name; never Python's salted hash())."""
        return zlib.crc32(self.name.encode("ascii"))

    @property
    def negative(self) -> bool:
        """True when a correct detector reports nothing for this scenario."""
        return not any(self.expect.values())

    def packets(self) -> list[Packet]:
        """Build the packet list with a fresh random.Random(self.seed)."""
        return self.build(random.Random(self.seed))

    @property
    def filename(self) -> str:
        return f"{self.name}.pcap"


SCENARIOS: list[Scenario] = []


def _scenario(
    name: str, *, large: bool = False, attempts: dict[str, int] | None = None, **expect: int
) -> Callable[[Callable[[random.Random], list[Packet]]], Callable[[random.Random], list[Packet]]]:
    """Register a builder; its docstring becomes the scenario description."""
    unknown = set(expect) - set(EXPECT_KEYS)
    if unknown:
        raise ValueError(f"unknown expect keys {sorted(unknown)}")
    counts = {key: expect.get(key, 0) for key in EXPECT_KEYS}

    def register(
        build: Callable[[random.Random], list[Packet]],
    ) -> Callable[[random.Random], list[Packet]]:
        doc = " ".join((build.__doc__ or "").split())
        SCENARIOS.append(Scenario(name, doc, build, counts, large, attempts or {}))
        return build

    return register


# --- addressing helpers ----------------------------------------------------------------------


def mac_for(ip: str) -> str:
    """Fixed MAC per address: 02:00 + the four address bytes; IPv4 multicast maps per RFC 1112."""
    addr = ipaddress.IPv4Address(ip)
    raw = addr.packed
    if addr.is_multicast:
        return f"01:00:5e:{raw[1] & 0x7F:02x}:{raw[2]:02x}:{raw[3]:02x}"
    return "02:00:" + ":".join(f"{b:02x}" for b in raw)


def ephemeral_port(rng: random.Random, avoid: tuple[int, ...] = ()) -> int:
    """A random non-blacklisted port in the dynamic range 49152-65535."""
    while True:
        port = rng.randrange(49152, 65536)
        if not protocol.is_blacklisted(port) and port not in avoid:
            return port


def high_port(rng: random.Random) -> int:
    """A random non-blacklisted port in 2048-65535."""
    while True:
        port = rng.randrange(2048, 65536)
        if not protocol.is_blacklisted(port):
            return port


def listener_port(ip: str, ts: float, index: int) -> int:
    """Port `index` of host ip's Conficker listener ports in the epoch week containing ts."""
    return protocol.ports(ip, protocol.epoch_week(ts))[index]


def doc_address(rng: random.Random, taken: set[str]) -> str:
    """A fresh random host address from one of the three documentation /24 ranges."""
    while True:
        net = rng.choice(("192.0.2.", "198.51.100.", "203.0.113."))
        ip = f"{net}{rng.randrange(1, 255)}"
        if ip not in taken:
            taken.add(ip)
            return ip


def sysinfo(rng: random.Random) -> bytes:
    """A plausible 26-byte system-info block (Windows XP SP3 / Server 2003 SP2 / Vista)."""
    major, minor, build, sp = rng.choice(((5, 1, 2600, 3), (5, 2, 3790, 2), (6, 0, 6002, 2)))
    return struct.pack(
        "<HBBHBBHIHHIHH",
        rng.getrandbits(16),  # test flags
        major,
        minor,
        build,
        sp,
        0,
        rng.getrandbits(16),  # ntdll translation info
        rng.getrandbits(32),  # PRNG sample
        rng.getrandbits(16),
        rng.getrandbits(16),
        rng.getrandbits(32),
        rng.getrandbits(16),
        rng.getrandbits(16),
    )


def message(
    rng: random.Random,
    flags: int,
    *,
    peer: tuple[str, int] | None = None,
    data: bytes | None = None,
    data_flags: int = 1,
    noise: int | bytes = 0,
) -> Message:
    """A Message with a random key; the peer/data/sysinfo blocks follow the flags."""
    if flags & FLAG_PEER and peer is None:
        peer_ip = f"192.0.2.{rng.randrange(1, 255)}"
        peer = (peer_ip, listener_port(peer_ip, BASE_TS, rng.choice(UDP_INDEXES)))
    return Message(
        key_lo=rng.getrandbits(32),
        key_hi=rng.getrandbits(32),
        flags=flags,
        peer_ip=peer[0] if flags & FLAG_PEER and peer else None,
        peer_port=peer[1] if flags & FLAG_PEER and peer else None,
        data_flags=data_flags if flags & FLAG_DATA else None,
        data=(data if data is not None else rng.randbytes(200)) if flags & FLAG_DATA else None,
        sysinfo=sysinfo(rng) if flags & FLAG_SYSINFO else None,
        noise=noise if isinstance(noise, bytes) else rng.randbytes(noise),
    )


# --- packet construction ---------------------------------------------------------------------


class Trace:
    """Packets of one scenario with a deterministic clock (integer microseconds past BASE_TS)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.t_us = 0
        self.packets: list[Packet] = []
        self._ip_id: dict[str, int] = {}

    @property
    def now(self) -> float:
        return BASE_TS + self.t_us / 1_000_000

    def advance(self, seconds: float) -> None:
        self.t_us += round(seconds * 1_000_000)

    def ip_id(self, src: str) -> int:
        """Per-sender incrementing IP ID, starting at a random value."""
        value = self._ip_id.get(src)
        if value is None:
            value = self.rng.randrange(0x1000, 0xF000)
        self._ip_id[src] = (value + 1) & 0xFFFF
        return value

    def ip(self, src: str, dst: str) -> Packet:
        return Ether(src=mac_for(src), dst=mac_for(dst)) / IP(
            src=src, dst=dst, id=self.ip_id(src), ttl=TTL
        )

    def emit(self, pkt: Packet, gap: float = 0.0002) -> Packet:
        """Append pkt `gap` seconds after the previous packet (the first one at BASE_TS)."""
        if self.packets or self.t_us:
            self.advance(gap)
        pkt.time = Decimal(BASE_TS) + Decimal(self.t_us).scaleb(-6)
        self.packets.append(pkt)
        return pkt

    def udp(
        self, src: str, sport: int, dst: str, dport: int, payload: bytes, gap: float = 0.0002
    ) -> Packet:
        return self.emit(self.ip(src, dst) / UDP(sport=sport, dport=dport) / Raw(payload), gap)

    def udp_fragmented(
        self, src: str, sport: int, dst: str, dport: int, payload: bytes, fragsize: int = 1480
    ) -> list[Packet]:
        """One UDP datagram sent as IP fragments of `fragsize` bytes of IP payload."""
        whole = self.ip(src, dst) / UDP(sport=sport, dport=dport) / Raw(payload)
        frags = fragment(whole, fragsize=fragsize)
        for frag in frags:
            self.emit(frag, 0.00005)
        return frags

    def tcp(self, client: str, cport: int, server: str, sport: int) -> TcpSession:
        return TcpSession(self, client, cport, server, sport)

    def at(self, ts: float) -> None:
        """Move the clock forward to unix time ts; the next packet is sent then."""
        t_us = round((ts - BASE_TS) * 1_000_000)
        assert t_us >= self.t_us, "the clock only moves forward"
        self.t_us = t_us

    def syn(self, src: str, sport: int, dst: str, dport: int, seq: int, gap: float = 0.0) -> Packet:
        """A bare connection attempt (SYN); send it again with the same seq to retransmit."""
        tcp = TCP(
            sport=sport, dport=dport, seq=seq, flags="S", window=WINDOW, options=[("MSS", MSS)]
        )
        return self.emit(self.ip(src, dst) / tcp, gap)

    def rst(self, src: str, sport: int, dst: str, dport: int, ack: int, gap: float = 0.0) -> Packet:
        """A closed port's answer to a SYN."""
        tcp = TCP(sport=sport, dport=dport, seq=0, ack=ack, flags="RA", window=0)
        return self.emit(self.ip(src, dst) / tcp, gap)


# A piece of TcpSession.send_pieces: (start, end) or (start, other bytes), then a gap.
Piece = tuple[int, int] | tuple[int, bytes] | tuple[int, int | bytes, float]


class TcpSession:
    """A well-formed TCP connection: handshake, acked data in both directions, FIN teardown."""

    def __init__(self, trace: Trace, client: str, cport: int, server: str, sport: int) -> None:
        self.trace = trace
        self.ends = {True: (client, cport), False: (server, sport)}
        self.seq = {True: trace.rng.getrandbits(32), False: trace.rng.getrandbits(32)}

    def _segment(
        self,
        from_client: bool,
        flags: str,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ack: int | None = None,
        **kw,
    ) -> Packet:
        """A segment from one end; seq defaults to its next sequence number, ack (when the
        flags have A) to the other end's."""
        (src, sport), (dst, dport) = self.ends[from_client], self.ends[not from_client]
        if ack is None:
            ack = self.seq[not from_client] if "A" in flags else 0
        pkt = self.trace.ip(src, dst) / TCP(
            sport=sport,
            dport=dport,
            seq=self.seq[from_client] if seq is None else seq,
            ack=ack,
            flags=flags,
            window=WINDOW,
            **kw,
        )
        if payload:
            pkt = pkt / Raw(payload)
        return pkt

    def open(self) -> TcpSession:
        t = self.trace
        t.emit(self._segment(True, "S", options=[("MSS", MSS)]), 0.001)
        self.seq[True] = (self.seq[True] + 1) & 0xFFFFFFFF
        t.emit(self._segment(False, "SA", options=[("MSS", MSS)]), 0.02)
        self.seq[False] = (self.seq[False] + 1) & 0xFFFFFFFF
        t.emit(self._segment(True, "A"), 0.0002)
        return self

    def ack(self, from_client: bool) -> None:
        """A pure ACK sent by the client (from_client) or the server."""
        self.trace.emit(self._segment(from_client, "A"), 0.0002)

    def send(
        self,
        from_client: bool,
        data: bytes,
        *,
        cuts: list[int] | None = None,
        mss: int = MSS,
        ack_every: int = 2,
    ) -> None:
        """Send data as PSH/ACK segments split at `cuts` (offsets) or every `mss` bytes.

        The receiver ACKs after every `ack_every` segments and after the last one.
        """
        if cuts is None:
            cuts = list(range(mss, len(data), mss))
        bounds = [0, *cuts, len(data)]
        pieces = [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]
        for i, piece in enumerate(pieces, start=1):
            self.trace.emit(self._segment(from_client, "PA", piece), 0.0003)
            self.seq[from_client] = (self.seq[from_client] + len(piece)) & 0xFFFFFFFF
            if i % ack_every == 0 or i == len(pieces):
                self.ack(not from_client)

    def send_pieces(self, from_client: bool, data: bytes, pieces: list[Piece]) -> None:
        """Send `data`, the direction's next bytes, as segments in a chosen order.

        Each piece is (start, end): data[start:end] at its own sequence number, or (start,
        bytes): other bytes at that offset (a copy that differs from data); an optional
        third element is the gap in seconds before the segment (default 0.0003). Pieces may
        come in any order, repeat (retransmissions) and overlap. The receiver answers every
        segment with an ACK of the bytes it has in sequence (a duplicate ACK while a hole is
        open). Afterwards the direction's next sequence number is past all of `data`, sent
        or not (a piece never sent is a hole that never fills).
        """
        base = self.seq[from_client]
        have = bytearray(len(data))  # 1 where the receiver holds the byte
        for piece in pieces:
            start, what = piece[0], piece[1]
            gap = piece[2] if len(piece) > 2 else 0.0003
            payload = data[start:what] if isinstance(what, int) else what
            assert payload and start + len(payload) <= len(data), "piece outside data"
            seq = (base + start) & 0xFFFFFFFF
            self.trace.emit(self._segment(from_client, "PA", payload, seq=seq), gap)
            have[start : start + len(payload)] = b"\x01" * len(payload)
            in_order = have.find(0)
            in_order = len(data) if in_order < 0 else in_order
            ack = (base + in_order) & 0xFFFFFFFF
            self.trace.emit(self._segment(not from_client, "A", ack=ack), 0.0002)
        self.seq[from_client] = (base + len(data)) & 0xFFFFFFFF

    def abort(self, from_client: bool) -> None:
        """A RST/ACK from one end: the connection ends without FINs."""
        self.trace.emit(self._segment(from_client, "RA"), 0.002)

    def close(self) -> None:
        """Client FIN/ACK, server FIN/ACK, client ACK."""
        t = self.trace
        t.emit(self._segment(True, "FA"), 0.002)
        self.seq[True] = (self.seq[True] + 1) & 0xFFFFFFFF
        t.emit(self._segment(False, "FA"), 0.0003)
        self.seq[False] = (self.seq[False] + 1) & 0xFFFFFFFF
        t.emit(self._segment(True, "A"), 0.0002)


# --- positive scenarios ----------------------------------------------------------------------

_CONTROL = FLAG_ENCODED | FLAG_MODE  # 0x8001, a UDP probe
_TCP_CONTROL = FLAG_ENCODED | FLAG_TCP | FLAG_MODE  # 0x8005


@_scenario("udp-probe", udp_control=1, attempts={PROBER: 1})
def _udp_probe(rng: random.Random) -> list[Packet]:
    """One UDP probe (flags 0x8001, no optional blocks, no noise) from 192.0.2.10 to
    203.0.113.200's UDP listener port (index 1). A correct detector reports one UDP control
    message."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 1)
    sport = ephemeral_port(rng, (dport,))
    t.udp(PROBER, sport, LISTENER, dport, encode(message(rng, _CONTROL)))
    return t.packets


@_scenario("udp-reply-sysinfo", udp_control=2, attempts={PROBER: 1})
def _udp_reply_sysinfo(rng: random.Random) -> list[Packet]:
    """A UDP probe (0x8001) to 203.0.113.200's UDP port (index 3) and the listener's reply
    from that port back to the prober (flags 0x8089: system-info block of 26 bytes and peer
    block naming the prober, some noise). Both are control messages; a correct detector reports
    two UDP control messages (probe and reply)."""
    t = Trace(rng)
    lport = listener_port(LISTENER, t.now, 3)
    sport = ephemeral_port(rng, (lport,))
    t.udp(PROBER, sport, LISTENER, lport, encode(message(rng, _CONTROL)))
    reply = message(
        rng, _CONTROL | FLAG_SYSINFO | FLAG_PEER, peer=(PROBER, sport), noise=rng.randrange(1, 41)
    )
    t.udp(LISTENER, lport, PROBER, sport, encode(reply), gap=0.045)
    return t.packets


@_scenario("udp-data-transfer", udp_data=1, attempts={PROBER: 1})
def _udp_data_transfer(rng: random.Random) -> list[Packet]:
    """One UDP data transfer (flags 0x8049: peer block + data block of 200 bytes) from
    192.0.2.10 to 203.0.113.200's UDP port (index 1). A correct detector reports one UDP data
    message."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 1)
    sport = ephemeral_port(rng, (dport,))
    msg = message(rng, _CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(200))
    t.udp(PROBER, sport, LISTENER, dport, encode(msg))
    return t.packets


@_scenario("udp-noise", udp_control=3, attempts={PROBER: 1, PROBER2: 1, PROBER3: 1})
def _udp_noise(rng: random.Random) -> list[Packet]:
    """Three UDP probes (0x8001) from three sources (192.0.2.10/.20/.30) to three listeners
    (203.0.113.200, 203.0.113.77, 198.51.100.77) on their UDP ports (index 1, 3, 1), with
    0, then 1..40, then 1..40 random noise bytes after the checksum. A correct detector reports
    three UDP control messages."""
    t = Trace(rng)
    pairs = ((PROBER, LISTENER, 1, 0), (PROBER2, LISTENER2, 3, None), (PROBER3, LISTENER3, 1, None))
    for src, dst, index, noise in pairs:
        dport = listener_port(dst, t.now, index)
        sport = ephemeral_port(rng, (dport,))
        n = rng.randrange(1, 41) if noise is None else noise
        t.udp(src, sport, dst, dport, encode(message(rng, _CONTROL, noise=n)), gap=0.013)
    return t.packets


@_scenario("udp-burst", udp_control=12, attempts={PROBER: 12})
def _udp_burst(rng: random.Random) -> list[Packet]:
    """192.0.2.10 sends a UDP probe (0x8001, 0..40 noise bytes) to a different listener every
    60 s for 11 minutes: 12 probes at t = 0, 60, ..., 660 s, alternating UDP port index 1 and 3.
    A correct decoder finds 12 UDP control messages; with an alert threshold of
    `limit, track by_src, count 1, seconds 300` the expected alerts are at t = 0, 300 and 600."""
    t = Trace(rng)
    taken = {PROBER}
    sport = None
    for i in range(12):
        if i:
            t.advance(60 - 0.0002)  # emit() adds 0.0002: probes land exactly a minute apart
        dst = doc_address(rng, taken)
        dport = listener_port(dst, t.now, UDP_INDEXES[i % 2])
        if sport is None:
            sport = ephemeral_port(rng, (dport,))
        msg = message(rng, _CONTROL, noise=rng.randrange(0, 41))
        t.udp(PROBER, sport, dst, dport, encode(msg))
    return t.packets


@_scenario("tcp-session", tcp_control=2, attempts={PROBER: 1})
def _tcp_session(rng: random.Random) -> list[Packet]:
    """A TCP session from 192.0.2.10 to 203.0.113.200's TCP port (index 0): handshake, the
    client sends one control message (flags 0x8005, length-prefixed), the server replies with
    one control message (flags 0x8007), FIN teardown. A correct detector reports two TCP control
    messages (one per direction)."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 0)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER, dport).open()
    s.send(True, encode_tcp(message(rng, _TCP_CONTROL, noise=rng.randrange(0, 41))))
    reply = message(rng, _TCP_CONTROL | FLAG_LOCAL_ACK, noise=rng.randrange(0, 41))
    s.send(False, encode_tcp(reply))
    s.close()
    return t.packets


@_scenario("tcp-multi-segment", tcp_control=3, attempts={PROBER: 1})
def _tcp_multi_segment(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.77's TCP port (index 2) in which a single client segment
    carries three length-prefixed control messages back to back (flags 0x8005, 0x8007 with
    noise, 0x808D with peer + system-info blocks). A correct detector reports three TCP control
    messages."""
    t = Trace(rng)
    dport = listener_port(LISTENER2, t.now, 2)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER2, dport).open()
    msgs = (
        message(rng, _TCP_CONTROL),
        message(rng, _TCP_CONTROL | FLAG_LOCAL_ACK, noise=rng.randrange(1, 41)),
        message(rng, _TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO),
    )
    s.send(True, b"".join(encode_tcp(m) for m in msgs))
    s.close()
    return t.packets


@_scenario("tcp-split", tcp_control=2, attempts={PROBER: 1})
def _tcp_split(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 2) with two client control messages
    split across segments. Message 1 (flags 0x808D: peer + system-info + noise, 300 bytes with
    its length prefix) is split in the middle: segment 1 holds its first 150 bytes. Segment 2
    holds the rest of message 1 plus only the FIRST byte of message 2's 2-byte length prefix;
    segment 3 holds message 2's second length byte and body (flags 0x8005). Each segment is
    acked. A correct detector reassembles and reports two TCP control messages."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 2)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER, dport).open()
    # 2 (length) + 8 (key) + 2 (flags) + 6 (peer) + 26 (sysinfo) + 4 (checksum) = 48 + noise
    first = encode_tcp(message(rng, _TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO, noise=300 - 48))
    second = encode_tcp(message(rng, _TCP_CONTROL, noise=rng.randrange(0, 41)))
    assert len(first) == 300
    s.send(True, first + second, cuts=[150, len(first) + 1], ack_every=1)
    s.close()
    return t.packets


@_scenario("tcp-data-transfer", tcp_data=2, attempts={PROBER2: 1})
def _tcp_data_transfer(rng: random.Random) -> list[Packet]:
    """A TCP session to 198.51.100.77's TCP port (index 0) carrying two data transfers from
    client to server (flags 0x804D: peer + data block of 500 bytes), each in its own segment and
    acked. A correct detector reports two TCP data messages."""
    t = Trace(rng)
    dport = listener_port(LISTENER3, t.now, 0)
    s = t.tcp(PROBER2, ephemeral_port(rng, (dport,)), LISTENER3, dport).open()
    for _ in range(2):
        msg = message(rng, _TCP_CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(500))
        s.send(True, encode_tcp(msg))
    s.close()
    return t.packets


# --- TCP segments as real networks deliver them ----------------------------------------------
# Out of order, retransmitted, repacketized, overlapping, or never. A correct decoder follows
# each direction by sequence number from the handshake: bytes before the next expected number
# are ignored (the first copy of a byte wins), bytes beyond a hole are held until it fills, at
# most REORDER_BYTES bytes in REORDER_SEGMENTS pieces per direction (a piece: what is left of
# one arriving segment after trimming bytes already held or fed); a segment that would take a
# direction past either bound abandons that direction (nothing more of it is decoded; the
# session is not marked as not-Conficker).

_DECODER = spec.load().decoder
REORDER_BYTES: int = getattr(_DECODER, "reorder_bytes", 8192)
REORDER_SEGMENTS: int = getattr(_DECODER, "reorder_segments", 8)
RTO = 0.2  # seconds before a retransmission (Linux's minimum retransmission timeout)
_TCP_DATA = _TCP_CONTROL | FLAG_PEER | FLAG_DATA  # 0x804D


def framed(rng: random.Random, flags: int, size: int, *, data: int = 0) -> bytes:
    """A length-prefixed TCP message of exactly `size` bytes: flags' blocks (a data block of
    `data` random bytes when flags has FLAG_DATA), then random noise to fill it."""
    fixed = 2 + protocol.MIN_MESSAGE
    fixed += 6 if flags & FLAG_PEER else 0
    fixed += protocol.SYSINFO_SIZE if flags & FLAG_SYSINFO else 0
    fixed += 3 + data if flags & FLAG_DATA else 0
    assert size >= fixed, "message too small for its blocks"
    payload = rng.randbytes(data) if flags & FLAG_DATA else None
    out = encode_tcp(message(rng, flags, data=payload, noise=size - fixed))
    assert len(out) == size
    return out


def corrupt(data: bytes) -> bytes:
    """The same number of bytes, every one different."""
    return bytes(b ^ 0x5A for b in data)


def _frames_valid(stream: bytes) -> bool:
    """True when the stream is whole, valid length-prefixed messages and nothing else."""
    decoder = protocol.TcpStreamDecoder()
    decoder.feed(stream)
    return not decoder.failed and not decoder.buffer


def _session(t: Trace, listener: str, index: int) -> TcpSession:
    dport = listener_port(listener, t.now, index)
    return t.tcp(PROBER, ephemeral_port(t.rng, (dport,)), listener, dport).open()


@_scenario("tcp-reorder-first-segment", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_first_segment(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 0) whose client sends one control
    message (flags 0x808D: peer + system-info + noise, 300 bytes with its length prefix) in
    two segments that arrive in the wrong order: bytes 150-299 first, then bytes 0-149 (the
    direction's first segment arrives second: the first bytes that arrive do not start a
    frame). A correct detector holds the second part and reports one TCP control message, on
    the packet that fills the hole."""
    t = Trace(rng)
    s = _session(t, LISTENER, 0)
    msg = framed(rng, _TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO, 300)
    s.send_pieces(True, msg, [(150, 300), (0, 150)])
    s.close()
    return t.packets


@_scenario("tcp-reorder-middle", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_reorder_middle(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.77's TCP port (index 2): the client sends a control
    message (0x8005, 40 bytes) in its own segment, then a data transfer (0x804D, data block of
    600 bytes, 640 bytes framed) in three segments of which the third arrives before the second
    (bytes 40-239, 480-679, then 240-479). A correct detector reports one TCP control and one
    TCP data message, the data transfer on the packet that fills the hole."""
    t = Trace(rng)
    s = _session(t, LISTENER2, 2)
    ctl = framed(rng, _TCP_CONTROL, 40)
    data = framed(rng, _TCP_DATA, 640, data=600)
    stream = ctl + data
    s.send_pieces(True, stream, [(0, 40), (40, 240), (480, 680), (240, 480)])
    s.close()
    return t.packets


@_scenario("tcp-retransmit-exact", tcp_control=1, tcp_data=2, attempts={PROBER: 1})
def _tcp_retransmit_exact(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 2) whose client sends a control
    message (0x8005) and two data transfers (0x804D, 300 data bytes each), each in its own
    segment; the control message's segment and the first data transfer's are each sent again
    (same seq, same bytes) 0.2 s after the receiver acked them (spurious retransmissions):
    segments C, C, D1, D1, D2. A correct detector reports one TCP control message and two TCP
    data messages (D1 once, on its first copy; the retransmissions are neither new messages
    nor a reason to stop decoding)."""
    t = Trace(rng)
    s = _session(t, LISTENER, 2)
    ctl = framed(rng, _TCP_CONTROL, 60)
    d1 = framed(rng, _TCP_DATA, 340, data=300)
    d2 = framed(rng, _TCP_DATA, 340, data=300)
    a, b = len(ctl), len(ctl) + len(d1)
    pieces: list[Piece] = [(0, a), (0, a, RTO), (a, b), (a, b, RTO), (b, b + len(d2))]
    s.send_pieces(True, ctl + d1 + d2, pieces)
    s.close()
    return t.packets


@_scenario("tcp-retransmit-partial", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_retransmit_partial(rng: random.Random) -> list[Packet]:
    """A TCP session to 198.51.100.77's TCP port (index 0): the client's stream is a control
    message (0x8005, 100 bytes framed) and a data transfer (0x804D, 400 data bytes, 440 framed).
    Segment 1 holds bytes 0-249 (the control message and the start of the data transfer); 0.2 s
    later bytes 60-159 are sent again (part of segment 1: the end of the control message and
    the data transfer's first bytes); segment 2 holds bytes 250-539. A correct detector ignores
    the already-seen bytes and reports one TCP control and one TCP data message."""
    t = Trace(rng)
    s = _session(t, LISTENER3, 0)
    stream = framed(rng, _TCP_CONTROL, 100) + framed(rng, _TCP_DATA, 440, data=400)
    s.send_pieces(True, stream, [(0, 250), (60, 160, RTO), (250, 540)])
    s.close()
    return t.packets


@_scenario("tcp-repacketized", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_repacketized(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 0): the client's stream is a control
    message (0x8005, 100 bytes framed) and a data transfer (0x804D, 400 data bytes, 440 framed).
    Segment 1 holds bytes 0-249; 0.2 s later one repacketized segment resends bytes 150-249
    together with the new bytes 250-539 that complete the data transfer. A correct detector
    feeds only the new bytes and reports one TCP control and one TCP data message."""
    t = Trace(rng)
    s = _session(t, LISTENER, 0)
    stream = framed(rng, _TCP_CONTROL, 100) + framed(rng, _TCP_DATA, 440, data=400)
    s.send_pieces(True, stream, [(0, 250), (150, 540, RTO)])
    s.close()
    return t.packets


@_scenario("tcp-overlap-fed-first", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_overlap_fed_first(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.77's TCP port (index 0): the client's stream is a control
    message (0x8005, 60 bytes framed) and a data transfer (0x804D, 400 data bytes, 440 framed).
    Segment 1 holds bytes 0-259, in sequence. Segment 2 starts at byte 160 and runs to the end,
    but its copy of bytes 160-259 (inside the data block) differs from segment 1's: the data
    transfer is valid only with the first copy. A correct detector keeps the first copy and
    reports one TCP control and one TCP data message."""
    t = Trace(rng)
    s = _session(t, LISTENER2, 0)
    stream = framed(rng, _TCP_CONTROL, 60) + framed(rng, _TCP_DATA, 440, data=400)
    later = corrupt(stream[160:260]) + stream[260:]
    assert not _frames_valid(stream[:160] + later), "the later copy must spoil the message"
    s.send_pieces(True, stream, [(0, 260), (160, later)])
    s.close()
    return t.packets


@_scenario("tcp-overlap-held-first", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_overlap_held_first(rng: random.Random) -> list[Packet]:
    """A TCP session to 198.51.100.77's TCP port (index 2): the client's stream is a control
    message (0x8005, 60 bytes framed, its own segment) and a data transfer (0x804D, 400 data
    bytes, 440 framed). Then, beyond a hole, bytes 260-499 arrive (held); then a segment with
    bytes 160-499 whose bytes 160-259 are new and whose copy of 260-499 differs from the one
    held; then bytes 60-159 fill the hole. The data transfer is valid only with the first
    copy of every byte. A correct detector keeps the first held copy and reports one TCP
    control and one TCP data message, on the packet that fills the hole."""
    t = Trace(rng)
    s = _session(t, LISTENER3, 2)
    stream = framed(rng, _TCP_CONTROL, 60) + framed(rng, _TCP_DATA, 440, data=400)
    later = stream[160:260] + corrupt(stream[260:])
    assert not _frames_valid(stream[:160] + later), "the later copy must spoil the message"
    s.send_pieces(True, stream, [(0, 60), (260, 500), (160, later), (60, 160)])
    s.close()
    return t.packets


@_scenario("tcp-spurious-retransmit", tcp_control=1, tcp_data=1, attempts={PROBER: 1})
def _tcp_spurious_retransmit(rng: random.Random) -> list[Packet]:
    """Issue 13's report: a TCP session to 203.0.113.200's TCP port (index 2) whose client
    sends a control message (0x8005, 200 bytes framed) in two segments (bytes 0-99, 100-199),
    both acked; 0.2 s later the first segment is sent again (a spurious retransmission: its
    length prefix would start a 200-byte frame if fed again); then a data transfer (0x804D,
    500 data bytes) in its own segment. A correct detector reports one TCP control and one TCP
    data message."""
    t = Trace(rng)
    s = _session(t, LISTENER, 2)
    stream = framed(rng, _TCP_CONTROL, 200) + framed(rng, _TCP_DATA, 540, data=500)
    s.send_pieces(True, stream, [(0, 100), (100, 200), (0, 100, RTO), (200, 740)])
    s.close()
    return t.packets


_HOLE = 40  # the first segment of a reorder-bound message: length prefix, key, flags, checksum


def _bound_bytes(rng: random.Random, held: int, listener: str, index: int) -> list[Packet]:
    """One control message (0x8005, noise filling it) of _HOLE + `held` bytes: its first
    _HOLE bytes are the hole, the rest arrive first in MSS-sized segments, then the hole fills.
    Past REORDER_BYTES held, the server then answers with a control message of its own."""
    t = Trace(rng)
    s = _session(t, listener, index)
    msg = framed(rng, _TCP_CONTROL, _HOLE + held)
    starts = list(range(_HOLE, len(msg), MSS))
    pieces: list[Piece] = [(a, min(a + MSS, len(msg))) for a in starts]
    assert len(pieces) <= REORDER_SEGMENTS
    s.send_pieces(True, msg, [*pieces, (0, _HOLE)])
    if held > REORDER_BYTES:
        s.send(False, framed(rng, _TCP_CONTROL | FLAG_LOCAL_ACK, 60))
    s.close()
    return t.packets


@_scenario("tcp-reorder-bytes-limit", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_bytes_limit(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 0) whose client sends one control
    message (0x8005, 8232 bytes framed, nearly all noise) whose first 40 bytes arrive last:
    the 8192 bytes behind them come first, in 6 segments, exactly the decoder's bound of held
    bytes (decoder.reorder_bytes). A correct detector holds them all and reports one TCP
    control message, on the packet that fills the hole."""
    return _bound_bytes(rng, REORDER_BYTES, LISTENER, 0)


@_scenario("tcp-reorder-bytes-over", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_bytes_over(rng: random.Random) -> list[Packet]:
    """As tcp-reorder-bytes-limit (to 203.0.113.77's TCP port, index 0), but the client's
    message is one byte longer: 8193 bytes arrive ahead of the hole, one past the bound. Its
    last held segment abandons the client direction: the message is not reported, and the
    session is not marked as not-Conficker, so the server's answer that follows (flags 0x8007,
    in sequence) is. A correct detector reports one TCP control message (the server's)."""
    return _bound_bytes(rng, REORDER_BYTES + 1, LISTENER2, 0)


def _bound_pieces(rng: random.Random, held: int, listener: str, index: int) -> list[Packet]:
    """One control message (0x808D, peer + system-info + noise) in 1 + `held` segments of 50
    bytes: the first is the hole, the others arrive first, last one first, then the hole
    fills. Past REORDER_SEGMENTS pieces, the server then answers with a control message."""
    t = Trace(rng)
    s = _session(t, listener, index)
    msg = framed(rng, _TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO, 50 * (1 + held))
    pieces: list[Piece] = [(50 * i, 50 * i + 50) for i in range(held, 0, -1)]
    assert sum(b - a for a, b in pieces) <= REORDER_BYTES
    s.send_pieces(True, msg, [*pieces, (0, 50)])
    if held > REORDER_SEGMENTS:
        s.send(False, framed(rng, _TCP_CONTROL | FLAG_LOCAL_ACK, 60))
    s.close()
    return t.packets


@_scenario("tcp-reorder-segments-limit", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_segments_limit(rng: random.Random) -> list[Packet]:
    """A TCP session to 198.51.100.77's TCP port (index 0) whose client sends one control
    message (0x808D, 450 bytes framed) as nine 50-byte segments: the last eight arrive first,
    in reverse order, exactly the decoder's bound of held pieces (decoder.reorder_segments),
    then the first. A correct detector reports one TCP control message, on the packet that
    fills the hole."""
    return _bound_pieces(rng, REORDER_SEGMENTS, LISTENER3, 0)


@_scenario("tcp-reorder-segments-over", tcp_control=1, attempts={PROBER: 1})
def _tcp_reorder_segments_over(rng: random.Random) -> list[Packet]:
    """As tcp-reorder-segments-limit (to 203.0.113.200's TCP port, index 2), but the message
    (500 bytes framed) is ten segments: nine arrive ahead of the hole, one piece past the
    bound. The ninth abandons the client direction: the message is not reported, and the
    session is not marked as not-Conficker, so the server's answer that follows (flags
    0x8007, in sequence) is. A correct detector reports one TCP control message (the
    server's)."""
    return _bound_pieces(rng, REORDER_SEGMENTS + 1, LISTENER, 2)


@_scenario("neg-tcp-gap-never-fills", attempts={PROBER: 1})
def _neg_tcp_gap_never_fills(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.77's TCP port (index 2) whose client stream is a control
    message (0x8005, 200 bytes framed) and a data transfer (0x804D, 300 data bytes, 340
    framed), but the segment with bytes 0-49 is never sent: bytes 50-199 and then the whole
    data transfer (bytes 200-539, frame-aligned and valid on its own) arrive beyond the hole;
    the receiver keeps acking byte 0; the client gives up with a RST. A correct detector
    reports nothing (held bytes are never decoded) and raises no error."""
    t = Trace(rng)
    s = _session(t, LISTENER2, 2)
    stream = framed(rng, _TCP_CONTROL, 200) + framed(rng, _TCP_DATA, 340, data=300)
    assert _frames_valid(stream[200:])
    s.send_pieces(True, stream, [(50, 200), (200, 540), (200, 540, RTO)])
    s.abort(True)
    return t.packets


# --- scanning --------------------------------------------------------------------------------


def other_high_port(rng: random.Random, ip: str, ts: float) -> int:
    """A non-blacklisted high port that is none of ip's computed ports around ts."""
    weeks = {protocol.epoch_week(ts + d) for d in (-WEEK_SLOP, 0, WEEK_SLOP)}
    computed = {p for w in weeks for p in protocol.ports(ip, w)}
    while True:
        port = high_port(rng)
        if port not in computed:
            return port


@_scenario("scan-sweep", udp_control=5, attempts={SCANNER: 11})
def _scan_sweep(rng: random.Random) -> list[Packet]:
    """192.0.2.66 looks for peers, one attempt every 2 s: bare SYNs to the computed TCP port
    (index 0 or 2) of 6 fresh addresses, two of them retransmitted 3 s later with the same seq
    (same connection) and one answered by a RST; UDP probes (0x8001) to the computed UDP port
    (index 1 or 3) of 5 fresh addresses. Not attempts: a SYN to a fresh address's
    non-computed high port, a SYN to a fresh address's computed UDP port (index 1), a datagram
    of random bytes to a fresh address's computed UDP port (no message) and one to a fresh
    address's computed TCP port. A correct
    detector reports 5 UDP control messages and counts 11 attempts (6 connections, 5 datagrams)."""
    t = Trace(rng)
    taken = {SCANNER}
    retransmit = []
    for i in range(6):
        dst = doc_address(rng, taken)
        dport = listener_port(dst, t.now, TCP_INDEXES[i % 2])
        sport, seq = ephemeral_port(rng, (dport,)), rng.getrandbits(32)
        t.syn(SCANNER, sport, dst, dport, seq, gap=2)
        if i in (1, 4):
            retransmit.append((sport, dst, dport, seq))
        if i == 2:
            t.rst(dst, dport, SCANNER, sport, (seq + 1) & 0xFFFFFFFF, gap=0.03)
    for sport, dst, dport, seq in retransmit:
        t.syn(SCANNER, sport, dst, dport, seq, gap=3)
    for i in range(5):
        dst = doc_address(rng, taken)
        dport = listener_port(dst, t.now, UDP_INDEXES[i % 2])
        msg = message(rng, _CONTROL, noise=rng.randrange(0, 41))
        t.udp(SCANNER, ephemeral_port(rng, (dport,)), dst, dport, encode(msg), gap=2)
    dst = doc_address(rng, taken)
    t.syn(SCANNER, ephemeral_port(rng), dst, other_high_port(rng, dst, t.now), 1, gap=2)
    dst = doc_address(rng, taken)
    udp_port = listener_port(dst, t.now, 1)
    assert udp_port not in protocol.ports_at(dst, t.now)[0::2]
    t.syn(SCANNER, ephemeral_port(rng), dst, udp_port, 2, gap=2)
    dst = doc_address(rng, taken)
    t.udp(SCANNER, ephemeral_port(rng), dst, listener_port(dst, t.now, 3), rng.randbytes(40), 2)
    dst = doc_address(rng, taken)
    tcp_port = listener_port(dst, t.now, 0)
    assert tcp_port not in protocol.ports_at(dst, t.now)[1::2]
    t.udp(SCANNER, ephemeral_port(rng), dst, tcp_port, rng.randbytes(120), gap=2)
    return t.packets


def _weekly_tcp_port(ip: str, ts: float, weeks: int) -> int:
    """ip's weekly TCP port (index 2) in the epoch week `weeks` away from ts's."""
    return protocol.ports(ip, protocol.epoch_week(ts) + weeks)[2]


@_scenario("scan-week-rollover", udp_control=1, attempts={SCANNER2: 10})
def _scan_week_rollover(rng: random.Random) -> list[Packet]:
    """192.0.2.67, whose clock drifts, scans across the week rollover of Monday 2026-11-30
    00:00 UTC (R). Bare SYNs, each to a fresh address's weekly TCP port (index 2), which differs
    from week to week: at R-1200 s, 2 to next week's port (20 minutes early: not counted);
    at R-600, 3 to this week's (counted); at R-300, 2 to next week's (within the 15-minute
    slop: counted); at R+300, 2 to the previous week's (within the slop: counted); at R+600,
    2 to the new week's (counted); at R+1200, 2 to the previous week's (not counted); then at
    R+1210 one UDP probe (0x8001) to a fresh address's fixed UDP port (index 1, the same every
    week: counted). A correct detector reports 1 UDP control message and counts 10 attempts."""
    t = Trace(rng)
    taken = {SCANNER2}
    plan = ((-1200, 2, +1), (-600, 3, 0), (-300, 2, +1), (300, 2, -1), (600, 2, 0), (1200, 2, -1))
    for offset, count, weeks in plan:
        t.at(ROLLOVER_TS + offset)
        for _ in range(count):
            dst = doc_address(rng, taken)
            dport = _weekly_tcp_port(dst, t.now, weeks)
            assert len({_weekly_tcp_port(dst, t.now, w) for w in (-1, 0, 1)}) == 3
            t.syn(SCANNER2, ephemeral_port(rng, (dport,)), dst, dport, rng.getrandbits(32), 0.5)
    t.at(ROLLOVER_TS + 1210)
    dst = doc_address(rng, taken)
    dport = listener_port(dst, t.now, 1)
    t.udp(SCANNER2, ephemeral_port(rng, (dport,)), dst, dport, encode(message(rng, _CONTROL)))
    return t.packets


@_scenario("p2p-other-ports", udp_control=1, tcp_control=1)
def _p2p_other_ports(rng: random.Random) -> list[Packet]:
    """Conficker messages on ports the generator does not give the listener (a peer behind a
    port-forwarding NAT): a UDP probe (0x8001) from 192.0.2.10 to 203.0.113.200 on a
    non-blacklisted high port that is none of its computed ports, and a TCP session from
    192.0.2.20 to 198.51.100.77 on such a port carrying one control message (0x8005). A correct
    detector reports one UDP and one TCP control message, neither on a computed port, and
    counts no attempt."""
    t = Trace(rng)
    dport = other_high_port(rng, LISTENER, t.now)
    t.udp(PROBER, ephemeral_port(rng, (dport,)), LISTENER, dport, encode(message(rng, _CONTROL)))
    dport = other_high_port(rng, LISTENER3, t.now)
    s = t.tcp(PROBER2, ephemeral_port(rng, (dport,)), LISTENER3, dport).open()
    s.send(True, encode_tcp(message(rng, _TCP_CONTROL)))
    s.close()
    return t.packets


# --- negative scenarios ----------------------------------------------------------------------


@_scenario("neg-bad-checksum", attempts={PROBER: 1})
def _neg_bad_checksum(rng: random.Random) -> list[Packet]:
    """Conficker-shaped traffic on real listener ports whose checksums are wrong (low bit
    flipped): three UDP datagrams (probe 0x8001, reply 0x8089 with noise, data transfer 0x8049)
    and a TCP session carrying a 0x8005 control message and a 0x804D data transfer. A correct
    detector reports nothing."""
    t = Trace(rng)
    udp_msgs = (
        message(rng, _CONTROL),
        message(rng, _CONTROL | FLAG_PEER | FLAG_SYSINFO, noise=rng.randrange(1, 41)),
        message(rng, _CONTROL | FLAG_PEER | FLAG_DATA),
    )
    for i, msg in enumerate(udp_msgs):
        dport = listener_port(LISTENER, t.now, UDP_INDEXES[i % 2])
        sport = ephemeral_port(rng, (dport,))
        t.udp(PROBER, sport, LISTENER, dport, encode(msg, bad_checksum=True), gap=0.01)
    dport = listener_port(LISTENER2, t.now, 0)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER2, dport).open()
    s.send(True, encode_tcp(message(rng, _TCP_CONTROL), bad_checksum=True))
    data = message(rng, _TCP_CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(300))
    s.send(True, encode_tcp(data, bad_checksum=True))
    s.close()
    return t.packets


@_scenario("neg-truncated", attempts={PROBER: 1, PROBER2: 1})
def _neg_truncated(rng: random.Random) -> list[Packet]:
    """Valid messages with missing bytes, on real listener ports: three UDP datagrams holding
    a noise-free message (peer + system-info, data transfer, peer + system-info) cut short by
    1, 4 and 10 bytes; one TCP session whose length prefix is correct but the stream ends 10
    bytes before the message does; one TCP session whose prefix announces 1024 bytes but only a
    complete 48-byte message follows before FIN. A correct detector reports nothing."""
    t = Trace(rng)
    udp_msgs = (
        message(rng, _CONTROL | FLAG_PEER | FLAG_SYSINFO),
        message(rng, _CONTROL | FLAG_PEER | FLAG_DATA),
        message(rng, _CONTROL | FLAG_PEER | FLAG_SYSINFO),
    )
    for i, (msg, cut) in enumerate(zip(udp_msgs, (1, 4, 10), strict=True)):
        dport = listener_port(LISTENER, t.now, UDP_INDEXES[i % 2])
        sport = ephemeral_port(rng, (dport,))
        t.udp(PROBER, sport, LISTENER, dport, encode(msg)[:-cut], gap=0.01)

    dport = listener_port(LISTENER2, t.now, 0)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER2, dport).open()
    framed = encode_tcp(message(rng, _TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO, noise=20))
    s.send(True, framed[:-10])
    s.close()

    dport = listener_port(LISTENER3, t.now, 2)
    s = t.tcp(PROBER2, ephemeral_port(rng, (dport,)), LISTENER3, dport).open()
    body = encode(message(rng, _TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO))
    s.send(True, struct.pack("<H", 1024) + body)
    s.close()
    return t.packets


@_scenario("neg-random-udp")
def _neg_random_udp(rng: random.Random) -> list[Packet]:
    """200 UDP datagrams of random bytes (14-1400 bytes) between random documentation hosts,
    from and to random non-blacklisted ports >= 2048. A correct detector reports nothing."""
    t = Trace(rng)
    for _ in range(200):
        taken: set[str] = set()
        src, dst = doc_address(rng, taken), doc_address(rng, taken)
        payload = rng.randbytes(rng.randrange(14, 1401))
        t.udp(src, high_port(rng), dst, high_port(rng), payload, gap=0.003)
    return t.packets


def _dns_query(qid: int, name: str, qtype: int) -> bytes:
    return bytes(DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype=qtype)))


def _dns_answer(qid: int, name: str, qtype: int, rdata: bytes | str) -> bytes:
    answer = DNSRR(rrname=name, type=qtype, ttl=300, rdata=rdata)
    return bytes(DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype=qtype), an=answer))


@_scenario("neg-services")
def _neg_services(rng: random.Random) -> list[Packet]:
    """Ordinary UDP services: DNS A/AAAA/TXT queries and answers (client ports 1024-65535 to
    port 53, among them one from a high non-blacklisted client port), NTPv4 client/server
    exchanges (port 123), an SSDP M-SEARCH to 239.255.255.250:1900, and QUIC-like Initial
    packets (1200 bytes, first byte 0xc0-0xff) to and from UDP 443 on a non-blacklisted client
    port. A correct detector reports nothing."""
    t = Trace(rng)
    client = PROBER
    names = (
        ("www.example.com", 1, "203.0.113.43"),
        ("mail.example.org", 28, "2001:db8::25"),
        ("example.net", 16, [b"v=spf1 -all ok!"]),
    )
    for i, (name, qtype, rdata) in enumerate(names):
        sport = rng.randrange(1024, 65536)
        if i == 2:
            sport = ephemeral_port(rng)  # high, non-blacklisted client port
        qid = rng.getrandbits(16)
        t.udp(client, sport, RESOLVER, 53, _dns_query(qid, name, qtype), gap=0.01)
        t.udp(RESOLVER, 53, client, sport, _dns_answer(qid, name, qtype, rdata), gap=0.012)

    for sport in (123, ephemeral_port(rng)):
        xmit = rng.getrandbits(64)
        request = NTPHeader(
            version=4, mode=3, poll=6, precision=-20, ref=0, orig=0, recv=0, sent=xmit
        )
        t.udp(client, sport, NTP_SERVER, 123, bytes(request), gap=0.01)
        reply = NTPHeader(
            version=4,
            mode=4,
            stratum=2,
            poll=6,
            precision=-23,
            id="198.51.100.1",
            ref=rng.getrandbits(64),
            orig=xmit,
            recv=rng.getrandbits(64),
            sent=rng.getrandbits(64),
        )
        t.udp(NTP_SERVER, 123, client, sport, bytes(reply), gap=0.02)

    msearch = (
        b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n'
        b"MX: 1\r\nST: ssdp:all\r\n\r\n"
    )
    t.udp(client, ephemeral_port(rng), SSDP_GROUP, 1900, msearch, gap=0.01)

    qport = ephemeral_port(rng)
    dcid = rng.randbytes(8)
    for to_server in (True, True, False, False):
        first = rng.randrange(0xC0, 0x100)
        header = bytes([first]) + struct.pack("!I", 1) + b"\x08" + dcid + b"\x00"
        payload = header + rng.randbytes(1200 - len(header))
        if to_server:
            t.udp(client, qport, WEB_SERVER, 443, payload, gap=0.005)
        else:
            t.udp(WEB_SERVER, 443, client, qport, payload, gap=0.015)
    return t.packets


@_scenario("neg-random-tcp")
def _neg_random_tcp(rng: random.Random) -> list[Packet]:
    """10 complete TCP sessions between random documentation hosts on random non-blacklisted
    ports >= 2048, each carrying 3-6 segments of random bytes (20-1400 bytes) in both
    directions. A correct detector reports nothing."""
    t = Trace(rng)
    for _ in range(10):
        taken: set[str] = set()
        src, dst = doc_address(rng, taken), doc_address(rng, taken)
        s = t.tcp(src, high_port(rng), dst, high_port(rng)).open()
        for i in range(rng.randrange(3, 7)):
            s.send(i % 2 == 0, rng.randbytes(rng.randrange(20, 1401)))
        s.close()
        t.advance(0.05)
    return t.packets


@_scenario("neg-benign-computed-ports", attempts={CLIENT: 3})
def _neg_benign_computed_ports(rng: random.Random) -> list[Packet]:
    """198.51.100.20 uses two services of 203.0.113.43 that happen to listen on that host's
    fixed Conficker ports: three short TCP sessions (an HTTP-like request and response each) to
    its TCP port (index 0), and four UDP request/response exchanges (random application bytes,
    40-200 each way) to its UDP port (index 1). The three connections are attempts on computed
    ports, below the default scan threshold of 10; the datagrams hold no Conficker message and
    are not. A correct detector reports nothing."""
    t = Trace(rng)
    tport = listener_port(WEB_SERVER, t.now, 0)
    for i in range(3):
        s = t.tcp(CLIENT, ephemeral_port(rng, (tport,)), WEB_SERVER, tport).open()
        s.send(True, f"GET /status/{i} HTTP/1.1\r\nHost: app.example\r\n\r\n".encode())
        s.send(False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        s.close()
        t.advance(5)
    uport = listener_port(WEB_SERVER, t.now, 1)
    cport = ephemeral_port(rng, (uport,))
    for _ in range(4):
        t.udp(CLIENT, cport, WEB_SERVER, uport, rng.randbytes(rng.randrange(40, 201)), gap=3)
        t.udp(WEB_SERVER, uport, CLIENT, cport, rng.randbytes(rng.randrange(40, 201)), gap=0.01)
    return t.packets


# --- large inputs ----------------------------------------------------------------------------


@_scenario("tcp-large-message", large=True, tcp_data=1, attempts={PROBER: 1})
def _tcp_large_message(rng: random.Random) -> list[Packet]:
    """A TCP session to 203.0.113.200's TCP port (index 0) carrying one message of exactly
    65535 bytes (length prefix 0xFFFF; flags 0x804D, data block of 65512 bytes filling it),
    sent as 1460-byte segments, the server ACKing every second segment. A correct detector
    reports one TCP data message and must not hit Lua memory or instruction limits."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 0)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER, dport).open()
    # 8 (key) + 2 (flags) + 6 (peer) + 3 (data header) + L + 4 (checksum) = 65535
    msg = message(rng, _TCP_CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(65535 - 23))
    framed = encode_tcp(msg)
    assert framed[:2] == b"\xff\xff" and len(framed) == 65537
    s.send(True, framed)
    s.close()
    return t.packets


@_scenario("udp-large-fragmented", large=True, udp_data=1, attempts={PROBER: 1})
def _udp_large_fragmented(rng: random.Random) -> list[Packet]:
    """One UDP datagram of 65000 payload bytes to 203.0.113.200's UDP port (index 3) holding
    a valid data transfer (flags 0x8049, data block of 64977 bytes), sent as 44 IP fragments of
    at most 1480 bytes. A correct detector (after IP defragmentation) reports one UDP data
    message and must not hit Lua limits."""
    t = Trace(rng)
    dport = listener_port(LISTENER, t.now, 3)
    sport = ephemeral_port(rng, (dport,))
    # 8 (key) + 2 (flags) + 6 (peer) + 3 (data header) + L + 4 (checksum) = 65000
    msg = message(rng, _CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(65000 - 23))
    payload = encode(msg)
    assert len(payload) == 65000
    t.udp_fragmented(PROBER, sport, LISTENER, dport, payload)
    return t.packets


# --- output ----------------------------------------------------------------------------------

EXPECTED: dict[str, dict[str, int]] = {s.name: dict(s.expect) for s in SCENARIOS}


def by_name(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)


def write_pcap(path: pathlib.Path, packets: list[Packet]) -> pathlib.Path:
    """Write packets as a classic little-endian microsecond pcap with linktype 1."""
    writer = PcapWriter(str(path), linktype=LINKTYPE_ETHERNET, endianness="<", sync=False)
    try:
        for pkt in packets:
            writer.write(pkt)
    finally:
        writer.close()
    return path


def write_pcaps(outdir: pathlib.Path) -> list[pathlib.Path]:
    """Write one <outdir>/<name>.pcap per scenario (creating outdir); return the paths."""
    outdir = pathlib.Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return [write_pcap(outdir / s.filename, s.packets()) for s in SCENARIOS]
