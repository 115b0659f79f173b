"""Packet builders for the benchmark inputs: the classic pcap format (written with struct,
no scapy), Ethernet/IPv4/UDP and TCP frames with correct checksums, and Conv, one
conversation whose packets carry the role a decoder rule could see them in (ROLES)."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

from generator import codec as protocol

BASE_TS = 1795694400  # 2026-11-26T12:00:00Z, epoch week 2968, as in generator.traffic
MSS = 1460
PCAP_GLOBAL = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
RECORD = struct.Struct("<IIII")


# What a decoder rule could see in a packet, by the packet's role: "udp/c2s", "udp/s2c"
# (UDP payload >= 14 bytes, client to server or back), "tcp/c2s", "tcp/s2c" (TCP payload in
# an established connection), "tcp/syn" (a client's SYN) and "tcp/synack" (the server's
# SYN-ACK). Packets with none of these roles (pure ACKs, handshakes, short UDP) get no role.
ROLES = ("udp/c2s", "udp/s2c", "tcp/c2s", "tcp/s2c", "tcp/syn", "tcp/synack")
MIN_MESSAGE = protocol.MIN_MESSAGE


# --- checksums and frames --------------------------------------------------------------------


def inet_checksum(data: bytes) -> int:
    """RFC 1071 checksum. Summing 16-bit words modulo 0xFFFF is the big integer modulo 0xFFFF
    (2^16 = 1 mod 0xFFFF), which Python does in C; 0 stands for a sum of 0xFFFF because the
    data summed here (headers) is never all zero."""
    if len(data) % 2:
        data += b"\0"
    s = int.from_bytes(data, "big") % 0xFFFF
    return 0xFFFF - s if s else 0


_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MSS_OPTION = struct.pack("!BBH", 2, 4, MSS)


def mac(ip: bytes) -> bytes:
    return b"\x02\x00" + ip


def _ipv4(src: bytes, dst: bytes, proto: int, l4: bytes, ip_id: int, ttl: int) -> bytes:
    hdr = _IP.pack(0x45, 0, 20 + len(l4), ip_id, 0x4000, ttl, proto, 0, src, dst)
    csum = inet_checksum(hdr)
    return mac(dst) + mac(src) + b"\x08\x00" + hdr[:10] + csum.to_bytes(2, "big") + hdr[12:] + l4


def udp_frame(
    src: bytes, sport: int, dst: bytes, dport: int, payload: bytes, ip_id: int = 0, ttl: int = 64
) -> bytes:
    length = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
    csum = inet_checksum(pseudo + _UDP.pack(sport, dport, length, 0) + payload) or 0xFFFF
    return _ipv4(src, dst, 17, _UDP.pack(sport, dport, length, csum) + payload, ip_id, ttl)


def tcp_frame(
    src: bytes,
    sport: int,
    dst: bytes,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    options: bytes = b"",
    ip_id: int = 0,
    ttl: int = 64,
    window: int = 64240,
) -> bytes:
    offset = (20 + len(options)) // 4
    hdr = _TCP.pack(sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    csum = inet_checksum(pseudo + hdr + payload)
    hdr = hdr[:16] + csum.to_bytes(2, "big") + hdr[18:]
    return _ipv4(src, dst, 6, hdr + payload, ip_id, ttl)



# --- conversations ---------------------------------------------------------------------------

Packet = tuple[int, bytes, str | None]  # (microseconds past BASE_TS, frame, role)


class Conv:
    """One conversation between a client and a server: a UDP exchange or a TCP connection.

    Packets get absolute times; `gap` is microseconds after the previous packet. The client
    sends first, so Suricata sees the client side as to_server, and the listener side the
    decoder rules check is the server port in both directions."""

    def __init__(
        self, rng: random.Random, t0: int, client: bytes, cport: int, server: bytes, sport: int
    ) -> None:
        self.rng = rng
        self.t = t0
        self.ends = {True: (client, cport), False: (server, sport)}
        self.ip_id = {True: rng.getrandbits(16), False: rng.getrandbits(16)}
        self.seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
        self.ttl = {True: 64, False: rng.choice((50, 54, 57, 116, 118))}
        self.packets: list[Packet] = []

    def result(self) -> tuple[list[Packet], int]:
        """What a session builder returns: its packets and its server port."""
        return self.packets, self.ends[False][1]

    def _next_id(self, c: bool) -> int:
        self.ip_id[c] = (self.ip_id[c] + 1) & 0xFFFF
        return self.ip_id[c]

    def udp(self, c: bool, payload: bytes, gap: int) -> None:
        (src, sp), (dst, dp) = self.ends[c], self.ends[not c]
        self.t += gap
        role = ("udp/c2s" if c else "udp/s2c") if len(payload) >= MIN_MESSAGE else None
        frame = udp_frame(src, sp, dst, dp, payload, self._next_id(c), self.ttl[c])
        self.packets.append((self.t, frame, role))

    def segment(self, c: bool, flags: int, payload: bytes = b"", gap: int = 0,
                opts: bytes = b"") -> None:
        (src, sp), (dst, dp) = self.ends[c], self.ends[not c]
        self.t += gap
        ack = self.seq[not c] if flags & TCP_ACK else 0
        frame = tcp_frame(src, sp, dst, dp, self.seq[c], ack, flags, payload, opts,
                          self._next_id(c), self.ttl[c])
        role = None
        if payload:
            role = "tcp/c2s" if c else "tcp/s2c"
        elif c and flags & (TCP_SYN | TCP_ACK) == TCP_SYN:
            role = "tcp/syn"
        elif not c and flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK:
            role = "tcp/synack"
        self.packets.append((self.t, frame, role))
        self.seq[c] = (self.seq[c] + len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)) & (
            0xFFFFFFFF
        )

    def open(self, rtt: int) -> Conv:
        self.segment(True, TCP_SYN, opts=MSS_OPTION)
        self.segment(False, TCP_SYN | TCP_ACK, gap=rtt, opts=MSS_OPTION)
        self.segment(True, TCP_ACK, gap=60)
        return self

    def send(self, c: bool, data: bytes, gap: int, pace: int = 40, ack_every: int = 2) -> None:
        """data as PSH/ACK segments of at most MSS bytes, `pace` us apart; the receiver ACKs
        every `ack_every` segments and after the last."""
        pieces = [data[i : i + MSS] for i in range(0, len(data), MSS)]
        for n, piece in enumerate(pieces, start=1):
            self.segment(c, TCP_PSH | TCP_ACK, piece, gap if n == 1 else pace)
            if n % ack_every == 0 or n == len(pieces):
                self.segment(not c, TCP_ACK, gap=30)

    def close(self, gap: int) -> None:
        self.segment(True, TCP_FIN | TCP_ACK, gap=gap)
        self.segment(False, TCP_FIN | TCP_ACK, gap=200)
        self.segment(True, TCP_ACK, gap=150)



# --- reading -------------------------------------------------------------------------------


def iter_records(path: Path) -> Iterator[tuple[float, bytes]]:
    """(timestamp, frame) of each record of a pcap written here (for tests and checks)."""
    with open(path, "rb") as f:
        if f.read(24) != PCAP_GLOBAL:
            raise ValueError(f"{path}: not a pcap written by bench.inputs")
        while head := f.read(16):
            sec, usec, incl, _ = RECORD.unpack(head)
            yield sec + usec / 1e6, f.read(incl)
