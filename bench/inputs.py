"""Deterministic benchmark inputs, written as classic pcap records with struct (no scapy).

Three inputs (INPUTS), each a stream of sessions drawn by a seeded random.Random:

- mix: a realistic mix, mostly benign (TLS and plain HTTP over TCP, QUIC, DNS, NTP, RTP
  calls, SSH, database-like TCP services, other UDP, background SYNs) with four
  Conficker-infected hosts probing, scanning and talking to peers among it;
- flood: UDP datagrams of random bytes (14-1400) between random hosts and random
  non-blacklisted ports >= 2048, every one a new flow and a candidate for the decoder;
- tcp: short TCP sessions (handshake, one to three request/response rounds of random
  bytes, FIN teardown) on random non-blacklisted server ports >= 2048.

Every frame is Ethernet/IPv4/UDP or TCP with correct IPv4, UDP and TCP checksums. While
writing, each packet that a decoder rule could see is counted by its role (ROLES) and server
(listener) port, so that the packets which satisfy the decoder rules' header, flow and dsize
conditions can be counted from the input for any port lists the rules use.

Files are cached under .cache/bench/, named by the input, the scale and a hash of this
module's source and of the generator modules it uses (protocol, pcaps): they are written
again only when one of those changes.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from generator import codec as protocol  # the codec was generator/protocol.py
from generator.codec import (
    FLAG_DATA,
    FLAG_ENCODED,
    FLAG_LOCAL_ACK,
    FLAG_MODE,
    FLAG_PEER,
    FLAG_SYSINFO,
    FLAG_TCP,
    encode,
    encode_tcp,
)

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
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


# --- traffic ingredients ---------------------------------------------------------------------


class Pool:
    """Random bytes to slice payloads from: fast, and random enough for a decoder."""

    def __init__(self, rng: random.Random, size: int = 1 << 22) -> None:
        self.rng = rng
        self.data = rng.randbytes(size)

    def take(self, n: int) -> bytes:
        off = self.rng.randrange(len(self.data) - n)
        return self.data[off : off + n]


def internal(rng: random.Random) -> bytes:
    """A host in the monitored network, 10.1.0.0/16."""
    return bytes((10, 1, rng.randrange(0, 200), rng.randrange(1, 255)))


def external(rng: random.Random) -> bytes:
    """A host outside, in the benchmarking range 198.18.0.0/15 (RFC 2544)."""
    return bytes((198, 18 + rng.randrange(2), rng.randrange(256), rng.randrange(1, 255)))


def ephemeral(rng: random.Random) -> int:
    return rng.randrange(49152, 65536)


def allowed_port(rng: random.Random, low: int = 2048) -> int:
    """A random port >= low that the worm may listen on (not blacklisted)."""
    while True:
        port = rng.randrange(low, 65536)
        if not protocol.is_blacklisted(port):
            return port


def lognormal_int(rng: random.Random, mu: float, sigma: float, cap: int) -> int:
    return min(cap, 1 + int(rng.lognormvariate(mu, sigma)))


DOMAINS = [
    b"www.example.com", b"mail.example.org", b"cdn.example.net", b"api.example.com",
    b"updates.example.org", b"login.example.net", b"static.example.com", b"time.example.org",
    b"telemetry.example.net", b"assets.example.com", b"docs.example.org", b"wpad.example.net",
]


def dns_name(name: bytes) -> bytes:
    return b"".join(bytes((len(p),)) + p for p in name.split(b".")) + b"\0"


def dns_exchange(rng: random.Random) -> tuple[bytes, bytes]:
    qid, name = rng.getrandbits(16), rng.choice(DOMAINS)
    qtype = rng.choice((1, 1, 1, 28, 28, 65, 16))
    question = dns_name(name) + struct.pack("!HH", qtype, 1)
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + question
    query += b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"  # EDNS0 OPT
    answers = rng.randrange(1, 5)
    rdata = {1: 4, 28: 16, 65: 40, 16: 60}[qtype]
    body = b"".join(
        b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, rng.randrange(30, 3600), rdata)
        + rng.randbytes(rdata) for _ in range(answers)
    )
    reply = struct.pack("!HHHHHH", qid, 0x8180, 1, answers, 0, 0) + question + body
    return query, reply


def tls_record(kind: int, body: bytes) -> bytes:
    return struct.pack("!BHH", kind, 0x0303, len(body)) + body


def client_hello(rng: random.Random, sni: bytes) -> bytes:
    ext_sni = struct.pack("!HHHBH", 0, len(sni) + 5, len(sni) + 3, 0, len(sni)) + sni
    ext_versions = bytes.fromhex("002b0003020304")
    ext_groups = bytes.fromhex("000a000400020017")
    ext_keyshare = struct.pack("!HHHHH", 0x33, 38, 36, 0x1D, 32) + rng.randbytes(32)
    ext_pad = struct.pack("!HH", 0x15, 180) + bytes(180)
    exts = ext_sni + ext_versions + ext_groups + ext_keyshare + ext_pad
    suites = bytes.fromhex("130113021303c02bc02fc02cc030")
    body = (
        b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
        + struct.pack("!H", len(suites)) + suites + b"\x01\x00"
        + struct.pack("!H", len(exts)) + exts
    )
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0301, len(hs)) + hs


def server_hello(rng: random.Random) -> bytes:
    exts = bytes.fromhex("002b00020304") + struct.pack("!HHHH", 0x33, 36, 0x1D, 32)
    exts += rng.randbytes(32)
    body = (b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + b"\x13\x01\x00"
            + struct.pack("!H", len(exts)) + exts)
    return tls_record(22, b"\x02" + len(body).to_bytes(3, "big") + body)


def tls_appdata(pool: Pool, n: int) -> bytes:
    """n bytes of TLS 1.3 application-data records (at most 16 KiB of payload each)."""
    out, left = [], n
    while left > 5:
        size = min(left - 5, 16384)
        out.append(tls_record(23, pool.take(size)))
        left -= size + 5
    return b"".join(out)


# --- the realistic mix -----------------------------------------------------------------------

Session = tuple[list[Packet], int]  # packets, server port
Builder = Callable[[random.Random, Pool, int], Session]


def s_https(rng: random.Random, pool: Pool, t0: int) -> Session:
    """TLS 1.3 over TCP 443: hello exchange, then 1-4 request/response rounds."""
    c = Conv(rng, t0, internal(rng), ephemeral(rng), external(rng), 443)
    rtt = rng.randrange(8_000, 60_000)
    c.open(rtt)
    c.send(True, client_hello(rng, rng.choice(DOMAINS)), 100)
    hello = server_hello(rng) + tls_record(20, b"\x01")
    c.send(False, hello + tls_appdata(pool, rng.randrange(2500, 5000)), rtt)
    c.send(True, tls_record(20, b"\x01") + tls_appdata(pool, 74), 300)
    for _ in range(rng.choice((1, 1, 2, 3, 4))):
        c.send(True, tls_appdata(pool, rng.randrange(90, 900)), rng.randrange(500, 200_000))
        size = lognormal_int(rng, 9.5, 1.4, 400_000)
        c.send(False, tls_appdata(pool, size), rtt)
    c.close(rng.randrange(1_000, 500_000))
    return c.result()


HTTP_PATHS = [b"/", b"/index.html", b"/api/v1/items", b"/img/logo.png", b"/js/app.js",
              b"/update/manifest.xml", b"/favicon.ico", b"/css/site.css"]


def s_http(rng: random.Random, pool: Pool, t0: int) -> Session:
    """Plain HTTP/1.1 over TCP 80: 1-3 GETs with their responses on one connection."""
    c = Conv(rng, t0, internal(rng), ephemeral(rng), external(rng), 80)
    rtt = rng.randrange(8_000, 60_000)
    c.open(rtt)
    host = rng.choice(DOMAINS)
    for _ in range(rng.choice((1, 1, 2, 3))):
        req = (b"GET " + rng.choice(HTTP_PATHS) + b" HTTP/1.1\r\nHost: " + host
               + b"\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n"
               b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n")
        c.send(True, req, rng.randrange(100, 100_000))
        size = lognormal_int(rng, 8.5, 1.5, 300_000)
        head = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/octet-stream"
                b"\r\nContent-Length: " + str(size).encode() + b"\r\nCache-Control: max-age=3600"
                b"\r\n\r\n")
        c.send(False, head + pool.take(size), rtt)
    c.close(rng.randrange(1_000, 200_000))
    return c.result()


def s_quic(rng: random.Random, pool: Pool, t0: int) -> Session:
    """QUIC over UDP 443: 1200-byte Initials, then short-header data and small acks."""
    c = Conv(rng, t0, internal(rng), ephemeral(rng), external(rng), 443)
    rtt = rng.randrange(8_000, 60_000)
    dcid = rng.randbytes(8)
    initial = bytes((0xC3,)) + b"\x00\x00\x00\x01\x08" + dcid + b"\x00"
    c.udp(True, initial + pool.take(1200 - len(initial)), 0)
    c.udp(False, bytes((0xC1,)) + pool.take(1199), rtt)
    c.udp(False, bytes((0xE1,)) + pool.take(1199), 50)
    c.udp(True, bytes((0xC1,)) + pool.take(1199), 300)
    for n in range(lognormal_int(rng, 3.0, 1.3, 2_000)):
        c.udp(False, bytes((0x40 | rng.randrange(64),)) + dcid + pool.take(1240), 120)
        if n % 3 == 2:
            c.udp(True, bytes((0x40 | rng.randrange(64),)) + pool.take(rng.randrange(30, 60)), 30)
    return c.result()


def s_dns(rng: random.Random, pool: Pool, t0: int) -> Session:
    """A DNS query to an internal resolver on UDP 53 and its answer."""
    resolver = bytes((10, 1, 0, 53))
    c = Conv(rng, t0, internal(rng), rng.randrange(1024, 65536), resolver, 53)
    query, reply = dns_exchange(rng)
    c.udp(True, query, 0)
    c.udp(False, reply, rng.randrange(200, 30_000))
    return c.result()


def s_ntp(rng: random.Random, pool: Pool, t0: int) -> Session:
    """An NTPv4 client/server exchange on UDP 123."""
    c = Conv(rng, t0, internal(rng), rng.choice((123, ephemeral(rng))), external(rng), 123)
    request = struct.pack("!BBbb", 0x23, 0, 6, -20) + bytes(36) + rng.randbytes(8)
    c.udp(True, request, 0)
    reply = struct.pack("!BBbb", 0x24, 2, 6, -23) + rng.randbytes(44)
    c.udp(False, reply, rng.randrange(5_000, 50_000))
    return c.result()


def s_rtp(rng: random.Random, pool: Pool, t0: int) -> Session:
    """An RTP voice call on even UDP ports 16384-32766: 20 ms packets both ways, 2-10 s."""
    c = Conv(rng, t0, internal(rng), 2 * rng.randrange(8192, 16384), external(rng),
             2 * rng.randrange(8192, 16384))
    ssrc = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
    seq = {True: rng.getrandbits(16), False: rng.getrandbits(16)}
    ts = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
    for n in range(rng.randrange(100, 500)):
        for side in (True, False):
            hdr = struct.pack("!BBHII", 0x80, 0 if n else 0x80, seq[side], ts[side], ssrc[side])
            seq[side] = (seq[side] + 1) & 0xFFFF
            ts[side] = (ts[side] + 160) & 0xFFFFFFFF
            c.udp(side, hdr + pool.take(160), 20_000 if side and n else rng.randrange(100, 2_000))
    return c.result()


def s_ssh(rng: random.Random, pool: Pool, t0: int) -> Session:
    """SSH on TCP 22: banners, key exchange, then an interactive session of small packets."""
    c = Conv(rng, t0, internal(rng), ephemeral(rng), external(rng), 22)
    rtt = rng.randrange(5_000, 40_000)
    c.open(rtt)
    c.send(False, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", 2_000)
    c.send(True, b"SSH-2.0-OpenSSH_9.6\r\n", rtt)
    c.send(True, struct.pack("!IB", 1500, 10) + pool.take(1500), 200)
    c.send(False, struct.pack("!IB", 1100, 10) + pool.take(1100), rtt)
    c.send(True, pool.take(48), 300)
    c.send(False, pool.take(1200), rtt)
    for _ in range(rng.randrange(10, 60)):
        c.send(True, pool.take(36), rng.randrange(50_000, 400_000), ack_every=1)
        c.send(False, pool.take(rng.choice((36, 36, 52, 100, 400))), rtt, ack_every=1)
    c.close(rng.randrange(1_000, 100_000))
    return c.result()


SERVICE_PORTS = (5432, 3306, 6379, 11211, 27017, 9092, 9200, 8080, 8000)


def s_service(rng: random.Random, pool: Pool, t0: int) -> Session:
    """A database-like binary TCP service: requests and responses framed by a length."""
    server = bytes((10, 1, 250, rng.randrange(1, 20)))
    c = Conv(rng, t0, internal(rng), ephemeral(rng), server, rng.choice(SERVICE_PORTS))
    c.open(rng.randrange(200, 2_000))
    for n in range(rng.randrange(1, 10)):
        body = pool.take(rng.randrange(30, 400))
        c.send(True, struct.pack("<I", len(body))[:3] + bytes((n & 0xFF,)) + body,
               rng.randrange(100, 50_000))
        body = pool.take(lognormal_int(rng, 6.0, 1.3, 40_000))
        c.send(False, struct.pack("<I", len(body))[:3] + bytes(((n + 1) & 0xFF,)) + body,
               rng.randrange(100, 3_000))
    c.close(rng.randrange(1_000, 200_000))
    return c.result()


def s_udp_misc(rng: random.Random, pool: Pool, t0: int) -> Session:
    """Other UDP: VPN tunnels, STUN, game and P2P traffic on assorted high ports."""
    port = rng.choice((51820, 1194, 4500, 19302, 3478, 27015, allowed_port(rng), allowed_port(rng)))
    c = Conv(rng, t0, internal(rng), ephemeral(rng), external(rng), port)
    for n in range(rng.randrange(4, 60)):
        side = n % 3 != 2
        c.udp(side, pool.take(rng.choice((32, 48, 92, 148, 300, 600, 1200, 1380))),
              rng.randrange(500, 40_000))
    return c.result()


def s_background(rng: random.Random, pool: Pool, t0: int) -> Session:
    """Internet background noise: a SYN to an internal host, sometimes answered with RST."""
    port = rng.choice((22, 23, 445, 3389, 8080, 80, 443, rng.randrange(1, 65536)))
    c = Conv(rng, t0, external(rng), ephemeral(rng), internal(rng), port)
    c.segment(True, TCP_SYN, opts=MSS_OPTION)
    if rng.random() < 0.4:
        c.segment(False, TCP_RST | TCP_ACK, gap=300)
    return c.result()


INFECTED = [bytes((10, 1, 200, n)) for n in (11, 12, 13, 14)]
_UDP_IDX, _TCP_IDX = (1, 3), (0, 2)
_CONTROL = FLAG_ENCODED | FLAG_MODE  # 0x8001
_TCP_CONTROL = FLAG_ENCODED | FLAG_TCP | FLAG_MODE  # 0x8005


def _ip_str(ip: bytes) -> str:
    return ".".join(str(b) for b in ip)


def _listener(ip: bytes, t_us: int, index: int) -> int:
    return protocol.ports(_ip_str(ip), protocol.epoch_week(BASE_TS + t_us / 1e6))[index]


def _message(rng: random.Random, flags: int, **kw: object) -> protocol.Message:
    # scapy import: only when Conficker traffic is built
    from generator.traffic.pcaps import message

    return message(rng, flags, **kw)


def s_conficker_udp(rng: random.Random, pool: Pool, t0: int) -> Session:
    """An infected host probes a random address on its UDP listener port; one in ten replies
    (0x8089: peer + system-info blocks, noise), one in twenty probes carries a data block."""
    src, dst = rng.choice(INFECTED), external(rng)
    c = Conv(rng, t0, src, allowed_port(rng, 1024), dst, _listener(dst, t0, rng.choice(_UDP_IDX)))
    if rng.random() < 0.05:
        data = pool.take(rng.randrange(100, 900))
        msg = _message(rng, _CONTROL | FLAG_PEER | FLAG_DATA, data=data)
    else:
        msg = _message(rng, _CONTROL, noise=rng.randrange(0, 41))
    c.udp(True, encode(msg), 0)
    if rng.random() < 0.1:
        reply = _message(rng, _CONTROL | FLAG_SYSINFO | FLAG_PEER,
                         peer=(_ip_str(src), c.ends[True][1]), noise=rng.randrange(1, 41))
        c.udp(False, encode(reply), rng.randrange(20_000, 200_000))
    return c.result()


def s_conficker_syn(rng: random.Random, pool: Pool, t0: int) -> Session:
    """An infected host scans a random address on its TCP listener port (SYN, maybe RST)."""
    dst = external(rng)
    c = Conv(rng, t0, rng.choice(INFECTED), ephemeral(rng), dst,
             _listener(dst, t0, rng.choice(_TCP_IDX)))
    c.segment(True, TCP_SYN, opts=MSS_OPTION)
    if rng.random() < 0.3:
        c.segment(False, TCP_RST | TCP_ACK, gap=rng.randrange(10_000, 80_000))
    return c.result()


def s_conficker_tcp(rng: random.Random, pool: Pool, t0: int) -> Session:
    """An infected host talks to an infected peer over TCP: control messages both ways, then
    often a data transfer (0x804D) of 1-6 KB split over segments."""
    dst = external(rng)
    c = Conv(rng, t0, rng.choice(INFECTED), ephemeral(rng), dst,
             _listener(dst, t0, rng.choice(_TCP_IDX)))
    rtt = rng.randrange(20_000, 120_000)
    c.open(rtt)
    c.send(True, encode_tcp(_message(rng, _TCP_CONTROL, noise=rng.randrange(0, 41))), 500)
    reply = _message(rng, _TCP_CONTROL | FLAG_LOCAL_ACK | FLAG_SYSINFO, noise=rng.randrange(0, 41))
    c.send(False, encode_tcp(reply), rtt)
    if rng.random() < 0.7:
        data = pool.take(rng.randrange(1000, 6000))
        msg = _message(rng, _TCP_CONTROL | FLAG_PEER | FLAG_DATA, data=data)
        c.send(False, encode_tcp(msg), 300)
    c.close(rng.randrange(1_000, 100_000))
    return c.result()


@dataclass(frozen=True)
class Kind:
    name: str
    build: Builder
    share: float  # target share of the input's packets


MIX = [
    Kind("https", s_https, 0.40),
    Kind("quic", s_quic, 0.16),
    Kind("http", s_http, 0.12),
    Kind("dns", s_dns, 0.07),
    Kind("service", s_service, 0.07),
    Kind("rtp", s_rtp, 0.06),
    Kind("udp-misc", s_udp_misc, 0.04),
    Kind("ssh", s_ssh, 0.03),
    Kind("background", s_background, 0.02),
    Kind("ntp", s_ntp, 0.005),
    Kind("conficker-udp", s_conficker_udp, 0.0015),
    Kind("conficker-syn", s_conficker_syn, 0.0006),
    Kind("conficker-tcp", s_conficker_tcp, 0.0008),
]


# --- the adversarial inputs ------------------------------------------------------------------


def s_flood(rng: random.Random, pool: Pool, t0: int) -> Session:
    """One datagram of 14-1400 random bytes, random hosts, random allowed ports >= 2048."""
    c = Conv(rng, t0, external(rng), allowed_port(rng), internal(rng), allowed_port(rng))
    c.udp(True, pool.take(rng.randrange(14, 1401)), 0)
    return c.result()


def s_flood_short(rng: random.Random, pool: Pool, t0: int) -> Session:
    """As s_flood with 14-100 random bytes (profile input)."""
    c = Conv(rng, t0, external(rng), allowed_port(rng), internal(rng), allowed_port(rng))
    c.udp(True, pool.take(rng.randrange(14, 101)), 0)
    return c.result()


def s_flood_long(rng: random.Random, pool: Pool, t0: int) -> Session:
    """As s_flood with 1000-1400 random bytes (profile input)."""
    c = Conv(rng, t0, external(rng), allowed_port(rng), internal(rng), allowed_port(rng))
    c.udp(True, pool.take(rng.randrange(1000, 1401)), 0)
    return c.result()


def s_tcp_high(rng: random.Random, pool: Pool, t0: int) -> Session:
    """A short TCP session on an allowed server port >= 2048: handshake, 1-3 rounds of a
    request (20-1400 random bytes) and a response (1-4 segments of random bytes), teardown."""
    c = Conv(rng, t0, internal(rng), allowed_port(rng), external(rng), allowed_port(rng))
    rtt = rng.randrange(1_000, 40_000)
    c.open(rtt)
    for _ in range(rng.randrange(1, 4)):
        c.send(True, pool.take(rng.randrange(20, 1401)), rng.randrange(100, 20_000))
        c.send(False, pool.take(rng.randrange(20, 4 * MSS)), rtt)
    c.close(rng.randrange(500, 50_000))
    return c.result()


FLOOD = [Kind("udp-flood", s_flood, 1.0)]
TCP_SESSIONS = [Kind("tcp-high", s_tcp_high, 1.0)]


@dataclass(frozen=True)
class InputSpec:
    name: str
    title: str
    kinds: list[Kind]
    packets: int  # at scale 1.0
    pps: int  # packets per second of traffic time

    def target(self, scale: float) -> int:
        return max(50, round(self.packets * scale))


INPUTS = [
    InputSpec("mix", "realistic mix", MIX, 1_000_000, 10_000),
    InputSpec("flood", "UDP flood, random payloads", FLOOD, 200_000, 10_000),
    InputSpec("tcp", "short TCP sessions, high ports", TCP_SESSIONS, 300_000, 10_000),
]


# --- writing ---------------------------------------------------------------------------------


@dataclass
class InputInfo:
    """What was written, with the decoder-rule view of it."""

    name: str
    title: str
    path: str
    packets: int = 0
    bytes: int = 0  # pcap file size
    seconds: float = 0.0  # traffic time covered
    flows: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    roles: dict[str, dict[int, int]] = field(default_factory=dict)  # role -> server port -> n

    def count(self, roles: tuple[str, ...], allowed: bool | None = None) -> int:
        """Packets with one of these roles; allowed=True/False: only those whose server port
        the worm may / may not listen on."""
        return sum(n for r in roles for port, n in self.roles.get(r, {}).items()
                   if allowed is None or protocol.is_blacklisted(port) != allowed)

    @property
    def decoded(self) -> int:
        """Payload packets whose listener port is allowed: candidates for deciphering."""
        return self.count(ROLES[:4], allowed=True)

    @property
    def blacklisted(self) -> int:
        """Payload packets whose listener port is blacklisted."""
        return self.count(ROLES[:4], allowed=False)

    @property
    def syn_allowed(self) -> int:
        """Clients' SYNs to allowed ports."""
        return self.count(("tcp/syn",), allowed=True)

    @classmethod
    def from_json(cls, text: str) -> InputInfo:
        data = json.loads(text)
        data["roles"] = {r: {int(p): n for p, n in v.items()} for r, v in data["roles"].items()}
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)


def _mean_packets(kind: Kind, seed: int) -> float:
    """Mean packets per session of a kind, from a sample drawn with its own generator."""
    rng = random.Random(seed)
    pool = Pool(rng, 1 << 20)
    n = 60
    return sum(len(kind.build(rng, pool, 0)[0]) for _ in range(n)) / n


def generate(spec: InputSpec, scale: float, path: Path) -> InputInfo:
    """Write spec's input at `scale` to path (a classic pcap); return what was written.

    Sessions of each kind arrive as a Poisson process whose rate gives the kind its share
    of `spec.pps`; arrivals stop once the packets of the sessions started reach the target,
    and every started session is written in full, interleaved by time."""
    target = spec.target(scale)
    rng = random.Random(f"cfp2p-bench-{spec.name}")
    pool = Pool(rng)
    rates = []  # sessions per microsecond
    for i, kind in enumerate(spec.kinds):
        mean = _mean_packets(kind, seed=i)
        rates.append(kind.share * spec.pps / mean / 1e6)
    arrivals = [(rng.expovariate(r), i) for i, r in enumerate(rates)]
    heapq.heapify(arrivals)
    info = InputInfo(spec.name, spec.title, str(path))
    planned = 0
    active: list[tuple[int, int, list[Packet], int]] = []  # (time, order, packets, index)
    ports_of: dict[int, int] = {}  # order -> the session's server port
    order = 0
    last_t = 0
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb", buffering=1 << 20) as out:
        out.write(PCAP_GLOBAL)

        def emit_until(limit: float) -> None:
            nonlocal last_t
            while active and active[0][0] <= limit:
                t, o, pkts, idx = active[0]
                _, frame, role = pkts[idx]
                t = max(t, last_t)  # a session never runs back in time; keep the file sorted
                last_t = t
                out.write(RECORD.pack(BASE_TS + t // 1_000_000, t % 1_000_000, len(frame),
                                      len(frame)))
                out.write(frame)
                info.packets += 1
                if role is not None:
                    ports = info.roles.setdefault(role, {})
                    server = ports_of[o]
                    ports[server] = ports.get(server, 0) + 1
                if idx + 1 < len(pkts):
                    heapq.heapreplace(active, (pkts[idx + 1][0], o, pkts, idx + 1))
                else:
                    heapq.heappop(active)
                    del ports_of[o]

        while planned < target:
            t_arrival, i = heapq.heappop(arrivals)
            emit_until(t_arrival)
            kind = spec.kinds[i]
            pkts, server_port = kind.build(rng, pool, int(t_arrival))
            if pkts:
                ports_of[order] = server_port
                planned += len(pkts)
                info.flows += 1
                info.by_kind[kind.name] = info.by_kind.get(kind.name, 0) + len(pkts)
                heapq.heappush(active, (pkts[0][0], order, pkts, 0))
                order += 1
            heapq.heappush(arrivals, (t_arrival + rng.expovariate(rates[i]), i))
        emit_until(math.inf)
    info.seconds = round(last_t / 1e6, 3)
    info.bytes = tmp.stat().st_size
    os.replace(tmp, path)
    return info


def source_hash(spec: InputSpec | None = None) -> str:
    """Hash of what shapes an input: its spec (sizes, kinds, shares), this module and the
    generator modules it uses."""
    h = hashlib.sha256()
    if spec is not None:
        kinds = [(k.name, k.build.__name__, k.share) for k in spec.kinds]
        h.update(repr((spec.name, spec.packets, spec.pps, kinds)).encode())
    traffic = sorted(Path(protocol.__file__).with_name("traffic").glob("*.py"))
    for module in (Path(__file__), Path(protocol.__file__), *traffic):
        h.update(module.read_bytes())
    return h.hexdigest()[:12]


def ensure(spec: InputSpec, scale: float, cache: Path = CACHE) -> InputInfo:
    """The cached input for (spec, scale, generator source), written if missing."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = f"{spec.name}-x{scale:g}-{source_hash(spec)}"
    pcap, meta = cache / f"{stem}.pcap", cache / f"{stem}.json"
    for stale in cache.glob(f"{spec.name}-x{scale:g}-*"):
        if not stale.name.startswith(stem):  # written by an older generator
            stale.unlink(missing_ok=True)
    if pcap.exists() and meta.exists():
        return InputInfo.from_json(meta.read_text())
    info = generate(spec, scale, pcap)
    meta.write_text(info.to_json())
    return info


def iter_records(path: Path) -> Iterator[tuple[float, bytes]]:
    """(timestamp, frame) of each record of a pcap written here (for tests and checks)."""
    with open(path, "rb") as f:
        if f.read(24) != PCAP_GLOBAL:
            raise ValueError(f"{path}: not a pcap written by bench.inputs")
        while head := f.read(16):
            sec, usec, incl, _ = RECORD.unpack(head)
            yield sec + usec / 1e6, f.read(incl)
