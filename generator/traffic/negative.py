"""Negative scenarios: bad checksums, truncated messages, random payloads, benign services,
benign traffic on computed ports. A correct detector reports nothing."""

from __future__ import annotations

import random
import struct

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.ntp import NTPHeader
from scapy.packet import Packet

from ..codec import (
    FLAG_DATA,
    FLAG_PEER,
    FLAG_SYSINFO,
    encode,
    encode_tcp,
)
from .packets import (
    CLIENT,
    CONTROL,
    LISTENER,
    LISTENER2,
    LISTENER3,
    NTP_SERVER,
    PROBER,
    PROBER2,
    RESOLVER,
    SSDP_GROUP,
    TCP_CONTROL,
    UDP_INDEXES,
    WEB_SERVER,
    Trace,
    doc_address,
    ephemeral_port,
    high_port,
    listener_port,
    message,
)
from .registry import scenario


@scenario("neg-bad-checksum", attempts={PROBER: 1})
def _neg_bad_checksum(rng: random.Random) -> list[Packet]:
    """Conficker-shaped traffic on real listener ports whose checksums are wrong (low bit
    flipped): three UDP datagrams (probe 0x8001, reply 0x8089 with noise, data transfer 0x8049)
    and a TCP session carrying a 0x8005 control message and a 0x804D data transfer. A correct
    detector reports nothing."""
    t = Trace(rng)
    udp_msgs = (
        message(rng, CONTROL),
        message(rng, CONTROL | FLAG_PEER | FLAG_SYSINFO, noise=rng.randrange(1, 41)),
        message(rng, CONTROL | FLAG_PEER | FLAG_DATA),
    )
    for i, msg in enumerate(udp_msgs):
        dport = listener_port(LISTENER, t.now, UDP_INDEXES[i % 2])
        sport = ephemeral_port(rng, (dport,))
        t.udp(PROBER, sport, LISTENER, dport, encode(msg, bad_checksum=True), gap=0.01)
    dport = listener_port(LISTENER2, t.now, 0)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER2, dport).open()
    s.send(True, encode_tcp(message(rng, TCP_CONTROL), bad_checksum=True))
    data = message(rng, TCP_CONTROL | FLAG_PEER | FLAG_DATA, data=rng.randbytes(300))
    s.send(True, encode_tcp(data, bad_checksum=True))
    s.close()
    return t.packets


@scenario("neg-truncated", attempts={PROBER: 1, PROBER2: 1})
def _neg_truncated(rng: random.Random) -> list[Packet]:
    """Valid messages with missing bytes, on real listener ports: three UDP datagrams holding
    a noise-free message (peer + system-info, data transfer, peer + system-info) cut short by
    1, 4 and 10 bytes; one TCP session whose length prefix is correct but the stream ends 10
    bytes before the message does; one TCP session whose prefix announces 1024 bytes but only a
    complete 48-byte message follows before FIN. A correct detector reports nothing."""
    t = Trace(rng)
    udp_msgs = (
        message(rng, CONTROL | FLAG_PEER | FLAG_SYSINFO),
        message(rng, CONTROL | FLAG_PEER | FLAG_DATA),
        message(rng, CONTROL | FLAG_PEER | FLAG_SYSINFO),
    )
    for i, (msg, cut) in enumerate(zip(udp_msgs, (1, 4, 10), strict=True)):
        dport = listener_port(LISTENER, t.now, UDP_INDEXES[i % 2])
        sport = ephemeral_port(rng, (dport,))
        t.udp(PROBER, sport, LISTENER, dport, encode(msg)[:-cut], gap=0.01)

    dport = listener_port(LISTENER2, t.now, 0)
    s = t.tcp(PROBER, ephemeral_port(rng, (dport,)), LISTENER2, dport).open()
    framed = encode_tcp(message(rng, TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO, noise=20))
    s.send(True, framed[:-10])
    s.close()

    dport = listener_port(LISTENER3, t.now, 2)
    s = t.tcp(PROBER2, ephemeral_port(rng, (dport,)), LISTENER3, dport).open()
    body = encode(message(rng, TCP_CONTROL | FLAG_PEER | FLAG_SYSINFO))
    s.send(True, struct.pack("<H", 1024) + body)
    s.close()
    return t.packets


@scenario("neg-random-udp")
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


@scenario("neg-services")
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


@scenario("neg-random-tcp")
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


@scenario("neg-benign-computed-ports", attempts={CLIENT: 3})
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
