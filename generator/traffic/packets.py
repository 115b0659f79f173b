"""Building blocks of the test traffic: the roles' addresses, the base times, addressing
helpers, Conficker messages (message(), framed()), and packet construction: a Trace of
timestamped Ethernet/IPv4 packets and a TcpSession with handshake, data, ACKs and teardown.
write_pcap() writes one classic pcap. The scenarios (positive.py, reassembly.py, ...) are
built from these."""

from __future__ import annotations

import ipaddress
import itertools
import pathlib
import random
import struct
from decimal import Decimal

from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter

from .. import codec
from ..codec import (
    FLAG_DATA,
    FLAG_ENCODED,
    FLAG_MODE,
    FLAG_PEER,
    FLAG_SYSINFO,
    FLAG_TCP,
    Message,
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

CONTROL = FLAG_ENCODED | FLAG_MODE  # 0x8001, a UDP probe
TCP_CONTROL = FLAG_ENCODED | FLAG_TCP | FLAG_MODE  # 0x8005


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
        if not codec.is_blacklisted(port) and port not in avoid:
            return port


def high_port(rng: random.Random) -> int:
    """A random non-blacklisted port in 2048-65535."""
    while True:
        port = rng.randrange(2048, 65536)
        if not codec.is_blacklisted(port):
            return port


def listener_port(ip: str, ts: float, index: int) -> int:
    """Port `index` of host ip's Conficker listener ports in the epoch week containing ts."""
    return codec.ports(ip, codec.epoch_week(ts))[index]


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


# --- known content for data blocks ----------------------------------------------------------

# The DOS stub every linker writes in front of a PE image: push cs / pop ds / mov dx, 0x0e /
# mov ah, 9 / int 21h (print the message) / mov ax, 0x4c01 / int 21h (exit), then its text.
_DOS_STUB = (
    bytes.fromhex("0e1fba0e00b409cd21b8014ccd21")
    + b"This program cannot be run in DOS mode.\r\r\n$"
)
PE_OFFSET = 0x80  # e_lfanew: where the "PE\0\0" signature sits


def pe_like(seed: int, size: int) -> bytes:
    """`size` bytes that look like a Windows executable, then bytes from random.Random(seed).

    A data block whose content the tests know byte for byte: the 64-byte DOS header of a
    typical PE file (b"MZ", e_lfanew = PE_OFFSET), the DOS stub and its "This program cannot
    be run in DOS mode" text, the "PE\0\0" signature, then seeded random bytes. Its first 16
    bytes are the header every PE file starts with: 4d5a90000300000004000000ffff0000.
    """
    header = bytearray(PE_OFFSET)
    # e_magic, e_cblp, e_cp, e_crlc, e_cparhdr, e_minalloc, e_maxalloc, e_ss, e_sp, e_csum,
    # e_ip, e_cs, e_lfarlc, e_ovno
    struct.pack_into(
        "<2s13H", header, 0, b"MZ", 0x90, 3, 0, 4, 0, 0xFFFF, 0, 0xB8, 0, 0, 0, 0x40, 0
    )
    struct.pack_into("<I", header, 0x3C, PE_OFFSET)
    header[0x40 : 0x40 + len(_DOS_STUB)] = _DOS_STUB
    head = bytes(header) + b"PE\0\0"
    assert size >= len(head), "too small for the PE-like header"
    return head + random.Random(seed).randbytes(size - len(head))


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


def framed(rng: random.Random, flags: int, size: int, *, data: int = 0) -> bytes:
    """A length-prefixed TCP message of exactly `size` bytes: flags' blocks (a data block of
    `data` random bytes when flags has FLAG_DATA), then random noise to fill it."""
    fixed = 2 + codec.MIN_MESSAGE
    fixed += 6 if flags & FLAG_PEER else 0
    fixed += codec.SYSINFO_SIZE if flags & FLAG_SYSINFO else 0
    fixed += 3 + data if flags & FLAG_DATA else 0
    assert size >= fixed, "message too small for its blocks"
    payload = rng.randbytes(data) if flags & FLAG_DATA else None
    out = encode_tcp(message(rng, flags, data=payload, noise=size - fixed))
    assert len(out) == size
    return out


def write_pcap(path: pathlib.Path, packets: list[Packet]) -> pathlib.Path:
    """Write packets as a classic little-endian microsecond pcap with linktype 1."""
    writer = PcapWriter(str(path), linktype=LINKTYPE_ETHERNET, endianness="<", sync=False)
    try:
        for pkt in packets:
            writer.write(pkt)
    finally:
        writer.close()
    return path
