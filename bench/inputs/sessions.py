"""The session kinds: each a builder (rng, pool, t0) -> (packets, server port) of one
session. The realistic mix (MIX: TLS, HTTP, QUIC, DNS, NTP, RTP, SSH, database-like
services, other UDP, background SYNs and the Conficker hosts) and the adversarial kinds
(FLOOD: random UDP datagrams; TCP_SESSIONS: short TCP sessions on high ports; the flood's
short and long variants of the profile inputs)."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

from bench.inputs.ingredients import (
    DOMAINS,
    Pool,
    allowed_port,
    client_hello,
    dns_exchange,
    ephemeral,
    external,
    internal,
    lognormal_int,
    server_hello,
    tls_appdata,
    tls_record,
)
from bench.inputs.packets import (
    BASE_TS,
    MSS,
    MSS_OPTION,
    TCP_ACK,
    TCP_RST,
    TCP_SYN,
    Conv,
    Packet,
)
from generator import codec as protocol
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
